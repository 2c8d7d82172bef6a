//! The command line's side of the till API: `chasti sale`, `orders`, `status`, `reverse`,
//! `refund` talk to the running daemon over HTTP, like the POS software does.

use std::io::Write;
use std::time::Duration;

use serde_json::{json, Value};

use crate::devices::qr::QrSymbol;

pub struct ApiClient {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// A refusal from the daemon, as its error shape says it (Russian message, field problems).
fn explain(status: u16, body: &Value) -> String {
    let mut text = body["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}: {body}"));
    if let Some(errors) = body["errors"].as_array() {
        for e in errors {
            text.push_str(&format!(
                "\n  {}: {}",
                e["field"].as_str().unwrap_or("?"),
                e["problem"].as_str().unwrap_or("?")
            ));
        }
    }
    text
}

impl ApiClient {
    pub fn new(base: impl Into<String>, token: impl Into<String>) -> Result<ApiClient, String> {
        let tls = crate::gateway::tls::client_config(&Default::default())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ApiClient {
            base: base.into().trim_end_matches('/').to_string(),
            token: token.into(),
            http,
        })
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let mut req = if method == "GET" {
            self.http.get(&url)
        } else {
            self.http.post(&url)
        };
        req = req
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("chasti не отвечает на {}: {}", self.base, e.without_url()))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(explain(status, &body))
        }
    }

    /// Starts a sale, shows the link and QR, and waits for the outcome. Ok(true) when paid.
    pub async fn sale(
        &self,
        amount: &str,
        two_stage: bool,
        till: Option<&str>,
        description: Option<&str>,
    ) -> Result<bool, String> {
        let mut body = json!({
            "amount": amount,
            "mode": if two_stage { "two-stage" } else { "one-stage" },
            "idempotency_key": uuid::Uuid::new_v4().to_string(),
        });
        if let Some(t) = till {
            body["till"] = json!(t);
        }
        if let Some(d) = description {
            body["description"] = json!(d);
        }
        let sale = self.call("POST", "/api/v1/sales", Some(body)).await?;
        let order = &sale["order"];
        let link = sale["payment_url"].as_str().unwrap_or_default();
        println!(
            "Заказ {}: {}",
            order["order_number"].as_str().unwrap_or("?"),
            order["amount_text"].as_str().unwrap_or("?")
        );
        if let Ok(q) = QrSymbol::encode(link) {
            print!("{}", q.to_terminal());
        }
        println!("Ссылка на оплату: {link}");
        if let Some(devices) = sale["devices"].as_object() {
            for (device, what) in devices {
                println!("  {device}: {}", what.as_str().unwrap_or(""));
            }
        }
        self.wait(order["id"].as_str().unwrap_or_default()).await
    }

    /// Follows the order's event stream until it settles, with a progress line.
    pub async fn wait(&self, id: &str) -> Result<bool, String> {
        let mut resp = self
            .http
            .get(format!("{}/api/v1/orders/{id}/events", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("chasti не отвечает: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("события заказа недоступны: HTTP {}", resp.status()));
        }
        let started = std::time::Instant::now();
        let mut buffer = String::new();
        loop {
            let chunk = tokio::select! {
                c = resp.chunk() => c.map_err(|e| format!("поток событий прервался: {}", e.without_url()))?,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    let s = started.elapsed().as_secs();
                    print!("\r  Ожидаем оплату… {:02}:{:02}", s / 60, s % 60);
                    let _ = std::io::stdout().flush();
                    continue;
                }
            };
            let Some(chunk) = chunk else {
                return Err("поток событий закрыт".into());
            };
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let event: String = buffer.drain(..end + 2).collect();
                let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else {
                    continue;
                };
                let Ok(order) = serde_json::from_str::<Value>(data.trim()) else {
                    continue;
                };
                let state = order["state"]["name"].as_str().unwrap_or("");
                let text = order["state_text"].as_str().unwrap_or(state);
                match state {
                    "paid" => {
                        println!(
                            "\r  {text}: {}            ",
                            order["amount_text"].as_str().unwrap_or("")
                        );
                        return Ok(true);
                    }
                    "declined" | "expired" | "failed" | "reversed" | "needs_attention" => {
                        println!("\r  {text}            ");
                        return Ok(false);
                    }
                    "held" | "depositing" => {
                        print!("\r  {text}…            ");
                        let _ = std::io::stdout().flush();
                    }
                    _ => {}
                }
            }
        }
    }

    pub async fn orders(&self, day: Option<&str>, state: Option<&str>) -> Result<(), String> {
        let mut query = Vec::new();
        if let Some(d) = day {
            query.push(format!("day={d}"));
        }
        if let Some(s) = state {
            query.push(format!("state={s}"));
        }
        let path = format!("/api/v1/orders?{}", query.join("&"));
        let list = self.call("GET", &path, None).await?;
        println!(
            "Заказы за {} ({}):",
            list["day"].as_str().unwrap_or("?"),
            list["count"]
        );
        for o in list["orders"].as_array().into_iter().flatten() {
            let created = o["created_at"].as_str().unwrap_or("");
            println!(
                "  {}  {:>16}  {:<22}  {}  {}",
                o["order_number"].as_str().unwrap_or(""),
                o["amount_text"].as_str().unwrap_or(""),
                o["state_text"].as_str().unwrap_or(""),
                created.get(11..16).unwrap_or(""),
                o["id"].as_str().unwrap_or(""),
            );
        }
        println!(
            "Итого оплачено: {}",
            list["net_paid_text"].as_str().unwrap_or("?")
        );
        Ok(())
    }

    pub async fn status(&self, id: &str) -> Result<(), String> {
        let o = self
            .call("GET", &format!("/api/v1/orders/{id}"), None)
            .await?;
        print_order(&o);
        Ok(())
    }

    pub async fn reverse(&self, id: &str) -> Result<(), String> {
        let o = self
            .call("POST", &format!("/api/v1/orders/{id}/reverse"), None)
            .await?;
        print_order(&o);
        Ok(())
    }

    pub async fn refund(&self, id: &str, amount: Option<&str>) -> Result<(), String> {
        let mut body = json!({"idempotency_key": uuid::Uuid::new_v4().to_string()});
        if let Some(a) = amount {
            body["amount"] = json!(a);
        }
        let o = self
            .call("POST", &format!("/api/v1/orders/{id}/refund"), Some(body))
            .await?;
        print_order(&o);
        Ok(())
    }
}

fn print_order(o: &Value) {
    println!(
        "Заказ {} ({})",
        o["order_number"].as_str().unwrap_or("?"),
        o["id"].as_str().unwrap_or("?")
    );
    println!("  сумма      {}", o["amount_text"].as_str().unwrap_or("?"));
    println!("  состояние  {}", o["state_text"].as_str().unwrap_or("?"));
    if let Some(url) = o["payment_url"].as_str() {
        println!("  ссылка     {url}");
    }
    for e in o["events"].as_array().into_iter().flatten() {
        println!(
            "  {}  {}",
            e["at"].as_str().unwrap_or("").get(..19).unwrap_or(""),
            e["what"].as_str().unwrap_or("")
        );
    }
}
