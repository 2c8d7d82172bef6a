//! Reading a method's parameters the way the bank does, refusing with its codes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use url::Url;

use super::{refuse, Refusal};
use crate::gateway::Feature;
use crate::money::{Kopecks, MAX_KOPECKS};
use crate::moscow;

/// Request parameters as received (query and form merged, first occurrence wins), and which
/// host took them (the two check a cart differently).
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    ecom: bool,
}

impl Params {
    /// The legacy host's form or query.
    pub fn new(pairs: Vec<(String, String)>) -> Params {
        Params { pairs, ecom: false }
    }

    /// The ecom host's JSON body, as pairs.
    pub fn ecom(pairs: Vec<(String, String)>) -> Params {
        Params { pairs, ecom: true }
    }

    pub fn is_ecom(&self) -> bool {
        self.ecom
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that is present and not blank.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    pub(super) fn required(&self, name: &str, what: &str) -> Result<&str, Refusal> {
        self.value(name).ok_or(Refusal {
            code: 4,
            message: format!("{what} is empty"),
        })
    }
}

pub(super) fn parse_kopecks(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| *v <= MAX_KOPECKS)
}

pub(super) fn parse_register_amount(p: &Params) -> Result<Kopecks, Refusal> {
    match p.get("amount") {
        None => refuse(4, "Amount is not specified"),
        Some(a) if a.trim().is_empty() => refuse(12, "Empty amount"),
        Some(a) => match parse_kopecks(a).filter(|v| *v > 0).and_then(Kopecks::new) {
            Some(k) => Ok(k),
            None => refuse(
                5,
                "Wrong amount: a positive integer number of kopecks, at most 12 digits",
            ),
        },
    }
}

pub(super) fn parse_amount_or_zero(p: &Params) -> Result<Kopecks, Refusal> {
    match p.value("amount") {
        None => Ok(Kopecks::ZERO),
        Some(a) => parse_kopecks(a).and_then(Kopecks::new).ok_or(Refusal {
            code: 5,
            message: "Wrong amount: an integer number of kopecks, at most 12 digits".into(),
        }),
    }
}

pub(super) fn check_absolute(name: &str, url: &str) -> Result<(), Refusal> {
    match Url::parse(url) {
        Ok(_) => Ok(()),
        Err(_) => refuse(5, format!("{name} must be an absolute URL")),
    }
}

pub(super) fn parse_features(p: &Params) -> Result<Vec<Feature>, Refusal> {
    let Some(text) = p.value("features") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|f| {
            Feature::parse(f.trim()).ok_or(Refusal {
                code: 14,
                message: format!("Features are malformed: unknown feature {:?}", f.trim()),
            })
        })
        .collect()
}

/// The merchant's `jsonParams`: names and values the bank keeps with the order.
pub(super) type JsonParams = BTreeMap<String, String>;

pub(super) fn parse_json_params(p: &Params) -> Result<JsonParams, Refusal> {
    let Some(text) = p.value("jsonParams") else {
        return Ok(BTreeMap::new());
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| Refusal {
        code: 5,
        message: "jsonParams is not valid JSON".into(),
    })?;
    let Some(map) = value.as_object() else {
        return refuse(5, "jsonParams must be a JSON object");
    };
    Ok(map
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect())
}

pub(super) fn order_expiry(p: &Params, now: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
    if let Some(text) = p.value("expirationDate") {
        let local =
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").map_err(|_| Refusal {
                code: 5,
                message: "expirationDate must be yyyy-MM-ddTHH:mm:ss (Moscow time)".into(),
            })?;
        let at = moscow::from_local(local).ok_or(Refusal {
            code: 5,
            message: "expirationDate is not a valid Moscow time".into(),
        })?;
        if at <= now {
            return refuse(5, "expirationDate is in the past");
        }
        return Ok(at);
    }
    let secs = match p.value("sessionTimeoutSecs") {
        None => 1200,
        Some(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0 && *s <= 30 * 86_400)
            .ok_or(Refusal {
                code: 5,
                message: "sessionTimeoutSecs must be a positive number of seconds".into(),
            })?,
    };
    Ok(now + chrono::Duration::seconds(secs))
}
