//! chasti: the till-side daemon for Sber's «Плати частями» (pay in installments).
//!
//! One module a concern: [`gateway`] speaks to the bank, [`sandbox`] is a faithful stand-in
//! for it, [`config`] reads the one config file, [`money`] keeps amounts in kopecks.

pub mod client;
pub mod config;
pub mod devices;
pub mod doctor;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod money;
pub mod moscow;
pub mod orders;
pub mod sandbox;
pub mod secret;
pub mod serve;
