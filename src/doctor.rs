//! `chasti doctor`: checks a till host's set-up, each check saying ok or what to do.

use std::io::{Read, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};
use x509_cert::der::Decode;

use crate::config::{Config, Environment};
use crate::gateway::tls::bundled_certificates;
use crate::gateway::{Credentials, ErrorCode, GatewayClient, GatewayError, OrderRef};

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
}

fn check(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
    Check {
        name,
        verdict,
        detail: detail.into(),
    }
}

/// How long before a CA expires doctor starts warning.
pub const CA_WARNING_DAYS: i64 = 90;

/// The bundled CAs and when they expire.
pub fn certificates(now: DateTime<Utc>) -> Vec<Check> {
    let certs = match bundled_certificates() {
        Ok(c) => c,
        Err(e) => return vec![check("certificates", Verdict::Fail, e)],
    };
    let mut out = Vec::new();
    for (name, der) in certs {
        let parsed = match x509_cert::Certificate::from_der(der.as_ref()) {
            Ok(c) => c,
            Err(e) => {
                out.push(check(
                    "certificates",
                    Verdict::Fail,
                    format!("{name}: unreadable ({e})"),
                ));
                continue;
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
                format!(
                    "{name} expired on {}: update chasti to a version with the new CA",
                    not_after.date_naive()
                ),
            )
        } else if days < CA_WARNING_DAYS {
            (Verdict::Warn, format!("{name} expires on {} (in {days} days): update chasti before then, or add the new CA to gateway.extra_ca_files", not_after.date_naive()))
        } else {
            (
                Verdict::Ok,
                format!(
                    "{name} valid until {} ({days} days)",
                    not_after.date_naive()
                ),
            )
        };
        out.push(check("certificates", verdict, detail));
    }
    out
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
        None => check(
            "clock",
            Verdict::Warn,
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

/// The bank must be able to call back, and callbacks should be signed (must, for `go_live`).
pub fn callback(config: &Config, go_live: bool) -> Vec<Check> {
    let c = &config.callback;
    let mut out = Vec::new();
    let url = format!("http://{}{}", c.listen, c.path);
    match std::net::TcpListener::bind(c.listen) {
        Ok(_) => out.push(check("callback", Verdict::Ok, format!("{url} is free for chasti serve; in the merchant cabinet (Settings → Main → Callback) point the callback at your public HTTPS address that proxies to it"))),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => out.push(check("callback", Verdict::Ok, format!("{url} is in use (chasti serve is running?); the bank's callback must reach it through your proxy"))),
        Err(e) => out.push(check("callback", Verdict::Fail, format!("cannot listen on {}: {e}; set callback.listen", c.listen))),
    }
    if c.unsigned() {
        let verdict = if go_live {
            Verdict::Fail
        } else {
            Verdict::Warn
        };
        let allowed = if c.allow_unsigned {
            " (callback.allow_unsigned = true)"
        } else {
            ""
        };
        out.push(check("callback key", verdict, format!("no callback.key or callback.public_key_file: unsigned callbacks are accepted{allowed} (each only prompts a status call); set the key from the merchant cabinet")));
    } else {
        out.push(check(
            "callback key",
            Verdict::Ok,
            "callbacks must be signed",
        ));
    }
    out
}

/// The order store's folder: there or creatable, writable by whoever runs this, and either free
/// or held by the running daemon.
pub fn store(config: &Config) -> Check {
    let folder = &config.store.path;
    let existing = if folder.exists() {
        folder.clone()
    } else {
        match folder.ancestors().skip(1).find(|a| a.exists()) {
            Some(parent) => parent.to_path_buf(),
            None => {
                return check(
                    "store",
                    Verdict::Fail,
                    format!(
                        "{}: no part of the path exists; set store.path",
                        folder.display()
                    ),
                )
            }
        }
    };
    let probe = existing.join(format!(".chasti-doctor-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"probe") {
        return check(
            "store",
            Verdict::Fail,
            format!(
                "{} is not writable by this user ({e}); the service user must own it (chown -R chasti: {})",
                existing.display(),
                existing.display()
            ),
        );
    }
    let _ = std::fs::remove_file(&probe);
    if !folder.exists() {
        return check(
            "store",
            Verdict::Ok,
            format!("{} will be created at the first start", folder.display()),
        );
    }
    match crate::orders::Store::check_openable(folder) {
        Ok(()) => check(
            "store",
            Verdict::Ok,
            format!("{} opens and is writable", folder.display()),
        ),
        Err(e) if e.to_string().contains("only one chasti") => check(
            "store",
            Verdict::Ok,
            format!("{e} (fine when that is this till's running daemon)"),
        ),
        Err(e) => check("store", Verdict::Fail, e.to_string()),
    }
}

/// The till API's tokens: present, and not the shipped demo ones.
pub fn api_tokens(config: &Config) -> Check {
    let tokens = &config.api.tokens;
    if tokens.is_empty() {
        return check(
            "api tokens",
            Verdict::Warn,
            "no [[api.tokens]]: every till API call will be refused (401)",
        );
    }
    if let Some(t) = tokens
        .iter()
        .find(|t| t.token.expose().contains("change-me"))
    {
        return check("api tokens", Verdict::Warn, format!("{:?} still has the shipped demo token: set a random one (e.g. openssl rand -hex 24) or token_env", t.name));
    }
    let managers = tokens
        .iter()
        .filter(|t| t.role == crate::config::Role::Manager)
        .count();
    check(
        "api tokens",
        Verdict::Ok,
        format!("{} token(s), {managers} manager", tokens.len()),
    )
}

/// Each configured device answers.
pub fn devices(config: &Config) -> Vec<Check> {
    use crate::devices::link::{self, Transport};
    let mut out = Vec::new();
    for p in &config.devices.printers {
        let transport = Transport::of(&p.port.path);
        let opened = link::open(&p.port, Duration::from_millis(500));
        let verdict = match opened {
            Err(e) => {
                let hint = match transport {
                    Transport::Serial => "check the cable, the path (ls -l /dev/serial/by-id) and that the user is in the dialout group",
                    Transport::UsbPrinter => "check the cable, the path (ls -l /dev/usb/lp*) and that the user is in the lp group",
                    Transport::Network(_) => "check the printer's IP address (its self-test page shows it), power and the network",
                };
                check("printer", Verdict::Fail, format!("{}: cannot open {} ({e}); {hint}", p.name, p.port.path.display()))
            }
            Ok(port) if !port.reads_answers() => check("printer", Verdict::Warn, format!("{}: {} opens; the USB printer class gives no status here, so paper-out is not seen before a slip (a serial or network connection reports it)", p.name, p.port.path.display())),
            Ok(mut port) if p.profile.status => {
                let mut answer = [0u8; 1];
                let asked = port.write_all(&[0x10, 0x04, 4]).and_then(|_| port.read_exact(&mut answer));
                match asked {
                    Ok(()) if answer[0] & 0x60 == 0x60 => check("printer", Verdict::Fail, format!("{}: paper out", p.name)),
                    Ok(()) if answer[0] & 0x0c == 0x0c => check("printer", Verdict::Warn, format!("{}: paper near its end", p.name)),
                    Ok(()) => check("printer", Verdict::Ok, format!("{} ({}) answers on {}", p.name, p.profile.model, p.port.path.display())),
                    Err(e) => check("printer", Verdict::Fail, format!("{}: no answer to a status query ({e}); check power, baud ({}) and the profile", p.name, p.port.baud)),
                }
            }
            Ok(_) => check("printer", Verdict::Ok, format!("{}: port {} opens (this model does not answer status queries)", p.name, p.port.path.display())),
        };
        out.push(verdict);
    }
    for d in &config.devices.displays {
        match crate::devices::link::open(&d.port, Duration::from_millis(500)) {
            Ok(_) => out.push(check(
                "display",
                Verdict::Ok,
                format!("{}: port {} opens", d.name, d.port.path.display()),
            )),
            Err(e) => out.push(check(
                "display",
                Verdict::Fail,
                format!("{}: cannot open {} ({e})", d.name, d.port.path.display()),
            )),
        }
    }
    if out.is_empty() {
        out.push(check("devices", Verdict::Warn, "no [[printer]] or [[display]] configured: the payment link is shown only through the API and pages"));
    }
    out
}
