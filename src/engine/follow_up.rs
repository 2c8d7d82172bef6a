//! Finding out: ask the gateway about an order and act on the answer. The one path for
//! callbacks, polls and recovery; a callback only says something moved, never what to believe.

use super::{Engine, EngineError};
use crate::gateway::{ErrorCode, GatewayError, Method, OrderRef, OrderStatusReport};
use crate::orders::order::Order;
use crate::orders::reason::Reason;
use crate::orders::reconcile::{decide, decide_reported, learn_after_restore, FollowUp};
use crate::orders::state::State;
use crate::orders::transition::Input;

/// An order after a look at the bank, and why it is still unsettled when the bank did not say.
pub(super) struct Looked {
    pub order: Order,
    pub unknown: Option<String>,
}

impl Engine {
    /// Asks the gateway about an order and acts on the answer. Returns the order as it stands.
    pub async fn refresh(&self, id: &uuid::Uuid) -> Result<Order, EngineError> {
        self.refresh_reported(id, 0).await
    }

    /// [`Engine::refresh`] after `failures` callbacks each reported a failed payment attempt.
    pub(crate) async fn refresh_reported(
        &self,
        id: &uuid::Uuid,
        failures: u32,
    ) -> Result<Order, EngineError> {
        let order = self.get(id)?;
        let _held = self.lock_order(&order).await?;
        let order = self.get(id)?;
        Ok(self.look_reported(order, failures).await?.order)
    }

    /// The caller holds the order's lock.
    pub(super) async fn look_locked(&self, order: Order) -> Result<Looked, EngineError> {
        self.look_reported(order, 0).await
    }

    async fn look_reported(&self, order: Order, failures: u32) -> Result<Looked, EngineError> {
        if order.state == State::Registering {
            let order = self.settle_registering(order).await?;
            let unknown = (order.state == State::Registering)
                .then(|| "the gateway did not say whether it has the order".to_string());
            return Ok(Looked { order, unknown });
        }
        let report = match self.status_of(&order).await {
            Ok(report) => report,
            Err(e) => {
                tracing::debug!(order = %order.order_number, error = %e, "status unknown for now");
                return Ok(Looked {
                    order,
                    unknown: Some(e.to_string()),
                });
            }
        };
        let order = self.act_on_reported(order, &report, failures).await?;
        Ok(Looked {
            order,
            unknown: None,
        })
    }

    pub(super) async fn act_on(
        &self,
        order: Order,
        report: &OrderStatusReport,
    ) -> Result<Order, EngineError> {
        self.act_on_reported(order, report, 0).await
    }

    async fn act_on_reported(
        &self,
        mut order: Order,
        report: &OrderStatusReport,
        failures: u32,
    ) -> Result<Order, EngineError> {
        if self
            .inner
            .restoring
            .load(std::sync::atomic::Ordering::Acquire)
        {
            // After a restore: what the bank did since the backup, a step at a time.
            for _ in 0..4 {
                let learned = learn_after_restore(&order, report);
                if learned.is_empty() {
                    break;
                }
                for input in learned {
                    order = self.transition(&order, input).await?;
                }
            }
        }
        let (inputs, follow_up) =
            decide_reported(&order, report, self.now(), &self.policy(), failures);
        for input in inputs {
            order = self.transition(&order, input).await?;
        }
        match follow_up {
            FollowUp::None => Ok(order),
            FollowUp::Deposit => self.deposit_locked(order).await,
            FollowUp::Decline => self.expire_locked(order).await,
            FollowUp::Cancel => self.decline_cancelled(order, None).await,
        }
    }

    pub(super) async fn deposit_locked(&self, mut order: Order) -> Result<Order, EngineError> {
        if matches!(order.state, State::Held(_)) {
            order = self
                .transition(&order, Input::DepositStarted { amount: None })
                .await?;
        }
        let State::Depositing(bank) = &order.state else {
            return Ok(order);
        };
        // Taking part of a hold: the bank's cloud receipt lists what is taken.
        let cart = order
            .deposit_asked
            .and_then(|part| {
                self.bank_cart(
                    &order,
                    crate::orders::ReceiptKind::Sell,
                    part,
                    &crate::orders::receipt::Movement::Payment,
                )
            })
            .filter(|_| {
                self.inner
                    .settings
                    .bank_carts
                    .as_ref()
                    .is_some_and(|c| c.with_operations)
            });
        let result = self
            .journaled(
                Method::Deposit,
                &order.order_number,
                self.inner
                    .gateway
                    .deposit_with(&bank.id, order.deposit_asked, cart.as_ref()),
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
            // Still held after a definite refusal. One a retry cannot fix (a wrong amount, an
            // order the bank does not know) is for a person, with the bank's reason; any other
            // goes back to Held, to be tried again after a growing pause, a bounded number of
            // times (see `reconcile::deposit_due`).
            (_, FollowUp::Deposit) => match result {
                Err(e) if !e.outcome_unknown() && deposit_refused_for_good(&e) => {
                    tracing::warn!(order = %order.order_number, error = %e, "the bank refused the deposit for good");
                    let why = Reason::DepositRefused(Box::new(Reason::from(&e)));
                    self.transition(&order, Input::Attention { why }).await
                }
                Err(e) if !e.outcome_unknown() => {
                    self.transition(
                        &order,
                        Input::DepositFailed {
                            why: Reason::from(&e),
                        },
                    )
                    .await
                }
                _ => Ok(order),
            },
            _ => Ok(order),
        }
    }

    /// Closes an unpaid order whose link ran out (decline.do), then marks it expired.
    async fn expire_locked(&self, order: Order) -> Result<Order, EngineError> {
        let Some(bank) = order.state.bank() else {
            return Ok(order);
        };
        let declined = self
            .journaled(
                Method::Decline,
                &order.order_number,
                self.inner
                    .gateway
                    .decline(&OrderRef::OrderId(bank.id.clone())),
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

    /// For tests and diagnostics: the status call alone.
    pub async fn gateway_status(&self, order: &Order) -> Result<OrderStatusReport, GatewayError> {
        self.status_of(order).await
    }
}

/// A deposit refusal that asking again cannot change: every refusal but errorCode 7 («system
/// error, or not allowed in the order's state now»), which may pass later.
fn deposit_refused_for_good(e: &GatewayError) -> bool {
    e.code()
        .is_some_and(|code| code != ErrorCode::NotAllowedNow)
}
