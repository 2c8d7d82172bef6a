//! The daemon's HTTP side: the till API (with its pages), the bank's callback route, and the
//! server both run on.

pub mod api;
pub mod callback;
pub mod server;
pub mod sms_report;
