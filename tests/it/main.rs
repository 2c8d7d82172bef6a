//! Every integration test, in one binary: on a 2-core machine the link step dominates, and one
//! binary links once. Each module tests one part against real peers on 127.0.0.1 (the sandbox
//! gateway, a SQLite store in a temporary directory, pseudo-terminals, headless Chromium).

mod actions;
mod api;
mod callbacks;
mod cart;
mod cli;
mod cli_setup;
mod cli_words;
mod common;
mod crash;
mod daemon;
mod day_close;
mod devices;
mod doctor;
mod doctor_fiscal;
mod doctor_secrets;
mod fiscal_atol;
mod fiscal_bank;
mod fiscal_pos;
mod gateway_client;
mod hostile;
mod no_panics;
mod orders;
/// The same orders tests over the bank's ecom gateway: loaded twice on purpose, the module's
/// path picks the dialect.
#[allow(clippy::duplicate_mod)]
#[path = "orders.rs"]
mod orders_ecom;
mod package;
mod pages;
mod power_cut;
mod proxy;
mod records;
mod replicate;
mod replicate_crash;
mod replicate_hq;
mod sandbox;
mod screens;
mod serve_start;
mod sessions;
mod shop_day;
mod shop_records;
mod sms;
mod sms_kannel;
mod store_scale;
mod terminal;
mod tls;
mod transports;
mod truth;
