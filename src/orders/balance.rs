//! One order's money as every reader sees it: the API, the CSV, the manager page, the slips and
//! the day's sums all take it from here, so a row and its day's totals cannot disagree.

use serde::{Deserialize, Serialize};

use super::order::{Order, RefundStatus};
use super::state::StateKind;
use crate::money::Kopecks;

/// Where an order's money is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Balance {
    /// Money the bank took (deposited), including what was later reversed or refunded.
    pub paid: Kopecks,
    /// Given back by a same-day reversal (all of `paid`, or nothing). Counted as soon as the
    /// reversal is asked for: a failed one puts the order back as paid.
    pub reversed: Kopecks,
    /// Given back by refunds that are done.
    pub refunded: Kopecks,
    /// What the shop keeps: paid − reversed − refunded.
    pub left: Kopecks,
    /// What a manager can still refund now: what is left, less a refund under way; nothing
    /// unless the order is paid or partly refunded.
    pub refundable: Kopecks,
}

impl Balance {
    pub fn of(order: &Order) -> Balance {
        let kind = order.state.kind();
        let paid = order.deposited;
        let reversed = if reversal_counts(kind) {
            paid
        } else {
            Kopecks::ZERO
        };
        let refunded = order.refunded;
        let left = paid.saturating_sub(reversed).saturating_sub(refunded);
        let refundable = match kind {
            StateKind::Paid | StateKind::PartiallyRefunded => {
                let pending = order
                    .refunds
                    .iter()
                    .filter(|r| r.status == RefundStatus::Pending)
                    .map(|r| r.amount);
                // Fails closed: pending refunds that do not add up (a corrupt record) leave
                // nothing to refund.
                Kopecks::checked_sum(pending)
                    .map(|pending| left.saturating_sub(pending))
                    .unwrap_or(Kopecks::ZERO)
            }
            _ => Kopecks::ZERO,
        };
        Balance {
            paid,
            reversed,
            refunded,
            left,
            refundable,
        }
    }
}

/// A reversal gives back everything that was paid; it counts from the moment it is asked for,
/// as the day's totals always have (a failed reversal returns the order to paid).
pub fn reversal_counts(kind: StateKind) -> bool {
    matches!(kind, StateKind::Reversed | StateKind::Reversing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::totals::DayTotals;
    use crate::orders::transition::examples::one_in_every_state;

    fn rub(r: u64) -> Kopecks {
        Kopecks::from_roubles(r).unwrap()
    }

    #[test]
    fn every_state_has_one_balance_and_its_day_total_agrees() {
        let z = Kopecks::ZERO;
        // (paid, reversed, refunded, left, refundable) for each state, in StateKind::ALL's order.
        let expected = [
            (z, z, z, z, z),                              // registering
            (z, z, z, z, z),                              // awaiting_payment
            (z, z, z, z, z),                              // held: nothing taken yet
            (z, z, z, z, z),                              // depositing
            (rub(1499), z, z, rub(1499), rub(1499)),      // paid
            (z, z, z, z, z),                              // declined
            (z, z, z, z, z),                              // expired
            (z, z, z, z, z),                              // cancelled
            (z, z, z, z, z),                              // failed
            (rub(1499), rub(1499), z, z, z),              // reversing
            (rub(1499), rub(1499), z, z, z),              // reversed
            (rub(1499), z, z, rub(1499), z),              // refunding: the refund not done yet
            (rub(1499), z, rub(1499), z, z),              // refunded
            (rub(1499), z, rub(500), rub(999), rub(999)), // partially_refunded
            (rub(1499), z, z, rub(1499), z),              // needs_attention: a person looks first
        ];
        for (order, want) in one_in_every_state().iter().zip(expected) {
            let b = order.balance();
            let name = order.state.name();
            assert_eq!(
                (b.paid, b.reversed, b.refunded, b.left, b.refundable),
                want,
                "{name}"
            );
            let mut day = DayTotals::new(crate::moscow::date(order.created_at));
            day.add(order).unwrap();
            assert_eq!(
                (day.sold, day.reversed, day.refunded, day.net),
                (b.paid, b.reversed, b.refunded, b.left),
                "{name}: the day's totals are the sum of its rows"
            );
            assert_eq!(order.refundable(), b.refundable, "{name}");
            assert_eq!(order.net_paid(), b.left, "{name}");
            match order.check_refund(None) {
                Ok(amount) => assert_eq!(amount, b.refundable, "{name}"),
                Err(_) => assert!(b.refundable.is_zero(), "{name}: refusing what it shows"),
            }
        }
    }
}
