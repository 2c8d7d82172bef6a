//! The daemon's HTTP side: the till API (with its pages) and the bank's callback route. The
//! server they run on is `crate::server` (generic hyper and TLS plumbing, shared with the
//! sandbox).

pub mod api;
pub mod callback;
pub mod sms_report;
