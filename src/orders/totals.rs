//! A day's money: what was sold, what was reversed and refunded, what the shop keeps. Sums fail
//! closed: a total that would leave the gateway's range is an error, never a wrong number.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::order::Order;
use crate::money::Kopecks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayTotals {
    /// The Moscow day the orders were created on.
    pub day: NaiveDate,
    /// Orders created that day, in any state.
    pub count: u64,
    /// Money taken (deposited), including payments later reversed or refunded.
    pub sold: Kopecks,
    /// Money given back by same-day reversals of taken payments.
    pub reversed: Kopecks,
    /// Money given back by refunds.
    pub refunded: Kopecks,
    /// What the shop keeps: sold − reversed − refunded.
    pub net: Kopecks,
}

/// A total that does not fit the gateway's 12 digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the totals of {0} do not fit the gateway's range")]
pub struct TotalsOverflow(pub NaiveDate);

impl DayTotals {
    pub fn new(day: NaiveDate) -> DayTotals {
        DayTotals {
            day,
            count: 0,
            sold: Kopecks::ZERO,
            reversed: Kopecks::ZERO,
            refunded: Kopecks::ZERO,
            net: Kopecks::ZERO,
        }
    }

    /// Adds one order of this day.
    pub fn add(&mut self, order: &Order) -> Result<(), TotalsOverflow> {
        let overflow = || TotalsOverflow(self.day);
        let balance = order.balance();
        self.count += 1;
        self.sold = self.sold.checked_add(balance.paid).ok_or_else(overflow)?;
        self.reversed = self
            .reversed
            .checked_add(balance.reversed)
            .ok_or_else(overflow)?;
        self.refunded = self
            .refunded
            .checked_add(balance.refunded)
            .ok_or_else(overflow)?;
        self.net = self
            .sold
            .checked_sub(self.reversed)
            .and_then(|k| k.checked_sub(self.refunded))
            .ok_or_else(overflow)?;
        Ok(())
    }

    /// Adds another day's totals (a range's total).
    pub fn merge(&mut self, other: &DayTotals) -> Result<(), TotalsOverflow> {
        let overflow = || TotalsOverflow(self.day);
        self.count += other.count;
        self.sold = self.sold.checked_add(other.sold).ok_or_else(overflow)?;
        self.reversed = self
            .reversed
            .checked_add(other.reversed)
            .ok_or_else(overflow)?;
        self.refunded = self
            .refunded
            .checked_add(other.refunded)
            .ok_or_else(overflow)?;
        self.net = self.net.checked_add(other.net).ok_or_else(overflow)?;
        Ok(())
    }
}
