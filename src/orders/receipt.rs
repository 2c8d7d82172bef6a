//! The fiscal receipts (54-ФЗ) an order's money movements owe: a «приход» (sell) when the bank
//! takes the money (or holds it, when the shop issues at the hold), and a «возврат прихода»
//! (sell return) for every reversal and refund of a sale that had one. A receipt is owed in the
//! same write as the movement that owes it, so none is lost between them; who issues it (the
//! POS, the ATOL driver, the bank's cloud) is the fiscal module's business, and each step it
//! takes is a transition of the order like any other. Pure: no I/O.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::cart::{Item, ItemName, PaymentMethod, PaymentObject, Quantity, Vat};
use super::event::EventKind;
use super::order::Order;
use crate::domain::IdempotencyKey;
use crate::money::Kopecks;

/// «Приход» or «возврат прихода» (tag 1054).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ReceiptKind {
    Sell,
    SellReturn,
}

impl ReceiptKind {
    /// The API's and the POS webhook's spelling.
    pub fn code(self) -> &'static str {
        match self {
            ReceiptKind::Sell => "sell",
            ReceiptKind::SellReturn => "sell_return",
        }
    }

    pub fn parse(text: &str) -> Option<ReceiptKind> {
        match text.trim() {
            "sell" => Some(ReceiptKind::Sell),
            "sell_return" => Some(ReceiptKind::SellReturn),
            _ => None,
        }
    }

    /// «чек прихода», «чек возврата прихода».
    pub fn russian(self) -> &'static str {
        match self {
            ReceiptKind::Sell => "чек прихода",
            ReceiptKind::SellReturn => "чек возврата прихода",
        }
    }
}

/// The money movement a receipt is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Movement {
    /// The bank took (or, issuing at the hold, held) the money.
    Payment,
    /// The payment was reversed the same day.
    Reversal,
    /// A refund (its idempotency key; none when learned from the bank after a restore).
    Refund(Option<IdempotencyKey>),
}

/// What the ККТ (or the bank's cloud ККТ) says of an issued receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fiscal {
    /// ФД: the fiscal document number.
    pub document_number: u64,
    /// ФП (ФПД): the fiscal sign.
    pub sign: String,
    /// The ФН's number.
    pub fn_number: String,
    /// When it was issued.
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptStatus {
    /// Owed and not yet handed to whoever issues it.
    Owed,
    /// Handed over (the POS has the webhook, the driver the task, the bank the cart); its
    /// result is awaited.
    Sent {
        at: DateTime<Utc>,
    },
    Issued(Fiscal),
    /// Cannot be issued without a person (the ФН is full, the taxation system is wrong…): the
    /// issuer's words.
    Failed {
        why: String,
    },
}

/// One receipt an order owes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Stable: the POS's event id to deduplicate on, the ATOL driver's request uuid.
    pub id: uuid::Uuid,
    pub kind: ReceiptKind,
    pub amount: Kopecks,
    pub movement: Movement,
    /// What it lists.
    pub lines: Vec<Item>,
    /// When the movement happened.
    pub owed_at: DateTime<Utc>,
    /// Not issued by then, it is «чек не пробит» (`fiscal.deadline_minutes` after `owed_at`).
    pub due_by: DateTime<Utc>,
    /// It passed `due_by` open (the fiscal worker marks it, with a history line).
    pub late: bool,
    pub status: ReceiptStatus,
    /// Tries that failed so far, and the last one's problem (the issuer's words).
    pub tries: u32,
    pub last_problem: Option<String>,
    /// Attempts the issuer ended for certain without a document (a ККТ error): the next one
    /// is a new job (the ATOL driver's request uuid is [`Receipt::job_id`] of this round).
    pub round: u32,
}

impl Receipt {
    /// Neither issued nor failed for good.
    pub fn open(&self) -> bool {
        matches!(
            self.status,
            ReceiptStatus::Owed | ReceiptStatus::Sent { .. }
        )
    }

    /// The issuer's job id for this round: the receipt's id first, then one derived from it,
    /// so a lost reply is asked about by the same id and a job is never made twice.
    pub fn job_id(&self) -> uuid::Uuid {
        if self.round == 0 {
            return self.id;
        }
        let mut hash = Sha256::new();
        hash.update(self.id.as_bytes());
        hash.update(self.round.to_be_bytes());
        let digest = hash.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        uuid::Uuid::new_v8(bytes)
    }

    /// Open past its deadline and not yet marked so.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.open() && !self.late && now >= self.due_by
    }

    /// «чек не пробит»: open past its deadline, or failed for good.
    pub fn missing(&self) -> bool {
        (self.open() && self.late) || matches!(self.status, ReceiptStatus::Failed { .. })
    }

    /// What a manager reads of it in one cell: `ФД 123`, «ожидается», «чек не пробит».
    pub fn short_text(&self) -> String {
        match &self.status {
            ReceiptStatus::Issued(f) => format!("ФД {}", f.document_number),
            ReceiptStatus::Failed { .. } => "чек не пробит".into(),
            _ if self.late => "чек не пробит".into(),
            _ => "ожидается".into(),
        }
    }

    /// `чек прихода на 1 499,00 ₽`.
    pub fn title(&self) -> String {
        format!("{} на {}", self.kind.russian(), self.amount)
    }
}

/// How the shop issues receipts: what chasti needs to make them.
#[derive(Debug, Clone)]
pub struct ReceiptPolicy {
    /// Issue the sell receipt when the bank holds the money (two-stage), not when it takes it.
    pub at_hold: bool,
    /// The VAT of the one line of a sale that carried no cart.
    pub default_vat: Vat,
    /// How long after the movement a receipt may take before it is «чек не пробит».
    pub deadline: std::time::Duration,
}

/// The receipts the order's last change owes, given the order before and after it.
pub fn owed(order: &Order, policy: &ReceiptPolicy, now: DateTime<Utc>) -> Vec<Receipt> {
    let Some(event) = order.history.last() else {
        return Vec::new();
    };
    let sold: Kopecks = Kopecks::checked_sum(
        order
            .receipts
            .iter()
            .filter(|r| r.kind == ReceiptKind::Sell)
            .map(|r| r.amount),
    )
    .unwrap_or(Kopecks::ZERO);
    let returned: Kopecks = Kopecks::checked_sum(
        order
            .receipts
            .iter()
            .filter(|r| r.kind == ReceiptKind::SellReturn)
            .map(|r| r.amount),
    )
    .unwrap_or(Kopecks::ZERO);
    let (kind, amount, movement) = match &event.kind {
        EventKind::Paid { amount } if !policy.at_hold || sold.is_zero() => {
            (ReceiptKind::Sell, *amount, Movement::Payment)
        }
        EventKind::HoldConfirmed { amount } if policy.at_hold => {
            (ReceiptKind::Sell, *amount, Movement::Payment)
        }
        // A return only for a sale that had its receipt, and never more than it.
        EventKind::Reversed | EventKind::ReversalLearned if !sold.is_zero() => (
            ReceiptKind::SellReturn,
            sold.saturating_sub(returned),
            Movement::Reversal,
        ),
        EventKind::RefundDone { key, amount } if !sold.is_zero() => (
            ReceiptKind::SellReturn,
            (*amount).min(sold.saturating_sub(returned)),
            Movement::Refund(Some(key.clone())),
        ),
        EventKind::RefundLearned { amount } if !sold.is_zero() => (
            ReceiptKind::SellReturn,
            (*amount).min(sold.saturating_sub(returned)),
            Movement::Refund(None),
        ),
        _ => return Vec::new(),
    };
    if amount.is_zero() || already_owed(order, kind, &movement) {
        return Vec::new();
    }
    vec![Receipt {
        id: receipt_id(order, kind, order.receipts.len()),
        kind,
        amount,
        lines: lines_for(order, kind, amount, &movement, policy),
        movement,
        owed_at: now,
        due_by: now + chrono::Duration::from_std(policy.deadline).unwrap_or(chrono::Duration::MAX),
        late: false,
        status: ReceiptStatus::Owed,
        tries: 0,
        last_problem: None,
        round: 0,
    }]
}

/// A replayed movement (the same refund confirmed twice) owes nothing more.
fn already_owed(order: &Order, kind: ReceiptKind, movement: &Movement) -> bool {
    order.receipts.iter().any(|r| {
        r.kind == kind
            && match (&r.movement, movement) {
                (Movement::Refund(Some(a)), Movement::Refund(Some(b))) => a == b,
                (Movement::Refund(None), Movement::Refund(None)) => false,
                (a, b) => a == b,
            }
    })
}

/// What a receipt of `kind` for `amount` lists: the cart when it covers the amount; for a
/// return of all that was sold, the sell receipt's lines; otherwise one line naming the order.
/// (The bank's cloud fiscalisation gets the same lines with the order, before any receipt is
/// owed.)
pub fn lines_for(
    order: &Order,
    kind: ReceiptKind,
    amount: Kopecks,
    movement: &Movement,
    policy: &ReceiptPolicy,
) -> Vec<Item> {
    let sell_lines = order
        .receipts
        .iter()
        .find(|r| r.kind == ReceiptKind::Sell)
        .map(|r| r.lines.clone());
    let cart = order
        .cart
        .as_ref()
        .filter(|c| c.total() == Some(amount))
        .map(|c| c.items().to_vec());
    let whole = match (kind, movement) {
        (ReceiptKind::Sell, _) => cart,
        (ReceiptKind::SellReturn, _) => sell_lines.filter(|lines| {
            Kopecks::checked_sum(lines.iter().filter_map(Item::amount)) == Some(amount)
        }),
    };
    whole.unwrap_or_else(|| {
        let (name, vat, object, method) = match order.cart.as_ref().and_then(|c| c.items().first())
        {
            Some(first) => (
                format!("Товары по заказу {}", order.order_number),
                first.vat,
                first.object,
                first.method,
            ),
            None => (
                order
                    .description
                    .as_ref()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| format!("Оплата заказа {}", order.order_number)),
                policy.default_vat,
                PaymentObject::Commodity,
                PaymentMethod::FullPayment,
            ),
        };
        let name = ItemName::parse(&name)
            .or_else(|_| ItemName::parse(&format!("Заказ {}", order.order_number)))
            .expect("an order number makes a valid line name");
        vec![Item {
            name,
            quantity: Quantity::ONE,
            price: amount,
            vat,
            object,
            method,
        }]
    })
}

/// Which of the order's receipts a report names, and whether it still needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    /// This open receipt.
    Open(uuid::Uuid),
    /// This receipt, issued already with the same fiscal document: a repeated report.
    Repeated(uuid::Uuid),
}

/// Why a report names no receipt of the order (Russian: the POS shows it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportProblem {
    #[error("у заказа нет чека с таким event_id")]
    UnknownEvent,
    #[error("у заказа нет ожидающего чека: {kind} на {amount}; ожидаются: {owed}")]
    NoneOwed {
        kind: &'static str,
        amount: Kopecks,
        owed: String,
    },
    #[error("этот чек уже пробит с другим номером: ФД {0}")]
    IssuedOtherwise(u64),
}

/// The receipt a POS reports as printed: by its `event_id` when given, else the oldest open
/// receipt of that kind and amount.
pub fn reported(
    order: &Order,
    event_id: Option<uuid::Uuid>,
    kind: ReceiptKind,
    amount: Kopecks,
    document_number: u64,
) -> Result<Reported, ReportProblem> {
    let issued_as = |r: &Receipt| match &r.status {
        ReceiptStatus::Issued(f) if f.document_number == document_number => {
            Ok(Reported::Repeated(r.id))
        }
        ReceiptStatus::Issued(f) => Err(ReportProblem::IssuedOtherwise(f.document_number)),
        _ => Ok(Reported::Open(r.id)),
    };
    if let Some(id) = event_id {
        let r = order
            .receipts
            .iter()
            .find(|r| r.id == id)
            .ok_or(ReportProblem::UnknownEvent)?;
        return issued_as(r);
    }
    let same = |r: &&Receipt| r.kind == kind && r.amount == amount;
    if let Some(r) = order.receipts.iter().filter(same).find(
        |r| matches!(&r.status, ReceiptStatus::Issued(f) if f.document_number == document_number),
    ) {
        return Ok(Reported::Repeated(r.id));
    }
    match order.receipts.iter().filter(same).find(|r| r.open()) {
        Some(r) => Ok(Reported::Open(r.id)),
        None => Err(ReportProblem::NoneOwed {
            kind: kind.russian(),
            amount,
            owed: {
                let open: Vec<String> = order
                    .receipts
                    .iter()
                    .filter(|r| r.open())
                    .map(Receipt::title)
                    .collect();
                if open.is_empty() {
                    "ни одного".into()
                } else {
                    open.join(", ")
                }
            },
        }),
    }
}

/// A receipt's id: derived from the order and the receipt's place in it, so it is the same
/// whoever computes it (no random source in the domain).
fn receipt_id(order: &Order, kind: ReceiptKind, n: usize) -> uuid::Uuid {
    let mut hash = Sha256::new();
    hash.update(order.id.as_bytes());
    hash.update(kind.code().as_bytes());
    hash.update((n as u64).to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::transition::examples::one_in_every_state;

    fn policy(at_hold: bool) -> ReceiptPolicy {
        ReceiptPolicy {
            at_hold,
            default_vat: Vat::Vat22,
            deadline: std::time::Duration::from_secs(900),
        }
    }

    #[test]
    fn a_payment_owes_a_sell_receipt_and_a_return_only_after_one() {
        let now = chrono::Utc::now();
        for order in one_in_every_state() {
            let owed = owed(&order, &policy(false), now);
            let name = order.state.name();
            match order.history.last().map(|e| &e.kind) {
                Some(EventKind::Paid { amount }) => {
                    assert_eq!(owed.len(), 1, "{name}");
                    assert_eq!(owed[0].kind, ReceiptKind::Sell);
                    assert_eq!(owed[0].amount, *amount);
                    assert_eq!(owed[0].lines[0].price, *amount, "one line naming the order");
                }
                // The examples owed no sell receipt (none was made as they moved), so no return.
                _ => assert!(owed.is_empty(), "{name}: {owed:?}"),
            }
        }
    }

    #[test]
    fn the_id_is_the_same_whoever_computes_it() {
        let order = &one_in_every_state()[4];
        let now = chrono::Utc::now();
        let (a, b) = (
            owed(order, &policy(false), now),
            owed(order, &policy(false), now),
        );
        assert_eq!(a[0].id, b[0].id);
    }
}
