//! Sends the bank's callbacks: GET with query parameters (or POST form), signed with
//! HMAC-SHA256 when a key is set, tried up to three times like the bank, and subject to the
//! callback faults (dropped, duplicated, late).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::bank::Notice;
use crate::config::CallbackMethod;
use crate::gateway::checksum::hmac_sha256_checksum;
use crate::secret::Secret;

/// Where and how callbacks go.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    pub url: Option<Url>,
    pub key: Option<Secret>,
    pub method: CallbackMethod,
    /// Pauses between tries; its length + 1 is the number of tries (the bank: 3 tries,
    /// some 30-60 s apart).
    pub retry_delays: Vec<Duration>,
    /// CAs trusted for an https:// callback URL beside the system's (a test CA, a shop's own).
    pub extra_ca_files: Vec<std::path::PathBuf>,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            url: None,
            key: None,
            method: CallbackMethod::Get,
            retry_delays: vec![Duration::from_secs(30), Duration::from_secs(60)],
            extra_ca_files: Vec::new(),
        }
    }
}

/// Callback faults, set through the control API or the handle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackFaults {
    /// Never send the next N callbacks (lost in transit).
    #[serde(default)]
    pub drop_next: u32,
    /// Deliver every callback twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Hold every callback back this long before its first try (reordering).
    #[serde(default)]
    pub delay_ms: u64,
    /// Keep every callback queued until `release_held` (the bank's queue is stuck: the
    /// callback comes after, say, Moscow midnight, exactly when the test says).
    #[serde(default)]
    pub hold: bool,
}

/// One delivery attempt, for tests to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackDelivery {
    pub order_number: String,
    pub operation: String,
    pub status: u8,
    pub attempt: u32,
    /// `delivered`, `dropped (fault)`, `no callback URL`, `HTTP 500`, or the connection error.
    pub outcome: String,
}

#[derive(Clone)]
pub struct CallbackSender {
    /// None only if the HTTP client could not be built; every delivery then says why.
    http: Option<reqwest::Client>,
    settings: Arc<Mutex<CallbackSettings>>,
    faults: Arc<Mutex<CallbackFaults>>,
    log: Arc<Mutex<Vec<CallbackDelivery>>>,
    held: Arc<Mutex<Vec<Notice>>>,
}

impl CallbackSender {
    pub fn new(settings: CallbackSettings) -> CallbackSender {
        // Callbacks may go to an https:// merchant URL with a public certificate.
        let trust = crate::gateway::tls::TrustSettings {
            use_os_roots: true,
            extra_ca_files: settings.extra_ca_files.clone(),
            ..Default::default()
        };
        let http = crate::gateway::tls::client_config(&trust)
            .map_err(|e| e.to_string())
            .and_then(|tls| {
                reqwest::Client::builder()
                    .tls_backend_preconfigured(tls)
                    .timeout(Duration::from_secs(10))
                    .no_proxy()
                    .build()
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| tracing::error!(error = %e, "sandbox callback client cannot be built"))
            .ok();
        CallbackSender {
            http,
            settings: Arc::new(Mutex::new(settings)),
            faults: Arc::new(Mutex::new(CallbackFaults::default())),
            log: Arc::new(Mutex::new(Vec::new())),
            held: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn set_url(&self, url: Option<Url>) {
        lock(&self.settings).url = url;
    }

    pub fn set_method(&self, method: CallbackMethod) {
        lock(&self.settings).method = method;
    }

    pub fn set_key(&self, key: Option<Secret>) {
        lock(&self.settings).key = key;
    }

    pub fn set_retry_delays(&self, delays: Vec<Duration>) {
        lock(&self.settings).retry_delays = delays;
    }

    pub fn set_faults(&self, faults: CallbackFaults) {
        *lock(&self.faults) = faults;
    }

    pub fn faults(&self) -> CallbackFaults {
        lock(&self.faults).clone()
    }

    pub fn log(&self) -> Vec<CallbackDelivery> {
        lock(&self.log).clone()
    }

    /// The parameters of a callback, signed when a key is set.
    pub fn params(notice: &Notice, key: Option<&Secret>) -> Vec<(String, String)> {
        let mut params = vec![
            ("mdOrder".to_string(), notice.md_order.clone()),
            ("orderNumber".to_string(), notice.order_number.clone()),
            ("operation".to_string(), notice.operation.to_string()),
            ("status".to_string(), notice.status.to_string()),
        ];
        if let Some(amount) = notice.amount {
            params.push(("amount".to_string(), amount.get().to_string()));
        }
        if let Some(key) = key {
            let sum = hmac_sha256_checksum(
                key.expose(),
                params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            params.push(("checksum".to_string(), sum));
        }
        params
    }

    /// Sends the notices in the background, in order of arrival unless a delay reorders them.
    pub fn dispatch(&self, notices: Vec<Notice>) {
        for notice in notices {
            self.dispatch_one(notice);
        }
    }

    fn dispatch_one(&self, notice: Notice) {
        let settings = lock(&self.settings).clone();
        let faults = {
            let mut f = lock(&self.faults);
            let now = f.clone();
            if f.drop_next > 0 {
                f.drop_next -= 1;
            }
            now
        };
        let Some(target) = target_of(&notice, &settings) else {
            self.note(&notice, 0, "no callback URL".into());
            return;
        };
        if faults.drop_next > 0 {
            self.note(&notice, 0, "dropped (fault)".into());
            return;
        }
        if faults.hold {
            self.note(&notice, 0, "held (fault)".into());
            lock(&self.held).push(notice);
            return;
        }
        self.send(notice, target, settings, faults);
    }

    /// Sends the callbacks kept by the `hold` fault, in the order they were made; returns how
    /// many. Later callbacks are held again while the fault stays set.
    pub fn release_held(&self) -> usize {
        let held = std::mem::take(&mut *lock(&self.held));
        let settings = lock(&self.settings).clone();
        let faults = CallbackFaults {
            hold: false,
            ..self.faults()
        };
        let count = held.len();
        for notice in held {
            match target_of(&notice, &settings) {
                Some(target) => self.send(notice, target, settings.clone(), faults.clone()),
                None => self.note(&notice, 0, "no callback URL".into()),
            }
        }
        count
    }

    fn send(
        &self,
        notice: Notice,
        target: Url,
        settings: CallbackSettings,
        faults: CallbackFaults,
    ) {
        // ecom callbacks carry no checksum.
        let key = match settings.method {
            CallbackMethod::Json => None,
            _ => settings.key.as_ref(),
        };
        let params = CallbackSender::params(&notice, key);
        let sender = self.clone();
        tokio::spawn(async move {
            if faults.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
            }
            let copies = if faults.duplicate { 2 } else { 1 };
            for _ in 0..copies {
                sender.deliver(&notice, &target, &params, &settings).await;
            }
        });
    }

    async fn deliver(
        &self,
        notice: &Notice,
        target: &Url,
        params: &[(String, String)],
        settings: &CallbackSettings,
    ) {
        let tries = settings.retry_delays.len() as u32 + 1;
        let Some(http) = &self.http else {
            self.note(notice, 0, "no HTTP client (see the log)".into());
            return;
        };
        for attempt in 1..=tries {
            let request = match settings.method {
                CallbackMethod::Get => http.get(target.clone()).query(params),
                CallbackMethod::Post => http.post(target.clone()).form(params),
                CallbackMethod::Json => {
                    // ecom: {mdOrder, orderNumber, operation, status}, status a number.
                    let mut body = serde_json::Map::new();
                    for (k, v) in params {
                        let value = match (k.as_str(), v.parse::<i64>()) {
                            ("status", Ok(n)) => serde_json::Value::from(n),
                            _ => serde_json::Value::from(v.clone()),
                        };
                        body.insert(k.clone(), value);
                    }
                    http.post(target.clone()).json(&body)
                }
            };
            let outcome = match request.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => "delivered".to_string(),
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) => format!("connection error: {}", e.without_url()),
            };
            let delivered = outcome == "delivered";
            self.note(notice, attempt, outcome);
            if delivered {
                return;
            }
            if let Some(pause) = settings.retry_delays.get(attempt as usize - 1) {
                tokio::time::sleep(*pause).await;
            }
        }
    }

    fn note(&self, notice: &Notice, attempt: u32, outcome: String) {
        tracing::debug!(order_number = %notice.order_number, operation = notice.operation, attempt, %outcome, "sandbox callback");
        lock(&self.log).push(CallbackDelivery {
            order_number: notice.order_number.clone(),
            operation: notice.operation.to_string(),
            status: notice.status,
            attempt,
            outcome,
        });
    }
}

/// Where a notice goes: the order's own `dynamicCallbackUrl`, else the merchant's URL.
fn target_of(notice: &Notice, settings: &CallbackSettings) -> Option<Url> {
    notice
        .callback_url
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .or(settings.url.clone())
}

/// A poisoned lock only means another task panicked mid-update of test bookkeeping;
/// the data is still the best there is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
