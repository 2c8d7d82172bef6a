//! Where an order is. The bank's order id and the payment link live inside the states that have
//! them, so code that needs them matches on a state and can never read an empty one.

use serde::{Deserialize, Serialize};

use super::reason::Reason;
use crate::domain::{GatewayOrderId, PaymentUrl};

/// What the bank knows the order by: its id and the payment link it issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtBank {
    pub id: GatewayOrderId,
    pub link: PaymentUrl,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The order number is taken and committed; the gateway call is (or may be) under way.
    Registering,
    /// The payment link is out; the customer has not paid yet.
    AwaitingPayment(AtBank),
    /// Two-stage: the amount is held, not yet taken.
    Held(AtBank),
    /// Two-stage: deposit.do is (or may be) under way.
    Depositing(AtBank),
    Paid(AtBank),
    Declined {
        bank: AtBank,
        why: Reason,
    },
    Expired(AtBank),
    /// The shop cancelled it before it was paid (decline.do): the link is dead.
    Cancelled(AtBank),
    /// No payment could be created; nothing to pay. `why.text()` is what the till was told
    /// (and is told again on a retry with the same key).
    Failed {
        why: Reason,
    },
    Reversing(AtBank),
    Reversed(AtBank),
    Refunding(AtBank),
    Refunded(AtBank),
    PartiallyRefunded(AtBank),
    /// The gateway and chasti disagree in a way a person must look at (e.g. money moved that
    /// chasti did not ask for). The bank's id when it is known.
    NeedsAttention {
        why: Reason,
        bank: Option<GatewayOrderId>,
    },
}

/// The name of a state, without its data: what lists filter on and what the API shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StateKind {
    Registering,
    AwaitingPayment,
    Held,
    Depositing,
    Paid,
    Declined,
    Expired,
    Cancelled,
    Failed,
    Reversing,
    Reversed,
    Refunding,
    Refunded,
    PartiallyRefunded,
    NeedsAttention,
}

impl StateKind {
    pub const ALL: [StateKind; 15] = [
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

    pub fn name(self) -> &'static str {
        match self {
            StateKind::Registering => "registering",
            StateKind::AwaitingPayment => "awaiting_payment",
            StateKind::Held => "held",
            StateKind::Depositing => "depositing",
            StateKind::Paid => "paid",
            StateKind::Declined => "declined",
            StateKind::Expired => "expired",
            StateKind::Cancelled => "cancelled",
            StateKind::Failed => "failed",
            StateKind::Reversing => "reversing",
            StateKind::Reversed => "reversed",
            StateKind::Refunding => "refunding",
            StateKind::Refunded => "refunded",
            StateKind::PartiallyRefunded => "partially_refunded",
            StateKind::NeedsAttention => "needs_attention",
        }
    }

    pub fn parse(name: &str) -> Option<StateKind> {
        StateKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// What a cashier reads.
    pub fn russian(self) -> &'static str {
        match self {
            StateKind::Registering => "Создаём ссылку на оплату",
            StateKind::AwaitingPayment => "Ожидает оплаты",
            StateKind::Held => "Сумма заблокирована",
            StateKind::Depositing => "Списываем сумму",
            StateKind::Paid => "Оплачено",
            StateKind::Declined => "Оплата отклонена",
            StateKind::Expired => "Время на оплату истекло",
            StateKind::Cancelled => "Продажа отменена",
            StateKind::Failed => "Не удалось создать оплату",
            StateKind::Reversing => "Отменяем оплату",
            StateKind::Reversed => "Оплата отменена",
            StateKind::Refunding => "Оформляем возврат",
            StateKind::Refunded => "Возврат оформлен",
            StateKind::PartiallyRefunded => "Частичный возврат",
            StateKind::NeedsAttention => "Требует проверки",
        }
    }

    /// A call to the gateway is (or may be) in flight: reconcile before anything else.
    pub fn is_transitional(self) -> bool {
        matches!(
            self,
            StateKind::Registering
                | StateKind::Depositing
                | StateKind::Reversing
                | StateKind::Refunding
        )
    }

    /// Still moving: the poller keeps asking the gateway about it.
    pub fn is_open(self) -> bool {
        self.is_transitional() || matches!(self, StateKind::AwaitingPayment | StateKind::Held)
    }
}

impl std::fmt::Display for StateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl State {
    pub fn kind(&self) -> StateKind {
        match self {
            State::Registering => StateKind::Registering,
            State::AwaitingPayment(_) => StateKind::AwaitingPayment,
            State::Held(_) => StateKind::Held,
            State::Depositing(_) => StateKind::Depositing,
            State::Paid(_) => StateKind::Paid,
            State::Declined { .. } => StateKind::Declined,
            State::Expired(_) => StateKind::Expired,
            State::Cancelled(_) => StateKind::Cancelled,
            State::Failed { .. } => StateKind::Failed,
            State::Reversing(_) => StateKind::Reversing,
            State::Reversed(_) => StateKind::Reversed,
            State::Refunding(_) => StateKind::Refunding,
            State::Refunded(_) => StateKind::Refunded,
            State::PartiallyRefunded(_) => StateKind::PartiallyRefunded,
            State::NeedsAttention { .. } => StateKind::NeedsAttention,
        }
    }

    pub fn name(&self) -> &'static str {
        self.kind().name()
    }

    pub fn russian(&self) -> &'static str {
        self.kind().russian()
    }

    pub fn is_transitional(&self) -> bool {
        self.kind().is_transitional()
    }

    pub fn is_open(&self) -> bool {
        self.kind().is_open()
    }

    /// The bank's id and the link, in every state that has both.
    pub fn bank(&self) -> Option<&AtBank> {
        match self {
            State::AwaitingPayment(b)
            | State::Held(b)
            | State::Depositing(b)
            | State::Paid(b)
            | State::Declined { bank: b, .. }
            | State::Expired(b)
            | State::Cancelled(b)
            | State::Reversing(b)
            | State::Reversed(b)
            | State::Refunding(b)
            | State::Refunded(b)
            | State::PartiallyRefunded(b) => Some(b),
            State::Registering | State::Failed { .. } | State::NeedsAttention { .. } => None,
        }
    }

    /// The bank's order id, when it is known.
    pub fn bank_id(&self) -> Option<&GatewayOrderId> {
        match self {
            State::NeedsAttention { bank, .. } => bank.as_ref(),
            other => other.bank().map(|b| &b.id),
        }
    }

    /// Why the order stopped, for the states that say.
    pub fn why(&self) -> Option<&Reason> {
        match self {
            State::Declined { why, .. }
            | State::Failed { why, .. }
            | State::NeedsAttention { why, .. } => Some(why),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_name_and_reads_back() {
        let names: std::collections::HashSet<&str> =
            StateKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), StateKind::ALL.len());
        for kind in StateKind::ALL {
            assert_eq!(StateKind::parse(kind.name()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.name())
            );
        }
        assert!(StateKind::Registering.is_transitional());
        assert!(
            StateKind::AwaitingPayment.is_open() && !StateKind::AwaitingPayment.is_transitional()
        );
        assert!(!StateKind::Paid.is_open());
    }
}
