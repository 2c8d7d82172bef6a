//! Counters for `GET /api/v1/metrics`, in Prometheus text format. A handful of labelled
//! counters is all a till needs; a metrics crate would bring a registry and an exporter for
//! what is twenty lines here.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
struct GatewayStats {
    calls: u64,
    errors: u64,
    seconds: f64,
}

#[derive(Default)]
pub struct Metrics {
    sales: Mutex<BTreeMap<String, u64>>,
    callbacks: Mutex<BTreeMap<String, u64>>,
    gateway: Mutex<BTreeMap<String, GatewayStats>>,
    device_errors: Mutex<BTreeMap<String, u64>>,
    device_warnings: Mutex<BTreeMap<String, u64>>,
    fiscal_receipts: Mutex<BTreeMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// A sale reached a state worth counting (created, paid, declined, …).
    pub fn sale(&self, outcome: &str) {
        *lock(&self.sales).entry(outcome.to_string()).or_default() += 1;
    }

    /// A callback arrived: `accepted`, `unsigned`, `bad_checksum`, `unreadable`, `not_allowed`.
    pub fn callback(&self, outcome: &str) {
        *lock(&self.callbacks)
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    pub fn gateway_call(&self, method: &str, seconds: f64, ok: bool) {
        let mut g = lock(&self.gateway);
        let s = g.entry(method.to_string()).or_default();
        s.calls += 1;
        s.seconds += seconds;
        if !ok {
            s.errors += 1;
        }
    }

    pub fn device_error(&self, device: &str) {
        *lock(&self.device_errors)
            .entry(device.to_string())
            .or_default() += 1;
    }

    /// Something to see to that did not stop a slip (`paper_near_end`).
    pub fn device_warning(&self, what: &str) {
        *lock(&self.device_warnings)
            .entry(what.to_string())
            .or_default() += 1;
    }

    /// A fiscal receipt moved: `owed`, `sent`, `issued`, `late`, `failed`, `retry`.
    pub fn fiscal_receipt(&self, outcome: &str) {
        *lock(&self.fiscal_receipts)
            .entry(outcome.to_string())
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter =
            |out: &mut String, name: &str, help: &str, label: &str, map: &BTreeMap<String, u64>| {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
                for (k, v) in map {
                    let _ = writeln!(out, "{name}{{{label}=\"{k}\"}} {v}");
                }
            };
        counter(
            &mut out,
            "chasti_sales_total",
            "Sales by outcome.",
            "outcome",
            &lock(&self.sales),
        );
        counter(
            &mut out,
            "chasti_callbacks_total",
            "Bank callbacks by outcome.",
            "outcome",
            &lock(&self.callbacks),
        );
        counter(
            &mut out,
            "chasti_device_errors_total",
            "Printer and display errors.",
            "device",
            &lock(&self.device_errors),
        );
        counter(
            &mut out,
            "chasti_device_warnings_total",
            "Slips printed with something to see to (paper near its end).",
            "warning",
            &lock(&self.device_warnings),
        );
        counter(
            &mut out,
            "chasti_fiscal_receipts_total",
            "Fiscal receipts (54-FZ) by what happened to them.",
            "outcome",
            &lock(&self.fiscal_receipts),
        );
        let g = lock(&self.gateway);
        let _ = writeln!(out, "# HELP chasti_gateway_call_seconds Time spent in gateway calls.\n# TYPE chasti_gateway_call_seconds summary");
        for (method, s) in g.iter() {
            let _ = writeln!(
                out,
                "chasti_gateway_call_seconds_sum{{method=\"{method}\"}} {:.6}",
                s.seconds
            );
            let _ = writeln!(
                out,
                "chasti_gateway_call_seconds_count{{method=\"{method}\"}} {}",
                s.calls
            );
        }
        let _ = writeln!(out, "# HELP chasti_gateway_errors_total Gateway calls that failed.\n# TYPE chasti_gateway_errors_total counter");
        for (method, s) in g.iter() {
            let _ = writeln!(
                out,
                "chasti_gateway_errors_total{{method=\"{method}\"}} {}",
                s.errors
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.sale("paid");
        m.sale("paid");
        m.callback("bad_checksum");
        m.gateway_call("register.do", 0.25, true);
        m.gateway_call("register.do", 0.5, false);
        let text = m.render();
        assert!(
            text.contains("chasti_sales_total{outcome=\"paid\"} 2"),
            "{text}"
        );
        assert!(text.contains("chasti_callbacks_total{outcome=\"bad_checksum\"} 1"));
        assert!(text.contains("chasti_gateway_call_seconds_count{method=\"register.do\"} 2"));
        assert!(text.contains("chasti_gateway_errors_total{method=\"register.do\"} 1"));
    }
}
