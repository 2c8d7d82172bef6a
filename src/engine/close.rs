//! The day's close, against the bank: the day's movements from the store, and every order that
//! moved that day asked about once (`getOrderStatusExtended`, a few at a time), so what chasti
//! and the bank disagree on is listed for a person — never changed here.

use chrono::NaiveDate;
use futures_util::stream::{self, StreamExt};

use super::{Engine, EngineError};
use crate::orders::day_close::{disagreement, movements, DayClose};
use crate::orders::order::Order;
use crate::orders::state::State;

/// What the close found.
#[derive(Debug, Clone)]
pub struct DayReport {
    pub day: NaiveDate,
    pub close: DayClose,
    /// Orders chasti and the bank see differently: the order's number, its till, and what.
    pub disagreements: Vec<(String, String, String)>,
    /// Orders the bank could not be asked about now: number, why.
    pub unchecked: Vec<(String, String)>,
    /// Orders checked against the bank.
    pub checked: usize,
}

/// Status calls the close makes at once.
const AT_ONCE: usize = 8;

impl Engine {
    /// The day's movements, and each of the day's orders checked against the bank once.
    pub async fn close_day(&self, day: NaiveDate) -> Result<DayReport, EngineError> {
        let orders = self.inner.store.moved_on(day)?;
        let close = movements(day, &orders);
        // An order the bank never registered has nothing to compare.
        let asked: Vec<Order> = orders
            .into_iter()
            .filter(|o| !matches!(o.state, State::Failed { .. }) || o.state.bank_id().is_some())
            .collect();
        let checked = asked.len();
        let answers: Vec<_> = stream::iter(asked)
            .map(|order| async move {
                let answer = self.status_of(&order).await;
                (order, answer)
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;
        let mut disagreements = Vec::new();
        let mut unchecked = Vec::new();
        for (order, answer) in answers {
            match answer {
                Ok(report) => {
                    if let Some(what) = disagreement(&order, &report) {
                        disagreements.push((
                            order.order_number.to_string(),
                            order.till.to_string(),
                            what,
                        ));
                    }
                }
                Err(e) => unchecked.push((order.order_number.to_string(), e.cashier_text())),
            }
        }
        disagreements.sort();
        unchecked.sort();
        Ok(DayReport {
            day,
            close,
            disagreements,
            unchecked,
            checked,
        })
    }
}
