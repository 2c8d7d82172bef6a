//! `chasti doctor`: checks a till host's set-up, each check saying ok or what to do.
//!
//! `bank`: the CAs, the gateway host and credentials, the environment, the clock;
//! `callback`: the callback listener, its signing and the public address through the proxy;
//! `host`: the order store, the API tokens, the devices, the SMS provider, who runs the check.
//! With `--go-live`, every warning that matters for real money is a failure.

mod bank;
mod callback;
mod fiscal;
mod host;
mod replicate;
mod secrets;

use chrono::{DateTime, Utc};

use crate::config::Config;

pub use bank::{
    certificates, clock, configured_certificates, environment, extra_params, gateway,
    CA_WARNING_DAYS,
};
pub use callback::{callback, public_url};
pub use fiscal::fiscal;
pub use host::{api_tokens, devices, restore_findings, runner, sms, store, store_for_owner};
pub use replicate::replicate;
pub use secrets::secrets_file;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// A warning that must not go into a shop taking real money: `--go-live` fails it.
    pub blocks_go_live: bool,
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict,
        detail: detail.into(),
        blocks_go_live: false,
    }
}

/// A warning today, a failure for `--go-live`.
fn risk(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        blocks_go_live: true,
        ..check(name, Verdict::Warn, detail)
    }
}

/// Every check, in the order an integrator fixes them. The sandbox (for
/// `environment = "sandbox"`) must be running for the gateway checks.
pub async fn run(config: &Config, go_live: bool, now: DateTime<Utc>) -> Vec<Check> {
    let mut checks = vec![runner()];
    checks.extend(certificates(now));
    checks.extend(configured_certificates(config, now));
    checks.extend(environment(config));
    checks.extend(extra_params(config));
    checks.extend(gateway(config, now).await);
    checks.extend(devices(config));
    checks.extend(callback(config));
    checks.push(public_url(config).await);
    checks.push(store(config));
    checks.push(restore_findings(config));
    checks.push(api_tokens(config));
    checks.push(sms(config).await);
    checks.extend(fiscal(config, go_live, now).await);
    checks.extend(replicate(config, now).await);
    checks.push(clock(config, now).await);
    if go_live {
        for_go_live(&mut checks);
    }
    checks
}

/// `--go-live`: what only warns otherwise fails.
pub fn for_go_live(checks: &mut [Check]) {
    for c in checks.iter_mut() {
        if c.verdict == Verdict::Warn && c.blocks_go_live {
            c.verdict = Verdict::Fail;
        }
    }
}
