//! Schema 1: the JSON records chasti wrote before schema 2 (and, without a schema number, before
//! that). Read only: every record is rewritten as schema 2 when the store's layout is upgraded.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::Unreadable;
use crate::domain::{Description, GatewayOrderId, IdempotencyKey, OrderNumber, PaymentUrl, TillId};
use crate::money::Kopecks;
use crate::orders::order::{
    Actor, Event, EventKind, FailedAttempt, Mode, Order, Refund, RefundStatus,
};
use crate::orders::reason::Reason;
use crate::orders::state::{AtBank, State, StateKind};

#[derive(Debug, Deserialize)]
struct StoredState {
    name: StateKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cashier: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RecordV1 {
    #[serde(default)]
    schema: u32,
    id: uuid::Uuid,
    order_number: OrderNumber,
    gateway_order_id: Option<GatewayOrderId>,
    amount: Kopecks,
    mode: Mode,
    description: Option<Description>,
    till: TillId,
    cashier: Option<String>,
    idempotency_key: Option<IdempotencyKey>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    payment_url: Option<PaymentUrl>,
    link_expires_at: DateTime<Utc>,
    held_at: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    state: StoredState,
    deposited: Kopecks,
    refunded: Kopecks,
    refunds: Vec<RefundV1>,
    reversal_attempted: bool,
    #[serde(default)]
    cancel_requested: bool,
    #[serde(default)]
    failed_attempts: Vec<FailedAttempt>,
    version: u64,
    history: Vec<EventV1>,
}

#[derive(Debug, Deserialize)]
struct RefundV1 {
    key: IdempotencyKey,
    amount: Kopecks,
    status: RefundStatusV1,
    requested_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
enum RefundStatusV1 {
    Pending,
    Done,
    Failed { why: String },
}

impl From<RefundV1> for Refund {
    fn from(r: RefundV1) -> Refund {
        Refund {
            key: r.key,
            amount: r.amount,
            status: match r.status {
                RefundStatusV1::Pending => RefundStatus::Pending,
                RefundStatusV1::Done => RefundStatus::Done,
                RefundStatusV1::Failed { why } => RefundStatus::Failed {
                    why: Reason::said(why, None),
                },
            },
            requested_at: r.requested_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct EventV1 {
    at: DateTime<Utc>,
    from: StateKind,
    to: StateKind,
    what: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    actor: Option<Actor>,
}

pub(super) fn decode(bytes: &[u8]) -> Result<Order, Unreadable> {
    let record: RecordV1 = serde_json::from_slice(bytes).map_err(|e| Unreadable(e.to_string()))?;
    if record.schema > 1 {
        return Err(Unreadable(format!(
            "a JSON record of schema {}: only schema 1 was JSON",
            record.schema
        )));
    }
    let state = state_of(&record)?;
    Ok(Order {
        id: record.id,
        order_number: record.order_number,
        amount: record.amount,
        mode: record.mode,
        description: record.description,
        till: record.till,
        cashier: record.cashier,
        idempotency_key: record.idempotency_key,
        created_at: record.created_at,
        updated_at: record.updated_at,
        link_expires_at: record.link_expires_at,
        held_at: record.held_at,
        paid_at: record.paid_at,
        state,
        deposited: record.deposited,
        refunded: record.refunded,
        refunds: record.refunds.into_iter().map(Refund::from).collect(),
        reversal_attempted: record.reversal_attempted,
        cancel_requested: record.cancel_requested,
        failed_attempts: record.failed_attempts,
        version: record.version,
        history: record
            .history
            .into_iter()
            .map(|e| Event {
                at: e.at,
                from: e.from,
                to: e.to,
                kind: EventKind::Written {
                    what: e.what,
                    text: e.text,
                },
                actor: e.actor,
            })
            .collect(),
        cart: None,
        customer: Default::default(),
        receipts: Vec::new(),
        deposit_asked: None,
    })
}

fn state_of(r: &RecordV1) -> Result<State, Unreadable> {
    let kind = r.state.name;
    let why = || Reason::said(r.state.why.clone().unwrap_or_default(), None);
    let bank = || match (&r.gateway_order_id, &r.payment_url) {
        (Some(id), Some(link)) => Ok(AtBank {
            id: id.clone(),
            link: link.clone(),
        }),
        _ => Err(Unreadable(format!(
            "state {kind} needs the bank's order id and payment link, and the record lacks them"
        ))),
    };
    Ok(match kind {
        StateKind::Registering => State::Registering,
        StateKind::AwaitingPayment => State::AwaitingPayment(bank()?),
        StateKind::Held => State::Held(bank()?),
        StateKind::Depositing => State::Depositing(bank()?),
        StateKind::Paid => State::Paid(bank()?),
        StateKind::Declined => State::Declined {
            bank: bank()?,
            why: why(),
        },
        StateKind::Expired => State::Expired(bank()?),
        StateKind::Cancelled => State::Cancelled(bank()?),
        StateKind::Failed => State::Failed {
            why: Reason::said(
                r.state.why.clone().unwrap_or_default(),
                Some(
                    r.state
                        .cashier
                        .clone()
                        .unwrap_or_else(|| StateKind::Failed.russian().to_string()),
                ),
            ),
        },
        StateKind::Reversing => State::Reversing(bank()?),
        StateKind::Reversed => State::Reversed(bank()?),
        StateKind::Refunding => State::Refunding(bank()?),
        StateKind::Refunded => State::Refunded(bank()?),
        StateKind::PartiallyRefunded => State::PartiallyRefunded(bank()?),
        StateKind::NeedsAttention => State::NeedsAttention {
            why: why(),
            bank: r.gateway_order_id.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_without_a_schema_number_reads_as_schema_1() {
        // The layout chasti wrote before records carried a schema number.
        let legacy = r#"{"id":"0195f3b2-7c1e-7d7a-9b1e-5a0f3c2d1e0f","order_number":"T-1-261123-0001",
            "gateway_order_id":"g1","amount":149900,"mode":"one-stage","description":"Тест","till":"1",
            "cashier":null,"idempotency_key":"k1","created_at":"2026-11-23T10:00:00Z",
            "updated_at":"2026-11-23T10:01:00Z","payment_url":"http://127.0.0.1:1/sandbox/pay/g1",
            "link_expires_at":"2026-11-23T10:20:00Z","held_at":null,"paid_at":"2026-11-23T10:01:00Z",
            "state":{"name":"paid"},"deposited":149900,"refunded":0,"refunds":[],
            "reversal_attempted":false,"version":2,"history":[{"at":"2026-11-23T10:00:00Z",
            "from":"registering","to":"registering","what":"sale of 1 499,00 ₽ started",
            "text":"Продажа на 1 499,00 ₽ начата","actor":{"token":"till-1"}}]}"#;
        let o = decode(legacy.as_bytes()).unwrap();
        assert_eq!(o.state.kind(), StateKind::Paid);
        assert_eq!(o.state.bank_id().unwrap().as_str(), "g1");
        assert_eq!(o.history[0].text(), "Продажа на 1 499,00 ₽ начата");
        assert_eq!(o.history[0].actor.as_ref().unwrap().token, "till-1");
    }

    #[test]
    fn bad_schema_1_records_are_unreadable_not_guessed() {
        for bad in [
            &br#"{"schema":99}"#[..],
            br#"{"not":"an order"}"#,
            br#"{"id":"0195f3b2-7c1e-7d7a-9b1e-5a0f3c2d1e0f","order_number":"T-1-261123-0001",
            "gateway_order_id":null,"amount":100,"mode":"one-stage","description":null,"till":"1",
            "cashier":null,"idempotency_key":null,"created_at":"2026-11-23T10:00:00Z",
            "updated_at":"2026-11-23T10:01:00Z","payment_url":null,
            "link_expires_at":"2026-11-23T10:20:00Z","held_at":null,"paid_at":null,
            "state":{"name":"paid"},"deposited":0,"refunded":0,"refunds":[],
            "reversal_attempted":false,"version":2,"history":[]}"#,
        ] {
            assert!(decode(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
