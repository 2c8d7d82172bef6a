//! The payment link by SMS, for a customer whose camera will not read the QR or who pays at
//! home. A request is answered at once (queued, already sent, or refused with the reason); the
//! message goes in the background, tried again after a transient failure, and what became of
//! it is a line in the order's history. The sale never waits for it or fails because of it.
//!
//! Sent once per order and number: a second request while one is on its way or after it was
//! sent is answered "already sent"; after a failure a new request tries again. Limits per
//! number and per till (`sms.per_phone_per_hour`, `sms.per_till_per_hour`) stop a stuck button
//! from spamming a customer. Numbers reach logs masked (`+7912***6789`).

pub mod message;
pub mod providers;

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::SmsConfig;
use crate::domain::{Phone, TillId};
use crate::engine::Engine;
use crate::orders::event::{EventKind, SmsNote};
use crate::orders::{Order, State};
use providers::{Provider, SmsError, SmsProvider};

/// One message to one number.
#[derive(Debug, Clone)]
pub struct Sms {
    pub to: Phone,
    pub text: String,
    pub order_number: String,
    pub link: String,
    /// Where the gateway reports delivery (Kannel's `dlr-url`, `%d` its report type).
    pub report_url: Option<String>,
}

/// The route on the callback listener that takes Kannel's delivery reports.
pub const REPORT_PATH: &str = "/chasti/sms-report";

/// Why a delivery report was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportRefused {
    #[error("the report's token does not verify")]
    BadToken,
    #[error("the report is malformed: {0}")]
    Malformed(String),
    #[error("the report could not be written: {0}")]
    Store(String),
}

/// What a request to send the link got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// On its way; the history will say what became of it.
    Queued,
    /// Sent before (or on its way) to this number for this order: not sent again.
    AlreadySent,
}

/// Why the link was not sent; each says so in Russian for the cashier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsRefused {
    #[error("Отправка SMS не настроена (раздел [sms] в настройках chasti).")]
    NotConfigured,
    #[error("По заказу нельзя отправить ссылку: он в состоянии «{0}».")]
    NoLink(String),
    #[error("На номер {0} уже отправлено {1} SMS за последний час; попробуйте позже.")]
    TooManyForPhone(String, u32),
    #[error("С кассы {0} отправлено {1} SMS за последний час; попробуйте позже.")]
    TooManyForTill(String, u32),
    /// The request could not be written down (the store): nothing is sent.
    #[error("Запрос на SMS не сохранён, попробуйте ещё раз ({0}).")]
    NotKept(String),
}

#[derive(Clone)]
pub struct Courier {
    inner: Arc<Inner>,
}

struct Inner {
    provider: Provider,
    shop_name: String,
    per_phone: DefaultKeyedRateLimiter<Phone>,
    per_till: DefaultKeyedRateLimiter<TillId>,
    limits: (u32, u32),
    retry_delays: Vec<Duration>,
    /// (order, number) pairs whose message is on its way.
    in_flight: Mutex<HashSet<(uuid::Uuid, Phone)>>,
    engine: Engine,
    /// Delivery reports: the address and the key that signs each message's report address.
    reports: Option<(url::Url, Vec<u8>)>,
}

fn per_hour(n: u32) -> Quota {
    Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

/// Why the SMS courier could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum SmsSetupError {
    #[error(transparent)]
    Tls(#[from] crate::gateway::tls::TlsError),
    #[error("the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the delivery report address {0} is not a URL")]
    ReportUrl(String),
    #[error("the delivery report key: {0}")]
    ReportKey(#[source] crate::store::StoreError),
}

impl Courier {
    /// `callback_addr`: the callback listener's bound address, where a Kannel on this host
    /// sends its delivery reports unless `sms.report_url` says otherwise.
    pub async fn new(
        config: &SmsConfig,
        shop_name: &str,
        engine: Engine,
        callback_addr: std::net::SocketAddr,
    ) -> Result<Courier, SmsSetupError> {
        let reports = match &config.provider {
            crate::config::SmsProviderConfig::Kannel { .. } => {
                let url = match &config.report_url {
                    Some(url) => url.clone(),
                    None => {
                        let mut addr = callback_addr;
                        if addr.ip().is_unspecified() {
                            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                        }
                        let text = format!("http://{addr}{REPORT_PATH}");
                        url::Url::parse(&text).map_err(|_| SmsSetupError::ReportUrl(text))?
                    }
                };
                let key = engine
                    .store()
                    .sms_report_key()
                    .await
                    .map_err(SmsSetupError::ReportKey)?;
                Some((url, key))
            }
            _ => None,
        };
        Ok(Courier {
            inner: Arc::new(Inner {
                provider: Provider::new(config)?,
                shop_name: shop_name.to_string(),
                per_phone: RateLimiter::keyed(per_hour(config.per_phone_per_hour)),
                per_till: RateLimiter::keyed(per_hour(config.per_till_per_hour)),
                limits: (config.per_phone_per_hour, config.per_till_per_hour),
                retry_delays: config.retry_delays.clone(),
                in_flight: Mutex::new(HashSet::new()),
                engine,
                reports,
            }),
        })
    }

    /// Whether delivery reports come back (Kannel).
    pub fn takes_reports(&self) -> bool {
        self.inner.reports.is_some()
    }

    /// Sends the order's payment link to `phone` in the background. The request is written to
    /// the order's history (committed) before this returns, so a stop or a crash before the outcome
    /// does not lose it: the next start sends it (`resume`).
    pub async fn send_link(&self, order: &Order, phone: &Phone) -> Result<Queued, SmsRefused> {
        let inner = &self.inner;
        if !matches!(order.state, State::AwaitingPayment(_)) {
            return Err(SmsRefused::NoLink(order.state.russian().to_string()));
        }
        let sent_before = order.history.iter().any(|e| {
            matches!(&e.kind, EventKind::Sms(SmsNote::Sent { to, .. } | SmsNote::Delivered { to, .. }) if to == phone)
        });
        let key = (order.id, phone.clone());
        if sent_before || lock(&inner.in_flight).contains(&key) {
            return Ok(Queued::AlreadySent);
        }
        if inner.per_phone.check_key(phone).is_err() {
            return Err(SmsRefused::TooManyForPhone(phone.masked(), inner.limits.0));
        }
        if inner.per_till.check_key(&order.till).is_err() {
            return Err(SmsRefused::TooManyForTill(
                order.till.to_string(),
                inner.limits.1,
            ));
        }
        // The limiters keep a key per number; forget the ones whose hour has passed.
        inner.per_phone.retain_recent();
        if !lock(&inner.in_flight).insert(key.clone()) {
            return Ok(Queued::AlreadySent);
        }
        let requested = SmsNote::Requested {
            to: phone.clone(),
            provider: inner.provider.name().to_string(),
        };
        match inner.engine.note_sms(&order.id, requested).await {
            Ok(order) => {
                self.spawn_delivery(order, phone.clone());
                Ok(Queued::Queued)
            }
            Err(e) => {
                lock(&inner.in_flight).remove(&key);
                Err(SmsRefused::NotKept(e.to_string()))
            }
        }
    }

    /// Sends what a stop or a crash left requested and unanswered: to orders still awaiting
    /// payment; for the others the link no longer works, and the history says so.
    pub async fn resume(&self) {
        let orders = match self.inner.engine.store().open_orders() {
            Ok(orders) => orders,
            Err(e) => {
                tracing::error!(error = %e, "pending SMS could not be looked up");
                return;
            }
        };
        for order in orders {
            for phone in pending(&order) {
                if !lock(&self.inner.in_flight).insert((order.id, phone.clone())) {
                    continue;
                }
                if matches!(order.state, State::AwaitingPayment(_)) {
                    tracing::info!(order = %order.order_number, phone = %phone.masked(), "an SMS requested before the restart is sent now");
                    self.spawn_delivery(order.clone(), phone);
                } else {
                    let note = SmsNote::Failed {
                        to: phone.clone(),
                        provider: self.inner.provider.name().to_string(),
                        why: "chasti остановился до отправки, а ссылка больше не действует".into(),
                    };
                    let _ = self.inner.engine.note_sms(&order.id, note).await;
                    lock(&self.inner.in_flight).remove(&(order.id, phone));
                }
            }
        }
    }

    /// Composes and sends in the background; the outcome goes to the order's history.
    fn spawn_delivery(&self, order: Order, phone: Phone) {
        let Some(bank) = order.state.bank() else {
            return;
        };
        let link = bank.link.to_string();
        let text = message::compose(
            &self.inner.shop_name,
            order.amount,
            &link,
            order.link_expires_at,
        );
        let sms = Sms {
            to: phone.clone(),
            text: text.body,
            order_number: order.order_number.to_string(),
            link,
            report_url: self.report_url(&order.id, &phone),
        };
        let courier = self.clone();
        let key = (order.id, phone);
        tokio::spawn(async move {
            let note = courier.deliver(&sms, text.parts).await;
            if let Err(e) = courier.inner.engine.note_sms(&key.0, note).await {
                tracing::error!(order = %sms.order_number, error = %e, "the SMS outcome could not be written to the order");
            }
            lock(&courier.inner.in_flight).remove(&key);
        });
    }

    /// Tries until the provider takes the message, refuses it for good, or the tries run out.
    async fn deliver(&self, sms: &Sms, parts: u8) -> SmsNote {
        let provider = self.inner.provider.name().to_string();
        let mut pauses = self.inner.retry_delays.iter();
        loop {
            match self.inner.provider.send(sms).await {
                Ok(accepted) => {
                    tracing::info!(order = %sms.order_number, phone = %sms.to.masked(), %provider, parts, "payment link sent by SMS");
                    return SmsNote::Sent {
                        to: sms.to.clone(),
                        provider,
                        message_id: accepted.message_id,
                        parts,
                    };
                }
                Err(SmsError::Transient(why)) => match pauses.next() {
                    Some(pause) => {
                        tracing::warn!(order = %sms.order_number, phone = %sms.to.masked(), %provider, %why, "SMS not sent; trying again");
                        tokio::time::sleep(*pause).await;
                    }
                    None => return self.failed(sms, provider, why),
                },
                Err(SmsError::Permanent(why)) => return self.failed(sms, provider, why),
            }
        }
    }

    /// The signature of a report address: HMAC-SHA256 over the order and the number.
    fn token(key: &[u8], order: &uuid::Uuid, phone: &Phone) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
            .expect("HMAC takes a key of any length");
        mac.update(format!("{order}|{phone}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// This message's report address, `type=%d` left for the gateway to fill in.
    fn report_url(&self, order: &uuid::Uuid, phone: &Phone) -> Option<String> {
        let (base, key) = self.inner.reports.as_ref()?;
        let mut url = base.clone();
        url.query_pairs_mut()
            .append_pair("order", &order.to_string())
            .append_pair("phone", phone.as_str())
            .append_pair("token", &Courier::token(key, order, phone));
        Some(format!("{url}&type=%d"))
    }

    /// A delivery report from the gateway: 1 delivered, 2 or 16 not delivered (the other
    /// types — buffered, accepted by the SMSC — say nothing new). Once per number and order.
    pub async fn report(&self, query: &str) -> Result<(), ReportRefused> {
        let Some((_, key)) = &self.inner.reports else {
            return Err(ReportRefused::Malformed("no reports are asked for".into()));
        };
        let params: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ReportRefused::Malformed(e.to_string()))?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| ReportRefused::Malformed(format!("no {name}")))
        };
        let order = uuid::Uuid::parse_str(get("order")?)
            .map_err(|_| ReportRefused::Malformed("order".into()))?;
        let phone =
            Phone::parse(get("phone")?).map_err(|_| ReportRefused::Malformed("phone".into()))?;
        let expected = Courier::token(key, &order, &phone);
        let given = get("token")?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            given.as_bytes(),
        )) {
            return Err(ReportRefused::BadToken);
        }
        let provider = self.inner.provider.name().to_string();
        let note = match get("type")? {
            "1" => SmsNote::Delivered {
                to: phone.clone(),
                provider,
            },
            "2" | "16" => SmsNote::Failed {
                to: phone.clone(),
                provider,
                why: "оператор сообщил, что SMS не доставлено".into(),
            },
            _ => return Ok(()),
        };
        let current = self
            .inner
            .engine
            .get(&order)
            .map_err(|e| ReportRefused::Store(e.to_string()))?;
        let reported = current.history.iter().any(
            |e| matches!(&e.kind, EventKind::Sms(SmsNote::Delivered { to, .. }) if *to == phone),
        );
        if reported {
            return Ok(());
        }
        tracing::info!(order = %current.order_number, phone = %phone.masked(), report = ?note, "SMS delivery report");
        self.inner
            .engine
            .note_sms(&order, note)
            .await
            .map(|_| ())
            .map_err(|e| ReportRefused::Store(e.to_string()))
    }

    fn failed(&self, sms: &Sms, provider: String, why: String) -> SmsNote {
        tracing::warn!(order = %sms.order_number, phone = %sms.to.masked(), %provider, %why, "SMS failed");
        SmsNote::Failed {
            to: sms.to.clone(),
            provider,
            why,
        }
    }
}

/// The numbers whose SMS was requested and has no outcome yet.
fn pending(order: &Order) -> Vec<Phone> {
    let mut open: Vec<Phone> = Vec::new();
    for event in &order.history {
        match &event.kind {
            EventKind::Sms(SmsNote::Requested { to, .. }) => open.push(to.clone()),
            EventKind::Sms(SmsNote::Sent { to, .. } | SmsNote::Failed { to, .. }) => {
                open.retain(|p| p != to)
            }
            _ => {}
        }
    }
    open.dedup();
    open
}

/// A poisoned lock only means a task panicked mid-insert; the set is still right.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
