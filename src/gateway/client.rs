//! The typed client of the Sber gateway (legacy REST dialect: form POST, JSON reply).
//!
//! No call is retried behind the caller's back: a register or a deposit that timed out may
//! have happened at the bank, and only the caller (the orders engine) knows how to find out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use super::bundle::{OrderBundle, ReceiptStatusReport};
use super::codes::ErrorCode;
use super::error::{excerpt, GatewayError};
use super::tls::client_config;
use super::types::{
    ErrorFields, Method, OrderRef, OrderStatusReport, RegisterRequest, Registered, ShortStatus,
};
use crate::domain::GatewayOrderId;
use crate::money::Kopecks;

mod settings;

use settings::merchant_param;
pub use settings::{ClientSettings, Credentials, Dialect, CHASTI_PARAMS, ECOM_REGISTER_FIELDS};

/// RUB, ISO 4217 numeric.
pub const CURRENCY_RUB: &str = "643";

/// The ecom host's typed fields; every other parameter is a string there.
const ECOM_INTEGERS: [&str; 2] = ["amount", "sessionTimeoutSecs"];
const ECOM_OBJECTS: [&str; 2] = ["jsonParams", "orderBundle"];
/// Parameters only the legacy host knows (the ecom host takes the taxation system in the cart).
const LEGACY_ONLY: [&str; 2] = ["dynamicCallbackUrl", "taxSystem"];

/// The parameters as the ecom host's JSON object: integers and objects typed, the rest strings.
fn ecom_body(params: &[(&'static str, String)]) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    for (name, value) in params {
        if LEGACY_ONLY.contains(name) {
            continue;
        }
        let typed = if ECOM_INTEGERS.contains(name) {
            value
                .parse::<u64>()
                .map(serde_json::Value::from)
                .unwrap_or_else(|_| serde_json::Value::from(value.clone()))
        } else if ECOM_OBJECTS.contains(name) {
            serde_json::from_str(value).unwrap_or_else(|_| serde_json::Value::from(value.clone()))
        } else {
            serde_json::Value::from(value.clone())
        };
        body.insert((*name).to_string(), typed);
    }
    serde_json::Value::Object(body)
}

/// The result of paymentOrderBinding.do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingPayment {
    #[serde(default)]
    pub redirect: Option<String>,
    #[serde(default)]
    pub info: Option<String>,
}

/// A reply that carries nothing but success.
#[derive(Deserialize)]
struct Ack {}

#[derive(Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    base: Url,
    host: String,
    settings: Arc<ClientSettings>,
}

impl std::fmt::Debug for GatewayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// `http://` is allowed only to this machine (the sandbox); anything else must be TLS.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl GatewayClient {
    pub fn new(settings: ClientSettings) -> Result<GatewayClient, GatewayError> {
        let mut base = settings.base_url.clone();
        match base.scheme() {
            "https" => {}
            "http" if is_loopback(&base) => {}
            "http" => {
                return Err(GatewayError::Settings(format!(
                    "{base} uses plain http to a host that is not this machine; the gateway must be reached over https (http is allowed only to 127.0.0.1/localhost, for the sandbox)"
                )))
            }
            other => {
                return Err(GatewayError::Settings(format!(
                    "{base}: scheme {other:?} is not allowed; use https://"
                )))
            }
        }
        if settings.dialect == Dialect::Ecom
            && matches!(settings.credentials, Credentials::Token(_))
        {
            return Err(GatewayError::Settings(
                "the ecom gateway takes userName and password only, not a token".into(),
            ));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let host = base.host_str().unwrap_or_default().to_string();
        let tls =
            client_config(&settings.trust).map_err(|e| GatewayError::Settings(e.to_string()))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("chasti/", env!("CARGO_PKG_VERSION")))
            // A proxy from the environment would be a silent detour for payment traffic.
            .no_proxy()
            .build()
            .map_err(|e| GatewayError::Settings(format!("HTTP client setup failed: {e}")))?;
        Ok(GatewayClient {
            http,
            base,
            host,
            settings: Arc::new(settings),
        })
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    pub fn settings(&self) -> &ClientSettings {
        &self.settings
    }

    /// register.do: a one-stage order.
    pub async fn register(&self, request: &RegisterRequest) -> Result<Registered, GatewayError> {
        let params = self.register_params(request);
        self.call(Method::Register, params).await
    }

    /// registerPreAuth.do: a two-stage order (hold, then deposit).
    pub async fn register_pre_auth(
        &self,
        request: &RegisterRequest,
    ) -> Result<Registered, GatewayError> {
        let params = self.register_params(request);
        self.call(Method::RegisterPreAuth, params).await
    }

    /// deposit.do: capture a hold. `None` captures the whole held amount.
    pub async fn deposit(
        &self,
        order_id: &GatewayOrderId,
        amount: Option<Kopecks>,
    ) -> Result<(), GatewayError> {
        self.deposit_with(order_id, amount, None).await
    }

    /// deposit.do with the cart of what is taken (the ecom host's cloud fiscalisation).
    pub async fn deposit_with(
        &self,
        order_id: &GatewayOrderId,
        amount: Option<Kopecks>,
        bundle: Option<&OrderBundle>,
    ) -> Result<(), GatewayError> {
        let mut params = vec![
            ("orderId", order_id.to_string()),
            ("amount", amount.unwrap_or_default().get().to_string()),
        ];
        self.push_bundle(&mut params, bundle);
        self.call::<Ack>(Method::Deposit, params).await.map(|_| ())
    }

    /// The cart as the dialect takes it: a JSON string on the legacy host (with `taxSystem`),
    /// an object on the ecom host.
    fn push_bundle(&self, params: &mut Vec<(&'static str, String)>, bundle: Option<&OrderBundle>) {
        if let Some(bundle) = bundle {
            let json = bundle.to_json(self.settings.dialect).to_string();
            params.push(("orderBundle", json));
            if self.settings.dialect == Dialect::Legacy {
                params.push(("taxSystem", bundle.tax_system.to_string()));
            }
        }
    }

    /// The receipts the bank's cloud fiscalisation made for an order: `getReceiptStatus.do` on
    /// the legacy host, `…/api/ofd/v1/getReceiptStatus` on the ecom host.
    pub async fn receipt_status(
        &self,
        order: &OrderRef,
    ) -> Result<ReceiptStatusReport, GatewayError> {
        self.call(Method::ReceiptStatus, order_ref_params(order))
            .await
    }

    /// reverse.do: void a hold, or a one-stage payment on its own Moscow day.
    /// `amount` is a partial reversal, which needs a merchant permission.
    pub async fn reverse(
        &self,
        order_id: &GatewayOrderId,
        amount: Option<Kopecks>,
    ) -> Result<(), GatewayError> {
        self.reverse_with(order_id, amount, None).await
    }

    /// reverse.do with the return receipt's cart (the ecom host's cloud fiscalisation).
    pub async fn reverse_with(
        &self,
        order_id: &GatewayOrderId,
        amount: Option<Kopecks>,
        bundle: Option<&OrderBundle>,
    ) -> Result<(), GatewayError> {
        let mut params = vec![("orderId", order_id.to_string())];
        if let Some(amount) = amount {
            params.push(("amount", amount.get().to_string()));
        }
        self.push_bundle(&mut params, bundle);
        self.call::<Ack>(Method::Reverse, params).await.map(|_| ())
    }

    /// refund.do: money back after settlement. `external_refund_id` lets the gateway
    /// recognise a repeated refund (honoured by the ecom host and by the sandbox).
    pub async fn refund(
        &self,
        order_id: &GatewayOrderId,
        amount: Kopecks,
        external_refund_id: Option<&str>,
    ) -> Result<(), GatewayError> {
        self.refund_with(order_id, amount, external_refund_id, None)
            .await
    }

    /// refund.do with the return receipt's cart (the ecom host's cloud fiscalisation).
    pub async fn refund_with(
        &self,
        order_id: &GatewayOrderId,
        amount: Kopecks,
        external_refund_id: Option<&str>,
        bundle: Option<&OrderBundle>,
    ) -> Result<(), GatewayError> {
        let mut params = vec![
            ("orderId", order_id.to_string()),
            ("amount", amount.get().to_string()),
        ];
        if let Some(id) = external_refund_id {
            let json = serde_json::json!({ "externalRefundId": id }).to_string();
            params.push(("jsonParams", json));
        }
        self.push_bundle(&mut params, bundle);
        self.call::<Ack>(Method::Refund, params).await.map(|_| ())
    }

    /// decline.do: close an order before the customer starts paying.
    pub async fn decline(&self, order: &OrderRef) -> Result<(), GatewayError> {
        self.call::<Ack>(Method::Decline, order_ref_params(order))
            .await
            .map(|_| ())
    }

    /// getOrderStatus.do: the older, short status (chasti itself asks the extended one).
    pub async fn short_status(&self, order: &OrderRef) -> Result<ShortStatus, GatewayError> {
        self.call(Method::OrderStatus, order_ref_params(order))
            .await
    }

    /// getOrderStatusExtended.do: the truth about an order.
    pub async fn order_status(&self, order: &OrderRef) -> Result<OrderStatusReport, GatewayError> {
        self.call(Method::OrderStatusExtended, order_ref_params(order))
            .await
    }

    /// paymentOrderBinding.do: pay an order with a stored credential, without the card page.
    pub async fn pay_with_binding(
        &self,
        md_order: &GatewayOrderId,
        binding_id: &str,
        ip: &str,
    ) -> Result<BindingPayment, GatewayError> {
        let params = vec![
            ("mdOrder", md_order.to_string()),
            ("bindingId", binding_id.to_string()),
            ("ip", ip.to_string()),
        ];
        self.call(Method::PaymentOrderBinding, params).await
    }

    fn register_params(&self, r: &RegisterRequest) -> Vec<(&'static str, String)> {
        let s = &self.settings;
        let mut p = vec![
            ("orderNumber", r.order_number.clone()),
            ("amount", r.amount.get().to_string()),
            ("currency", CURRENCY_RUB.to_string()),
            (
                "returnUrl",
                r.return_url.clone().unwrap_or_else(|| s.return_url.clone()),
            ),
        ];
        let fail_url = r.fail_url.clone().or_else(|| s.fail_url.clone());
        let optional = [
            ("failUrl", fail_url),
            ("description", r.description.clone()),
            ("language", r.language.clone()),
            ("pageView", r.page_view.map(|v| v.as_str().to_string())),
            ("clientId", r.client_id.clone()),
            ("dynamicCallbackUrl", r.dynamic_callback_url.clone()),
            ("email", r.email.clone()),
            ("phone", r.phone.clone()),
        ];
        p.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
        match r.expiration_date {
            Some(at) => p.push(("expirationDate", at.format("%Y-%m-%dT%H:%M:%S").to_string())),
            None => {
                let secs = r.session_timeout_secs.unwrap_or(s.order_lifetime.as_secs());
                p.push(("sessionTimeoutSecs", secs.to_string()));
            }
        }
        if !r.features.is_empty() {
            let joined: Vec<&str> = r.features.iter().map(|f| f.as_str()).collect();
            p.push(("features", joined.join(",")));
        }
        // The merchant's own jsonParams first, chasti's over them (the config refuses clashes).
        let mut json_params = s.json_params.clone();
        json_params.extend(r.json_params.clone());
        if !json_params.is_empty() {
            // Legacy dialect: a JSON string inside the form field.
            let json = serde_json::to_string(&json_params).unwrap_or_default();
            p.push(("jsonParams", json));
        }
        for (name, value) in &s.extra_params {
            p.push((merchant_param(name), value.clone()));
        }
        self.push_bundle(&mut p, r.order_bundle.as_ref());
        p
    }

    fn credential_params(&self) -> Vec<(&'static str, String)> {
        match &self.settings.credentials {
            Credentials::Password {
                user_name,
                password,
            } => vec![
                ("userName", user_name.clone()),
                ("password", password.expose().to_string()),
            ],
            Credentials::Token(token) => vec![("token", token.expose().to_string())],
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        params: Vec<(&'static str, String)>,
    ) -> Result<T, GatewayError> {
        let path = match (method, self.settings.dialect) {
            // The ecom host keeps its fiscal methods beside the payment ones, under ofd/v1.
            (Method::ReceiptStatus, Dialect::Ecom) => "../ofd/v1/getReceiptStatus",
            _ => method.path(),
        };
        let url = self
            .base
            .join(path)
            .map_err(|e| GatewayError::Settings(format!("bad gateway URL: {e}")))?;
        let mut form = self.credential_params();
        form.extend(params);
        let started = Instant::now();
        let outcome = self.exchange(method, url, &form).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &outcome {
            Ok(_) => tracing::debug!(%method, elapsed_ms, "gateway call ok"),
            // «Unknown order» to a status call is an answer, not a failure: the start's
            // credential probe, a lookup by number and the checks after a restore expect it.
            Err(GatewayError::Refused {
                code: ErrorCode::UnknownOrder,
                ..
            }) if matches!(method, Method::OrderStatusExtended | Method::OrderStatus) => {
                tracing::debug!(%method, elapsed_ms, "the gateway does not know the order")
            }
            // The error text carries method, host and the bank's message; never credentials.
            Err(e) => tracing::warn!(%method, elapsed_ms, error = %e, "gateway call failed"),
        }
        outcome
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        form: &[(&'static str, String)],
    ) -> Result<T, GatewayError> {
        let request = match self.settings.dialect {
            Dialect::Legacy => self.http.post(url).form(form),
            Dialect::Ecom => self.http.post(url).json(&ecom_body(form)),
        };
        let response = request.send().await.map_err(|e| self.classify(method, e))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| self.classify(method, e))?;
        if !status.is_success() {
            return Err(GatewayError::HttpStatus {
                method,
                status: status.as_u16(),
                excerpt: excerpt(&body),
            });
        }
        parse_reply(method, &body)
    }

    fn classify(&self, method: Method, err: reqwest::Error) -> GatewayError {
        if err.is_timeout() {
            return GatewayError::Timeout {
                method,
                after: self.settings.request_timeout,
            };
        }
        if let Some(tls) = find_rustls_error(&err) {
            return GatewayError::Tls {
                method,
                host: self.host.clone(),
                detail: tls,
            };
        }
        let connect = err.is_connect();
        let detail = error_chain(&err.without_url());
        if connect {
            // The connection never opened: nothing was sent.
            return GatewayError::Unreachable {
                method,
                host: self.host.clone(),
                detail,
            };
        }
        GatewayError::Connection {
            method,
            host: self.host.clone(),
            detail,
        }
    }
}

fn order_ref_params(order: &OrderRef) -> Vec<(&'static str, String)> {
    match order {
        OrderRef::OrderId(id) => vec![("orderId", id.to_string())],
        OrderRef::OrderNumber(n) => vec![("orderNumber", n.clone())],
    }
}

/// Turns a 200 body into the reply type, or the gateway's refusal, or "unreadable".
pub(crate) fn parse_reply<T: DeserializeOwned>(
    method: Method,
    body: &str,
) -> Result<T, GatewayError> {
    let unreadable = |problem: String| GatewayError::UnreadableReply {
        method,
        problem,
        excerpt: excerpt(body),
    };
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| unreadable(format!("not JSON: {e}")))?;
    if !value.is_object() {
        return Err(unreadable("not a JSON object".to_string()));
    }
    let errors: ErrorFields =
        serde_json::from_value(value.clone()).map_err(|e| unreadable(format!("errorCode: {e}")))?;
    if let Some(code) = errors.error_code.filter(|c| *c != 0) {
        return Err(GatewayError::refused(
            method,
            code,
            errors.error_message.unwrap_or_default(),
        ));
    }
    serde_json::from_value(value).map_err(|e| unreadable(e.to_string()))
}

fn find_rustls_error(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // hyper-util wraps the handshake's io::Error in another io::Error, and
        // io::Error::source() skips the wrapped error itself: descend through get_ref().
        let mut io = e.downcast_ref::<std::io::Error>();
        while let Some(inner) = io.and_then(|io| io.get_ref()) {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls.to_string());
            }
            io = inner.downcast_ref::<std::io::Error>();
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line (reqwest hides the useful part in `source()`).
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests;
