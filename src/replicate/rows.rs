//! Orders as the head office's tables hold them: one `orders` row each, its history lines, its
//! money movements (the day's-close rule, `orders::day_close::moves`), its receipts. Built as
//! columns, so a batch goes to PostgreSQL as one `unnest` statement a table. Pure: no I/O.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::orders::day_close::moves;
use crate::orders::order::Order;
use crate::orders::receipt::ReceiptStatus;

/// Kopecks as PostgreSQL's bigint (an amount never reaches 2^63).
fn big(k: crate::money::Kopecks) -> i64 {
    i64::try_from(k.get()).unwrap_or(i64::MAX)
}

#[derive(Debug, Default)]
pub struct OrderRows {
    pub id: Vec<Uuid>,
    pub version: Vec<i64>,
    pub number: Vec<String>,
    pub till: Vec<String>,
    pub mode: Vec<String>,
    pub state: Vec<String>,
    pub state_text: Vec<String>,
    pub why: Vec<Option<String>>,
    pub amount: Vec<i64>,
    pub paid: Vec<i64>,
    pub reversed: Vec<i64>,
    pub refunded: Vec<i64>,
    pub left: Vec<i64>,
    pub description: Vec<Option<String>>,
    pub cashier: Vec<Option<String>>,
    pub created_at: Vec<DateTime<Utc>>,
    pub updated_at: Vec<DateTime<Utc>>,
    pub paid_at: Vec<Option<DateTime<Utc>>>,
}

#[derive(Debug, Default)]
pub struct EventRows {
    pub order: Vec<Uuid>,
    pub line: Vec<i32>,
    pub at: Vec<DateTime<Utc>>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub what: Vec<String>,
    pub text: Vec<String>,
    pub actor: Vec<Option<String>>,
}

#[derive(Debug, Default)]
pub struct MoveRows {
    pub order: Vec<Uuid>,
    pub line: Vec<i32>,
    pub at: Vec<DateTime<Utc>>,
    /// The Moscow day it counts on.
    pub day: Vec<NaiveDate>,
    pub till: Vec<String>,
    pub kind: Vec<String>,
    pub amount: Vec<i64>,
}

#[derive(Debug, Default)]
pub struct ReceiptRows {
    pub id: Vec<Uuid>,
    pub order: Vec<Uuid>,
    pub order_version: Vec<i64>,
    pub kind: Vec<String>,
    pub amount: Vec<i64>,
    pub status: Vec<String>,
    pub owed_at: Vec<DateTime<Utc>>,
    pub due_by: Vec<DateTime<Utc>>,
    pub document_number: Vec<Option<i64>>,
    pub fiscal_sign: Vec<Option<String>>,
    pub fn_number: Vec<Option<String>>,
    pub issued_at: Vec<Option<DateTime<Utc>>>,
    pub problem: Vec<Option<String>>,
    /// The store found it past its deadline unissued («чек не пробит»).
    pub late: Vec<bool>,
}

/// A batch of orders, as columns.
#[derive(Debug, Default)]
pub struct Batch {
    pub orders: OrderRows,
    pub events: EventRows,
    pub moves: MoveRows,
    pub receipts: ReceiptRows,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.orders.id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.id.is_empty()
    }

    pub fn add(&mut self, order: &Order) {
        let balance = order.balance();
        let o = &mut self.orders;
        o.id.push(order.id);
        o.version
            .push(i64::try_from(order.version).unwrap_or(i64::MAX));
        o.number.push(order.order_number.to_string());
        o.till.push(order.till.to_string());
        o.mode.push(
            match order.mode {
                crate::orders::order::Mode::OneStage => "one-stage",
                crate::orders::order::Mode::TwoStage => "two-stage",
            }
            .into(),
        );
        o.state.push(order.state.name().into());
        o.state_text.push(order.state.russian().into());
        o.why.push(order.state.why().map(|why| why.text()));
        o.amount.push(big(order.amount));
        o.paid.push(big(balance.paid));
        o.reversed.push(big(balance.reversed));
        o.refunded.push(big(balance.refunded));
        o.left.push(big(balance.left));
        o.description
            .push(order.description.as_ref().map(|d| d.to_string()));
        o.cashier.push(order.cashier.clone());
        o.created_at.push(order.created_at);
        o.updated_at.push(order.updated_at);
        o.paid_at.push(order.paid_at);

        for (line, event) in order.history.iter().enumerate() {
            let e = &mut self.events;
            e.order.push(order.id);
            e.line.push(line as i32);
            e.at.push(event.at);
            e.from.push(event.from.name().into());
            e.to.push(event.to.name().into());
            e.what.push(event.what());
            e.text.push(event.text());
            e.actor.push(event.actor.as_ref().map(|a| a.to_string()));
        }
        for m in moves(order) {
            let r = &mut self.moves;
            r.order.push(order.id);
            r.line.push(m.line as i32);
            r.at.push(m.at);
            r.day.push(crate::moscow::date(m.at));
            r.till.push(order.till.to_string());
            r.kind.push(m.kind.name().into());
            r.amount.push(big(m.amount));
        }
        for receipt in &order.receipts {
            let r = &mut self.receipts;
            r.id.push(receipt.id);
            r.order.push(order.id);
            r.order_version
                .push(i64::try_from(order.version).unwrap_or(i64::MAX));
            r.kind.push(receipt.kind.code().into());
            r.amount.push(big(receipt.amount));
            let (status, fiscal, problem) = match &receipt.status {
                ReceiptStatus::Owed => ("owed", None, receipt.last_problem.clone()),
                ReceiptStatus::Sent { .. } => ("sent", None, receipt.last_problem.clone()),
                ReceiptStatus::Issued(f) => ("issued", Some(f), None),
                ReceiptStatus::Failed { why } => ("failed", None, Some(why.clone())),
            };
            r.status.push(status.into());
            r.owed_at.push(receipt.owed_at);
            r.due_by.push(receipt.due_by);
            r.document_number
                .push(fiscal.map(|f| i64::try_from(f.document_number).unwrap_or(i64::MAX)));
            r.fiscal_sign.push(fiscal.map(|f| f.sign.clone()));
            r.fn_number.push(fiscal.map(|f| f.fn_number.clone()));
            r.issued_at.push(fiscal.map(|f| f.at));
            r.problem.push(problem);
            r.late.push(receipt.late);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::transition::examples::one_in_every_state;

    #[test]
    fn every_column_has_a_value_for_every_row_and_the_moves_agree_with_the_balance() {
        let orders = one_in_every_state();
        let mut batch = Batch::default();
        for o in &orders {
            batch.add(o);
        }
        let o = &batch.orders;
        assert_eq!(batch.len(), orders.len());
        for n in [
            o.version.len(),
            o.till.len(),
            o.why.len(),
            o.left.len(),
            o.paid_at.len(),
        ] {
            assert_eq!(n, orders.len());
        }
        assert_eq!(batch.events.what.len(), batch.events.order.len());
        assert_eq!(batch.moves.amount.len(), batch.moves.day.len());
        // What the moves say an order paid, reversed and refunded is what its balance says,
        // once the bank has answered (a reversal or refund under way shows in the balance
        // already, and moves only when done).
        use crate::orders::StateKind;
        for order in orders
            .iter()
            .filter(|o| !matches!(o.state.kind(), StateKind::Reversing | StateKind::Refunding))
        {
            let balance = order.balance();
            let sum = |kind: &str| -> i64 {
                (0..batch.moves.order.len())
                    .filter(|&i| batch.moves.order[i] == order.id && batch.moves.kind[i] == kind)
                    .map(|i| batch.moves.amount[i])
                    .sum()
            };
            assert_eq!(sum("sale"), big(balance.paid), "{:?}", order.state);
            assert_eq!(sum("reversal"), big(balance.reversed), "{:?}", order.state);
            assert_eq!(sum("refund"), big(balance.refunded), "{:?}", order.state);
        }
    }
}
