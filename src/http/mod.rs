//! The daemon's HTTP side: the till API and the bank's callback route.

pub mod api;
pub mod callback;
