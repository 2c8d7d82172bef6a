//! Each Moscow day's money, kept up to date in the same transaction as every order write, so a
//! day's totals are one read however many orders the day has.

use serde::{Deserialize, Serialize};

use crate::money::Kopecks;
use crate::orders::order::Order;
use crate::orders::state::StateKind;
use crate::orders::totals::DayTotals;

/// A day's sums on disk (kopecks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DaySums {
    count: u64,
    sold: u64,
    reversed: u64,
    refunded: u64,
}

/// What one order adds to its day: money taken, given back by reversal, given back by refunds.
fn share(o: &Order) -> [u64; 3] {
    let sold = o.deposited.get();
    let reversed = match o.state.kind() {
        StateKind::Reversed | StateKind::Reversing => sold,
        _ => 0,
    };
    [sold, reversed, o.refunded.get()]
}

impl DaySums {
    pub(super) fn read(bytes: Option<&[u8]>) -> DaySums {
        bytes
            .and_then(|b| postcard::from_bytes(b).ok())
            .unwrap_or_default()
    }

    pub(super) fn bytes(&self) -> Vec<u8> {
        // Four integers: postcard cannot fail on them.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// A new order of this day.
    pub(super) fn add(&mut self, o: &Order) {
        self.count += 1;
        self.change(None, o);
    }

    /// An order of this day changed from `old` (None: it is new) to `new`.
    pub(super) fn change(&mut self, old: Option<&Order>, new: &Order) {
        let before = old.map(share).unwrap_or_default();
        let after = share(new);
        for (sum, (b, a)) in [&mut self.sold, &mut self.reversed, &mut self.refunded]
            .into_iter()
            .zip(before.into_iter().zip(after))
        {
            // Saturating: sums that went wrong elsewhere never wrap into huge numbers.
            *sum = sum.saturating_sub(b).saturating_add(a);
        }
    }

    /// The day's totals (None if they leave the gateway's range: fail closed).
    pub(super) fn totals(&self, day: chrono::NaiveDate) -> Option<DayTotals> {
        let sold = Kopecks::new(self.sold)?;
        let reversed = Kopecks::new(self.reversed)?;
        let refunded = Kopecks::new(self.refunded)?;
        Some(DayTotals {
            day,
            count: self.count,
            sold,
            reversed,
            refunded,
            net: sold.checked_sub(reversed)?.checked_sub(refunded)?,
        })
    }
}
