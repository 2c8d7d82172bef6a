//! A sale: take a number and store the order in one transaction, register it with the bank, hand back the
//! link. A register whose reply was lost is looked up by number before anything else, so one
//! purchase is never registered twice.

use std::collections::BTreeMap;

use super::{bank_refused, Engine, EngineError};
use crate::domain::{Description, IdempotencyKey, TillId};
use crate::gateway::{ErrorCode, GatewayError, Method, OrderRef, OrderStatus, RegisterRequest};
use crate::money::Kopecks;
use crate::moscow;
use crate::orders::cart::Cart;
use crate::orders::order::{Customer, Mode, NewOrder, Order};
use crate::orders::reason::{Decliner, Reason};
use crate::orders::state::{AtBank, State};
use crate::orders::transition::Input;
use crate::store::StoreError;

/// A sale as the till asks for it: every field already parsed.
#[derive(Debug, Clone)]
pub struct SaleRequest {
    pub amount: Kopecks,
    pub mode: Mode,
    pub description: Option<Description>,
    pub till: Option<TillId>,
    pub cashier: Option<String>,
    pub idempotency_key: Option<IdempotencyKey>,
    /// Who asked for the sale.
    pub actor: Option<crate::orders::order::Actor>,
    /// What the customer buys (its lines add up to `amount`).
    pub cart: Option<Cart>,
    /// The customer's phone and e-mail: to the bank with the order, and on the receipt.
    pub customer: Customer,
}

/// What an earlier attempt of a sale left behind, found by number at the bank.
enum Adopted {
    Settled(Box<Order>),
    NotRegistered,
    Unknown,
}

/// A sale as [`Engine::sell`] answers it.
#[derive(Debug, Clone)]
pub struct Sold {
    pub order: Order,
    /// Made by this call (false: an earlier sale with the same idempotency key).
    pub fresh: bool,
}

impl Engine {
    /// Registers a sale and returns it with its payment link, saying whether this call made the
    /// sale or answered an earlier one with the same key (a retry: its slip printed long ago,
    /// so nothing to wait for). The same idempotency key returns the same sale (or its
    /// failure), never a second order; a key reused for another sale is refused.
    pub async fn sell(&self, request: SaleRequest) -> Result<Sold, EngineError> {
        let replayed = |order: Order| Sold {
            order,
            fresh: false,
        };
        if self.is_stopping() {
            return Err(EngineError::ShuttingDown);
        }
        let till = request
            .till
            .clone()
            .unwrap_or_else(|| self.inner.settings.default_till.clone());
        if let Some(key) = &request.idempotency_key {
            if let Some(existing) = self.inner.store.by_idempotency_key(key, self.now())? {
                return replay(existing, &request, &till).map(replayed);
            }
        }
        let now = self.now();
        let lifetime = chrono::Duration::from_std(self.inner.settings.order_lifetime)
            .unwrap_or(chrono::Duration::seconds(1200));
        let id = crate::orders::order::new_order_id(now);
        // Locked before it is stored: the poller must never see it before register is sent.
        let _held = self
            .inner
            .locks
            .lock(id, self.inner.settings.lock_wait)
            .await
            .ok_or_else(|| EngineError::Busy {
                order_number: id.to_string(),
            })?;
        let fields = (request.clone(), till.clone());
        let stored = self
            .inner
            .store
            .insert_sale(
                &self.inner.settings.store_prefix,
                &till,
                moscow::date(now),
                // The number is taken in the same transaction that stores the order.
                move |order_number| {
                    let (request, till) = fields;
                    Order::registering(NewOrder {
                        id,
                        order_number,
                        amount: request.amount,
                        mode: request.mode,
                        description: request.description,
                        till,
                        cashier: request.cashier,
                        idempotency_key: request.idempotency_key,
                        created_at: now,
                        link_expires_at: now + lifetime,
                        actor: request.actor,
                        cart: request.cart,
                        customer: request.customer,
                    })
                },
            )
            .await;
        let order = match stored {
            Ok(order) => order,
            Err(StoreError::Duplicate(_)) => {
                // Another request with the same key won the race.
                let key = request.idempotency_key.as_ref();
                if let Some(existing) = key
                    .map(|k| self.inner.store.by_idempotency_key(k, self.now()))
                    .transpose()?
                    .flatten()
                {
                    return replay(existing, &request, &till).map(replayed);
                }
                return Err(EngineError::Store(StoreError::Missing(
                    "the order the idempotency key names".into(),
                )));
            }
            Err(e) => return Err(e.into()),
        };
        // The first poll waits its turn: a fresh sale needs no status call at once.
        self.schedule(order.id, self.inner.settings.poll_first);
        match &request.actor {
            Some(by) => {
                tracing::info!(order = %order.order_number, amount = %order.amount, mode = ?order.mode, %by, "sale started")
            }
            None => {
                tracing::info!(order = %order.order_number, amount = %order.amount, mode = ?order.mode, "sale started")
            }
        }
        let _ = self.inner.updates.send(order.clone());
        let order = self.register(order).await?;
        Ok(Sold { order, fresh: true })
    }

    async fn register(&self, order: Order) -> Result<Order, EngineError> {
        let mut request = RegisterRequest::new(order.order_number.as_str(), order.amount);
        request.description = order.description.as_ref().map(|d| d.to_string());
        request.session_timeout_secs = Some(self.inner.settings.order_lifetime.as_secs());
        request.json_params = BTreeMap::from([("till".to_string(), order.till.to_string())]);
        request.phone = order.customer.phone.as_ref().map(|p| p.to_string());
        request.email = order.customer.email.as_ref().map(|e| e.to_string());
        request.order_bundle = self.bank_cart(
            &order,
            crate::orders::ReceiptKind::Sell,
            order.amount,
            &crate::orders::receipt::Movement::Payment,
        );
        let method = match order.mode {
            Mode::OneStage => Method::Register,
            Mode::TwoStage => Method::RegisterPreAuth,
        };
        for attempt in 1..=2 {
            let gateway = &self.inner.gateway;
            let call = async {
                match order.mode {
                    Mode::OneStage => gateway.register(&request).await,
                    Mode::TwoStage => gateway.register_pre_auth(&request).await,
                }
            };
            let error = match self.journaled(method, &order.order_number, call).await {
                Ok(registered) => {
                    let bank = AtBank {
                        id: registered.order_id,
                        link: registered.form_url,
                    };
                    let order = self.transition(&order, Input::Registered(bank)).await?;
                    return self.cancel_if_requested(order).await;
                }
                Err(e) => e,
            };
            // Never sent: no order exists at the bank, and none will; say so and let them retry.
            if matches!(
                error,
                GatewayError::Unreachable { .. } | GatewayError::Tls { .. }
            ) {
                let failed = bank_refused(&error);
                self.transition(
                    &order,
                    Input::RegistrationFailed {
                        why: Reason::from(&error),
                    },
                )
                .await?;
                tracing::warn!(order = %order.order_number, error = %error, "the bank could not be reached; no sale was created");
                return Err(failed);
            }
            // errorCode 1: the number is taken, by an earlier attempt of ours that we lost.
            if let Some(code) = error.code().filter(|c| *c != ErrorCode::NumberUsed) {
                let refused = bank_refused(&error);
                let failed = self
                    .transition(
                        &order,
                        Input::RegistrationFailed {
                            why: Reason::from(&error),
                        },
                    )
                    .await?;
                tracing::warn!(order = %failed.order_number, %code, error = %error, "registration refused");
                return Err(refused);
            }
            // The outcome is unknown: ask by order number before anything else.
            match self.adopt_by_number(&order, true).await? {
                Adopted::Settled(order) if matches!(order.state, State::AwaitingPayment(_)) => {
                    return self.cancel_if_requested(*order).await;
                }
                Adopted::Settled(order) => {
                    return Err(match &order.state {
                        State::Failed { why } => EngineError::SaleFailed {
                            message: why.text(),
                            detail: why.what(),
                        },
                        other => EngineError::SaleFailed {
                            message: LINK_LOST.into(),
                            detail: other.name().to_string(),
                        },
                    });
                }
                Adopted::NotRegistered if attempt == 1 => continue,
                Adopted::NotRegistered | Adopted::Unknown => {
                    return Err(EngineError::Pending {
                        order_number: order.order_number.to_string(),
                        detail: error.to_string(),
                    })
                }
            }
        }
        Err(EngineError::Pending {
            order_number: order.order_number.to_string(),
            detail: "registration outcome unknown after two attempts".into(),
        })
    }

    /// A register whose reply was lost: does the gateway have the order? With the cashier still
    /// waiting and the link rebuildable, the order is adopted; otherwise an unpaid one is closed
    /// at the bank so it can never be paid unseen.
    async fn adopt_by_number(
        &self,
        order: &Order,
        cashier_waiting: bool,
    ) -> Result<Adopted, EngineError> {
        let reference = OrderRef::OrderNumber(order.order_number.to_string());
        let report = match self
            .journaled(
                Method::OrderStatusExtended,
                &order.order_number,
                self.inner.gateway.order_status(&reference),
            )
            .await
        {
            Ok(report) => report,
            Err(e) if e.code() == Some(ErrorCode::UnknownOrder) => {
                return Ok(Adopted::NotRegistered)
            }
            Err(_) => return Ok(Adopted::Unknown),
        };
        let Some(gateway_id) = report.md_order() else {
            let why = Reason::NoOrderId;
            let order = self.transition(order, Input::Attention { why }).await?;
            return Ok(Adopted::Settled(Box::new(order)));
        };
        if report.amount != Kopecks::ZERO && report.amount != order.amount {
            // The number is taken at the bank by another order (a store restored from a backup
            // older than the numbers it handed out, or two tills sharing a prefix). Never hand
            // out its link or decline it: it is not this sale's.
            let why = Reason::NumberTaken {
                number: order.order_number.to_string(),
                bank_id: gateway_id.to_string(),
                bank_amount: report.amount,
                amount: order.amount,
            };
            let input = Input::RegistrationFailed { why };
            let order = self.transition(order, input).await?;
            return Ok(Adopted::Settled(Box::new(order)));
        }
        let unpaid = matches!(report.order_status, Some(OrderStatus::Registered) | None);
        let link = self
            .inner
            .settings
            .payment_page_template
            .as_ref()
            .and_then(|t| {
                crate::domain::PaymentUrl::parse(&t.replace("{orderId}", gateway_id.as_str())).ok()
            });
        if let (true, true, Some(link)) = (unpaid, cashier_waiting, link) {
            let bank = AtBank {
                id: gateway_id,
                link,
            };
            let order = self.transition(order, Input::Registered(bank)).await?;
            return Ok(Adopted::Settled(Box::new(order)));
        }
        if unpaid {
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
            let why = Reason::RegisterReplyLost {
                bank_id: gateway_id.to_string(),
                by: Decliner::Chasti,
            };
            let input = Input::RegistrationFailed { why };
            let order = self.transition(order, input).await?;
            return Ok(Adopted::Settled(Box::new(order)));
        }
        if report.order_status == Some(OrderStatus::Declined) {
            // Declined at the bank and never handed out: chasti's own decline whose reply was
            // lost, or the bank closed it. No money moved; the sale failed, as it would have.
            let why = Reason::RegisterReplyLost {
                bank_id: gateway_id.to_string(),
                by: Decliner::Bank,
            };
            let input = Input::RegistrationFailed { why };
            let order = self.transition(order, input).await?;
            return Ok(Adopted::Settled(Box::new(order)));
        }
        let why = Reason::LinkNeverHandedOut {
            bank_id: gateway_id.to_string(),
            order_status: report.order_status.map(|s| i64::from(s.code())),
        };
        let order = self.transition(order, Input::Attention { why }).await?;
        Ok(Adopted::Settled(Box::new(order)))
    }

    /// An order stuck in Registering (a crash, a lost reply): what became of it at the bank.
    pub(super) async fn settle_registering(&self, order: Order) -> Result<Order, EngineError> {
        match self.adopt_by_number(&order, false).await? {
            Adopted::Settled(order) => self.cancel_if_requested(*order).await,
            Adopted::NotRegistered => {
                let input = Input::RegistrationFailed {
                    why: Reason::SaleInterrupted,
                };
                self.transition(&order, input).await
            }
            Adopted::Unknown => Ok(order),
        }
    }
}

const LINK_LOST: &str = "Банк не вернул ссылку на оплату; заказ закрыт, повторите продажу.";

/// The answer for a retry with a key that is already used: the same sale as it stands, its
/// failure, "still registering", or a refusal when the key was used for a different sale.
fn replay(existing: Order, request: &SaleRequest, till: &TillId) -> Result<Order, EngineError> {
    let same = existing.amount == request.amount
        && existing.mode == request.mode
        && &existing.till == till
        && existing.description == request.description
        && existing.cart == request.cart;
    if !same {
        return Err(EngineError::KeyReused {
            order_number: existing.order_number.to_string(),
        });
    }
    match &existing.state {
        State::Registering => Err(EngineError::StillRegistering {
            order_number: existing.order_number.to_string(),
        }),
        State::Failed { why } => Err(EngineError::SaleFailed {
            message: why.text(),
            detail: why.what(),
        }),
        _ => Ok(existing),
    }
}
