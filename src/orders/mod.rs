//! Orders: the state machine (`state`, `order`, `transition`), what the gateway's answers mean
//! (`reconcile`), and the engine that drives them against the gateway and the store
//! (`crate::store`).

pub mod balance;
pub mod engine;
pub mod event;
pub mod order;
pub mod reconcile;
pub mod state;
pub mod totals;
pub mod transition;

pub use crate::store::{Store, StoreError};
pub use balance::Balance;
pub use engine::{
    callback_param, CallbackOutcome, Cancel, Clock, Engine, EngineError, EngineSettings,
    ManualClock, Page, PageQuery, Recovery, SaleRequest, Sold, SystemClock, FOLLOW_UPS_MAX,
    FOLLOW_UP_WORKERS, LOOKS_PER_SECOND, ONE_ORDER_SPACING, REPLAY_WINDOW, UNSIGNED_KEPT_PER_ORDER,
};
pub use order::{
    ActionError, Actor, Event, FailedAttempt, Mode, NewOrder, Order, Refund, RefundStatus,
};
pub use state::{AtBank, State, StateKind};
pub use totals::DayTotals;
