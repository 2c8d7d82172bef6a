//! Reading orders many at a time without holding many: a page of a range of Moscow days after a
//! cursor, the days' totals from the kept sums, every order of a range as an iterator (the CSV
//! export), and the sale a till's customer screen shows.

use chrono::NaiveDate;

use super::{Engine, EngineError};
use crate::domain::TillId;
use crate::orders::order::Order;
use crate::orders::state::{State, StateKind};
use crate::orders::totals::DayTotals;

/// One page of orders, oldest first, and where the next starts (None: this was the last).
#[derive(Debug, Clone)]
pub struct Page {
    pub orders: Vec<Order>,
    pub next: Option<uuid::Uuid>,
}

/// Which orders a page holds.
#[derive(Debug, Clone)]
pub struct PageQuery {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub state: Option<StateKind>,
    /// The last order of the previous page.
    pub after: Option<uuid::Uuid>,
    pub limit: usize,
}

impl Engine {
    /// A page of the orders created on the Moscow days `from..=to`.
    pub fn page(&self, q: &PageQuery) -> Result<Page, EngineError> {
        let mut orders = Vec::with_capacity(q.limit.min(1000));
        let mut more = false;
        for order in self.inner.store.range(q.from, q.to, q.after) {
            let order = order?;
            if q.state.is_some_and(|s| order.state.kind() != s) {
                continue;
            }
            if orders.len() == q.limit {
                more = true;
                break;
            }
            orders.push(order);
        }
        let next = if more {
            orders.last().map(|o| o.id)
        } else {
            None
        };
        Ok(Page { orders, next })
    }

    /// The totals of each day `from..=to`, from the sums kept with every order write.
    pub fn day_totals(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayTotals>, EngineError> {
        Ok(self.inner.store.day_totals(from, to)?)
    }

    /// Every order of the days `from..=to`, read one at a time (for an export that streams).
    pub fn orders_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Iterator<Item = Result<Order, EngineError>> + Send + 'static {
        self.inner
            .store
            .range(from, to, None)
            .map(|o| o.map_err(EngineError::from))
    }

    /// Every order of a Moscow day, optionally of one state. Reads the whole day: for tests and
    /// small days; the API pages (`page`).
    pub fn list(
        &self,
        day: NaiveDate,
        state: Option<StateKind>,
    ) -> Result<Vec<Order>, EngineError> {
        self.orders_between(day, day)
            .filter(|o| match o {
                Ok(o) => state.is_none_or(|s| o.state.kind() == s),
                Err(_) => true,
            })
            .collect()
    }

    /// The sale a till's customer screen shows now: its newest order still waiting for the
    /// customer or being paid (from the open orders, never a day's list).
    pub fn current_sale(&self, till: &TillId) -> Result<Option<Order>, EngineError> {
        let mut current: Option<Order> = None;
        for order in self.inner.store.open_orders()? {
            let shown = matches!(
                order.state,
                State::AwaitingPayment(_) | State::Held(_) | State::Depositing(_)
            );
            if !shown || &order.till != till {
                continue;
            }
            if current.as_ref().is_none_or(|c| order.id > c.id) {
                current = Some(order);
            }
        }
        Ok(current)
    }

    /// The tills a screen may belong to: this host's till (`store.till`) and every till that
    /// has sold from this store, sorted.
    pub fn tills(&self) -> Result<Vec<TillId>, EngineError> {
        let mut tills = self.inner.store.tills()?;
        if !tills.contains(&self.inner.settings.default_till) {
            tills.push(self.inner.settings.default_till.clone());
            tills.sort();
        }
        Ok(tills)
    }
}
