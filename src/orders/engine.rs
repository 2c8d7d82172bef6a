//! The orders engine: sale → payment link → callback or poll → deposit; reversal and refund;
//! recovery at start. Every transition is written (flushed, compare-and-swap) before it is
//! acted on or answered, and one order is worked on by one task at a time, so a callback and
//! the poller racing each other can never deposit twice.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;

use super::domain::{apply, ActionError, Input, Mode, NewOrder, Order, RefundStatus, State};
use super::reconcile::{decide, FollowUp, Policy};
use super::store::{CallbackRecord, JournalEntry, Store, StoreError};
use crate::gateway::{
    GatewayClient, GatewayError, Method, OrderRef, OrderStatusReport, RegisterRequest,
};
use crate::money::Kopecks;
use crate::moscow;

/// Where "now" comes from: the system clock, or a test's.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told (tests, simulations).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *lock(&self.0) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        *lock(&self.0) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// First part of every order number: the store (unique per merchant account).
    pub store_prefix: String,
    /// The till used when a sale names none.
    pub default_till: String,
    pub order_lifetime: Duration,
    pub auto_deposit: bool,
    pub poll_first: Duration,
    pub poll_max: Duration,
    pub expiry_grace: Duration,
    pub hold_max: Duration,
    /// The payment page URL for a gateway orderId (`{orderId}` is replaced), used to recover
    /// the link of an order whose register reply was lost. None: such an order is declined.
    pub payment_page_template: Option<String>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            store_prefix: "S1".into(),
            default_till: "1".into(),
            order_lifetime: Duration::from_secs(1200),
            auto_deposit: true,
            poll_first: Duration::from_secs(3),
            poll_max: Duration::from_secs(60),
            expiry_grace: Duration::from_secs(120),
            hold_max: Duration::from_secs(6 * 86_400),
            payment_page_template: None,
        }
    }
}

/// A sale as the till asks for it.
#[derive(Debug, Clone)]
pub struct SaleRequest {
    pub amount: Kopecks,
    pub mode: Mode,
    pub description: Option<String>,
    pub till: Option<String>,
    pub cashier: Option<String>,
    pub idempotency_key: Option<String>,
}

/// Why an engine call did not do what was asked. `Display` is Russian: it reaches a cashier
/// or a manager; `detail` fields carry the English specifics for logs.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("Неверное поле «{field}»: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("Заказ {0} не найден.")]
    NotFound(String),
    #[error("{0}")]
    Action(#[from] ActionError),
    #[error("Банк отказал: {message}")]
    Refused { message: String, detail: String },
    /// The outcome is not known yet; the order is kept and will be settled by the poller.
    #[error(
        "Банк не ответил вовремя. Заказ {order_number} сохранён, статус уточняется автоматически."
    )]
    Pending {
        order_number: String,
        detail: String,
    },
    #[error("chasti ещё восстанавливает незавершённые заказы; повторите через несколько секунд.")]
    NotReady,
    #[error("Внутренняя ошибка хранилища заказов: {0}")]
    Store(#[from] StoreError),
}

fn check_till(till: &str) -> Result<(), EngineError> {
    match super::domain::till_problem(till) {
        None => Ok(()),
        Some(problem) => Err(EngineError::Invalid {
            field: "till",
            problem,
        }),
    }
}

fn check_description(text: &str) -> Result<(), EngineError> {
    match super::domain::description_problem(text) {
        None => Ok(()),
        Some(problem) => Err(EngineError::Invalid {
            field: "description",
            problem,
        }),
    }
}

struct PollSlot {
    due: Instant,
    interval: Duration,
}

struct Inner {
    store: Store,
    gateway: GatewayClient,
    settings: EngineSettings,
    clock: Arc<dyn Clock>,
    updates: broadcast::Sender<Order>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    polls: Mutex<HashMap<String, PollSlot>>,
    ready: AtomicBool,
    metrics: Arc<crate::metrics::Metrics>,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    pub fn new(
        store: Store,
        gateway: GatewayClient,
        settings: EngineSettings,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        let (updates, _) = broadcast::channel(256);
        Engine {
            inner: Arc::new(Inner {
                store,
                gateway,
                settings,
                clock,
                updates,
                locks: Mutex::new(HashMap::new()),
                polls: Mutex::new(HashMap::new()),
                ready: AtomicBool::new(false),
                metrics: Arc::new(crate::metrics::Metrics::default()),
            }),
        }
    }

    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.inner.metrics
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Every order after each durable change: devices, the customer screen and the till's
    /// event stream listen here.
    pub fn subscribe(&self) -> broadcast::Receiver<Order> {
        self.inner.updates.subscribe()
    }

    /// True once recovery has reconciled every interrupted order.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    pub fn get(&self, id: &str) -> Result<Order, EngineError> {
        self.inner
            .store
            .get(id)?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    fn policy(&self) -> Policy {
        let s = &self.inner.settings;
        Policy {
            auto_deposit: s.auto_deposit,
            expiry_grace: s.expiry_grace,
            hold_max: s.hold_max,
        }
    }

    fn order_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        lock(&self.inner.locks)
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Applies one input: computes the next order, writes it (flushed), tells listeners.
    async fn transition(&self, order: &Order, input: Input) -> Result<Order, EngineError> {
        let next = match apply(order, input, self.now()) {
            Ok(next) => next,
            Err(refused) => {
                // Our own logic asked for something the state machine forbids: keep the order
                // as it is and say so loudly, rather than bend the state.
                tracing::error!(order = %order.order_number, error = %refused, "transition refused");
                return Ok(order.clone());
            }
        };
        self.inner.store.replace(&next).await?;
        let last = next.history.last().map(|e| e.what.as_str()).unwrap_or("");
        tracing::info!(order = %next.order_number, from = order.state.name(), to = next.state.name(), "{last}");
        if !next.state.is_transitional() && next.state != State::Held {
            self.inner.metrics.sale(next.state.name());
        }
        let _ = self.inner.updates.send(next.clone());
        Ok(next)
    }

    /// Runs a gateway call and writes it to the journal (method, order number, outcome, time).
    async fn journaled<T>(
        &self,
        method: Method,
        order_number: &str,
        call: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let started = Instant::now();
        let result = call.await;
        self.inner.metrics.gateway_call(
            method.path(),
            started.elapsed().as_secs_f64(),
            result.is_ok(),
        );
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let entry = JournalEntry {
            at: self.now(),
            method: method.path().to_string(),
            order_number: order_number.to_string(),
            outcome,
            duration_us: started.elapsed().as_micros() as u64,
        };
        if let Err(e) = self.inner.store.journal_append(&entry) {
            tracing::warn!(error = %e, "journal write failed");
        }
        result
    }

    async fn status_of(&self, order: &Order) -> Result<OrderStatusReport, GatewayError> {
        let reference = match &order.gateway_order_id {
            Some(id) => OrderRef::OrderId(id.clone()),
            None => OrderRef::OrderNumber(order.order_number.clone()),
        };
        self.journaled(
            Method::OrderStatusExtended,
            &order.order_number,
            self.inner.gateway.order_status(&reference),
        )
        .await
    }

    // ----- sales -------------------------------------------------------------------------

    /// Registers a sale and returns it with its payment link. The same idempotency key
    /// returns the same sale, never a second order.
    pub async fn create_sale(&self, request: SaleRequest) -> Result<Order, EngineError> {
        if !self.is_ready() {
            return Err(EngineError::NotReady);
        }
        let till = request
            .till
            .clone()
            .unwrap_or_else(|| self.inner.settings.default_till.clone());
        check_till(&till)?;
        if let Some(d) = &request.description {
            check_description(d)?;
        }
        if let Some(key) = &request.idempotency_key {
            if key.is_empty() || key.len() > 128 {
                return Err(EngineError::Invalid {
                    field: "idempotency_key",
                    problem: "от 1 до 128 символов".into(),
                });
            }
            if let Some(existing) = self.inner.store.by_idempotency_key(key)? {
                return Ok(existing);
            }
        }
        let now = self.now();
        let number = self
            .inner
            .store
            .allocate_order_number(&self.inner.settings.store_prefix, &till, moscow::date(now))
            .await?;
        let lifetime = chrono::Duration::from_std(self.inner.settings.order_lifetime)
            .unwrap_or(chrono::Duration::seconds(1200));
        let order = Order::registering(NewOrder {
            id: uuid::Uuid::now_v7().to_string(),
            order_number: number,
            amount: request.amount,
            mode: request.mode,
            description: request.description,
            till,
            cashier: request.cashier,
            idempotency_key: request.idempotency_key,
            created_at: now,
            link_expires_at: now + lifetime,
        });
        // Locked before it is stored: the poller must never see it before register is sent.
        let guard = self.order_lock(&order.id);
        let _held = guard.lock().await;
        match self.inner.store.insert(&order).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(id)) => return self.get(&id),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(order = %order.order_number, amount = %order.amount, mode = ?order.mode, "sale started");
        let _ = self.inner.updates.send(order.clone());
        self.register(order).await
    }

    async fn register(&self, order: Order) -> Result<Order, EngineError> {
        let mut request = RegisterRequest::new(&order.order_number, order.amount);
        request.description = order.description.clone();
        request.session_timeout_secs = Some(self.inner.settings.order_lifetime.as_secs());
        request.json_params = BTreeMap::from([("till".to_string(), order.till.clone())]);
        for attempt in 1..=2 {
            let gateway = &self.inner.gateway;
            let method = match order.mode {
                Mode::OneStage => Method::Register,
                Mode::TwoStage => Method::RegisterPreAuth,
            };
            let call = async {
                match order.mode {
                    Mode::OneStage => gateway.register(&request).await,
                    Mode::TwoStage => gateway.register_pre_auth(&request).await,
                }
            };
            let error = match self.journaled(method, &order.order_number, call).await {
                Ok(registered) => {
                    let input = Input::Registered {
                        gateway_order_id: registered.order_id,
                        payment_url: registered.form_url,
                    };
                    return self.transition(&order, input).await;
                }
                Err(e) => e,
            };
            // errorCode 1: the number is taken, by an earlier attempt of ours that we lost.
            if error.code().is_some() && error.code() != Some(1) {
                let failed = self
                    .transition(
                        &order,
                        Input::RegistrationFailed {
                            why: error.to_string(),
                        },
                    )
                    .await?;
                let message = match &error {
                    GatewayError::Refused { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                tracing::warn!(order = %failed.order_number, error = %error, "registration refused");
                return Err(EngineError::Refused {
                    message,
                    detail: error.to_string(),
                });
            }
            // The outcome is unknown: ask by order number before anything else.
            match self.adopt_by_number(&order, true).await? {
                Adopted::Settled(order) if order.state == State::AwaitingPayment => {
                    return Ok(*order)
                }
                Adopted::Settled(order) => {
                    let detail = match &order.state {
                        State::Failed { why } | State::NeedsAttention { why } => why.clone(),
                        other => other.name().to_string(),
                    };
                    return Err(EngineError::Refused {
                        message: "банк не вернул ссылку на оплату; заказ закрыт, повторите продажу"
                            .into(),
                        detail,
                    });
                }
                Adopted::NotRegistered if attempt == 1 => continue,
                Adopted::NotRegistered | Adopted::Unknown => {
                    return Err(EngineError::Pending {
                        order_number: order.order_number.clone(),
                        detail: error.to_string(),
                    })
                }
            }
        }
        // Every path of the second attempt returns above; should that ever change, the order
        // stays Registering and the poller settles it, as for any unknown outcome.
        Err(EngineError::Pending {
            order_number: order.order_number.clone(),
            detail: "registration outcome unknown after two attempts".into(),
        })
    }

    /// A register whose reply was lost: does the gateway have the order?
    async fn adopt_by_number(
        &self,
        order: &Order,
        cashier_waiting: bool,
    ) -> Result<Adopted, EngineError> {
        let report = match self
            .journaled(
                Method::OrderStatusExtended,
                &order.order_number,
                self.inner
                    .gateway
                    .order_status(&OrderRef::OrderNumber(order.order_number.clone())),
            )
            .await
        {
            Ok(report) => report,
            Err(e) if e.code() == Some(6) => return Ok(Adopted::NotRegistered),
            Err(_) => return Ok(Adopted::Unknown),
        };
        let gateway_id = report
            .attributes
            .iter()
            .find(|a| a.name == "mdOrder")
            .map(|a| a.value.clone());
        let Some(gateway_id) = gateway_id else {
            let order = self
                .transition(
                    order,
                    Input::Attention {
                        why: "the gateway has the order but did not say its orderId".into(),
                    },
                )
                .await?;
            return Ok(Adopted::Settled(Box::new(order)));
        };
        let unpaid = matches!(
            report.order_status,
            Some(crate::gateway::OrderStatus::Registered) | None
        );
        let template = self.inner.settings.payment_page_template.clone();
        if unpaid && cashier_waiting {
            if let Some(template) = template {
                let input = Input::Registered {
                    payment_url: template.replace("{orderId}", &gateway_id),
                    gateway_order_id: gateway_id,
                };
                return Ok(Adopted::Settled(Box::new(
                    self.transition(order, input).await?,
                )));
            }
        }
        if unpaid {
            // Nobody holds this link (the cashier was told the sale failed, or the link cannot
            // be rebuilt): close it at the bank so it can never be paid unseen.
            let declined = self
                .journaled(
                    Method::Decline,
                    &order.order_number,
                    self.inner
                        .gateway
                        .decline(&OrderRef::OrderId(gateway_id.clone())),
                )
                .await;
            if let Err(e) = declined {
                if e.outcome_unknown() {
                    return Ok(Adopted::Unknown);
                }
            }
            let why = "the register reply was lost; the order was declined at the bank".to_string();
            let order = self
                .transition(order, Input::RegistrationFailed { why })
                .await?;
            return Ok(Adopted::Settled(Box::new(order)));
        }
        let why =
            format!(
            "the gateway shows orderStatus {} for an order whose payment link was never handed out",
            report.order_status.map(|s| s.to_string()).unwrap_or_default()
        );
        let order = self.transition(order, Input::Attention { why }).await?;
        Ok(Adopted::Settled(Box::new(order)))
    }

    // ----- finding out -------------------------------------------------------------------

    /// Asks the gateway about an order and acts on the answer (the one path for callbacks,
    /// polls and recovery). Returns the order as it now stands.
    pub async fn refresh(&self, id: &str) -> Result<Order, EngineError> {
        let guard = self.order_lock(id);
        let _held = guard.lock().await;
        let order = self.get(id)?;
        self.refresh_locked(order).await
    }

    async fn refresh_locked(&self, order: Order) -> Result<Order, EngineError> {
        if order.state == State::Registering {
            return match self.adopt_by_number(&order, false).await? {
                Adopted::Settled(order) => Ok(*order),
                Adopted::NotRegistered => {
                    let why =
                        "the sale was interrupted before the gateway registered it".to_string();
                    self.transition(&order, Input::RegistrationFailed { why })
                        .await
                }
                Adopted::Unknown => Ok(order),
            };
        }
        let report = match self.status_of(&order).await {
            Ok(report) => report,
            Err(e) => {
                tracing::debug!(order = %order.order_number, error = %e, "status unknown for now");
                return Ok(order);
            }
        };
        self.act_on(order, &report).await
    }

    async fn act_on(
        &self,
        mut order: Order,
        report: &OrderStatusReport,
    ) -> Result<Order, EngineError> {
        let (inputs, follow_up) = decide(&order, report, self.now(), &self.policy());
        for input in inputs {
            order = self.transition(&order, input).await?;
        }
        match follow_up {
            FollowUp::None => Ok(order),
            FollowUp::Deposit => self.deposit_locked(order).await,
            FollowUp::Decline => self.expire_locked(order).await,
        }
    }

    async fn deposit_locked(&self, mut order: Order) -> Result<Order, EngineError> {
        if order.state == State::Held {
            order = self.transition(&order, Input::DepositStarted).await?;
        }
        if order.state != State::Depositing {
            return Ok(order);
        }
        let gateway_id = order.gateway_order_id.clone().unwrap_or_default();
        let result = self
            .journaled(
                Method::Deposit,
                &order.order_number,
                self.inner.gateway.deposit(&gateway_id, None),
            )
            .await;
        if let Err(e) = &result {
            tracing::warn!(order = %order.order_number, error = %e, "deposit did not go through");
        }
        // Whatever the answer, the gateway's status is the truth.
        let report = match self.status_of(&order).await {
            Ok(report) => report,
            Err(_) => return Ok(order),
        };
        match decide(&order, &report, self.now(), &self.policy()) {
            (inputs, _) if !inputs.is_empty() => {
                for input in inputs {
                    order = self.transition(&order, input).await?;
                }
                Ok(order)
            }
            // Still held after a definite refusal: back to Held so it is not retried blindly.
            (_, FollowUp::Deposit) => match result {
                Err(e) if !e.outcome_unknown() => {
                    self.transition(&order, Input::DepositFailed { why: e.to_string() })
                        .await
                }
                _ => Ok(order),
            },
            _ => Ok(order),
        }
    }

    async fn expire_locked(&self, order: Order) -> Result<Order, EngineError> {
        let gateway_id = order.gateway_order_id.clone().unwrap_or_default();
        let declined = self
            .journaled(
                Method::Decline,
                &order.order_number,
                self.inner.gateway.decline(&OrderRef::OrderId(gateway_id)),
            )
            .await;
        match declined {
            Ok(()) => self.transition(&order, Input::Expired).await,
            // Refused: the customer may have paid at the last moment. Look again.
            Err(e) if !e.outcome_unknown() => {
                let report = match self.status_of(&order).await {
                    Ok(r) => r,
                    Err(_) => return Ok(order),
                };
                let (inputs, _) = decide(&order, &report, self.now(), &self.policy());
                let mut order = order;
                for input in inputs {
                    order = self.transition(&order, input).await?;
                }
                Ok(order)
            }
            Err(_) => Ok(order),
        }
    }

    // ----- manager actions ---------------------------------------------------------------

    /// Captures a hold now (for `deposit = "manual"`).
    pub async fn deposit(&self, id: &str) -> Result<Order, EngineError> {
        let guard = self.order_lock(id);
        let _held = guard.lock().await;
        let order = self.get(id)?;
        order.check_deposit()?;
        self.deposit_locked(order).await
    }

    /// Reverses a hold, or a payment on its own Moscow day. The gateway allows one try: a
    /// failed reversal is reported, never repeated.
    pub async fn reverse(&self, id: &str) -> Result<Order, EngineError> {
        let guard = self.order_lock(id);
        let _held = guard.lock().await;
        let order = self.get(id)?;
        order.check_reversal(self.now())?;
        let order = self.transition(&order, Input::ReversalStarted).await?;
        let gateway_id = order.gateway_order_id.clone().unwrap_or_default();
        let result = self
            .journaled(
                Method::Reverse,
                &order.order_number,
                self.inner.gateway.reverse(&gateway_id, None),
            )
            .await;
        self.settle_action(order, result, |o| o.state == State::Reversed)
            .await
    }

    /// Refunds `amount` (None = all that is left). `key` identifies this refund request: the
    /// same key again returns the order as it stands and never refunds twice.
    pub async fn refund(
        &self,
        id: &str,
        amount: Option<Kopecks>,
        key: &str,
    ) -> Result<Order, EngineError> {
        if key.is_empty() || key.len() > 64 {
            return Err(EngineError::Invalid {
                field: "idempotency_key",
                problem: "от 1 до 64 символов".into(),
            });
        }
        let guard = self.order_lock(id);
        let _held = guard.lock().await;
        let order = self.get(id)?;
        if let Some(existing) = order.refunds.iter().find(|r| r.key == key) {
            return match existing.status {
                RefundStatus::Pending => self.refresh_locked(order).await,
                _ => Ok(order),
            };
        }
        let amount = order.check_refund(amount)?;
        let order = self
            .transition(
                &order,
                Input::RefundStarted {
                    key: key.to_string(),
                    amount,
                },
            )
            .await?;
        let gateway_id = order.gateway_order_id.clone().unwrap_or_default();
        let result = self
            .journaled(
                Method::Refund,
                &order.order_number,
                self.inner.gateway.refund(&gateway_id, amount, Some(key)),
            )
            .await;
        let key = key.to_string();
        self.settle_action(order, result, move |o| {
            o.refunds
                .iter()
                .any(|r| r.key == key && r.status == RefundStatus::Done)
        })
        .await
    }

    /// After reverse.do or refund.do: the status call decides; without it, a definite refusal
    /// means the money did not move, and anything else stays pending for the poller.
    async fn settle_action(
        &self,
        order: Order,
        result: Result<(), GatewayError>,
        succeeded: impl Fn(&Order) -> bool,
    ) -> Result<Order, EngineError> {
        let refused = |e: &GatewayError| EngineError::Refused {
            message: match e {
                GatewayError::Refused { message, .. } => message.clone(),
                other => other.to_string(),
            },
            detail: e.to_string(),
        };
        let settled = match self.status_of(&order).await {
            Ok(report) => self.act_on(order, &report).await?,
            Err(status_error) => match &result {
                Err(e) if !e.outcome_unknown() => {
                    let input = match &order.state {
                        State::Reversing => Input::ReversalFailed { why: e.to_string() },
                        _ => Input::RefundFailed {
                            key: pending_refund_key(&order),
                            why: e.to_string(),
                        },
                    };
                    self.transition(&order, input).await?;
                    return Err(refused(e));
                }
                Err(e) => {
                    return Err(EngineError::Pending {
                        order_number: order.order_number.clone(),
                        detail: e.to_string(),
                    })
                }
                Ok(()) => {
                    return Err(EngineError::Pending {
                        order_number: order.order_number.clone(),
                        detail: status_error.to_string(),
                    })
                }
            },
        };
        if succeeded(&settled) {
            return Ok(settled);
        }
        if settled.state.is_transitional() {
            return Err(EngineError::Pending {
                order_number: settled.order_number.clone(),
                detail: "the gateway has not confirmed it yet".into(),
            });
        }
        Err(match &result {
            Err(e) => refused(e),
            Ok(()) => EngineError::Refused {
                message: format!(
                    "банк не подтвердил операцию, заказ в состоянии «{}»",
                    settled.state.russian()
                ),
                detail: format!("state after the call: {}", settled.state.name()),
            },
        })
    }

    // ----- callbacks, polling, recovery --------------------------------------------------

    /// Keeps a verified callback durably. Call before answering the bank 200.
    pub async fn record_callback(
        &self,
        params: Vec<(String, String)>,
        signature: &str,
    ) -> Result<(), EngineError> {
        let record = CallbackRecord {
            at: self.now(),
            params,
            signature: signature.to_string(),
        };
        self.inner.store.callback_append(&record).await?;
        Ok(())
    }

    /// A callback names an order: confirm with the gateway and act. Unknown orders are logged
    /// and ignored (a callback is never trusted alone).
    pub async fn on_callback(
        &self,
        md_order: Option<&str>,
        order_number: Option<&str>,
    ) -> Result<Option<Order>, EngineError> {
        let store = &self.inner.store;
        let order = match (md_order, order_number) {
            (Some(id), _) if store.by_gateway_id(id)?.is_some() => store.by_gateway_id(id)?,
            (_, Some(n)) => store.by_number(n)?,
            _ => None,
        };
        let Some(order) = order else {
            tracing::warn!(md_order = ?md_order, order_number = ?order_number, "callback for an order chasti does not know; ignored");
            return Ok(None);
        };
        // A callback means something moved: poll this order promptly from now on.
        self.schedule(&order.id, self.inner.settings.poll_first);
        self.refresh(&order.id).await.map(Some)
    }

    fn schedule(&self, id: &str, interval: Duration) {
        lock(&self.inner.polls).insert(
            id.to_string(),
            PollSlot {
                due: Instant::now() + interval,
                interval,
            },
        );
    }

    /// Reconciles every order left in a transitional state by a crash or a lost reply.
    /// Until this succeeds the engine accepts no new sales.
    pub async fn recover(&self) -> Result<usize, EngineError> {
        let open = self.inner.store.open_orders()?;
        let mut unresolved = 0;
        let mut reconciled = 0;
        for order in open.into_iter().filter(|o| o.state.is_transitional()) {
            let after = self.refresh(&order.id).await?;
            if after.state.is_transitional() {
                unresolved += 1;
            } else {
                reconciled += 1;
            }
        }
        if unresolved > 0 {
            return Err(EngineError::Pending {
                order_number: format!("{unresolved} interrupted order(s)"),
                detail: "the gateway could not confirm their state yet".into(),
            });
        }
        self.inner.ready.store(true, Ordering::SeqCst);
        tracing::info!(reconciled, "recovery done; accepting sales");
        Ok(reconciled)
    }

    /// Runs recovery until it succeeds, then polls open orders forever.
    pub async fn run(self) {
        let mut pause = Duration::from_secs(1);
        while let Err(e) = self.recover().await {
            tracing::warn!(error = ?e, "recovery incomplete; trying again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
        }
        loop {
            if let Err(e) = self.poll_due().await {
                tracing::warn!(error = %e, "poll round failed");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// One poll round: every open order whose turn has come, with a growing interval.
    pub async fn poll_due(&self) -> Result<(), EngineError> {
        let open = self.inner.store.open_orders()?;
        let now = Instant::now();
        let settings = &self.inner.settings;
        let due: Vec<String> = {
            let mut polls = lock(&self.inner.polls);
            polls.retain(|id, _| open.iter().any(|o| &o.id == id));
            open.iter()
                .filter_map(|o| {
                    let slot = polls.entry(o.id.clone()).or_insert(PollSlot {
                        due: now,
                        interval: settings.poll_first,
                    });
                    if slot.due > now {
                        return None;
                    }
                    let grown = slot.interval.mul_f32(1.5).min(settings.poll_max);
                    slot.due = now + slot.interval;
                    slot.interval = grown;
                    Some(o.id.clone())
                })
                .collect()
        };
        for id in due {
            self.refresh(&id).await?;
        }
        Ok(())
    }

    /// The orders of a Moscow day, optionally of one state.
    pub fn list(
        &self,
        day: chrono::NaiveDate,
        state: Option<&str>,
    ) -> Result<Vec<Order>, EngineError> {
        let orders = self.inner.store.day(day)?;
        Ok(orders
            .into_iter()
            .filter(|o| state.is_none_or(|s| o.state.name() == s))
            .collect())
    }
}

fn pending_refund_key(order: &Order) -> String {
    order
        .refunds
        .iter()
        .find(|r| r.status == RefundStatus::Pending)
        .map(|r| r.key.clone())
        .unwrap_or_default()
}

enum Adopted {
    Settled(Box<Order>),
    NotRegistered,
    Unknown,
}
