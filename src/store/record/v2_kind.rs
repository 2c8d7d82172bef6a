//! History lines as record schema 2 kept them (in sled records and in `events.kind` rows written
//! before schema 3): the same variants as today's `EventKind`, in the same order, with the
//! failure reasons as the sentences chasti then wrote. Frozen: read only, never written.

use serde::{Deserialize, Serialize};

use crate::domain::IdempotencyKey;
use crate::money::Kopecks;
use crate::orders::event::SmsNote;
use crate::orders::order::EventKind;
use crate::orders::reason::Reason;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum EventKindV2 {
    Started {
        amount: Kopecks,
    },
    /// The bank registered the order (its id is on the order).
    Registered,
    RegistrationFailed {
        why: String,
        cashier: String,
    },
    HoldConfirmed {
        amount: Kopecks,
    },
    DepositRequested,
    DepositFailed {
        why: String,
    },
    Paid {
        amount: Kopecks,
    },
    Declined {
        why: String,
    },
    Expired,
    AttemptFailed {
        code: i64,
        why: String,
    },
    CancelRequested,
    Cancelled,
    ReversalRequested,
    Reversed,
    ReversalFailed {
        why: String,
    },
    RefundRequested {
        key: IdempotencyKey,
        amount: Kopecks,
    },
    RefundDone {
        key: IdempotencyKey,
        amount: Kopecks,
    },
    RefundFailed {
        key: IdempotencyKey,
        amount: Kopecks,
        why: String,
    },
    /// A slip printed again: the slip in English and in Russian.
    Reprinted {
        slip: String,
        russian: String,
    },
    Attention {
        why: String,
    },
    /// A line of a record written before history lines were typed (schema 1): its words.
    Written {
        what: String,
        text: String,
    },
    /// What became of the payment link sent by SMS (no change of state).
    Sms(SmsNote),
    /// After a restore from a backup: a refund the bank made that the backup did not have.
    RefundLearned {
        amount: Kopecks,
    },
    /// After a restore from a backup: a reversal the bank made that the backup did not have.
    ReversalLearned,
}

impl EventKindV2 {
    /// Today's line: the sentences become [`Reason::Said`], the rest carries over.
    pub(super) fn into_current(self) -> EventKind {
        let said = |why: String| Reason::said(why, None);
        match self {
            EventKindV2::Started { amount } => EventKind::Started { amount, items: 0 },
            EventKindV2::Registered => EventKind::Registered,
            EventKindV2::RegistrationFailed { why, cashier } => EventKind::RegistrationFailed {
                why: Reason::said(why, Some(cashier)),
            },
            EventKindV2::HoldConfirmed { amount } => EventKind::HoldConfirmed { amount },
            EventKindV2::DepositRequested => EventKind::DepositRequested,
            EventKindV2::DepositFailed { why } => EventKind::DepositFailed { why: said(why) },
            EventKindV2::Paid { amount } => EventKind::Paid { amount },
            EventKindV2::Declined { why } => EventKind::Declined { why: said(why) },
            EventKindV2::Expired => EventKind::Expired,
            EventKindV2::AttemptFailed { code, why } => EventKind::AttemptFailed { code, why },
            EventKindV2::CancelRequested => EventKind::CancelRequested,
            EventKindV2::Cancelled => EventKind::Cancelled,
            EventKindV2::ReversalRequested => EventKind::ReversalRequested,
            EventKindV2::Reversed => EventKind::Reversed,
            EventKindV2::ReversalFailed { why } => EventKind::ReversalFailed { why: said(why) },
            EventKindV2::RefundRequested { key, amount } => {
                EventKind::RefundRequested { key, amount }
            }
            EventKindV2::RefundDone { key, amount } => EventKind::RefundDone { key, amount },
            EventKindV2::RefundFailed { key, amount, why } => EventKind::RefundFailed {
                key,
                amount,
                why: said(why),
            },
            EventKindV2::Reprinted { slip, russian } => EventKind::Reprinted { slip, russian },
            EventKindV2::Attention { why } => EventKind::Attention { why: said(why) },
            EventKindV2::Written { what, text } => EventKind::Written { what, text },
            EventKindV2::Sms(note) => EventKind::Sms(note),
            EventKindV2::RefundLearned { amount } => EventKind::RefundLearned { amount },
            EventKindV2::ReversalLearned => EventKind::ReversalLearned,
        }
    }
}
