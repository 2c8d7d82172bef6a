//! The bank's side: the bundled CAs, the environment and host, the credentials, the clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use x509_cert::der::Decode;

use super::{check, risk, Check, Verdict};
use crate::config::{environment_of_host, Config, Environment};
use crate::config::{SANDBOX_PASSWORD, SANDBOX_USER_NAME};
use crate::gateway::tls::bundled_certificates;
use crate::gateway::{Credentials, ErrorCode, GatewayClient, GatewayError, OrderRef};

/// How long before a CA expires doctor starts warning.
pub const CA_WARNING_DAYS: i64 = 90;

/// The bundled CAs and when they expire.
pub fn certificates(now: DateTime<Utc>) -> Vec<Check> {
    let certs = match bundled_certificates() {
        Ok(c) => c,
        Err(e) => return vec![check("certificates", Verdict::Fail, e.to_string())],
    };
    certs
        .iter()
        .map(|(name, der)| {
            expiry(
                name,
                der.as_ref(),
                now,
                "update chasti to a version with the new CA, or add the renewed CA to gateway.extra_ca_files (see «Going live»)",
            )
        })
        .collect()
}

/// The CAs the config adds (`gateway.extra_ca_files`, `gateway.extra_ca_dirs`): the same
/// expiry warnings as the bundled ones.
pub fn configured_certificates(config: &Config, now: DateTime<Utc>) -> Vec<Check> {
    match crate::gateway::tls::configured_certificates(&config.gateway.trust) {
        Ok(certs) => certs
            .iter()
            .map(|(file, der)| {
                expiry(
                    file,
                    der.as_ref(),
                    now,
                    "put the renewed CA in that file (or beside it in the folder) and restart chasti",
                )
            })
            .collect(),
        Err(e) => vec![check("certificates", Verdict::Fail, e.to_string())],
    }
}

/// One CA certificate: ok, a warning within [`CA_WARNING_DAYS`] of its end, a failure after.
fn expiry(name: &str, der: &[u8], now: DateTime<Utc>, renew: &str) -> Check {
    let parsed = match x509_cert::Certificate::from_der(der) {
        Ok(c) => c,
        Err(e) => {
            return check(
                "certificates",
                Verdict::Fail,
                format!("{name}: unreadable ({e})"),
            )
        }
    };
    let not_after: DateTime<Utc> = parsed
        .tbs_certificate
        .validity
        .not_after
        .to_system_time()
        .into();
    let days = (not_after - now).num_days();
    let (verdict, detail) = if days < 0 {
        (
            Verdict::Fail,
            format!("{name} expired on {}: {renew}", not_after.date_naive()),
        )
    } else if days < CA_WARNING_DAYS {
        (
            Verdict::Warn,
            format!(
                "{name} expires on {} (in {days} days): {renew}",
                not_after.date_naive()
            ),
        )
    } else {
        (
            Verdict::Ok,
            format!(
                "{name} valid until {} ({days} days)",
                not_after.date_naive()
            ),
        )
    };
    check("certificates", verdict, detail)
}

/// A harmless status call: an unknown order number must come back as errorCode 6, which
/// proves TLS, the host and the credentials at once.
pub async fn gateway(config: &Config, now: DateTime<Utc>) -> Vec<Check> {
    let client = match GatewayClient::new(config.gateway.client_settings()) {
        Ok(c) => c,
        Err(e) => return vec![check("gateway", Verdict::Fail, e.to_string())],
    };
    let host = config
        .gateway
        .base_url
        .host_str()
        .unwrap_or("?")
        .to_string();
    let how = if config.gateway.base_url.scheme() == "https" {
        "over verified TLS"
    } else {
        "over plain HTTP (loopback only)"
    };
    let probe = OrderRef::OrderNumber(format!("chasti-doctor-{}", now.timestamp()));
    let mut out = Vec::new();
    match client.order_status(&probe).await {
        // A made-up order number: the bank says errorCode 6. A reply without a status and
        // without an error is no gateway's: the credentials were not checked.
        Ok(report) if report.order_status.is_none() => {
            out.push(check(
                "gateway",
                Verdict::Fail,
                format!("{host} answered a status call with neither an order status nor an error code: it is not the bank's gateway; check gateway.base_url"),
            ));
        }
        Err(GatewayError::Refused {
            code: ErrorCode::UnknownOrder,
            ..
        })
        | Ok(_) => {
            out.push(check(
                "gateway",
                Verdict::Ok,
                format!("{host} answers {how}"),
            ));
            out.push(check(
                "credentials",
                Verdict::Ok,
                "accepted (a status call for an unknown order gave errorCode 6)",
            ));
        }
        Err(GatewayError::Refused {
            code: ErrorCode::WrongValueOrAccessDenied,
            message,
            ..
        }) => {
            out.push(check(
                "gateway",
                Verdict::Ok,
                format!("{host} answers {how}"),
            ));
            let which = match config.gateway.environment {
                Environment::Test => "these look like production credentials on the test host",
                Environment::Production => {
                    "these look like test credentials on the production host"
                }
                Environment::Sandbox => "the sandbox does not know these credentials",
            };
            let who = match &config.gateway.credentials {
                Credentials::Password { user_name, .. } if !user_name.ends_with("-api") => {
                    format!("; the API login usually ends in -api, {user_name:?} does not")
                }
                _ => String::new(),
            };
            out.push(check("credentials", Verdict::Fail, format!("the bank says {message:?}: {which}, or the password is wrong or must be changed in the merchant cabinet{who}")));
        }
        Err(e @ GatewayError::Tls { .. }) => {
            out.push(check("gateway", Verdict::Fail, e.to_string()))
        }
        Err(e) => out.push(check(
            "gateway",
            Verdict::Fail,
            format!("{e}; check the network, gateway.environment and gateway.base_url"),
        )),
    }
    out
}

/// Which money this moves: the sandbox's, the bank's test host's or real; the host matches the
/// environment; the sandbox's credentials are not used against the bank.
pub fn environment(config: &Config) -> Vec<Check> {
    let g = &config.gateway;
    let host = g.base_url.host_str().unwrap_or("?");
    let mut out = Vec::new();
    match (g.environment, environment_of_host(host)) {
        (Environment::Sandbox, _) => out.push(risk(
            "environment",
            "the embedded sandbox: no money moves; set gateway.environment = \"test\" with the test credentials from the bank's welcome letter, then \"production\"",
        )),
        (configured, Some(actual)) if configured != actual => out.push(check(
            "environment",
            Verdict::Fail,
            format!("gateway.environment is {configured:?} but gateway.base_url is the bank's {actual:?} host {host}: the bank refuses credentials on the other host (errorCode 5); make them agree"),
        )),
        (configured, Some(_)) => out.push(check(
            "environment",
            Verdict::Ok,
            format!("{configured:?}: {host}"),
        )),
        (configured, None) => out.push(risk(
            "environment",
            format!("gateway.base_url {host} is not one of the bank's {configured:?} hosts; remove base_url to use the bank's own"),
        )),
    }
    if g.environment != Environment::Sandbox {
        match &g.credentials {
            Credentials::Password { user_name, password }
                if user_name == SANDBOX_USER_NAME || password.expose() == SANDBOX_PASSWORD =>
            {
                out.push(check(
                    "credentials",
                    Verdict::Fail,
                    "gateway.user_name or password is still the sandbox's: set the API login and password from the bank's welcome letter (or CHASTI_GATEWAY_PASSWORD)",
                ))
            }
            Credentials::Password { user_name, .. } if !user_name.ends_with("-api") => out.push(risk(
                "credentials",
                format!("the API login usually ends in -api; {user_name:?} does not (the merchant cabinet's login is a different one)"),
            )),
            _ => {}
        }
    }
    out
}

/// The clock, against the gateway's `Date` header: certificate checks, the Moscow day of a
/// reversal and order lifetimes all need it right.
pub async fn clock(config: &Config, now: DateTime<Utc>) -> Check {
    if now.timestamp() < 1_735_689_600 {
        return check(
            "clock",
            Verdict::Fail,
            format!("the clock says {now}, before 2025: set the time (NTP)"),
        );
    }
    let tls = match crate::gateway::tls::client_config(&config.gateway.trust) {
        Ok(t) => t,
        Err(e) => return check("clock", Verdict::Warn, format!("cannot compare: {e}")),
    };
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build();
    let Ok(http) = http else {
        return check("clock", Verdict::Warn, "cannot compare with the gateway");
    };
    let date = match http.get(config.gateway.base_url.clone()).send().await {
        Ok(r) => r
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| DateTime::parse_from_rfc2822(v).ok()),
        Err(_) => None,
    };
    match date {
        None => risk(
            "clock",
            format!(
                "the host says {}; the gateway sent no Date to compare with",
                now.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        ),
        Some(theirs) => {
            let skew = (now - theirs.with_timezone(&Utc)).num_seconds().abs();
            if skew > 120 {
                check("clock", Verdict::Fail, format!("the host's clock is {skew} s off the gateway's: set up NTP (timedatectl set-ntp true)"))
            } else {
                check(
                    "clock",
                    Verdict::Ok,
                    format!("within {skew} s of the gateway"),
                )
            }
        }
    }
}

/// `gateway.extra_params` on the ecom host: it refuses a field it does not know, so a name
/// from the legacy host's letter fails every sale there.
pub fn extra_params(config: &Config) -> Option<Check> {
    let g = &config.gateway;
    if g.extra_params.is_empty() {
        return None;
    }
    let unknown: Vec<&str> = g
        .extra_params
        .keys()
        .map(String::as_str)
        .filter(|k| {
            g.dialect == crate::gateway::Dialect::Ecom
                && !crate::gateway::ECOM_REGISTER_FIELDS.contains(k)
        })
        .collect();
    Some(if unknown.is_empty() {
        check(
            "extra-params",
            Verdict::Ok,
            format!(
                "register.do also sends {}",
                g.extra_params
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else {
        check(
            "extra-params",
            Verdict::Fail,
            format!(
                "the ecom gateway refuses fields it does not know: {}; it takes {} (merchant-specific values go in gateway.json_params)",
                unknown.join(", "),
                crate::gateway::ECOM_REGISTER_FIELDS.join(", ")
            ),
        )
    })
}
