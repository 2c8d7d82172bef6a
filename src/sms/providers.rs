//! The providers behind one small trait: Kannel's `sendsms`, SMSC.ru, SMS.ru (each as its public
//! HTTP documentation describes the request and the reply) and a webhook of the integrator's.
//! Every failure is transient (worth a later try: the network, a 5xx, the provider's own "try
//! later") or permanent (credentials, balance, a refused number: trying again cannot help).

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::Sms;
use crate::config::{SmsConfig, SmsProviderConfig};
use crate::secret::Secret;

/// The provider took the message; its id where it gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsError {
    #[error("{0} (will try again)")]
    Transient(String),
    #[error("{0}")]
    Permanent(String),
}

pub trait SmsProvider: Send + Sync {
    fn send(&self, sms: &Sms) -> impl Future<Output = Result<Accepted, SmsError>> + Send;
}

/// The configured provider.
pub struct Provider {
    http: reqwest::Client,
    config: SmsProviderConfig,
    sender: Option<String>,
}

impl Provider {
    pub fn new(config: &SmsConfig) -> Result<Provider, super::SmsSetupError> {
        // Providers' HTTPS certificates are public ones: the OS store as well as the bundled CAs.
        let trust = crate::gateway::tls::public_trust();
        let http = crate::gateway::tls::http_client(&trust, config.timeout)?
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(super::SmsSetupError::Client)?;
        Ok(Provider {
            http,
            config: config.provider.clone(),
            sender: config.sender.clone(),
        })
    }

    pub fn name(&self) -> &'static str {
        self.config.name()
    }
}

impl SmsProvider for Provider {
    async fn send(&self, sms: &Sms) -> Result<Accepted, SmsError> {
        match &self.config {
            SmsProviderConfig::Kannel {
                url,
                user,
                password,
            } => self.kannel(url, user, password, sms).await,
            SmsProviderConfig::Smsc {
                url,
                login,
                password,
            } => self.smsc(url, login, password, sms).await,
            SmsProviderConfig::SmsRu { url, api_id } => self.smsru(url, api_id, sms).await,
            SmsProviderConfig::Webhook { url, token } => {
                self.webhook(url, token.as_ref(), sms).await
            }
        }
    }
}

/// A request that never got an answer: always worth another try. The URL is left out (it may
/// carry credentials in its query).
fn unanswered(e: reqwest::Error) -> SmsError {
    SmsError::Transient(crate::gateway::error_chain(&e.without_url()))
}

/// An HTTP status without a reply the provider documents: 5xx and 429 are transient.
fn by_status(status: reqwest::StatusCode, body: &str) -> SmsError {
    let said: String = body.trim().chars().take(200).collect();
    let why = format!("HTTP {}: {said}", status.as_u16());
    if status.is_server_error() || status.as_u16() == 429 {
        SmsError::Transient(why)
    } else {
        SmsError::Permanent(why)
    }
}

/// The number as the Russian services want it: international, without the plus.
fn digits(sms: &Sms) -> String {
    sms.to.as_str().trim_start_matches('+').to_string()
}

impl Provider {
    /// POSTs a form and reads the JSON reply as `T`; a reply that is not one is judged by its
    /// HTTP status.
    async fn post_form<T: serde::de::DeserializeOwned>(
        &self,
        url: &Url,
        form: &[(&str, String)],
    ) -> Result<(reqwest::StatusCode, T), SmsError> {
        let reply = self
            .http
            .post(url.clone())
            .form(form)
            .send()
            .await
            .map_err(unanswered)?;
        let status = reply.status();
        let body = reply.text().await.map_err(unanswered)?;
        serde_json::from_str::<T>(&body)
            .map(|parsed| (status, parsed))
            .map_err(|_| by_status(status, &body))
    }

    /// Kannel smsbox: `GET /cgi-bin/sendsms?username&password&to&text`, UTF-8 text sent as
    /// UCS-2 (`coding=2`); `202 0: Accepted for delivery` or `3: Queued for later delivery`.
    async fn kannel(
        &self,
        url: &Url,
        user: &str,
        password: &Secret,
        sms: &Sms,
    ) -> Result<Accepted, SmsError> {
        let mut query = vec![
            ("username", user.to_string()),
            ("password", password.expose().to_string()),
            ("to", sms.to.to_string()),
            ("text", sms.text.clone()),
            ("charset", "UTF-8".to_string()),
            ("coding", "2".to_string()),
        ];
        if let Some(from) = &self.sender {
            query.push(("from", from.clone()));
        }
        if let Some(report) = &sms.report_url {
            // 1 delivered + 2 not delivered: Kannel calls `report`, `%d` replaced by the type.
            query.push(("dlr-mask", "3".to_string()));
            query.push(("dlr-url", report.clone()));
        }
        let reply = self
            .http
            .get(url.clone())
            .query(&query)
            .send()
            .await
            .map_err(unanswered)?;
        let status = reply.status();
        let body = reply.text().await.map_err(unanswered)?;
        match status.as_u16() {
            200..=299 if body.starts_with("0:") || body.starts_with("3:") => {
                Ok(Accepted { message_id: None })
            }
            _ => Err(by_status(status, &body)),
        }
    }

    /// SMSC.ru: `send.php` with `login`, `psw`, `phones`, `mes`, `charset=utf-8`, `fmt=3` (a
    /// JSON reply: `{"id":…,"cnt":…}` or `{"error":…,"error_code":…}`).
    async fn smsc(
        &self,
        url: &Url,
        login: &str,
        password: &Secret,
        sms: &Sms,
    ) -> Result<Accepted, SmsError> {
        let mut form = vec![
            ("login", login.to_string()),
            ("psw", password.expose().to_string()),
            ("phones", digits(sms)),
            ("mes", sms.text.clone()),
            ("charset", "utf-8".to_string()),
            ("fmt", "3".to_string()),
        ];
        if let Some(from) = &self.sender {
            form.push(("sender", from.clone()));
        }
        #[derive(Deserialize)]
        struct Reply {
            id: Option<serde_json::Value>,
            error: Option<String>,
            error_code: Option<i64>,
        }
        let (status, parsed) = self.post_form::<Reply>(url, &form).await?;
        match (parsed.error_code, parsed.id) {
            (None, Some(id)) => Ok(Accepted {
                message_id: Some(id.to_string().trim_matches('"').to_string()),
            }),
            (code, _) => {
                let why = format!(
                    "SMSC error {}: {}",
                    code.unwrap_or_default(),
                    parsed.error.unwrap_or_default()
                );
                // 4: the client's address blocked for a while; 9: too many requests at once.
                if matches!(code, Some(4) | Some(9)) || status.is_server_error() {
                    Err(SmsError::Transient(why))
                } else {
                    Err(SmsError::Permanent(why))
                }
            }
        }
    }

    /// SMS.ru: `sms/send` with `api_id`, `to`, `msg`, `json=1`; the request's status and each
    /// number's (`status_code` 100 = accepted; 220 = the service is busy, try later).
    async fn smsru(&self, url: &Url, api_id: &Secret, sms: &Sms) -> Result<Accepted, SmsError> {
        let to = digits(sms);
        let mut form = vec![
            ("api_id", api_id.expose().to_string()),
            ("to", to.clone()),
            ("msg", sms.text.clone()),
            ("json", "1".to_string()),
        ];
        if let Some(from) = &self.sender {
            form.push(("from", from.clone()));
        }
        #[derive(Deserialize)]
        struct Status {
            status: String,
            status_code: i64,
            status_text: Option<String>,
            sms_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct Reply {
            status: String,
            status_code: i64,
            status_text: Option<String>,
            #[serde(default)]
            sms: std::collections::BTreeMap<String, Status>,
        }
        let (_, parsed) = self.post_form::<Reply>(url, &form).await?;
        let fail = |code: i64, text: Option<String>| {
            let why = format!("SMS.ru {code}: {}", text.unwrap_or_default());
            if code == 220 {
                SmsError::Transient(why)
            } else {
                SmsError::Permanent(why)
            }
        };
        if parsed.status != "OK" {
            return Err(fail(parsed.status_code, parsed.status_text));
        }
        match parsed.sms.get(&to) {
            Some(one) if one.status == "OK" => Ok(Accepted {
                message_id: one.sms_id.clone(),
            }),
            Some(one) => Err(fail(one.status_code, one.status_text.clone())),
            None => Err(SmsError::Permanent(format!(
                "SMS.ru did not mention {}",
                sms.to.masked()
            ))),
        }
    }

    /// The integrator's webhook: `POST` JSON `{phone, text, order_number, link}`, a bearer token
    /// when set; any 2xx is accepted (an `id` in a JSON reply is kept).
    async fn webhook(
        &self,
        url: &Url,
        token: Option<&Secret>,
        sms: &Sms,
    ) -> Result<Accepted, SmsError> {
        let body = serde_json::json!({
            "phone": sms.to.as_str(),
            "text": sms.text,
            "order_number": sms.order_number,
            "link": sms.link,
        });
        let mut request = self.http.post(url.clone()).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token.expose());
        }
        let reply = request.send().await.map_err(unanswered)?;
        let status = reply.status();
        let text = reply.text().await.map_err(unanswered)?;
        if !status.is_success() {
            return Err(by_status(status, &text));
        }
        let id = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("id")
                    .map(|id| id.to_string().trim_matches('"').to_string())
            });
        Ok(Accepted { message_id: id })
    }
}
