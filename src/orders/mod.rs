//! Orders: the domain and its state machine, the sled store, the reconciliation rules and
//! the engine that drives them against the gateway.

pub mod domain;
pub mod engine;
pub mod reconcile;
pub mod store;

pub use domain::{ActionError, Mode, NewOrder, Order, Refund, RefundStatus, State};
pub use engine::{
    Clock, Engine, EngineError, EngineSettings, ManualClock, SaleRequest, SystemClock,
};
pub use store::{Store, StoreError};
