//! How an order is kept on disk: a versioned record, separate from the domain's `Order` (which
//! may change shape freely) and from the API's view of an order. Reading a record parses every
//! field through the domain types; a record that does not parse is reported as corrupt, never
//! guessed at.
//!
//! Schema 1 is JSON with the bank's id and link beside the state's name. Records written before
//! the schema number existed have the same layout and read as schema 1.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::order::{Event, FailedAttempt, Mode, Order, Refund};
use super::state::{AtBank, State, StateKind};
use crate::domain::{Description, GatewayOrderId, IdempotencyKey, OrderNumber, PaymentUrl, TillId};
use crate::money::Kopecks;

/// The schema this build writes.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct StoredState {
    name: StateKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cashier: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
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
    refunds: Vec<Refund>,
    reversal_attempted: bool,
    #[serde(default)]
    cancel_requested: bool,
    #[serde(default)]
    failed_attempts: Vec<FailedAttempt>,
    version: u64,
    history: Vec<Event>,
}

/// A record that cannot be read back into an order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

pub fn encode(order: &Order) -> Vec<u8> {
    let bank = order.state.bank();
    let record = RecordV1 {
        schema: SCHEMA,
        id: order.id,
        order_number: order.order_number.clone(),
        gateway_order_id: order.state.bank_id().cloned(),
        amount: order.amount,
        mode: order.mode,
        description: order.description.clone(),
        till: order.till.clone(),
        cashier: order.cashier.clone(),
        idempotency_key: order.idempotency_key.clone(),
        created_at: order.created_at,
        updated_at: order.updated_at,
        payment_url: bank.map(|b| b.link.clone()),
        link_expires_at: order.link_expires_at,
        held_at: order.held_at,
        paid_at: order.paid_at,
        state: StoredState {
            name: order.state.kind(),
            why: order.state.why().map(str::to_string),
            cashier: match &order.state {
                State::Failed { cashier, .. } => Some(cashier.clone()),
                _ => None,
            },
        },
        deposited: order.deposited,
        refunded: order.refunded,
        refunds: order.refunds.clone(),
        reversal_attempted: order.reversal_attempted,
        cancel_requested: order.cancel_requested,
        failed_attempts: order.failed_attempts.clone(),
        version: order.version,
        history: order.history.clone(),
    };
    // Every field is a plain value or a string newtype: serialising cannot fail.
    serde_json::to_vec(&record).unwrap_or_default()
}

pub fn decode(bytes: &[u8]) -> Result<Order, Unreadable> {
    let record: RecordV1 = match bytes.first() {
        Some(b'{') => serde_json::from_slice(bytes).map_err(|e| Unreadable(e.to_string()))?,
        Some(other) => {
            return Err(Unreadable(format!(
                "unknown record format (first byte {other:#04x}); a newer chasti wrote it?"
            )))
        }
        None => return Err(Unreadable("empty record".into())),
    };
    if record.schema > SCHEMA {
        return Err(Unreadable(format!(
            "record schema {} is newer than this chasti reads ({SCHEMA})",
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
        refunds: record.refunds,
        reversal_attempted: record.reversal_attempted,
        cancel_requested: record.cancel_requested,
        failed_attempts: record.failed_attempts,
        version: record.version,
        history: record.history,
    })
}

fn state_of(r: &RecordV1) -> Result<State, Unreadable> {
    let kind = r.state.name;
    let why = || r.state.why.clone().unwrap_or_default();
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
            why: why(),
            cashier: r
                .state
                .cashier
                .clone()
                .unwrap_or_else(|| StateKind::Failed.russian().to_string()),
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
    use crate::orders::transition::tests::{bank, order};
    use crate::orders::transition::{apply, Input};

    #[test]
    fn an_order_survives_the_round_trip_in_every_shape() {
        let now = Utc::now();
        let fresh = order(Mode::TwoStage);
        let waiting = apply(&fresh, Input::Registered(bank()), now).unwrap();
        let held = apply(&waiting, Input::HoldConfirmed { at: None }, now).unwrap();
        let attention = apply(&held, Input::Attention { why: "x".into() }, now).unwrap();
        let failed = apply(
            &fresh,
            Input::RegistrationFailed {
                why: "errorCode 5".into(),
                cashier: "Банк отказал".into(),
            },
            now,
        )
        .unwrap();
        for o in [fresh, waiting, held, attention, failed] {
            assert_eq!(decode(&encode(&o)).unwrap(), o);
        }
    }

    #[test]
    fn a_record_without_a_schema_number_reads_as_schema_1() {
        // The layout chasti wrote before records carried a schema number.
        let legacy = r#"{"id":"0195f3b2-7c1e-7d7a-9b1e-5a0f3c2d1e0f","order_number":"T-1-261123-0001",
            "gateway_order_id":"g1","amount":149900,"mode":"one-stage","description":"Тест","till":"1",
            "cashier":null,"idempotency_key":"k1","created_at":"2026-11-23T10:00:00Z",
            "updated_at":"2026-11-23T10:01:00Z","payment_url":"http://127.0.0.1:1/sandbox/pay/g1",
            "link_expires_at":"2026-11-23T10:20:00Z","held_at":null,"paid_at":"2026-11-23T10:01:00Z",
            "state":{"name":"paid"},"deposited":149900,"refunded":0,"refunds":[],
            "reversal_attempted":false,"version":2,"history":[]}"#;
        let o = decode(legacy.as_bytes()).unwrap();
        assert_eq!(o.state.kind(), StateKind::Paid);
        assert_eq!(o.state.bank_id().unwrap().as_str(), "g1");
    }

    #[test]
    fn bad_records_are_unreadable_not_guessed() {
        for bad in [
            &b""[..],
            b"\x07binary",
            br#"{"schema":99}"#,
            br#"{"not":"an order"}"#,
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let waiting = apply(
            &order(Mode::OneStage),
            Input::Registered(bank()),
            Utc::now(),
        )
        .unwrap();
        let text = String::from_utf8(encode(&waiting)).unwrap();
        let broken = text.replace(
            "\"payment_url\":\"https://pay.example/g\"",
            "\"payment_url\":null",
        );
        assert!(decode(broken.as_bytes())
            .unwrap_err()
            .0
            .contains("payment link"));
        let huge = text.replace("\"amount\":10000", "\"amount\":10000000000000");
        assert!(
            decode(huge.as_bytes()).is_err(),
            "over-limit amounts are refused"
        );
    }
}
