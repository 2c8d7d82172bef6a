//! Fault knobs: the ways the real gateway misbehaves, on demand.
//!
//! A rule applies to one method (or all), a number of times (or until cleared), before the
//! bank processes the call (nothing happens at the bank) or after (the bank did it, but the
//! caller never learns: the hard case for a client).

use serde::{Deserialize, Serialize};

use super::callbacks::CallbackFaults;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer late (a client with a shorter timeout sees a timeout).
    Latency { ms: u64 },
    /// Answer with this HTTP status and an HTML body, like a proxy in front of the bank.
    HttpStatus { status: u16 },
    /// Close the connection without answering.
    DropConnection,
    /// Answer 200 with a body that is not JSON.
    GarbageBody,
    /// Refuse as the bank does: HTTP 200 with this errorCode and errorMessage (nothing happens
    /// at the bank when it comes before the call).
    Refuse { code: i64, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Before,
    #[default]
    After,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// `register.do`, `deposit.do`, …; none = every method.
    #[serde(default)]
    pub method: Option<String>,
    /// Only calls about this order (its `orderId`/`mdOrder` or `orderNumber`); none = any.
    #[serde(default)]
    pub order: Option<String>,
    pub fault: Fault,
    /// How many calls it hits; none = until cleared.
    #[serde(default)]
    pub times: Option<u32>,
    #[serde(default)]
    pub phase: Phase,
}

impl FaultRule {
    pub fn new(method: &str, fault: Fault) -> FaultRule {
        FaultRule {
            method: Some(method.to_string()),
            order: None,
            fault,
            times: Some(1),
            phase: Phase::After,
        }
    }

    pub fn before(mut self) -> FaultRule {
        self.phase = Phase::Before;
        self
    }

    pub fn times(mut self, times: Option<u32>) -> FaultRule {
        self.times = times;
        self
    }

    /// Only calls about this order (its bank id or its number).
    pub fn for_order(mut self, order: impl Into<String>) -> FaultRule {
        self.order = Some(order.into());
        self
    }
}

/// Every knob at once: what `PUT /sandbox/api/faults` takes and `GET` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    #[serde(default)]
    pub rules: Vec<FaultRule>,
    #[serde(default)]
    pub callbacks: CallbackFaults,
}

/// The faults that hit one call, by phase.
#[derive(Debug, Default)]
pub struct Hits {
    pub before: Vec<Fault>,
    pub after: Vec<Fault>,
}

/// Takes the faults that apply to a call of `method` about the orders `about` (the call's
/// order id and number), using up counted rules.
pub fn take(rules: &mut Vec<FaultRule>, method: &str, about: &[&str]) -> Hits {
    let mut hits = Hits::default();
    for rule in rules.iter_mut() {
        let applies = rule.method.as_deref().is_none_or(|m| m == method)
            && rule.order.as_deref().is_none_or(|o| about.contains(&o));
        if !applies || rule.times == Some(0) {
            continue;
        }
        if let Some(t) = rule.times.as_mut() {
            *t -= 1;
        }
        match rule.phase {
            Phase::Before => hits.before.push(rule.fault.clone()),
            Phase::After => hits.after.push(rule.fault.clone()),
        }
    }
    rules.retain(|r| r.times != Some(0));
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_wear_out_and_match_their_method() {
        let mut rules = vec![
            FaultRule::new("deposit.do", Fault::HttpStatus { status: 500 }),
            FaultRule::new("register.do", Fault::Latency { ms: 5 }).times(None),
        ];
        let hits = take(&mut rules, "deposit.do", &[]);
        assert_eq!(hits.after, vec![Fault::HttpStatus { status: 500 }]);
        assert!(take(&mut rules, "deposit.do", &[]).after.is_empty());
        assert_eq!(take(&mut rules, "register.do", &[]).after.len(), 1);
        assert_eq!(take(&mut rules, "register.do", &[]).after.len(), 1);
        assert_eq!(rules.len(), 1);
        let mut rules = vec![FaultRule::new("deposit.do", Fault::GarbageBody).for_order("A")];
        assert!(take(&mut rules, "deposit.do", &["B"]).after.is_empty());
        assert_eq!(take(&mut rules, "deposit.do", &["A"]).after.len(), 1);
    }

    #[test]
    fn the_control_api_shape_reads() {
        let json = r#"{"rules":[{"method":"register.do","fault":{"kind":"latency","ms":3000},"phase":"after"}],
                       "callbacks":{"drop_next":1,"duplicate":true}}"#;
        let f: Faults = serde_json::from_str(json).unwrap();
        assert_eq!(f.rules[0].fault, Fault::Latency { ms: 3000 });
        assert_eq!(f.rules[0].times, None);
        assert!(f.callbacks.duplicate);
    }
}
