//! chasti: the till-side daemon for Sber's «Плати частями» (pay in installments).
//!
//! The flow, one module a step:
//!
//! - [`daemon`] wires everything from the [`config`] and runs it until a shutdown signal;
//! - [`http`] is the till API (with its pages) and the bank's callback route, whose
//!   [`callbacks`] intake turns what the bank says into bounded looks;
//! - [`orders`] is the domain: the state machine, reconciliation, balances (pure);
//! - [`engine`] is the flow against the bank: sale, follow-up, actions, recovery, polling;
//! - [`store`] keeps every order durably on the till host (SQLite);
//! - [`gateway`] speaks to the bank (over TLS that trusts the НУЦ Минцифры CAs), and
//!   [`sandbox`] is a faithful stand-in for it;
//! - [`devices`] prints the payment QR and drives the customer display;
//! - [`domain`] and [`money`] are the shop's words as types that parse; [`moscow`] is the
//!   bank's clock; [`secret`] keeps passwords out of logs; [`metrics`] counts;
//! - [`doctor`] checks a till host's set-up.

pub mod callbacks;
pub mod config;
pub mod csv;
pub mod daemon;
pub mod devices;
pub mod doctor;
pub mod domain;
pub mod engine;
pub mod fiscal;
pub mod gateway;
pub mod html;
pub mod http;
pub mod metrics;
pub mod money;
pub mod moscow;
pub mod orders;
pub mod passwords;
pub mod replicate;
pub mod sandbox;
pub mod secret;
pub mod server;
pub mod sms;
pub mod store;
