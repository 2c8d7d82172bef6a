//! The orders engine: sale → payment link → callback or poll → deposit; reversal and refund;
//! recovery at start. Every transition is written (committed, compare-and-swap) before it is
//! acted on or answered, and one order is worked on by one task at a time.
//!
//! The flow, one file a step: [`sale`] registers, [`follow_up`] learns and acts on what the bank
//! says (callbacks, polls, recovery), [`actions`] are a manager's deposit, reversal and refund,
//! [`poller`] runs recovery and the polling loop.

mod actions;
mod after_restore;
mod bundle;
mod cancel;
mod clock;
mod close;
mod follow_up;
mod lists;
mod locks;
mod poller;
mod sale;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub use bundle::BankCarts;
pub use cancel::Cancel;
pub use clock::{Clock, ManualClock, SystemClock};
pub use close::DayReport;
pub use lists::{Page, PageQuery};
pub use poller::Recovery;
pub use sale::{SaleRequest, Sold};

use crate::domain::{OrderNumber, StorePrefix, TillId};
use crate::gateway::{GatewayClient, GatewayError, Method, OrderRef, OrderStatusReport};
use crate::orders::order::{ActionError, Actor, Order};
use crate::orders::reconcile::Policy;
use crate::orders::transition::{apply_by, Input, TransitionRefused};
use crate::store::{JournalEntry, Store, StoreError};
use locks::{OrderGuard, OrderLocks};

#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// First part of every order number: the store (unique per merchant account).
    pub store_prefix: StorePrefix,
    /// The till used when a sale names none.
    pub default_till: TillId,
    pub order_lifetime: Duration,
    pub auto_deposit: bool,
    pub poll_first: Duration,
    pub poll_max: Duration,
    /// How many orders a poll round checks at once.
    pub poll_concurrency: usize,
    pub expiry_grace: Duration,
    pub hold_max: Duration,
    /// The payment page URL for a gateway orderId (`{orderId}` is replaced), used to recover
    /// the link of an order whose register reply was lost. None: such an order is declined.
    pub payment_page_template: Option<String>,
    /// Passes of recovery at start before an interrupted order is set aside as NeedsAttention.
    pub recovery_tries: u32,
    /// How long a request waits for an order another task is working on.
    pub lock_wait: Duration,
    /// How long the gateway-call journal and received callbacks are kept.
    pub retention: Duration,
    /// When chasti sees to fiscal receipts (`[fiscal] mode` other than `none`): what makes one.
    pub receipts: Option<crate::orders::receipt::ReceiptPolicy>,
    /// `[fiscal] mode = "bank"`: the carts the bank's cloud fiscalisation takes.
    pub bank_carts: Option<BankCarts>,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            store_prefix: StorePrefix::default(),
            default_till: TillId::default(),
            order_lifetime: Duration::from_secs(1200),
            auto_deposit: true,
            poll_first: Duration::from_secs(3),
            poll_max: Duration::from_secs(60),
            poll_concurrency: 8,
            expiry_grace: Duration::from_secs(120),
            hold_max: Duration::from_secs(6 * 86_400),
            payment_page_template: None,
            recovery_tries: 5,
            lock_wait: Duration::from_secs(5),
            retention: Duration::from_secs(90 * 86_400),
            receipts: None,
            bank_carts: None,
        }
    }
}

/// Why an engine call did not do what was asked. `Display` is English, for logs; what a
/// cashier or a manager is told is [`EngineError::cashier_text`] (Russian). `message` fields
/// carry the cashier's sentence already made (from the gateway's error), `detail` the English
/// specifics.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("no order {0}")]
    NotFound(String),
    #[error("refused by the order's rules: {0:?}")]
    Action(#[from] ActionError),
    /// The bank answered no.
    #[error("the bank refused: {detail}")]
    BankRefused { message: String, detail: String },
    /// The bank could not be reached at all: nothing was created; the cashier may retry.
    #[error("the bank could not be reached: {detail}")]
    BankUnreachable { message: String, detail: String },
    /// The sale could not be created.
    #[error("the sale failed: {detail}")]
    SaleFailed { message: String, detail: String },
    /// The outcome is not known yet; the order is kept and will be settled by the poller.
    #[error("order {order_number}: outcome not known yet ({detail})")]
    Pending {
        order_number: String,
        detail: String,
    },
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("order {order_number} is busy with another request")]
    Busy { order_number: String },
    #[error("the idempotency key was used for another sale ({order_number})")]
    KeyReused { order_number: String },
    #[error("the sale {order_number} with this key is still registering")]
    StillRegistering { order_number: String },
    /// A cancel came too late: the customer had paid (or the amount is held). The order now
    /// shows the money; nothing was cancelled.
    #[error("order {order_number} is already paid ({state}); not cancelled")]
    AlreadyPaid {
        order_number: String,
        state: &'static str,
    },
    /// chasti's own logic asked for a change the state machine forbids: the order is kept as
    /// it was (a fault to fix in chasti, never a user's mistake).
    #[error(transparent)]
    Refused(#[from] TransitionRefused),
    #[error("the order store: {0}")]
    Store(#[from] StoreError),
}

impl EngineError {
    /// What the cashier or the manager is told, in Russian: what happened and what to do.
    pub fn cashier_text(&self) -> String {
        match self {
            EngineError::NotFound(reference) => format!(
                "Заказ {reference} не найден. Укажите номер заказа с чека (например S1-1-261123-0006) или его идентификатор."
            ),
            EngineError::Action(refused) => refused.to_string(),
            EngineError::BankRefused { message, .. }
            | EngineError::BankUnreachable { message, .. }
            | EngineError::SaleFailed { message, .. } => message.clone(),
            EngineError::Pending { order_number, .. } => format!(
                "Банк не ответил вовремя. Заказ {order_number} сохранён, статус уточняется автоматически."
            ),
            EngineError::ShuttingDown => {
                "Касса останавливается и не принимает новые продажи; повторите через минуту.".into()
            }
            EngineError::Busy { order_number } => format!(
                "Заказ {order_number} сейчас обрабатывается; повторите через несколько секунд."
            ),
            EngineError::KeyReused { order_number } => format!(
                "Ключ уже использован для другой продажи ({order_number}): для новой продажи нужен новый ключ."
            ),
            EngineError::StillRegistering { order_number } => format!(
                "Продажа {order_number} с этим ключом ещё создаётся в банке; повторите через несколько секунд."
            ),
            EngineError::AlreadyPaid { order_number, state } => format!(
                "Покупатель уже оплатил заказ {order_number} ({state}); продажа не отменена. Если нужно вернуть деньги, оформите отмену оплаты или возврат."
            ),
            EngineError::Refused(_) => {
                "Внутренняя ошибка: операция с заказом не выполнена, заказ не изменён. Сообщите администратору.".into()
            }
            EngineError::Store(_) => {
                "Внутренняя ошибка хранилища заказов: операция не выполнена. Сообщите администратору.".into()
            }
        }
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
    locks: OrderLocks,
    polls: Mutex<std::collections::HashMap<uuid::Uuid, PollSlot>>,
    stopping: CancellationToken,
    /// Woken when a movement owes a receipt (the fiscal worker waits on it).
    receipts_owed: tokio::sync::Notify,
    last_recovery: Mutex<Option<poller::Recovery>>,
    /// The orders a crash or a lost reply left transitional, as found when the store opened:
    /// recovery's work (sales made since settle themselves).
    interrupted: Vec<uuid::Uuid>,
    metrics: Arc<crate::metrics::Metrics>,
    /// The store was restored from a backup and is not yet checked against the bank: a look
    /// learns the money the bank moved since the backup instead of calling it a conflict.
    restoring: std::sync::atomic::AtomicBool,
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
        let interrupted = match store.open_orders() {
            Ok(open) => open
                .into_iter()
                .filter(|o| o.state.is_transitional())
                .map(|o| o.id)
                .collect(),
            Err(e) => {
                // Recovery then has nothing to do; the poller still looks at every open order.
                tracing::error!(error = %e, "the open orders could not be read at start");
                Vec::new()
            }
        };
        let restoring = match store.restore_check() {
            Ok(check) => check.is_some(),
            Err(e) => {
                tracing::error!(error = %e, "whether the store was restored could not be read");
                false
            }
        };
        Engine {
            inner: Arc::new(Inner {
                restoring: std::sync::atomic::AtomicBool::new(restoring),
                store,
                gateway,
                settings,
                clock,
                updates,
                locks: OrderLocks::default(),
                polls: Mutex::new(std::collections::HashMap::new()),
                stopping: CancellationToken::new(),
                receipts_owed: tokio::sync::Notify::new(),
                last_recovery: Mutex::new(None),
                interrupted,
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

    pub fn settings(&self) -> &EngineSettings {
        &self.inner.settings
    }

    /// Now, to the microsecond: the precision an order's times are stored with, so an order
    /// read back equals the one written.
    pub fn now(&self) -> DateTime<Utc> {
        chrono::SubsecRound::trunc_subsecs(self.inner.clock.now(), 6)
    }

    /// The engine's clock, for parts that keep time with it (the printer's queue).
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Every order after each durable change: devices, the customer screen and the till's
    /// event stream listen here.
    pub fn subscribe(&self) -> broadcast::Receiver<Order> {
        self.inner.updates.subscribe()
    }

    /// True while interrupted orders from before this start are still being reconciled (sales
    /// are taken meanwhile: the engine is ready as soon as its store is open).
    pub fn recovering(&self) -> bool {
        self.last_recovery().is_none()
    }

    /// What the last recovery did (None until it has finished).
    pub fn last_recovery(&self) -> Option<poller::Recovery> {
        *lock(&self.inner.last_recovery)
    }

    /// Stop taking sales and end the poller; work under way goes on. See [`Engine::drain`].
    pub fn begin_shutdown(&self) {
        self.inner.stopping.cancel();
    }

    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.is_cancelled()
    }

    /// Resolves when a movement has owed a receipt since the last call (or at once, if one
    /// did meanwhile): the fiscal worker's wake-up.
    pub async fn receipts_owed(&self) {
        self.inner.receipts_owed.notified().await
    }

    /// Applies a receipt's step (handed over, issued, a problem) to its order, under the
    /// order's lock.
    pub async fn receipt_step(
        &self,
        id: &uuid::Uuid,
        input: Input,
        actor: Option<&Actor>,
    ) -> Result<Order, EngineError> {
        let order = self.get(id)?;
        let _held = self.lock_order(&order).await?;
        let order = self.get(id)?;
        self.transition_by(&order, input, actor).await
    }

    /// Resolves once shutdown has begun (for long-lived streams that must end then).
    pub async fn stopping(&self) {
        self.inner.stopping.cancelled().await
    }

    /// Entries in the per-order lock map (it must not grow with history).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn lock_entries(&self) -> usize {
        self.inner.locks.len()
    }

    pub fn get(&self, id: &uuid::Uuid) -> Result<Order, EngineError> {
        self.inner
            .store
            .get(id)?
            .ok_or_else(|| EngineError::NotFound(id.to_string()))
    }

    /// An order by its id or by the number printed on the slip.
    pub fn find(&self, reference: &str) -> Result<Order, EngineError> {
        let reference = reference.trim();
        let found = if let Ok(id) = uuid::Uuid::parse_str(reference) {
            self.inner.store.get(&id)?
        } else if let Ok(number) = OrderNumber::parse(&reference.to_ascii_uppercase()) {
            self.inner
                .store
                .by_number(&number)?
                .or(match OrderNumber::parse(reference) {
                    Ok(exact) => self.inner.store.by_number(&exact)?,
                    Err(_) => None,
                })
        } else {
            None
        };
        found.ok_or_else(|| EngineError::NotFound(shown(reference)))
    }

    /// The order a callback is about. The bank's callbacks carry the order number; the bank's
    /// id alone is looked up among the open orders only (the store indexes orders by number,
    /// not by bank id).
    pub fn callback_order(
        &self,
        md_order: Option<&str>,
        order_number: Option<&str>,
    ) -> Result<Option<Order>, EngineError> {
        let store = &self.inner.store;
        if let Some(number) = order_number.and_then(|n| OrderNumber::parse(n).ok()) {
            if let Some(order) = store.by_number(&number)? {
                return Ok(Some(order));
            }
        }
        match md_order.and_then(|m| crate::domain::GatewayOrderId::parse(m).ok()) {
            Some(id) => Ok(store.open_by_bank_id(&id)?),
            None => Ok(None),
        }
    }

    fn policy(&self) -> Policy {
        let s = &self.inner.settings;
        Policy {
            auto_deposit: s.auto_deposit,
            expiry_grace: s.expiry_grace,
            hold_max: s.hold_max,
        }
    }

    /// The order's lock, waiting at most `lock_wait`: a busy order is 409, not a hung request.
    async fn lock_order(&self, order: &Order) -> Result<OrderGuard, EngineError> {
        self.inner
            .locks
            .lock(order.id, self.inner.settings.lock_wait)
            .await
            .ok_or_else(|| EngineError::Busy {
                order_number: order.order_number.to_string(),
            })
    }

    /// Applies one input: computes the next order, writes it (committed), tells listeners.
    async fn transition(&self, order: &Order, input: Input) -> Result<Order, EngineError> {
        self.transition_by(order, input, None).await
    }

    /// A transition someone asked for: the history line and the log line name them.
    async fn transition_by(
        &self,
        order: &Order,
        input: Input,
        actor: Option<&Actor>,
    ) -> Result<Order, EngineError> {
        let now = self.now();
        let mut owed_receipt = false;
        let next = match apply_by(order, input, now, actor) {
            Ok(mut next) => {
                // A movement's receipt is owed in the movement's own write.
                if let Some(policy) = &self.inner.settings.receipts {
                    let owed = crate::orders::receipt::owed(&next, policy, now);
                    owed_receipt = !owed.is_empty();
                    next.receipts.extend(owed);
                }
                next
            }
            Err(refused) => {
                // Our own logic asked for something the state machine forbids: keep the order
                // as it is and say so loudly, rather than bend the state.
                tracing::error!(order = %order.order_number, error = %refused, "transition refused");
                return Err(refused.into());
            }
        };
        self.inner.store.replace(&next).await?;
        if owed_receipt {
            self.inner.metrics.fiscal_receipt("owed");
            self.inner.receipts_owed.notify_one();
        }
        let last = next.history.last().map(|e| e.what()).unwrap_or_default();
        match actor {
            Some(actor) => {
                tracing::info!(order = %next.order_number, from = order.state.name(), to = next.state.name(), by = %actor, "{last}")
            }
            None => {
                tracing::info!(order = %next.order_number, from = order.state.name(), to = next.state.name(), "{last}")
            }
        }
        let kind = next.state.kind();
        if !kind.is_transitional() && kind != crate::orders::StateKind::Held {
            self.inner.metrics.sale(kind.name());
        }
        let _ = self.inner.updates.send(next.clone());
        Ok(next)
    }

    /// Runs a gateway call and journals it (method, order number, outcome, time) when it moved
    /// something or failed.
    async fn journaled<T>(
        &self,
        method: Method,
        order_number: &OrderNumber,
        call: impl Future<Output = Result<T, GatewayError>>,
    ) -> Result<T, GatewayError> {
        let started = Instant::now();
        let result = call.await;
        self.inner.metrics.gateway_call(
            method.path(),
            started.elapsed().as_secs_f64(),
            result.is_ok(),
        );
        // A status call that succeeded is not kept: what it found is in the order's history.
        let quiet =
            result.is_ok() && matches!(method, Method::OrderStatusExtended | Method::OrderStatus);
        if quiet {
            return result;
        }
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let entry = JournalEntry {
            at: self.now(),
            method: method.path().to_string(),
            order_number: order_number.to_string(),
            outcome,
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        };
        self.inner.store.journal_append(&entry);
        result
    }

    async fn status_of(&self, order: &Order) -> Result<OrderStatusReport, GatewayError> {
        let reference = match order.state.bank_id() {
            Some(id) => OrderRef::OrderId(id.clone()),
            None => OrderRef::OrderNumber(order.order_number.to_string()),
        };
        self.journaled(
            Method::OrderStatusExtended,
            &order.order_number,
            self.inner.gateway.order_status(&reference),
        )
        .await
    }

    /// A callback said this order moved: poll it promptly from now on (the fallback when the
    /// callback intake's queue is full).
    pub(crate) fn poll_soon(&self, id: uuid::Uuid) {
        self.schedule(id, self.inner.settings.poll_first);
    }

    fn schedule(&self, id: uuid::Uuid, interval: Duration) {
        lock(&self.inner.polls).insert(
            id,
            PollSlot {
                due: Instant::now() + interval,
                interval,
            },
        );
    }
}

/// A reference as typed, cut short if it is long (it goes into an error reply).
fn shown(reference: &str) -> String {
    let cut: String = reference.chars().take(40).collect();
    if cut.len() < reference.len() {
        format!("«{cut}…»")
    } else {
        format!("«{cut}»")
    }
}

/// What the cashier is told when the bank said no, and the English detail for the log.
fn bank_refused(error: &GatewayError) -> EngineError {
    match error {
        GatewayError::Unreachable { .. } => EngineError::BankUnreachable {
            message: error.cashier_text(),
            detail: error.to_string(),
        },
        _ => EngineError::BankRefused {
            message: error.cashier_text(),
            detail: error.to_string(),
        },
    }
}
