//! The command line's client of the running daemon's till API, with the API's own types.

use std::time::Duration;

use chasti::http::api::types::{
    CancelReply, ErrorBody, OrderList, OrderView, RefundBody, Reprinted, SaleBody, SaleReply,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub struct DaemonApi {
    base: String,
    token: String,
    /// Which token was used, for the hint when the daemon refuses it.
    token_source: String,
    http: reqwest::Client,
}

/// A refusal from the daemon, as its error shape says it (Russian message, field problems).
fn explain(status: u16, body: &str) -> String {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(e) => {
            let mut text = e.message;
            for p in e.errors {
                text.push_str(&format!("\n  {}: {}", p.field, p.problem));
            }
            text
        }
        Err(_) => format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        ),
    }
}

impl DaemonApi {
    pub fn new(base: String, token: String, token_source: String) -> Result<DaemonApi, String> {
        let tls =
            chasti::gateway::tls::client_config(&Default::default()).map_err(|e| e.to_string())?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(DaemonApi {
            base: base.trim_end_matches('/').to_string(),
            token,
            token_source,
            http,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60));
        if let Some(b) = body {
            request = request.json(b);
        }
        let response = request
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status == 401 {
            return Err(format!(
                "{}\n  Подсказка: использован токен из {}; проверьте его или укажите другой (--token, CHASTI_TOKEN).",
                explain(status, &text),
                self.token_source
            ));
        }
        if !(200..300).contains(&status) {
            return Err(explain(status, &text));
        }
        serde_json::from_str(&text).map_err(|e| format!("непонятный ответ chasti ({e})"))
    }

    /// A streamed GET (an export, a backup): the response once its status is a success.
    /// `Err(None)`: the daemon is not reachable at all (not running); `Err(Some(why))`: it refused.
    pub async fn download(&self, path: &str) -> Result<reqwest::Response, Option<String>> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    None
                } else {
                    Some(unreachable(&self.base, e))
                }
            })?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(Some(explain(status, &text)))
    }

    pub async fn sale(&self, body: &SaleBody) -> Result<SaleReply, String> {
        self.call(reqwest::Method::POST, "/api/v1/sales", Some(body))
            .await
    }

    pub async fn orders(&self, query: &str) -> Result<OrderList, String> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/orders?{query}"),
            None::<&()>,
        )
        .await
    }

    pub async fn order(&self, id: &str) -> Result<OrderView, String> {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/orders/{}", encode(id)),
            None::<&()>,
        )
        .await
    }

    pub async fn cancel(&self, id: &str) -> Result<CancelReply, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/cancel", encode(id)),
            None::<&()>,
        )
        .await
    }

    pub async fn deposit(
        &self,
        id: &str,
        body: &chasti::http::api::types::DepositBody,
    ) -> Result<OrderView, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/deposit", encode(id)),
            Some(body),
        )
        .await
    }

    pub async fn reprint(&self, id: &str) -> Result<Reprinted, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/reprint", encode(id)),
            None::<&()>,
        )
        .await
    }

    pub async fn send_link(
        &self,
        id: &str,
        phone: &chasti::domain::Phone,
    ) -> Result<chasti::http::api::types::SmsView, String> {
        let body = chasti::http::api::types::SendLinkBody {
            phone: phone.clone(),
        };
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/send-link", encode(id)),
            Some(&body),
        )
        .await
    }

    pub async fn close_day(
        &self,
        day: &str,
    ) -> Result<chasti::http::api::close::DayCloseView, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/days/{}/close", encode(day)),
            None::<&()>,
        )
        .await
    }

    pub async fn reverse(&self, id: &str) -> Result<OrderView, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/reverse", encode(id)),
            None::<&()>,
        )
        .await
    }

    pub async fn refund(&self, id: &str, body: &RefundBody) -> Result<OrderView, String> {
        self.call(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{}/refund", encode(id)),
            Some(body),
        )
        .await
    }

    /// The order's event stream, as a response to read chunk by chunk.
    pub async fn events(&self, id: &str) -> Result<reqwest::Response, String> {
        let response = self
            .http
            .get(format!("{}/api/v1/orders/{}/events", self.base, encode(id)))
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| unreachable(&self.base, e))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            return Err(explain(status, &text));
        }
        Ok(response)
    }
}

/// A path segment: an order number or id never needs escaping, anything else is escaped.
fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}

/// Why the daemon did not answer, in the cashier's words, with what to do.
fn unreachable(base: &str, e: reqwest::Error) -> String {
    if e.is_connect() {
        format!(
            "chasti не запущен или не слушает {base}: соединение не установлено.\n  Запустите: sudo systemctl start chasti (состояние: systemctl status chasti). Адрес берётся из api.listen в конфиге, --api-url или CHASTI_API."
        )
    } else if e.is_timeout() {
        format!("chasti на {base} не ответил вовремя. Повторите; если так и останется, посмотрите журнал: journalctl -u chasti")
    } else {
        format!(
            "связь с chasti на {base} прервалась ({}). Повторите.",
            e.without_url()
        )
    }
}
