//! An order and its state machine. Transitions are pure: `apply(order, input, now)` gives the
//! next order or says why not. Nothing here knows of HTTP, sled or serial bytes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::money::Kopecks;
use crate::moscow;

/// One-stage (`register.do`: paid at once) or two-stage (`registerPreAuth.do`: hold, then deposit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    OneStage,
    TwoStage,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum State {
    /// The order number is taken and flushed; the gateway call is (or may be) under way.
    Registering,
    /// The payment link is out; the customer has not paid yet.
    AwaitingPayment,
    /// Two-stage: the amount is held, not yet taken.
    Held,
    /// Two-stage: deposit.do is (or may be) under way.
    Depositing,
    Paid,
    Declined {
        why: String,
    },
    Expired,
    /// The gateway refused to register the order; nothing to pay.
    Failed {
        why: String,
    },
    Reversing,
    Reversed,
    Refunding,
    Refunded,
    PartiallyRefunded,
    /// The gateway and chasti disagree in a way a person must look at (e.g. money moved that
    /// chasti did not ask for).
    NeedsAttention {
        why: String,
    },
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Registering => "registering",
            State::AwaitingPayment => "awaiting_payment",
            State::Held => "held",
            State::Depositing => "depositing",
            State::Paid => "paid",
            State::Declined { .. } => "declined",
            State::Expired => "expired",
            State::Failed { .. } => "failed",
            State::Reversing => "reversing",
            State::Reversed => "reversed",
            State::Refunding => "refunding",
            State::Refunded => "refunded",
            State::PartiallyRefunded => "partially_refunded",
            State::NeedsAttention { .. } => "needs_attention",
        }
    }

    pub const NAMES: [&'static str; 14] = [
        "registering",
        "awaiting_payment",
        "held",
        "depositing",
        "paid",
        "declined",
        "expired",
        "failed",
        "reversing",
        "reversed",
        "refunding",
        "refunded",
        "partially_refunded",
        "needs_attention",
    ];

    /// A call to the gateway is (or may be) in flight: reconcile before anything else.
    pub fn is_transitional(&self) -> bool {
        matches!(
            self,
            State::Registering | State::Depositing | State::Reversing | State::Refunding
        )
    }

    /// Still moving: the poller keeps asking the gateway about it.
    pub fn is_open(&self) -> bool {
        self.is_transitional() || matches!(self, State::AwaitingPayment | State::Held)
    }

    /// What a cashier reads.
    pub fn russian(&self) -> &'static str {
        match self {
            State::Registering => "Создаём ссылку на оплату",
            State::AwaitingPayment => "Ожидает оплаты",
            State::Held => "Сумма заблокирована",
            State::Depositing => "Списываем сумму",
            State::Paid => "Оплачено",
            State::Declined { .. } => "Оплата отклонена",
            State::Expired => "Время на оплату истекло",
            State::Failed { .. } => "Не удалось создать оплату",
            State::Reversing => "Отменяем оплату",
            State::Reversed => "Оплата отменена",
            State::Refunding => "Оформляем возврат",
            State::Refunded => "Возврат оформлен",
            State::PartiallyRefunded => "Частичный возврат",
            State::NeedsAttention { .. } => "Требует проверки",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    Done,
    Failed { why: String },
}

/// One refund request; `key` makes a retry of the same request a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub key: String,
    pub amount: Kopecks,
    pub status: RefundStatus,
    pub requested_at: DateTime<Utc>,
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: String,
    pub what: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Local id (UUID v7: sortable by creation).
    pub id: String,
    /// The merchant's order number at the gateway (unique across restarts and tills).
    pub order_number: String,
    pub gateway_order_id: Option<String>,
    pub amount: Kopecks,
    pub mode: Mode,
    pub description: Option<String>,
    pub till: String,
    pub cashier: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub payment_url: Option<String>,
    pub link_expires_at: DateTime<Utc>,
    pub held_at: Option<DateTime<Utc>>,
    pub paid_at: Option<DateTime<Utc>>,
    pub state: State,
    pub deposited: Kopecks,
    pub refunded: Kopecks,
    pub refunds: Vec<Refund>,
    pub reversal_attempted: bool,
    /// Bumped by every transition; the store's compare-and-swap checks it.
    pub version: u64,
    pub history: Vec<Event>,
}

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Registered {
        gateway_order_id: String,
        payment_url: String,
    },
    RegistrationFailed {
        why: String,
    },
    /// The gateway confirms a hold (orderStatus 1).
    HoldConfirmed,
    DepositStarted,
    /// The gateway confirms the money is taken (orderStatus 2).
    PaymentConfirmed {
        deposited: Kopecks,
    },
    /// A deposit the gateway refused for good, or that did not happen: back to Held.
    DepositFailed {
        why: String,
    },
    Declined {
        why: String,
    },
    Expired,
    ReversalStarted,
    ReversalConfirmed,
    ReversalFailed {
        why: String,
    },
    RefundStarted {
        key: String,
        amount: Kopecks,
    },
    RefundConfirmed {
        key: String,
    },
    RefundFailed {
        key: String,
        why: String,
    },
    Attention {
        why: String,
    },
}

impl Input {
    fn name(&self) -> &'static str {
        match self {
            Input::Registered { .. } => "registered",
            Input::RegistrationFailed { .. } => "registration failed",
            Input::HoldConfirmed => "hold confirmed",
            Input::DepositStarted => "deposit started",
            Input::PaymentConfirmed { .. } => "payment confirmed",
            Input::DepositFailed { .. } => "deposit failed",
            Input::Declined { .. } => "declined",
            Input::Expired => "expired",
            Input::ReversalStarted => "reversal started",
            Input::ReversalConfirmed => "reversal confirmed",
            Input::ReversalFailed { .. } => "reversal failed",
            Input::RefundStarted { .. } => "refund started",
            Input::RefundConfirmed { .. } => "refund confirmed",
            Input::RefundFailed { .. } => "refund failed",
            Input::Attention { .. } => "attention",
        }
    }
}

/// A transition that is not allowed, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input} is not allowed in state {state}: {reason}")]
pub struct Refused {
    pub state: &'static str,
    pub input: &'static str,
    pub reason: String,
}

/// Why a manager action cannot be done. The texts are Russian: a manager reads them.
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
    #[error("Сумма возврата {asked} больше доступной: можно вернуть не более {available}.")]
    RefundTooLarge { asked: Kopecks, available: Kopecks },
    #[error("Заказ в состоянии «{0}»: списать можно только заблокированную сумму.")]
    NotDepositable(&'static str),
}

/// What is wrong with a till id, if anything (it goes into order numbers: short and plain).
/// Russian: a cashier reads it.
pub fn till_problem(till: &str) -> Option<String> {
    let ok = (1..=4).contains(&till.len()) && till.chars().all(|c| c.is_ascii_alphanumeric());
    (!ok).then(|| format!("«{till}»: допустимы 1–4 латинские буквы или цифры"))
}

/// What the bank would refuse in an order description, if anything.
pub fn description_problem(text: &str) -> Option<String> {
    let length = text.chars().count();
    if length > 99 {
        return Some(format!("{length} символов, допустимо не более 99"));
    }
    text.chars()
        .find(|c| matches!(c, '%' | '+' | '\r' | '\n'))
        .map(|c| format!("символ {c:?} не принимается банком (нельзя %, +, перевод строки)"))
}

/// What a new sale is made of.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: String,
    pub order_number: String,
    pub amount: Kopecks,
    pub mode: Mode,
    pub description: Option<String>,
    pub till: String,
    pub cashier: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub link_expires_at: DateTime<Utc>,
}

impl Order {
    /// A sale whose number is taken and whose registration is about to start.
    pub fn registering(n: NewOrder) -> Order {
        Order {
            id: n.id,
            order_number: n.order_number,
            gateway_order_id: None,
            amount: n.amount,
            mode: n.mode,
            description: n.description,
            till: n.till,
            cashier: n.cashier,
            idempotency_key: n.idempotency_key,
            created_at: n.created_at,
            updated_at: n.created_at,
            payment_url: None,
            link_expires_at: n.link_expires_at,
            held_at: None,
            paid_at: None,
            state: State::Registering,
            deposited: Kopecks::ZERO,
            refunded: Kopecks::ZERO,
            refunds: Vec::new(),
            reversal_attempted: false,
            version: 0,
            history: Vec::new(),
        }
    }

    /// The money that can still be refunded: deposited minus refunded minus refunds under way.
    pub fn refundable(&self) -> Kopecks {
        let pending: u64 = self
            .refunds
            .iter()
            .filter(|r| r.status == RefundStatus::Pending)
            .map(|r| r.amount.get())
            .sum();
        self.deposited
            .saturating_sub(self.refunded)
            .saturating_sub(Kopecks::new(pending).unwrap_or_default())
    }

    /// What the shop keeps from this order: deposited minus refunded, nothing once reversed.
    pub fn net_paid(&self) -> Kopecks {
        match self.state {
            State::Reversed | State::Reversing => Kopecks::ZERO,
            _ => self.deposited.saturating_sub(self.refunded),
        }
    }

    /// May a manager reverse this order now? A hold until it is deposited; a payment on its
    /// own Moscow day only; and the gateway allows one try.
    pub fn check_reversal(&self, now: DateTime<Utc>) -> Result<(), ActionError> {
        match self.state {
            State::Held | State::Paid => {}
            _ => return Err(ActionError::NotReversible(self.state.russian())),
        }
        if self.reversal_attempted {
            return Err(ActionError::ReversalAlreadyTried);
        }
        if self.state == State::Paid {
            let paid_day = self.paid_at.map(moscow::date);
            if paid_day != Some(moscow::date(now)) {
                return Err(ActionError::ReversalDayOver);
            }
        }
        Ok(())
    }

    /// May a manager refund `asked` (None = all that is left)? Returns the amount.
    pub fn check_refund(&self, asked: Option<Kopecks>) -> Result<Kopecks, ActionError> {
        if !matches!(self.state, State::Paid | State::PartiallyRefunded) {
            return Err(ActionError::NotRefundable(self.state.russian()));
        }
        let available = self.refundable();
        let amount = asked.unwrap_or(available);
        if amount.is_zero() || amount > available {
            return Err(ActionError::RefundTooLarge {
                asked: amount,
                available,
            });
        }
        Ok(amount)
    }

    pub fn check_deposit(&self) -> Result<(), ActionError> {
        match self.state {
            State::Held => Ok(()),
            _ => Err(ActionError::NotDepositable(self.state.russian())),
        }
    }

    /// The state after a failed reversal or refund: where the money still is.
    fn settled_state(&self) -> State {
        if self.deposited.is_zero() {
            State::Held
        } else if self.refunded.is_zero() {
            State::Paid
        } else {
            State::PartiallyRefunded
        }
    }
}

/// The next order after `input`, or why it is refused. The only place states change.
pub fn apply(order: &Order, input: Input, now: DateTime<Utc>) -> Result<Order, Refused> {
    let refuse = |reason: &str| Refused {
        state: order.state.name(),
        input: input.name(),
        reason: reason.to_string(),
    };
    let mut next = order.clone();
    let what: String;
    match (&order.state, &input) {
        (
            State::Registering,
            Input::Registered {
                gateway_order_id,
                payment_url,
            },
        ) => {
            next.gateway_order_id = Some(gateway_order_id.clone());
            next.payment_url = Some(payment_url.clone());
            next.state = State::AwaitingPayment;
            what = format!("registered at the gateway as {gateway_order_id}");
        }
        (State::Registering, Input::RegistrationFailed { why }) => {
            next.state = State::Failed { why: why.clone() };
            what = format!("registration failed: {why}");
        }
        (State::AwaitingPayment, Input::HoldConfirmed) => {
            if order.mode != Mode::TwoStage {
                return Err(refuse("a one-stage order cannot be held"));
            }
            next.state = State::Held;
            next.held_at = Some(now);
            what = "the gateway holds the amount".into();
        }
        (State::Held, Input::DepositStarted) => {
            next.state = State::Depositing;
            what = "deposit requested".into();
        }
        (State::Depositing, Input::DepositFailed { why }) => {
            next.state = State::Held;
            what = format!("deposit did not happen: {why}");
        }
        (
            State::AwaitingPayment | State::Held | State::Depositing,
            Input::PaymentConfirmed { deposited },
        ) => {
            if *deposited != order.amount {
                return Err(refuse(
                    "the deposited amount differs from the order's amount",
                ));
            }
            if order.state == State::AwaitingPayment && order.mode == Mode::TwoStage {
                return Err(refuse("a two-stage order is held before it is paid"));
            }
            next.deposited = *deposited;
            next.paid_at = Some(now);
            next.state = State::Paid;
            what = format!("paid: {deposited} deposited");
        }
        (State::AwaitingPayment, Input::Declined { why }) => {
            next.state = State::Declined { why: why.clone() };
            what = format!("declined: {why}");
        }
        (State::AwaitingPayment, Input::Expired) => {
            next.state = State::Expired;
            what = "the payment link expired unpaid".into();
        }
        (State::Held | State::Paid, Input::ReversalStarted) => {
            if order.reversal_attempted {
                return Err(refuse("the gateway allows one reversal attempt"));
            }
            next.reversal_attempted = true;
            next.state = State::Reversing;
            what = "reversal requested".into();
        }
        (State::Reversing, Input::ReversalConfirmed) => {
            next.state = State::Reversed;
            what = "reversed".into();
        }
        (State::Reversing, Input::ReversalFailed { why }) => {
            next.state = order.settled_state();
            what = format!("reversal failed: {why}");
        }
        (State::Paid | State::PartiallyRefunded, Input::RefundStarted { key, amount }) => {
            if order.refunds.iter().any(|r| &r.key == key) {
                return Err(refuse("a refund with this key exists"));
            }
            if amount.is_zero() || *amount > order.refundable() {
                return Err(refuse("the refund is above what is left to refund"));
            }
            next.refunds.push(Refund {
                key: key.clone(),
                amount: *amount,
                status: RefundStatus::Pending,
                requested_at: now,
            });
            next.state = State::Refunding;
            what = format!("refund {key} of {amount} requested");
        }
        (State::Refunding, Input::RefundConfirmed { key }) => {
            let refund =
                pending_refund(&mut next, key).ok_or_else(|| refuse("no such pending refund"))?;
            refund.status = RefundStatus::Done;
            let amount = refund.amount;
            next.refunded = next.refunded.checked_add(amount).unwrap_or(next.deposited);
            next.state = if next.refunded >= next.deposited {
                State::Refunded
            } else {
                State::PartiallyRefunded
            };
            what = format!("refund {key} of {amount} done");
        }
        (State::Refunding, Input::RefundFailed { key, why }) => {
            let refund =
                pending_refund(&mut next, key).ok_or_else(|| refuse("no such pending refund"))?;
            refund.status = RefundStatus::Failed { why: why.clone() };
            next.state = next.settled_state();
            what = format!("refund {key} failed: {why}");
        }
        (_, Input::Attention { why }) => {
            next.state = State::NeedsAttention { why: why.clone() };
            what = format!("needs attention: {why}");
        }
        _ => return Err(refuse("no such transition")),
    }
    next.version = order.version + 1;
    next.updated_at = now;
    next.history.push(Event {
        at: now,
        from: order.state.name().to_string(),
        to: next.state.name().to_string(),
        what,
    });
    Ok(next)
}

fn pending_refund<'a>(order: &'a mut Order, key: &str) -> Option<&'a mut Refund> {
    order
        .refunds
        .iter_mut()
        .find(|r| r.key == key && r.status == RefundStatus::Pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap()
    }

    fn rub(r: u64) -> Kopecks {
        Kopecks::from_roubles(r).unwrap()
    }

    fn order(mode: Mode) -> Order {
        Order::registering(NewOrder {
            id: "id".into(),
            order_number: "S-1-261123-0001".into(),
            amount: rub(100),
            mode,
            description: None,
            till: "1".into(),
            cashier: None,
            idempotency_key: None,
            created_at: at(10, 0, 0),
            link_expires_at: at(10, 20, 0),
        })
    }

    fn registered() -> Input {
        Input::Registered {
            gateway_order_id: "g".into(),
            payment_url: "https://pay/g".into(),
        }
    }

    fn step(o: &Order, input: Input) -> Order {
        apply(o, input, at(12, 0, 0)).unwrap()
    }

    fn paid_one_stage() -> Order {
        let o = step(&order(Mode::OneStage), registered());
        step(
            &o,
            Input::PaymentConfirmed {
                deposited: rub(100),
            },
        )
    }

    #[test]
    fn one_stage_happy_path() {
        let o = step(&order(Mode::OneStage), registered());
        assert_eq!(o.state, State::AwaitingPayment);
        assert_eq!(o.payment_url.as_deref(), Some("https://pay/g"));
        let o = step(
            &o,
            Input::PaymentConfirmed {
                deposited: rub(100),
            },
        );
        assert_eq!(o.state, State::Paid);
        assert_eq!(o.version, 2);
        assert_eq!(o.history.len(), 2);
        assert_eq!(o.history[1].from, "awaiting_payment");
        assert_eq!(o.history[1].to, "paid");
    }

    #[test]
    fn two_stage_happy_path() {
        let o = step(&order(Mode::TwoStage), registered());
        let o = step(&o, Input::HoldConfirmed);
        assert_eq!(o.state, State::Held);
        let o = step(&o, Input::DepositStarted);
        assert_eq!(o.state, State::Depositing);
        let back = step(&o, Input::DepositFailed { why: "7".into() });
        assert_eq!(back.state, State::Held);
        let o = step(
            &o,
            Input::PaymentConfirmed {
                deposited: rub(100),
            },
        );
        assert_eq!(o.state, State::Paid);
        assert_eq!(o.deposited, rub(100));
    }

    #[test]
    fn endings_before_payment() {
        let waiting = step(&order(Mode::OneStage), registered());
        assert!(matches!(
            step(&waiting, Input::Declined { why: "x".into() }).state,
            State::Declined { .. }
        ));
        assert_eq!(step(&waiting, Input::Expired).state, State::Expired);
        let failed = step(
            &order(Mode::OneStage),
            Input::RegistrationFailed { why: "5".into() },
        );
        assert!(matches!(failed.state, State::Failed { .. }));
        let attention = step(&waiting, Input::Attention { why: "odd".into() });
        assert_eq!(attention.state.name(), "needs_attention");
    }

    #[test]
    fn refused_transitions_say_why() {
        let fresh = order(Mode::OneStage);
        let one_stage_waiting = step(&fresh, registered());
        let two_stage_waiting = step(&order(Mode::TwoStage), registered());
        let paid = paid_one_stage();
        let cases: Vec<(&Order, Input, &str)> = vec![
            (
                &fresh,
                Input::PaymentConfirmed {
                    deposited: rub(100),
                },
                "no such transition",
            ),
            (&fresh, Input::Expired, "no such transition"),
            (&one_stage_waiting, Input::HoldConfirmed, "cannot be held"),
            (
                &two_stage_waiting,
                Input::PaymentConfirmed {
                    deposited: rub(100),
                },
                "held before it is paid",
            ),
            (
                &one_stage_waiting,
                Input::PaymentConfirmed { deposited: rub(99) },
                "differs",
            ),
            (
                &one_stage_waiting,
                Input::DepositStarted,
                "no such transition",
            ),
            (
                &one_stage_waiting,
                Input::ReversalStarted,
                "no such transition",
            ),
            (&paid, registered(), "no such transition"),
            (
                &paid,
                Input::Declined { why: "x".into() },
                "no such transition",
            ),
            (
                &paid,
                Input::RefundStarted {
                    key: "k".into(),
                    amount: rub(101),
                },
                "above what is left",
            ),
            (
                &paid,
                Input::RefundConfirmed { key: "k".into() },
                "no such transition",
            ),
        ];
        for (o, input, reason) in cases {
            let err = apply(o, input.clone(), at(12, 0, 0)).unwrap_err();
            assert!(
                err.reason.contains(reason),
                "{input:?} from {}: {err}",
                o.state.name()
            );
        }
    }

    #[test]
    fn a_reversal_is_tried_once() {
        let o = step(&paid_one_stage(), Input::ReversalStarted);
        assert_eq!(o.state, State::Reversing);
        let failed = step(&o, Input::ReversalFailed { why: "7".into() });
        assert_eq!(failed.state, State::Paid);
        assert!(apply(&failed, Input::ReversalStarted, at(12, 0, 0)).is_err());
        assert_eq!(
            failed.check_reversal(at(12, 0, 0)),
            Err(ActionError::ReversalAlreadyTried)
        );
        let reversed = step(&o, Input::ReversalConfirmed);
        assert_eq!(reversed.state, State::Reversed);
        assert_eq!(
            reversed.net_paid(),
            Kopecks::ZERO,
            "a reversed payment keeps nothing"
        );
        assert_eq!(failed.net_paid(), rub(100));
    }

    #[test]
    fn same_day_reversal_ends_at_moscow_midnight() {
        // Paid at 12:00 UTC = 15:00 MSK. 20:59:59 UTC is 23:59:59 MSK; 21:00:00 UTC is 00:00 MSK.
        let paid = paid_one_stage();
        assert_eq!(paid.check_reversal(at(20, 59, 59)), Ok(()));
        assert_eq!(
            paid.check_reversal(at(21, 0, 0)),
            Err(ActionError::ReversalDayOver)
        );
        // A hold can be reversed any day until it is deposited.
        let held = step(
            &step(&order(Mode::TwoStage), registered()),
            Input::HoldConfirmed,
        );
        assert_eq!(
            held.check_reversal(at(23, 0, 0) + chrono::Duration::days(3)),
            Ok(())
        );
        let waiting = step(&order(Mode::OneStage), registered());
        assert!(matches!(
            waiting.check_reversal(at(12, 0, 0)),
            Err(ActionError::NotReversible(_))
        ));
    }

    #[test]
    fn refunds_never_exceed_what_was_deposited() {
        let paid = paid_one_stage();
        assert_eq!(paid.check_refund(None), Ok(rub(100)));
        assert_eq!(paid.check_refund(Some(rub(30))), Ok(rub(30)));
        assert!(matches!(
            paid.check_refund(Some(rub(101))),
            Err(ActionError::RefundTooLarge { .. })
        ));

        let r1 = step(
            &paid,
            Input::RefundStarted {
                key: "a".into(),
                amount: rub(30),
            },
        );
        assert_eq!(r1.state, State::Refunding);
        assert_eq!(r1.refundable(), rub(70), "a pending refund counts");
        let r1 = step(&r1, Input::RefundConfirmed { key: "a".into() });
        assert_eq!(r1.state, State::PartiallyRefunded);
        assert_eq!(r1.refunded, rub(30));
        assert!(
            apply(
                &r1,
                Input::RefundStarted {
                    key: "a".into(),
                    amount: rub(1)
                },
                at(12, 0, 0)
            )
            .is_err(),
            "a key is used once"
        );

        let r2 = step(
            &r1,
            Input::RefundStarted {
                key: "b".into(),
                amount: rub(70),
            },
        );
        let failed = step(
            &r2,
            Input::RefundFailed {
                key: "b".into(),
                why: "5".into(),
            },
        );
        assert_eq!(failed.state, State::PartiallyRefunded);
        assert_eq!(failed.refundable(), rub(70));
        let r3 = step(
            &failed,
            Input::RefundStarted {
                key: "c".into(),
                amount: rub(70),
            },
        );
        let done = step(&r3, Input::RefundConfirmed { key: "c".into() });
        assert_eq!(done.state, State::Refunded);
        assert_eq!(done.refundable(), Kopecks::ZERO);
        assert!(matches!(
            done.check_refund(None),
            Err(ActionError::NotRefundable(_))
        ));
    }

    #[test]
    fn open_and_transitional_states() {
        assert!(State::Registering.is_transitional());
        assert!(State::AwaitingPayment.is_open() && !State::AwaitingPayment.is_transitional());
        assert!(!State::Paid.is_open());
        assert_eq!(State::NAMES.len(), 14);
    }
}
