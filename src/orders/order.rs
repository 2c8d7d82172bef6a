//! An order and the rules a manager's action must pass. Nothing here knows of HTTP, sled or
//! serial bytes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::balance::Balance;
use super::cart::Cart;
use super::state::{AtBank, State, StateKind};
use crate::domain::{Description, Email, IdempotencyKey, OrderNumber, Phone, TillId};
use crate::money::Kopecks;
use crate::moscow;

/// One-stage (`register.do`: paid at once) or two-stage (`registerPreAuth.do`: hold, then deposit).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    OneStage,
    TwoStage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    Pending,
    Done,
    Failed { why: super::reason::Reason },
}

/// One refund request; `key` makes a retry of the same request a no-op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub key: IdempotencyKey,
    pub amount: Kopecks,
    pub status: RefundStatus,
    pub requested_at: DateTime<Utc>,
}

pub use super::event::{Actor, Event, EventKind};

/// A payment attempt the bank declined while the order stays payable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedAttempt {
    pub at: DateTime<Utc>,
    /// The bank's actionCode.
    pub code: i64,
    /// The bank's actionCodeDescription.
    pub why: String,
}

/// A new order's id: a UUID v7 of exactly its creation time (the engine's clock), so ids sort
/// by creation time and a Moscow day's orders are one key range in the store. No monotonic
/// counter: after the clock is set back, new ids must still carry their own time, not a
/// remembered later one. Ids of one millisecond differ in their 74 random bits.
pub fn new_order_id(at: DateTime<Utc>) -> uuid::Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, at.timestamp_subsec_nanos());
    uuid::Uuid::new_v7(ts)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Local id (UUID v7: sortable by creation).
    pub id: uuid::Uuid,
    /// The merchant's order number at the gateway (unique across restarts and tills).
    pub order_number: OrderNumber,
    pub amount: Kopecks,
    pub mode: Mode,
    pub description: Option<Description>,
    pub till: TillId,
    pub cashier: Option<String>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub link_expires_at: DateTime<Utc>,
    pub held_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub state: State,
    pub deposited: Kopecks,
    pub refunded: Kopecks,
    pub refunds: Vec<Refund>,
    pub reversal_attempted: bool,
    /// The shop asked to cancel: a decline the bank confirms makes the order Cancelled.
    pub cancel_requested: bool,
    /// The declined attempts the bank reported while the order stayed payable, the latest last.
    pub failed_attempts: Vec<FailedAttempt>,
    /// Bumped by every transition; the store's compare-and-swap checks it.
    pub version: u64,
    pub history: Vec<Event>,
    /// What the customer buys, line by line, when the POS said (the fiscal receipt's lines).
    pub cart: Option<Cart>,
    /// Whom the receipt and the bank's sign-in reach.
    pub customer: Customer,
    /// The fiscal receipts its money movements owe (when the shop has chasti see to them).
    pub receipts: Vec<super::receipt::Receipt>,
    /// What a manager asked to take of a hold, when not all of it (the rest is released).
    pub deposit_asked: Option<Kopecks>,
}

/// The customer's contact as the till gave it: the payment link by SMS, the bank's sign-in for
/// the installments, and the electronic receipt (tag 1008) go there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    pub phone: Option<Phone>,
    pub email: Option<Email>,
}

/// Why a manager's action cannot be done. The texts are Russian: a manager reads them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error(
        "Отмена возможна только в день оплаты, до 00:00 по московскому времени. Оформите возврат."
    )]
    ReversalDayOver,
    #[error("Отмена уже запрашивалась и не прошла; банк не допускает повторной отмены. Оформите возврат.")]
    ReversalAlreadyTried,
    #[error("Заказ в состоянии «{0}»: отменить можно только оплаченный сегодня заказ или заблокированную сумму.")]
    NotReversible(&'static str),
    #[error("Заказ в состоянии «{0}»: возврат возможен только по оплаченному заказу.")]
    NotRefundable(&'static str),
    #[error(
        "Заказ уже возвращён полностью: возвращено {refunded} из {paid}. Возвращать больше нечего."
    )]
    AlreadyRefunded { refunded: Kopecks, paid: Kopecks },
    #[error("Оплата заказа отменена, покупателю вернулось {reversed}: возвращать нечего.")]
    AlreadyReversed { reversed: Kopecks },
    #[error("По заказу уже оформляется возврат {pending}. Дождитесь его результата.")]
    RefundUnderWay { pending: Kopecks },
    #[error("Сумма возврата {asked} больше доступной: можно вернуть не более {available}.")]
    RefundTooLarge { asked: Kopecks, available: Kopecks },
    #[error("Заказ в состоянии «{0}»: списать можно только заблокированную сумму.")]
    NotDepositable(&'static str),
    #[error("Списать можно от 1,00 ₽ до заблокированных {held}; указано {asked}.")]
    DepositAmount { asked: Kopecks, held: Kopecks },
    #[error("Заказ в состоянии «{0}»: отменить продажу можно, пока она не оплачена. Для оплаченной — отмена оплаты или возврат.")]
    NotCancellable(&'static str),
}

/// What a new sale is made of.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: uuid::Uuid,
    pub order_number: OrderNumber,
    pub amount: Kopecks,
    pub mode: Mode,
    pub description: Option<Description>,
    pub till: TillId,
    pub cashier: Option<String>,
    pub idempotency_key: Option<IdempotencyKey>,
    pub created_at: DateTime<Utc>,
    pub link_expires_at: DateTime<Utc>,
    /// Who asked for the sale.
    pub actor: Option<Actor>,
    pub cart: Option<Cart>,
    pub customer: Customer,
}

impl Order {
    /// A sale whose number is taken and whose registration is about to start.
    pub fn registering(n: NewOrder) -> Order {
        Order {
            id: n.id,
            order_number: n.order_number,
            amount: n.amount,
            mode: n.mode,
            description: n.description,
            till: n.till,
            cashier: n.cashier,
            idempotency_key: n.idempotency_key,
            created_at: n.created_at,
            updated_at: n.created_at,
            link_expires_at: n.link_expires_at,
            held_at: None,
            paid_at: None,
            state: State::Registering,
            deposited: Kopecks::ZERO,
            refunded: Kopecks::ZERO,
            refunds: Vec::new(),
            reversal_attempted: false,
            cancel_requested: false,
            failed_attempts: Vec::new(),
            version: 0,
            history: vec![Event {
                at: n.created_at,
                from: StateKind::Registering,
                to: StateKind::Registering,
                kind: EventKind::Started {
                    amount: n.amount,
                    items: n
                        .cart
                        .as_ref()
                        .map_or(0, |c| u16::try_from(c.items().len()).unwrap_or(u16::MAX)),
                },
                actor: n.actor,
            }],
            cart: n.cart,
            customer: n.customer,
            receipts: Vec::new(),
            deposit_asked: None,
        }
    }

    /// May the shop cancel this sale now? Only while it is not paid.
    pub fn check_cancel(&self) -> Result<(), ActionError> {
        match self.state {
            State::Registering | State::AwaitingPayment(_) => Ok(()),
            _ => Err(ActionError::NotCancellable(self.state.russian())),
        }
    }

    /// Where the order's money is: paid, reversed, refunded, left, refundable.
    pub fn balance(&self) -> Balance {
        Balance::of(self)
    }

    /// The money that can still be refunded now (see [`Balance::refundable`]).
    pub fn refundable(&self) -> Kopecks {
        self.balance().refundable
    }

    /// What the shop keeps from this order: paid minus refunded, nothing once reversed.
    pub fn net_paid(&self) -> Kopecks {
        self.balance().left
    }

    /// May a manager reverse this order now? A hold until it is deposited; a payment on its
    /// own Moscow day only; and the gateway allows one try.
    pub fn check_reversal(&self, now: DateTime<Utc>) -> Result<(), ActionError> {
        match self.state {
            State::Held(_) | State::Paid(_) => {}
            _ => return Err(ActionError::NotReversible(self.state.russian())),
        }
        if self.reversal_attempted {
            return Err(ActionError::ReversalAlreadyTried);
        }
        if matches!(self.state, State::Paid(_)) {
            let paid_day = self.paid_at.map(moscow::date);
            if paid_day != Some(moscow::date(now)) {
                return Err(ActionError::ReversalDayOver);
            }
        }
        Ok(())
    }

    /// May a manager refund `asked` (None = all that is left)? Returns the amount.
    pub fn check_refund(&self, asked: Option<Kopecks>) -> Result<Kopecks, ActionError> {
        let balance = self.balance();
        match &self.state {
            State::Paid(_) | State::PartiallyRefunded(_) => {}
            State::Refunded(_) => {
                return Err(ActionError::AlreadyRefunded {
                    refunded: balance.refunded,
                    paid: balance.paid,
                })
            }
            State::Reversed(_) | State::Reversing(_) => {
                return Err(ActionError::AlreadyReversed {
                    reversed: balance.reversed,
                })
            }
            State::Refunding(_) => {
                return Err(ActionError::RefundUnderWay {
                    pending: self.pending_refund().map(|r| r.amount).unwrap_or_default(),
                })
            }
            other => return Err(ActionError::NotRefundable(other.russian())),
        }
        let available = balance.refundable;
        let amount = asked.unwrap_or(available);
        if amount.is_zero() || amount > available {
            return Err(ActionError::RefundTooLarge {
                asked: amount,
                available,
            });
        }
        Ok(amount)
    }

    /// May a manager take `asked` of the hold (None: all of it)? The bank takes at least
    /// 1 ₽ and at most what it holds; the rest of the hold is released.
    pub fn check_deposit(&self, asked: Option<Kopecks>) -> Result<Option<Kopecks>, ActionError> {
        if !matches!(self.state, State::Held(_)) {
            return Err(ActionError::NotDepositable(self.state.russian()));
        }
        match asked {
            None => Ok(None),
            Some(a) if a == self.amount => Ok(None),
            Some(a) if a > self.amount || a.get() < 100 => Err(ActionError::DepositAmount {
                asked: a,
                held: self.amount,
            }),
            Some(a) => Ok(Some(a)),
        }
    }

    /// What the bank is to take: what a manager asked, else the whole amount.
    pub fn deposit_target(&self) -> Kopecks {
        self.deposit_asked.unwrap_or(self.amount)
    }

    /// Where the money is after a failed reversal or refund.
    pub(super) fn settled_state(&self, bank: AtBank) -> State {
        if self.deposited.is_zero() {
            State::Held(bank)
        } else if self.refunded.is_zero() {
            State::Paid(bank)
        } else {
            State::PartiallyRefunded(bank)
        }
    }

    /// Who sold the order and who asked for each action on its money, in Russian, for the
    /// manager page («Кто»): «продал: till-1 (Иванова); возврат: manager». Reprints and SMS
    /// notes are not actions on the money and never hide who made one.
    pub fn who(&self) -> String {
        let mut parts = Vec::new();
        if let Some(seller) = self.history.first().and_then(|e| e.actor.as_ref()) {
            parts.push(format!("продал: {seller}"));
        }
        for event in self.history.iter().skip(1) {
            if let (Some(action), Some(actor)) = (event.kind.money_action(), &event.actor) {
                parts.push(format!("{action}: {actor}"));
            }
        }
        parts.join("; ")
    }

    /// The pending refund, if one is under way.
    pub fn pending_refund(&self) -> Option<&Refund> {
        self.refunds
            .iter()
            .find(|r| r.status == RefundStatus::Pending)
    }
}
