//! Schemas 2 and 3: postcard (a compact, stable binary serde format) after the tag byte 2 or 3.
//! Times are microseconds (the creation time since the Unix epoch, every other time relative to
//! it), the state is a fixed code, the bank's order id is 16 bytes when it is a UUID, the payment
//! link is kept without the id it contains, and history lines are typed kinds without their
//! words. A paid order takes about 250 bytes, against 1.3–1.7 KB as schema 1 JSON.
//!
//! The two schemas share one layout, [`Record`]; they differ in what a failure reason is:
//! schema 2 kept a sentence (and, for a failed sale, what the cashier was told), schema 3 keeps
//! a typed [`Reason`]. Schema 2 is read only: it is upgraded on reading (the sentences become
//! `Reason::Said`), and every record written is schema 3.
//!
//! Append-only rules: never reorder fields or enum variants here, in `EventKind` or in
//! `Reason`; add new fields only in a new schema.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::v2_kind::EventKindV2;
use super::Unreadable;
use crate::domain::{Description, GatewayOrderId, IdempotencyKey, OrderNumber, PaymentUrl, TillId};
use crate::domain::{Email, Phone};
use crate::money::Kopecks;
use crate::orders::cart::{Cart, Item, ItemName, PaymentMethod, PaymentObject, Quantity, Vat};
use crate::orders::order::{
    Actor, Customer, Event, EventKind, FailedAttempt, Mode, Order, Refund, RefundStatus,
};
use crate::orders::reason::Reason;
use crate::orders::receipt::{Fiscal, Movement, Receipt, ReceiptKind, ReceiptStatus};
use crate::orders::state::{AtBank, State, StateKind};

/// Schema 2's tag: reasons as sentences (read only).
pub(super) const TAG_V2: u8 = 2;
/// Schema 3's tag: reasons typed.
pub(super) const TAG: u8 = 3;

/// An order on disk; `W` is what a failure reason is (a sentence in schema 2, a [`Reason`] in
/// schema 3) and `K` a history line's kind.
#[derive(Serialize, Deserialize)]
struct Record<W, K> {
    id: [u8; 16],
    number: String,
    amount: u64,
    two_stage: bool,
    description: Option<String>,
    till: String,
    cashier: Option<String>,
    key: Option<String>,
    /// Microseconds since the Unix epoch.
    created: i64,
    /// The other times: microseconds after `created` (negative when the bank's clock is behind).
    updated: i64,
    expires: i64,
    held: Option<i64>,
    paid: Option<i64>,
    state: u8,
    why: Option<W>,
    /// Schema 2: what the cashier was told of a failed sale (schema 3 derives it from `why`).
    state_cashier: Option<String>,
    bank: Option<Bank>,
    deposited: u64,
    refunded: u64,
    refunds: Vec<RefundRecord<W>>,
    reversal_attempted: bool,
    cancel_requested: bool,
    attempts: Vec<AttemptV2>,
    version: u64,
    history: Vec<EventRecord<K>>,
}

/// Schema 3: schema 2's layout with typed reasons, then what schema 3 added.
#[derive(Serialize, Deserialize)]
struct RecordV3 {
    order: Record<Reason, EventKind>,
    added: Added,
}

/// What schema 3 keeps beyond schema 2: the cart, the customer's contact, the receipts owed.
#[derive(Serialize, Deserialize, Default)]
struct Added {
    cart: Option<Vec<ItemRecord>>,
    phone: Option<String>,
    email: Option<String>,
    receipts: Vec<ReceiptRecord>,
    deposit_asked: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct ReceiptRecord {
    id: [u8; 16],
    kind: ReceiptKind,
    amount: u64,
    movement: MovementRecord,
    lines: Vec<ItemRecord>,
    /// Microseconds after the order's creation.
    owed: i64,
    due: i64,
    late: bool,
    status: ReceiptStatusRecord,
    tries: u32,
    last_problem: Option<String>,
    round: u32,
}

#[derive(Serialize, Deserialize)]
enum MovementRecord {
    Payment,
    Reversal,
    Refund(Option<String>),
}

#[derive(Serialize, Deserialize)]
enum ReceiptStatusRecord {
    Owed,
    /// Microseconds after the order's creation.
    Sent(i64),
    Issued {
        number: u64,
        sign: String,
        fn_number: String,
        at: i64,
    },
    Failed(String),
}

#[derive(Serialize, Deserialize)]
struct ItemRecord {
    name: String,
    /// Thousandths.
    quantity: u64,
    price: u64,
    vat: Vat,
    object: PaymentObject,
    method: PaymentMethod,
}

#[derive(Serialize, Deserialize)]
enum BankId {
    Uuid([u8; 16]),
    Text(String),
}

#[derive(Serialize, Deserialize)]
struct Bank {
    id: BankId,
    link: Link,
}

/// The payment link: the bank's links carry the order's id (`…?mdOrder=<id>`), kept once; a
/// link on one of the bank's own payment pages keeps only the page's number in
/// [`KNOWN_PAGES`] (most of a link is that page's address, the same for every order).
#[derive(Serialize, Deserialize)]
enum Link {
    AroundId { before: String, after: String },
    Whole(String),
    Known { page: u8, after: String },
}

/// The bank's payment pages, by number. Append only: a record keeps the number.
const KNOWN_PAGES: [&str; 4] = [
    "https://securepayments.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=",
    "https://3dsec.sberbank.ru/payment/merchants/sbersafe_sberid/payment_ru.html?mdOrder=",
    "https://securepayments.sberbank.ru/payment/merchants/sbersafe/payment_ru.html?mdOrder=",
    "https://3dsec.sberbank.ru/payment/merchants/sbersafe/payment_ru.html?mdOrder=",
];

#[derive(Serialize, Deserialize)]
enum RefundStatusRecord<W> {
    Pending,
    Done,
    Failed(W),
}

#[derive(Serialize, Deserialize)]
struct RefundRecord<W> {
    key: String,
    amount: u64,
    status: RefundStatusRecord<W>,
    requested: i64,
}

#[derive(Serialize, Deserialize)]
struct AttemptV2 {
    at: i64,
    code: i64,
    why: String,
}

#[derive(Serialize, Deserialize)]
struct EventRecord<K> {
    at: i64,
    from: u8,
    to: u8,
    kind: K,
    actor: Option<(String, Option<String>)>,
}

impl Record<String, EventKindV2> {
    /// A schema 2 record as schema 3: its sentences become [`Reason::Said`] (a failed sale's
    /// keeping what the cashier was told).
    fn upgrade(self) -> Record<Reason, EventKind> {
        let state = state_of_code(self.state).ok();
        let told = (state == Some(StateKind::Failed)).then(|| {
            self.state_cashier
                .clone()
                .unwrap_or_else(|| StateKind::Failed.russian().to_string())
        });
        // Schema 2 read a missing sentence as an empty one.
        let has_reason = matches!(
            state,
            Some(StateKind::Failed | StateKind::Declined | StateKind::NeedsAttention)
        );
        let why = match self.why {
            Some(why) => Some(Reason::said(why, told)),
            None if has_reason => Some(Reason::said("", told)),
            None => None,
        };
        Record {
            id: self.id,
            number: self.number,
            amount: self.amount,
            two_stage: self.two_stage,
            description: self.description,
            till: self.till,
            cashier: self.cashier,
            key: self.key,
            created: self.created,
            updated: self.updated,
            expires: self.expires,
            held: self.held,
            paid: self.paid,
            state: self.state,
            why,
            state_cashier: None,
            bank: self.bank,
            deposited: self.deposited,
            refunded: self.refunded,
            refunds: self
                .refunds
                .into_iter()
                .map(|r| RefundRecord {
                    key: r.key,
                    amount: r.amount,
                    status: match r.status {
                        RefundStatusRecord::Pending => RefundStatusRecord::Pending,
                        RefundStatusRecord::Done => RefundStatusRecord::Done,
                        RefundStatusRecord::Failed(why) => {
                            RefundStatusRecord::Failed(Reason::said(why, None))
                        }
                    },
                    requested: r.requested,
                })
                .collect(),
            reversal_attempted: self.reversal_attempted,
            cancel_requested: self.cancel_requested,
            attempts: self.attempts,
            version: self.version,
            history: self
                .history
                .into_iter()
                .map(|e| EventRecord {
                    at: e.at,
                    from: e.from,
                    to: e.to,
                    kind: e.kind.into_current(),
                    actor: e.actor,
                })
                .collect(),
        }
    }
}

/// The fixed code of each state on disk.
const STATES: [StateKind; 15] = [
    StateKind::Registering,
    StateKind::AwaitingPayment,
    StateKind::Held,
    StateKind::Depositing,
    StateKind::Paid,
    StateKind::Declined,
    StateKind::Expired,
    StateKind::Cancelled,
    StateKind::Failed,
    StateKind::Reversing,
    StateKind::Reversed,
    StateKind::Refunding,
    StateKind::Refunded,
    StateKind::PartiallyRefunded,
    StateKind::NeedsAttention,
];

fn state_code(kind: StateKind) -> u8 {
    // STATES lists every kind; the position fits a byte.
    STATES.iter().position(|k| *k == kind).unwrap_or(0) as u8
}

fn state_of_code(code: u8) -> Result<StateKind, Unreadable> {
    STATES
        .get(usize::from(code))
        .copied()
        .ok_or_else(|| Unreadable(format!("unknown state code {code}")))
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn after(created: i64, at: DateTime<Utc>) -> i64 {
    micros(at).saturating_sub(created)
}

fn time(created: i64, offset: i64) -> Result<DateTime<Utc>, Unreadable> {
    created
        .checked_add(offset)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| Unreadable(format!("time {created}+{offset} µs is out of range")))
}

fn bank_of(bank: &AtBank) -> Bank {
    let id_text = bank.id.as_str();
    let id = match uuid::Uuid::try_parse(id_text) {
        // Only when the text is the UUID's own spelling, so it reads back the same.
        Ok(u) if u.hyphenated().to_string() == id_text => BankId::Uuid(*u.as_bytes()),
        _ => BankId::Text(id_text.to_string()),
    };
    let link = bank.link.as_str();
    let link = match link.split_once(id_text) {
        Some((before, after)) if !id_text.is_empty() => {
            match KNOWN_PAGES.iter().position(|page| *page == before) {
                Some(page) => Link::Known {
                    page: page as u8,
                    after: after.to_string(),
                },
                None => Link::AroundId {
                    before: before.to_string(),
                    after: after.to_string(),
                },
            }
        }
        _ => Link::Whole(link.to_string()),
    };
    Bank { id, link }
}

fn at_bank(bank: Bank) -> Result<AtBank, Unreadable> {
    let id = match bank.id {
        BankId::Uuid(bytes) => uuid::Uuid::from_bytes(bytes).hyphenated().to_string(),
        BankId::Text(text) => text,
    };
    let link = match bank.link {
        Link::AroundId { before, after } => format!("{before}{id}{after}"),
        Link::Whole(link) => link,
        Link::Known { page, after } => {
            let page = KNOWN_PAGES
                .get(usize::from(page))
                .ok_or_else(|| Unreadable(format!("unknown payment page {page}")))?;
            format!("{page}{id}{after}")
        }
    };
    Ok(AtBank {
        id: GatewayOrderId::parse(&id).map_err(|e| Unreadable(format!("bank id: {e}")))?,
        link: PaymentUrl::parse(&link).map_err(|e| Unreadable(format!("payment link: {e}")))?,
    })
}

pub(super) fn encode(o: &Order, with_history: bool) -> Result<Vec<u8>, Unreadable> {
    let created = micros(o.created_at);
    let record: Record<Reason, EventKind> = Record {
        id: *o.id.as_bytes(),
        number: o.order_number.to_string(),
        amount: o.amount.get(),
        two_stage: o.mode == Mode::TwoStage,
        description: o.description.as_ref().map(|d| d.to_string()),
        till: o.till.to_string(),
        cashier: o.cashier.clone(),
        key: o.idempotency_key.as_ref().map(|k| k.to_string()),
        created,
        updated: after(created, o.updated_at),
        expires: after(created, o.link_expires_at),
        held: o.held_at.map(|t| after(created, t)),
        paid: o.paid_at.map(|t| after(created, t)),
        state: state_code(o.state.kind()),
        why: o.state.why().cloned(),
        state_cashier: None,
        bank: match (o.state.bank(), o.state.bank_id()) {
            (Some(bank), _) => Some(bank_of(bank)),
            // NeedsAttention may know the bank's id without a link.
            (None, Some(id)) => Some(Bank {
                id: BankId::Text(id.to_string()),
                link: Link::Whole(String::new()),
            }),
            (None, None) => None,
        },
        deposited: o.deposited.get(),
        refunded: o.refunded.get(),
        refunds: o
            .refunds
            .iter()
            .map(|r| RefundRecord {
                key: r.key.to_string(),
                amount: r.amount.get(),
                status: match &r.status {
                    RefundStatus::Pending => RefundStatusRecord::Pending,
                    RefundStatus::Done => RefundStatusRecord::Done,
                    RefundStatus::Failed { why } => RefundStatusRecord::Failed(why.clone()),
                },
                requested: after(created, r.requested_at),
            })
            .collect(),
        reversal_attempted: o.reversal_attempted,
        cancel_requested: o.cancel_requested,
        attempts: o
            .failed_attempts
            .iter()
            .map(|a| AttemptV2 {
                at: after(created, a.at),
                code: a.code,
                why: a.why.clone(),
            })
            .collect(),
        version: o.version,
        history: o
            .history
            .iter()
            .take(if with_history { usize::MAX } else { 0 })
            .map(|e| EventRecord {
                at: after(created, e.at),
                from: state_code(e.from),
                to: state_code(e.to),
                kind: e.kind.clone(),
                actor: e
                    .actor
                    .as_ref()
                    .map(|a| (a.token.clone(), a.cashier.clone())),
            })
            .collect(),
    };
    let added = Added {
        cart: o
            .cart
            .as_ref()
            .map(|cart| cart.items().iter().map(item_record).collect()),
        phone: o.customer.phone.as_ref().map(|p| p.to_string()),
        email: o.customer.email.as_ref().map(|e| e.to_string()),
        receipts: o
            .receipts
            .iter()
            .map(|r| ReceiptRecord {
                id: *r.id.as_bytes(),
                kind: r.kind,
                amount: r.amount.get(),
                movement: match &r.movement {
                    Movement::Payment => MovementRecord::Payment,
                    Movement::Reversal => MovementRecord::Reversal,
                    Movement::Refund(key) => {
                        MovementRecord::Refund(key.as_ref().map(|k| k.to_string()))
                    }
                },
                lines: r.lines.iter().map(item_record).collect(),
                owed: after(created, r.owed_at),
                due: after(created, r.due_by),
                late: r.late,
                status: match &r.status {
                    ReceiptStatus::Owed => ReceiptStatusRecord::Owed,
                    ReceiptStatus::Sent { at } => ReceiptStatusRecord::Sent(after(created, *at)),
                    ReceiptStatus::Issued(f) => ReceiptStatusRecord::Issued {
                        number: f.document_number,
                        sign: f.sign.clone(),
                        fn_number: f.fn_number.clone(),
                        at: after(created, f.at),
                    },
                    ReceiptStatus::Failed { why } => ReceiptStatusRecord::Failed(why.clone()),
                },
                tries: r.tries,
                last_problem: r.last_problem.clone(),
                round: r.round,
            })
            .collect(),
        deposit_asked: o.deposit_asked.map(Kopecks::get),
    };
    let record = RecordV3 {
        order: record,
        added,
    };
    let mut bytes = vec![TAG];
    let body = postcard::to_allocvec(&record)
        .map_err(|e| Unreadable(format!("the record cannot be written: {e}")))?;
    bytes.extend_from_slice(&body);
    Ok(bytes)
}

fn kopecks(value: u64, what: &str) -> Result<Kopecks, Unreadable> {
    Kopecks::new(value).ok_or_else(|| Unreadable(format!("{what}: {value} is above the limit")))
}

/// A schema 2 record (after its tag byte), upgraded.
pub(super) fn decode_v2(bytes: &[u8]) -> Result<Order, Unreadable> {
    let r: Record<String, EventKindV2> =
        postcard::from_bytes(bytes).map_err(|e| Unreadable(e.to_string()))?;
    order_of(r.upgrade(), Added::default())
}

/// A schema 3 record (after its tag byte).
pub(super) fn decode(bytes: &[u8]) -> Result<Order, Unreadable> {
    let r: RecordV3 = postcard::from_bytes(bytes).map_err(|e| Unreadable(e.to_string()))?;
    order_of(r.order, r.added)
}

fn order_of(r: Record<Reason, EventKind>, added: Added) -> Result<Order, Unreadable> {
    let created = r.created;
    let kind = state_of_code(r.state)?;
    let why = || {
        r.why.clone().ok_or_else(|| {
            Unreadable(format!(
                "state {kind} needs its reason, and the record lacks it"
            ))
        })
    };
    let bank = r.bank.map(at_bank_or_id).transpose()?;
    let needs_bank = || match &bank {
        Some((Some(b), _)) => Ok(b.clone()),
        _ => Err(Unreadable(format!(
            "state {kind} needs the bank's order id and payment link, and the record lacks them"
        ))),
    };
    let state = match kind {
        StateKind::Registering => State::Registering,
        StateKind::AwaitingPayment => State::AwaitingPayment(needs_bank()?),
        StateKind::Held => State::Held(needs_bank()?),
        StateKind::Depositing => State::Depositing(needs_bank()?),
        StateKind::Paid => State::Paid(needs_bank()?),
        StateKind::Declined => State::Declined {
            bank: needs_bank()?,
            why: why()?,
        },
        StateKind::Expired => State::Expired(needs_bank()?),
        StateKind::Cancelled => State::Cancelled(needs_bank()?),
        StateKind::Failed => State::Failed { why: why()? },
        StateKind::Reversing => State::Reversing(needs_bank()?),
        StateKind::Reversed => State::Reversed(needs_bank()?),
        StateKind::Refunding => State::Refunding(needs_bank()?),
        StateKind::Refunded => State::Refunded(needs_bank()?),
        StateKind::PartiallyRefunded => State::PartiallyRefunded(needs_bank()?),
        StateKind::NeedsAttention => State::NeedsAttention {
            why: why()?,
            bank: bank.as_ref().map(|(_, id)| id.clone()),
        },
    };
    let parse = |what: &str, e: crate::domain::Invalid| Unreadable(format!("{what}: {e}"));
    Ok(Order {
        id: uuid::Uuid::from_bytes(r.id),
        order_number: OrderNumber::parse(&r.number).map_err(|e| parse("order number", e))?,
        amount: kopecks(r.amount, "amount")?,
        mode: if r.two_stage {
            Mode::TwoStage
        } else {
            Mode::OneStage
        },
        description: r
            .description
            .as_deref()
            .map(Description::parse)
            .transpose()
            .map_err(|e| parse("description", e))?,
        till: TillId::parse(&r.till).map_err(|e| parse("till", e))?,
        cashier: r.cashier,
        idempotency_key: r
            .key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()
            .map_err(|e| parse("idempotency key", e))?,
        created_at: time(created, 0)?,
        updated_at: time(created, r.updated)?,
        link_expires_at: time(created, r.expires)?,
        held_at: r.held.map(|t| time(created, t)).transpose()?,
        paid_at: r.paid.map(|t| time(created, t)).transpose()?,
        state,
        deposited: kopecks(r.deposited, "deposited")?,
        refunded: kopecks(r.refunded, "refunded")?,
        refunds: r
            .refunds
            .into_iter()
            .map(|f| {
                Ok(Refund {
                    key: IdempotencyKey::parse(&f.key).map_err(|e| parse("refund key", e))?,
                    amount: kopecks(f.amount, "refund")?,
                    status: match f.status {
                        RefundStatusRecord::Pending => RefundStatus::Pending,
                        RefundStatusRecord::Done => RefundStatus::Done,
                        RefundStatusRecord::Failed(why) => RefundStatus::Failed { why },
                    },
                    requested_at: time(created, f.requested)?,
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        reversal_attempted: r.reversal_attempted,
        cancel_requested: r.cancel_requested,
        failed_attempts: r
            .attempts
            .into_iter()
            .map(|a| {
                Ok(FailedAttempt {
                    at: time(created, a.at)?,
                    code: a.code,
                    why: a.why,
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        version: r.version,
        history: r
            .history
            .into_iter()
            .map(|e| {
                Ok(Event {
                    at: time(created, e.at)?,
                    from: state_of_code(e.from)?,
                    to: state_of_code(e.to)?,
                    kind: e.kind,
                    actor: e.actor.map(|(token, cashier)| Actor { token, cashier }),
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        cart: added
            .cart
            .map(|items| items_of(items).map(Cart::kept))
            .transpose()?,
        receipts: added
            .receipts
            .into_iter()
            .map(|r| {
                Ok(Receipt {
                    id: uuid::Uuid::from_bytes(r.id),
                    kind: r.kind,
                    amount: kopecks(r.amount, "receipt")?,
                    movement: match r.movement {
                        MovementRecord::Payment => Movement::Payment,
                        MovementRecord::Reversal => Movement::Reversal,
                        MovementRecord::Refund(key) => Movement::Refund(
                            key.as_deref()
                                .map(IdempotencyKey::parse)
                                .transpose()
                                .map_err(|e| parse("receipt's refund key", e))?,
                        ),
                    },
                    lines: items_of(r.lines)?,
                    owed_at: time(created, r.owed)?,
                    due_by: time(created, r.due)?,
                    late: r.late,
                    status: match r.status {
                        ReceiptStatusRecord::Owed => ReceiptStatus::Owed,
                        ReceiptStatusRecord::Sent(at) => ReceiptStatus::Sent {
                            at: time(created, at)?,
                        },
                        ReceiptStatusRecord::Issued {
                            number,
                            sign,
                            fn_number,
                            at,
                        } => ReceiptStatus::Issued(Fiscal {
                            document_number: number,
                            sign,
                            fn_number,
                            at: time(created, at)?,
                        }),
                        ReceiptStatusRecord::Failed(why) => ReceiptStatus::Failed { why },
                    },
                    tries: r.tries,
                    last_problem: r.last_problem,
                    round: r.round,
                })
            })
            .collect::<Result<_, Unreadable>>()?,
        deposit_asked: added
            .deposit_asked
            .map(|k| kopecks(k, "deposit asked"))
            .transpose()?,
        customer: Customer {
            phone: added
                .phone
                .as_deref()
                .map(Phone::parse)
                .transpose()
                .map_err(|e| parse("phone", e))?,
            email: added
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| parse("email", e))?,
        },
    })
}

fn item_record(i: &Item) -> ItemRecord {
    ItemRecord {
        name: i.name.to_string(),
        quantity: i.quantity.thousandths(),
        price: i.price.get(),
        vat: i.vat,
        object: i.object,
        method: i.method,
    }
}

fn items_of(items: Vec<ItemRecord>) -> Result<Vec<Item>, Unreadable> {
    items
        .into_iter()
        .map(|i| {
            Ok(Item {
                name: ItemName::parse(&i.name)
                    .map_err(|e| Unreadable(format!("cart line: {e}")))?,
                quantity: Quantity::from_thousandths(i.quantity)
                    .ok_or_else(|| Unreadable(format!("cart quantity {}", i.quantity)))?,
                price: kopecks(i.price, "cart price")?,
                vat: i.vat,
                object: i.object,
                method: i.method,
            })
        })
        .collect()
}

/// The bank's side of a record: the full `AtBank` when it has a link, and its id either way.
fn at_bank_or_id(bank: Bank) -> Result<(Option<AtBank>, GatewayOrderId), Unreadable> {
    match bank.link {
        Link::Whole(ref link) if link.is_empty() => {
            let id = match bank.id {
                BankId::Uuid(bytes) => uuid::Uuid::from_bytes(bytes).hyphenated().to_string(),
                BankId::Text(text) => text,
            };
            let id = GatewayOrderId::parse(&id).map_err(|e| Unreadable(format!("bank id: {e}")))?;
            Ok((None, id))
        }
        _ => {
            let at = at_bank(bank)?;
            let id = at.id.clone();
            Ok((Some(at), id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{decode, encode};
    use crate::orders::order::{Actor, Mode};
    use crate::orders::transition::tests::{bank, order};
    use crate::orders::transition::{apply, apply_by, Input};
    use chrono::Utc;

    #[test]
    fn an_order_survives_the_round_trip_in_every_shape() {
        // Times are kept to the microsecond (the engine's clock gives no finer).
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let by = Actor {
            token: "boss".into(),
            cashier: Some("Сидорова".into()),
        };
        let fresh = order(Mode::TwoStage);
        let waiting = apply(&fresh, Input::Registered(bank()), now).unwrap();
        let failed_try = apply(
            &waiting,
            Input::AttemptFailed {
                code: 116,
                why: "Недостаточно средств".into(),
            },
            now,
        )
        .unwrap();
        let held = apply(&failed_try, Input::HoldConfirmed { at: None }, now).unwrap();
        let depositing = apply_by(
            &held,
            Input::DepositStarted { amount: None },
            now,
            Some(&by),
        )
        .unwrap();
        let attention = apply(
            &held,
            Input::Attention {
                why: crate::orders::Reason::said("x", None),
            },
            now,
        )
        .unwrap();
        let failed = apply(
            &fresh,
            Input::RegistrationFailed {
                why: crate::orders::Reason::said("errorCode 5", Some("Банк отказал".into())),
            },
            now,
        )
        .unwrap();
        for o in [
            fresh, waiting, failed_try, held, depositing, attention, failed,
        ] {
            let bytes = encode(&o).unwrap();
            assert_eq!(bytes[0], super::TAG);
            assert_eq!(decode(&bytes).unwrap(), o);
        }
    }

    #[test]
    fn a_schema_2_record_reads_with_its_sentences_as_said_reasons() {
        use super::{EventKindV2, EventRecord, Record, TAG_V2};
        use crate::orders::state::{State, StateKind};
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let fresh = order(Mode::OneStage);
        let us = now.timestamp_micros();
        let record: Record<String, EventKindV2> = Record {
            id: *fresh.id.as_bytes(),
            number: fresh.order_number.to_string(),
            amount: fresh.amount.get(),
            two_stage: false,
            description: None,
            till: fresh.till.to_string(),
            cashier: None,
            key: None,
            created: us,
            updated: 0,
            expires: 60_000_000,
            held: None,
            paid: None,
            state: super::state_code(StateKind::Failed),
            why: Some("register.do: errorCode 5".into()),
            state_cashier: Some("Касса не настроена".into()),
            bank: None,
            deposited: 0,
            refunded: 0,
            refunds: Vec::new(),
            reversal_attempted: false,
            cancel_requested: false,
            attempts: Vec::new(),
            version: 2,
            history: vec![EventRecord {
                at: 0,
                from: super::state_code(StateKind::Registering),
                to: super::state_code(StateKind::Failed),
                kind: EventKindV2::RegistrationFailed {
                    why: "register.do: errorCode 5".into(),
                    cashier: "Касса не настроена".into(),
                },
                actor: None,
            }],
        };
        let mut bytes = vec![TAG_V2];
        bytes.extend(postcard::to_allocvec(&record).unwrap());
        let o = decode(&bytes).unwrap();
        let State::Failed { why } = &o.state else {
            panic!("{:?}", o.state)
        };
        assert_eq!(why.what(), "register.do: errorCode 5");
        assert_eq!(why.text(), "Касса не настроена");
        assert_eq!(o.history[0].text(), "Касса не настроена");
        // Written back, it is schema 3 and reads the same.
        let again = encode(&o).unwrap();
        assert_eq!(again[0], super::TAG);
        assert_eq!(decode(&again).unwrap(), o);
    }

    #[test]
    fn a_paid_order_is_a_few_hundred_bytes() {
        let now = Utc::now();
        let o = apply(&order(Mode::OneStage), Input::Registered(bank()), now).unwrap();
        let o = apply(
            &o,
            Input::PaymentConfirmed {
                deposited: o.amount,
                at: Some(now),
            },
            now,
        )
        .unwrap();
        let bytes = encode(&o).unwrap();
        assert!(bytes.len() < 200, "{} bytes", bytes.len());
    }

    #[test]
    fn a_link_on_the_banks_page_keeps_only_the_pages_number() {
        let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
        let id = "3a9531a9-dc18-459a-b354-4ba090e339d6";
        let on_page = |page: &str| crate::orders::AtBank {
            id: crate::domain::GatewayOrderId::parse(id).unwrap(),
            link: crate::domain::PaymentUrl::parse(&format!("{page}{id}")).unwrap(),
        };
        let bank_page = on_page(super::KNOWN_PAGES[0]);
        let other_page = on_page("https://pay.example/p?order=");
        let known = apply(&order(Mode::OneStage), Input::Registered(bank_page), now).unwrap();
        let other = apply(&order(Mode::OneStage), Input::Registered(other_page), now).unwrap();
        let (known_bytes, other_bytes) = (encode(&known).unwrap(), encode(&other).unwrap());
        assert_eq!(decode(&known_bytes).unwrap(), known);
        assert_eq!(decode(&other_bytes).unwrap(), other);
        assert!(
            known_bytes.len() + 20 < other_bytes.len(),
            "{} vs {}",
            known_bytes.len(),
            other_bytes.len()
        );
    }

    #[test]
    fn bad_records_are_unreadable_not_guessed() {
        let waiting = apply(
            &order(Mode::OneStage),
            Input::Registered(bank()),
            Utc::now(),
        )
        .unwrap();
        let good = encode(&waiting).unwrap();
        for bad in [&b""[..], b"\x07binary", b"\x02", &good[..good.len() / 2]] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        // Every truncation and every single flipped byte: an error or an order, never a panic.
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        for i in 1..good.len() {
            let mut flipped = good.clone();
            flipped[i] ^= 0xFF;
            let _ = decode(&flipped);
        }
    }
}
