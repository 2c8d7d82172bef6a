//! `[orders]`: deposits, polling, expiry, holds, the sale's upper bound, recovery.

use std::time::Duration;

use serde::Deserialize;

use super::{seconds_in, ConfigError, Fail};
use crate::money::Kopecks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DepositMode {
    /// Capture a confirmed hold at once.
    #[default]
    Auto,
    /// Leave holds for a manager to deposit.
    Manual,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawOrders {
    deposit: DepositMode,
    poll_first_secs: u64,
    poll_max_secs: u64,
    expiry_grace_secs: u64,
    hold_max_hours: u64,
    payment_page_template: Option<String>,
    max_amount: String,
    min_amount: String,
    recovery_tries: u64,
    busy_wait_secs: u64,
}

impl Default for RawOrders {
    fn default() -> Self {
        RawOrders {
            deposit: DepositMode::Auto,
            poll_first_secs: 3,
            poll_max_secs: 60,
            expiry_grace_secs: 120,
            hold_max_hours: 144,
            payment_page_template: None,
            max_amount: "1000000".into(),
            min_amount: "0.01".into(),
            recovery_tries: 5,
            busy_wait_secs: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OrdersConfig {
    pub deposit: DepositMode,
    pub poll_first: Duration,
    pub poll_max: Duration,
    pub expiry_grace: Duration,
    pub hold_max: Duration,
    pub payment_page_template: Option<String>,
    /// The largest amount one sale may have: a typo of extra zeros never reaches the bank.
    pub max_amount: Kopecks,
    /// The smallest: the installment product's floor (the bank's letter says which).
    pub min_amount: Kopecks,
    /// Passes of recovery at start before an interrupted order is set aside as NeedsAttention.
    pub recovery_tries: u32,
    /// How long a request waits for an order another task is working on before 409.
    pub busy_wait: Duration,
}

pub(super) fn check_orders(o: RawOrders, fail: &Fail) -> Result<OrdersConfig, ConfigError> {
    let poll_first = seconds_in("orders.poll_first_secs", o.poll_first_secs, 1..=300, fail)?;
    let poll_max = seconds_in("orders.poll_max_secs", o.poll_max_secs, 1..=3600, fail)?;
    if poll_max < poll_first {
        return Err(fail(
            "orders.poll_max_secs",
            format!(
                "found {}; allowed: at least orders.poll_first_secs ({})",
                o.poll_max_secs, o.poll_first_secs
            ),
        ));
    }
    let expiry_grace = seconds_in(
        "orders.expiry_grace_secs",
        o.expiry_grace_secs,
        0..=86_400,
        fail,
    )?;
    let hold_max =
        seconds_in("orders.hold_max_hours", o.hold_max_hours, 1..=168, fail).map(|d| d * 3600)?;
    // The sandbox's page is known: the daemon fills it in once the sandbox listens.
    let template = match o.payment_page_template {
        Some(t) if !t.contains("{orderId}") => {
            return Err(fail(
                "orders.payment_page_template",
                format!("found {t:?}; allowed: a URL containing {{orderId}}"),
            ))
        }
        other => other,
    };
    let max_amount = Kopecks::parse_amount(&o.max_amount).map_err(|e| {
        fail(
            "orders.max_amount",
            format!(
                "found {:?} ({e}); allowed: roubles as a string, such as \"1000000\"",
                o.max_amount
            ),
        )
    })?;
    let min_amount = Kopecks::parse_amount(&o.min_amount).map_err(|e| {
        fail(
            "orders.min_amount",
            format!(
                "found {:?} ({e}); allowed: roubles as a string, such as \"1000\"",
                o.min_amount
            ),
        )
    })?;
    if min_amount > max_amount {
        return Err(fail(
            "orders.min_amount",
            format!("found {min_amount}; allowed: at most orders.max_amount ({max_amount})"),
        ));
    }
    if !(1..=100).contains(&o.recovery_tries) {
        return Err(fail(
            "orders.recovery_tries",
            format!("found {}; allowed: 1 to 100", o.recovery_tries),
        ));
    }
    let busy_wait = seconds_in("orders.busy_wait_secs", o.busy_wait_secs, 1..=60, fail)?;
    Ok(OrdersConfig {
        busy_wait,
        max_amount,
        min_amount,
        recovery_tries: o.recovery_tries as u32,
        deposit: o.deposit,
        poll_first,
        poll_max,
        expiry_grace,
        hold_max,
        payment_page_template: template,
    })
}
