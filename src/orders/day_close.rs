//! «Сверка итогов», the day's close: the money that moved on one Moscow day, by till and for the
//! store — payments taken, reversals, refunds, what the shop keeps — counted on the day each
//! movement happened (a refund next week is next week's), and the receipts those movements still
//! lack. Pure: the engine passes the orders that moved that day and what the bank says of them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::event::EventKind;
use super::order::Order;
use super::state::StateKind;
use crate::domain::TillId;
use crate::gateway::{OrderStatus, OrderStatusReport};
use crate::money::Kopecks;

/// Movements of one kind: how many, and how much.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Count {
    pub count: u64,
    pub amount: Kopecks,
}

impl Count {
    fn add(&mut self, amount: Kopecks) {
        self.count += 1;
        self.amount = self.amount.checked_add(amount).unwrap_or(self.amount);
    }
}

/// One till's (or the store's) day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Movements {
    /// Payments the bank took that day.
    pub sales: Count,
    /// Payments given back by same-day reversals.
    pub reversals: Count,
    /// Refunds made that day (of sales of any day).
    pub refunds: Count,
    /// What the shop keeps of the day: sales − reversals − refunds (never below zero).
    pub net: Kopecks,
    /// Receipts these movements owe that are not issued (`[fiscal]` on).
    pub receipts_missing: u64,
}

impl Movements {
    fn settle(&mut self) {
        self.net = self
            .sales
            .amount
            .saturating_sub(self.reversals.amount)
            .saturating_sub(self.refunds.amount);
    }
}

/// The day by till and for the store.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DayClose {
    pub tills: BTreeMap<TillId, Movements>,
    pub store: Movements,
}

/// What kind of money movement a history line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveKind {
    /// The bank took a payment.
    Sale,
    /// A payment given back by a same-day reversal.
    Reversal,
    /// A refund.
    Refund,
}

impl MoveKind {
    pub fn name(self) -> &'static str {
        match self {
            MoveKind::Sale => "sale",
            MoveKind::Reversal => "reversal",
            MoveKind::Refund => "refund",
        }
    }
}

/// One money movement of an order: its history line, when, what, how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The history line's index in `order.history`.
    pub line: usize,
    pub at: DateTime<Utc>,
    pub kind: MoveKind,
    pub amount: Kopecks,
}

/// The money movements in an order's history, in order: the one rule the day's close, the
/// head office's tables and their totals share.
pub fn moves(order: &Order) -> impl Iterator<Item = Move> + '_ {
    order
        .history
        .iter()
        .enumerate()
        .filter_map(|(line, event)| {
            let (kind, amount) = match &event.kind {
                EventKind::Paid { amount } => (MoveKind::Sale, *amount),
                // A reversal gives back all that was taken.
                EventKind::Reversed | EventKind::ReversalLearned => {
                    (MoveKind::Reversal, order.deposited)
                }
                EventKind::RefundDone { amount, .. } | EventKind::RefundLearned { amount } => {
                    (MoveKind::Refund, *amount)
                }
                _ => return None,
            };
            Some(Move {
                line,
                at: event.at,
                kind,
                amount,
            })
        })
}

/// The movements of `day` (Moscow) in these orders' histories.
pub fn movements(day: NaiveDate, orders: &[Order]) -> DayClose {
    let on_day = |at: DateTime<Utc>| crate::moscow::date(at) == day;
    let mut close = DayClose::default();
    for order in orders {
        let till = close.tills.entry(order.till.clone()).or_default();
        for m in moves(order).filter(|m| on_day(m.at)) {
            let (mine, store) = match m.kind {
                MoveKind::Sale => (&mut till.sales, &mut close.store.sales),
                MoveKind::Reversal => (&mut till.reversals, &mut close.store.reversals),
                MoveKind::Refund => (&mut till.refunds, &mut close.store.refunds),
            };
            mine.add(m.amount);
            store.add(m.amount);
        }
        let missing = order
            .receipts
            .iter()
            .filter(|r| {
                on_day(r.owed_at) && !matches!(r.status, super::receipt::ReceiptStatus::Issued(_))
            })
            .count() as u64;
        till.receipts_missing += missing;
        close.store.receipts_missing += missing;
    }
    close.tills.retain(|_, m| *m != Movements::default());
    for m in close.tills.values_mut() {
        m.settle();
    }
    close.store.settle();
    close
}

/// Where chasti and the bank disagree about an order, in the manager's words; None when they
/// agree. Nothing is changed here: a person decides.
pub fn disagreement(order: &Order, bank: &OrderStatusReport) -> Option<String> {
    let kind = order.state.kind();
    let Some(status) = bank.order_status else {
        return Some("банк не сообщил состояние заказа".into());
    };
    let expected: &[OrderStatus] = match kind {
        StateKind::Registering | StateKind::AwaitingPayment => {
            &[OrderStatus::Registered, OrderStatus::Authenticating]
        }
        StateKind::Held | StateKind::Depositing => &[OrderStatus::Held, OrderStatus::Deposited],
        StateKind::Paid | StateKind::Refunding => &[OrderStatus::Deposited, OrderStatus::Refunded],
        StateKind::PartiallyRefunded | StateKind::Refunded => {
            &[OrderStatus::Refunded, OrderStatus::Deposited]
        }
        StateKind::Reversing | StateKind::Reversed => &[OrderStatus::Reversed],
        StateKind::Declined | StateKind::Expired | StateKind::Cancelled | StateKind::Failed => {
            &[OrderStatus::Declined, OrderStatus::Registered]
        }
        StateKind::NeedsAttention => {
            return Some(format!(
                "в кассе «{}»: ждёт решения менеджера",
                order.state.russian()
            ))
        }
    };
    if !expected.contains(&status) {
        return Some(format!(
            "в кассе «{}», в банке orderStatus {} ({})",
            order.state.russian(),
            status.code(),
            status_text(status)
        ));
    }
    let money_moved = !matches!(
        kind,
        StateKind::Reversed
            | StateKind::Reversing
            | StateKind::Declined
            | StateKind::Expired
            | StateKind::Cancelled
            | StateKind::Failed
    );
    if money_moved && bank.deposited() != order.deposited {
        return Some(format!(
            "в кассе списано {}, в банке {}",
            order.deposited,
            bank.deposited()
        ));
    }
    if money_moved && bank.refunded() != order.refunded {
        return Some(format!(
            "в кассе возвращено {}, в банке {}",
            order.refunded,
            bank.refunded()
        ));
    }
    None
}

fn status_text(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Registered => "создан, не оплачен",
        OrderStatus::Held => "сумма заблокирована",
        OrderStatus::Deposited => "оплачен",
        OrderStatus::Reversed => "оплата отменена",
        OrderStatus::Refunded => "возврат",
        OrderStatus::Authenticating => "проверка 3-D Secure",
        OrderStatus::Declined => "отклонён",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::transition::examples::one_in_every_state;

    #[test]
    fn each_movement_counts_on_its_own_day_and_the_net_is_what_is_kept() {
        let orders = one_in_every_state();
        let day = crate::moscow::date(orders[0].history[0].at);
        let close = movements(day, &orders);
        let s = close.store;
        // The examples take 1 499 ₽ in paid, reversing, reversed, refunding, refunded,
        // partially refunded and needs-attention orders, reverse two of them and refund
        // 1 499 + 500.
        assert_eq!(s.reversals.count, 1, "{s:?}");
        assert_eq!(
            s.refunds.amount,
            Kopecks::from_roubles(1999).unwrap(),
            "{s:?}"
        );
        assert_eq!(
            s.net,
            s.sales
                .amount
                .saturating_sub(s.reversals.amount)
                .saturating_sub(s.refunds.amount)
        );
        let next = movements(day.succ_opt().unwrap(), &orders);
        assert_eq!(
            next.store,
            Movements::default(),
            "nothing moved the next day"
        );
    }
}
