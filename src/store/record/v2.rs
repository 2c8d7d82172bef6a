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

mod read;
#[cfg(test)]
mod tests;
mod write;

pub(super) use read::{decode, decode_v2};
pub(super) use write::encode;
