//! The till API as the POS software calls it: JSON over real HTTP, and its event streams.

use std::time::Duration;

use serde_json::Value;

use super::CASHIER;

/// A client of one daemon's till API.
pub struct TillClient {
    pub base: String,
    pub http: reqwest::Client,
}

impl TillClient {
    pub fn new(base: String) -> TillClient {
        TillClient {
            base,
            http: super::http(),
        }
    }

    /// A call with a token; the body (when any) as JSON. The reply is parsed as JSON, or kept
    /// as a string when it is not.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_as(method, path, token, None, body).await
    }

    /// A call that also names the cashier (`X-Cashier`), as a POS that knows who is logged in.
    pub async fn call_as(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        cashier: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(c) = cashier {
            req = req.header("X-Cashier", c);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A sale by the cashier's token; panics unless it is created (201).
    pub async fn sale(&self, amount: &str, key: &str) -> Value {
        let (status, body) = self
            .call(
                "POST",
                "/api/v1/sales",
                Some(CASHIER),
                Some(serde_json::json!({"amount": amount, "idempotency_key": key})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// Opens an event stream (`/api/v1/orders/{id}/events`, `/api/v1/screen/events`, …).
    pub async fn events(&self, path: &str, token: Option<&str>) -> EventStream {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        EventStream::from_response(resp)
    }
}

/// Server-sent events, read one `data:` payload at a time.
pub struct EventStream {
    resp: reqwest::Response,
    pending: String,
}

impl EventStream {
    /// Reads a stream the test opened itself (a token in the query, a header of its own).
    pub fn from_response(resp: reqwest::Response) -> EventStream {
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        EventStream {
            resp,
            pending: String::new(),
        }
    }

    /// The next event's data, parsed as JSON (bounded by `limit`).
    async fn next(&mut self, limit: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(end) = self.pending.find("\n\n") {
                let block: String = self.pending.drain(..end + 2).collect();
                let data: Vec<&str> = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return serde_json::from_str(&data.join("\n")).ok();
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.pending.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// Waits (bounded, 10 s) for an event whose data satisfies `check`; panics with what came.
    pub async fn until(&mut self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(event) if check(&event) => return event,
                Some(event) => seen.push(event),
                None => panic!("{what}: not on the stream within 10 s; seen: {seen:#?}"),
            }
        }
    }
}
