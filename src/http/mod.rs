//! The daemon's HTTP side. Today: the bank's callback route.

pub mod callback;
