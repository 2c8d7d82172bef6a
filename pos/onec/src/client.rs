//! chasti's till API as the add-in calls it: blocking HTTP (1C calls a driver on its own
//! thread and waits), a bearer token per call, chasti's Russian error messages kept for the
//! cashier. ureq rather than reqwest: no async runtime inside 1C's process.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::DriverError;

/// How long a call that does not wait for a customer may take.
const QUICK: Duration = Duration::from_secs(30);
/// The most of a reply read (a day's close of a busy shop is the largest).
const MAX_REPLY: u64 = 4 * 1024 * 1024;

/// The order as chasti shows it (the fields the driver reads).
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: String,
    pub order_number: String,
    pub amount: u64,
    pub state: State,
}

#[derive(Debug, Clone, Deserialize)]
pub struct State {
    pub name: String,
    #[serde(default)]
    pub why_text: Option<String>,
}

/// What `/api/v1/pay` and `/api/v1/return` answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TerminalReply {
    pub outcome: String,
    pub order_number: String,
    pub slip_text: String,
    pub order: Order,
}

#[derive(Debug, Clone, Serialize)]
pub struct PayRequest {
    pub amount: String,
    pub idempotency_key: String,
    pub wait_secs: u64,
    pub slip_width: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReturnRequest {
    pub order: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    pub idempotency_key: String,
    pub slip_width: u8,
    /// `reversal` when only a reversal will do (a cancel); chasti chooses when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct CancelReply {
    order: Order,
}

/// The day's close, as the driver prints it.
#[derive(Debug, Clone, Deserialize)]
pub struct DayClose {
    pub report_text: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error_type: String,
    message: String,
}

#[derive(Debug, Deserialize)]
pub struct Health {
    pub status: String,
}

/// A connection to one chasti.
pub struct Chasti {
    agent: ureq::Agent,
    base: String,
}

impl Chasti {
    /// `base` is `http://host:port` (or https, trusting `roots` when given, else the public
    /// roots).
    pub fn new(base: &str, roots: Option<&[u8]>) -> Result<Chasti, DriverError> {
        let base = base.trim().trim_end_matches('/').to_string();
        let setting = |problem: String| DriverError::Setting {
            name: "ApiUrl",
            problem,
        };
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.len() < 10 {
            return Err(setting(format!(
                "адрес «{}» не подходит: нужен http://адрес:порт службы chasti, например \
                 http://127.0.0.1:8080",
                base.chars().take(80).collect::<String>()
            )));
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(QUICK))
            // The till's own daemon is never reached through a proxy from the environment.
            .proxy(None)
            .max_redirects(0);
        if let Some(pem) = roots {
            let certs: Vec<_> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                return Err(DriverError::Setting {
                    name: "CertFile",
                    problem: "в файле нет сертификатов PEM".into(),
                });
            }
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(Chasti {
            agent: config.build().into(),
            base,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One call: a 2xx reply read as `T`, anything else as chasti's error.
    fn call<T: DeserializeOwned>(
        &self,
        what: &'static str,
        request: Request<'_>,
    ) -> Result<(u16, T), DriverError> {
        let url = format!("{}{}", self.base, request.path);
        let unreachable = |source: ureq::Error| DriverError::Unreachable {
            url: self.base.clone(),
            source: Box::new(source),
        };
        let mut reply = match request.body {
            Some(body) => {
                let mut call = self.agent.post(&url);
                if let Some(token) = request.token {
                    call = call.header("Authorization", format!("Bearer {token}"));
                }
                call.config()
                    .timeout_global(Some(request.timeout))
                    .build()
                    .send_json(body)
            }
            None => {
                let mut call = self.agent.get(&url);
                if let Some(token) = request.token {
                    call = call.header("Authorization", format!("Bearer {token}"));
                }
                call.config()
                    .timeout_global(Some(request.timeout))
                    .build()
                    .call()
            }
        }
        .map_err(unreachable)?;
        let status = reply.status().as_u16();
        let text = reply
            .body_mut()
            .with_config()
            .limit(MAX_REPLY)
            .read_to_string()
            .map_err(unreachable)?;
        if (200..300).contains(&status) {
            let value = serde_json::from_str(&text).map_err(|e| DriverError::Reply {
                what,
                problem: e.to_string(),
            })?;
            return Ok((status, value));
        }
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => DriverError::Refused {
                status,
                error_type: e.error_type,
                message: e.message,
            },
            Err(_) => DriverError::Refused {
                status,
                error_type: "http".into(),
                message: format!("chasti ответил HTTP {status} без объяснения."),
            },
        })
    }

    pub fn health(&self) -> Result<Health, DriverError> {
        self.call("health", Request::get("/api/v1/health", None))
            .map(|(_, h)| h)
            .or_else(|e| match e {
                // 503 with a body: stopping.
                DriverError::Refused { status: 503, .. } => Ok(Health {
                    status: "stopping".into(),
                }),
                e => Err(e),
            })
    }

    /// Whether `token` is one chasti knows (a list of one order is the cheapest call).
    pub fn check_token(&self, token: &str) -> Result<(), DriverError> {
        self.call::<serde_json::Value>(
            "orders",
            Request::get("/api/v1/orders?limit=1", Some(token)),
        )
        .map(|_| ())
    }

    /// `/api/v1/pay`: 200 with an outcome, or 202 while the customer has not paid.
    pub fn pay(&self, token: &str, body: &PayRequest) -> Result<(u16, TerminalReply), DriverError> {
        let body = serde_json::to_value(body).unwrap_or_default();
        let timeout = Duration::from_secs(body["wait_secs"].as_u64().unwrap_or(60)) + QUICK;
        self.call("pay", Request::post("/api/v1/pay", token, &body, timeout))
    }

    pub fn return_payment(
        &self,
        token: &str,
        body: &ReturnRequest,
    ) -> Result<TerminalReply, DriverError> {
        let body = serde_json::to_value(body).unwrap_or_default();
        self.call(
            "return",
            Request::post("/api/v1/return", token, &body, QUICK),
        )
        .map(|(_, r)| r)
    }

    pub fn order(&self, token: &str, order: &str) -> Result<Order, DriverError> {
        let path = format!("/api/v1/orders/{}", path_segment(order));
        self.call("order", Request::get(&path, Some(token)))
            .map(|(_, o)| o)
    }

    pub fn cancel(&self, token: &str, order: &str) -> Result<Order, DriverError> {
        let path = format!("/api/v1/orders/{}/cancel", path_segment(order));
        let body = serde_json::json!({});
        self.call::<CancelReply>("cancel", Request::post(&path, token, &body, QUICK))
            .map(|(_, r)| r.order)
    }

    /// Today's close (chasti counts the Moscow day); it asks the bank about every order.
    pub fn close_today(&self, token: &str) -> Result<DayClose, DriverError> {
        let body = serde_json::json!({});
        self.call(
            "close",
            Request::post("/api/v1/days/today/close", token, &body, QUICK * 4),
        )
        .map(|(_, c)| c)
    }
}

struct Request<'a> {
    path: &'a str,
    token: Option<&'a str>,
    body: Option<&'a serde_json::Value>,
    timeout: Duration,
}

impl<'a> Request<'a> {
    fn get(path: &'a str, token: Option<&'a str>) -> Request<'a> {
        Request {
            path,
            token,
            body: None,
            timeout: QUICK,
        }
    }

    fn post(
        path: &'a str,
        token: &'a str,
        body: &'a serde_json::Value,
        timeout: Duration,
    ) -> Request<'a> {
        Request {
            path,
            token: Some(token),
            body: Some(body),
            timeout,
        }
    }
}

/// An order reference as one URL path segment: an order number is letters, digits and `-`;
/// anything else is percent-encoded rather than trusted.
fn path_segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
