//! Orders, the domain: the state machine (`state`, `order`, `transition`), what the gateway's
//! answers mean (`reconcile`), balances and totals. Pure: no I/O, no tokio, no store — the
//! engine drives these against the gateway and the store.

pub mod balance;
pub mod cart;
pub mod day_close;
pub mod event;
pub mod order;
pub mod reason;
pub mod receipt;
pub mod reconcile;
pub mod state;
pub mod totals;
pub mod transition;

pub use balance::Balance;

/// What a customer is told of a refund: through the installment service it reaches them in
/// days, not at once (the product publishes up to 10 working days).
pub const REFUND_TAKES_DAYS: &str =
    "Возврат через «Плати частями» дойдёт до покупателя не сразу: в течение 10 рабочих дней.";
pub use cart::{Cart, Item};
pub use order::{
    ActionError, Actor, Customer, Event, FailedAttempt, Mode, NewOrder, Order, Refund, RefundStatus,
};
pub use reason::Reason;
pub use receipt::{Receipt, ReceiptKind, ReceiptStatus};
pub use state::{AtBank, State, StateKind};
pub use totals::DayTotals;
