//! `[sms]`: which provider sends the payment link by SMS, its credentials (secrets: the file or
//! the environment), the sender name, and the limits that keep a stuck button from spamming a
//! customer.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{absolute_url, ConfigError, Fail};
use crate::secret::Secret;

pub const ENV_SMS_PASSWORD: &str = "CHASTI_SMS_PASSWORD";
pub const ENV_SMS_API_ID: &str = "CHASTI_SMS_API_ID";
pub const ENV_SMS_TOKEN: &str = "CHASTI_SMS_TOKEN";

pub const SMSC_URL: &str = "https://smsc.ru/sys/send.php";
pub const SMSRU_URL: &str = "https://sms.ru/sms/send";

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum ProviderName {
    Kannel,
    Smsc,
    Smsru,
    Webhook,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSms {
    provider: ProviderName,
    url: Option<String>,
    user: Option<String>,
    login: Option<String>,
    password: Option<Secret>,
    api_id: Option<Secret>,
    token: Option<Secret>,
    sender: Option<String>,
    #[serde(default = "default_per_phone")]
    per_phone_per_hour: u32,
    #[serde(default = "default_per_till")]
    per_till_per_hour: u32,
    #[serde(default = "default_timeout")]
    timeout_secs: u64,
    report_url: Option<String>,
}

fn default_per_phone() -> u32 {
    3
}
fn default_per_till() -> u32 {
    60
}
fn default_timeout() -> u64 {
    10
}

/// Who sends, and how to reach them.
#[derive(Debug, Clone)]
pub enum SmsProviderConfig {
    /// Kannel's smsbox `sendsms` interface (the shop's own SMS gateway in front of an operator).
    Kannel {
        url: Url,
        user: String,
        password: Secret,
    },
    /// SMSC.ru's HTTP API (`send.php`).
    Smsc {
        url: Url,
        login: String,
        password: Secret,
    },
    /// SMS.ru's HTTP API (`sms/send`).
    SmsRu { url: Url, api_id: Secret },
    /// POST JSON to the integrator's own URL.
    Webhook { url: Url, token: Option<Secret> },
}

impl SmsProviderConfig {
    /// The provider's name as config and history write it.
    pub fn name(&self) -> &'static str {
        match self {
            SmsProviderConfig::Kannel { .. } => "kannel",
            SmsProviderConfig::Smsc { .. } => "smsc",
            SmsProviderConfig::SmsRu { .. } => "smsru",
            SmsProviderConfig::Webhook { .. } => "webhook",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub provider: SmsProviderConfig,
    /// The sender name the customer sees (registered with the provider), if any.
    pub sender: Option<String>,
    pub per_phone_per_hour: u32,
    pub per_till_per_hour: u32,
    /// One request to the provider.
    pub timeout: Duration,
    /// Pauses before the tries after a transient failure (not in the file: 5 s, 30 s, 120 s).
    pub retry_delays: Vec<Duration>,
    /// Kannel: where its delivery reports reach chasti (`/chasti/sms-report` on the callback
    /// listener); None = that listener's own address, right when Kannel runs on this host.
    pub report_url: Option<Url>,
}

pub(super) fn check_sms(
    raw: Option<RawSms>,
    env: &dyn Fn(&str) -> Option<String>,
    fail: &Fail,
) -> Result<Option<SmsConfig>, ConfigError> {
    let Some(s) = raw else {
        return Ok(None);
    };
    let secret =
        |key: &str, env_name: &str, value: Option<Secret>| -> Result<Secret, ConfigError> {
            env(env_name)
                .map(Secret::new)
                .or(value)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    fail(
                        &format!("sms.{key}"),
                        format!("found nothing; allowed: the {key} in the file or in {env_name}"),
                    )
                })
        };
    let required = |key: &str, value: Option<String>| -> Result<String, ConfigError> {
        value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
            fail(
                &format!("sms.{key}"),
                format!("found nothing; allowed: the {key} the provider gave you"),
            )
        })
    };
    let url = |default: Option<&str>| -> Result<Url, ConfigError> {
        match (s.url.as_deref(), default) {
            (Some(text), _) | (None, Some(text)) => absolute_url("sms.url", text, fail),
            (None, None) => Err(fail("sms.url", "found nothing; allowed: the provider's address, such as http://127.0.0.1:13013/cgi-bin/sendsms".into())),
        }
    };
    let provider = match s.provider {
        ProviderName::Kannel => SmsProviderConfig::Kannel {
            url: url(None)?,
            user: required("user", s.user.clone())?,
            password: secret("password", ENV_SMS_PASSWORD, s.password.clone())?,
        },
        ProviderName::Smsc => SmsProviderConfig::Smsc {
            url: url(Some(SMSC_URL))?,
            login: required("login", s.login.clone())?,
            password: secret("password", ENV_SMS_PASSWORD, s.password.clone())?,
        },
        ProviderName::Smsru => SmsProviderConfig::SmsRu {
            url: url(Some(SMSRU_URL))?,
            api_id: secret("api_id", ENV_SMS_API_ID, s.api_id.clone())?,
        },
        ProviderName::Webhook => SmsProviderConfig::Webhook {
            url: url(None)?,
            token: env(ENV_SMS_TOKEN)
                .map(Secret::new)
                .or(s.token.clone())
                .filter(|t| !t.is_empty()),
        },
    };
    if let Some(sender) = &s.sender {
        let ok = (1..=11).contains(&sender.chars().count())
            && sender
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " .-_".contains(c));
        if !ok {
            return Err(fail("sms.sender", format!("found {sender:?}; allowed: 1-11 Latin letters, digits, spaces, dots, dashes (a sender name registered with the provider)")));
        }
    }
    for (key, value) in [
        ("per_phone_per_hour", s.per_phone_per_hour),
        ("per_till_per_hour", s.per_till_per_hour),
    ] {
        if !(1..=1000).contains(&value) {
            return Err(fail(
                &format!("sms.{key}"),
                format!("found {value}; allowed: 1 to 1000"),
            ));
        }
    }
    let timeout = super::seconds_in("sms.timeout_secs", s.timeout_secs, 1..=60, fail)?;
    let report_url = s
        .report_url
        .as_deref()
        .map(|u| absolute_url("sms.report_url", u, fail))
        .transpose()?;
    Ok(Some(SmsConfig {
        provider,
        sender: s.sender,
        per_phone_per_hour: s.per_phone_per_hour,
        per_till_per_hour: s.per_till_per_hour,
        timeout,
        report_url,
        retry_delays: vec![
            Duration::from_secs(5),
            Duration::from_secs(30),
            Duration::from_secs(120),
        ],
    }))
}
