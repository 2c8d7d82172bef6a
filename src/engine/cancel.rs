//! Cancelling a sale that is not paid: the customer walked away, or the amount was wrong. The
//! request is written first, then decline.do; if the bank says the order was already paid or
//! held, the order follows the money and the cashier is told so. A sale still registering is
//! cancelled as soon as the bank's order id is known.

use super::{Engine, EngineError};
use crate::gateway::{Method, OrderRef};
use crate::orders::order::{Actor, Order};
use crate::orders::reconcile::decide;
use crate::orders::state::State;
use crate::orders::transition::Input;

/// What a cancel did.
#[derive(Debug, Clone)]
pub enum Cancel {
    /// Declined at the bank: the link is dead.
    Done(Order),
    /// The sale is still being registered: it is declined as soon as the bank answers.
    Requested(Order),
    /// It was cancelled before (a double click, a retry after a lost reply): nothing was sent.
    AlreadyDone(Order),
}

/// A cancel of a registering order: the caller now holds the order, or already has its answer.
enum Claim {
    Locked(super::locks::OrderGuard),
    Answered(Box<Cancel>),
}

impl Engine {
    /// Cancels an unpaid sale (decline.do). A paid or held one is refused with what to do
    /// instead; one the customer paid at the last moment ends Paid or Held, never lost.
    pub async fn cancel(&self, id: &uuid::Uuid, actor: &Actor) -> Result<Cancel, EngineError> {
        let order = self.get(id)?;
        if matches!(order.state, State::Cancelled(_)) {
            return Ok(Cancel::AlreadyDone(order));
        }
        refuse_cancel(&order)?;
        let held = if order.state == State::Registering {
            // The register call holds a registering order: never wait for the bank's answer.
            match self.inner.locks.try_lock(order.id) {
                Some(held) => held,
                None => match self.request_cancel(&order, actor).await? {
                    Claim::Locked(held) => held,
                    Claim::Answered(answer) => return Ok(*answer),
                },
            }
        } else {
            self.lock_order(&order).await?
        };
        let order = self.get(id)?;
        if matches!(order.state, State::Cancelled(_)) {
            // Cancelled by the call this one waited for.
            return Ok(Cancel::AlreadyDone(order));
        }
        refuse_cancel(&order)?;
        let order = self
            .transition_by(&order, Input::CancelRequested, Some(actor))
            .await?;
        let result = match &order.state {
            State::Registering => {
                // Interrupted before the bank answered: find out what the bank has.
                let looked = self.look_locked(order).await?.order;
                if matches!(looked.state, State::AwaitingPayment(_)) {
                    self.decline_cancelled(looked, Some(actor)).await
                } else {
                    Ok(looked)
                }
            }
            _ => self.decline_cancelled(order, Some(actor)).await,
        };
        drop(held);
        let order = result?;
        match &order.state {
            State::Cancelled(_) | State::Failed { .. } => Ok(Cancel::Done(order)),
            State::Held(_) | State::Depositing(_) | State::Paid(_) => Err(already_paid(&order)),
            _ => Err(EngineError::Pending {
                order_number: order.order_number.to_string(),
                detail: format!(
                    "the decline is not confirmed yet; state {}",
                    order.state.name()
                ),
            }),
        }
    }

    /// Leaves a cancel where the register call will look once the bank answers. The call may
    /// have finished between the caller's check and the write: then the lock is free, the
    /// request is taken back and the caller cancels (with the lock it gets here), or the order
    /// is already cancelled by the register call that saw the request.
    async fn request_cancel(&self, order: &Order, actor: &Actor) -> Result<Claim, EngineError> {
        self.inner.store.request_cancel(&order.id, actor).await?;
        let Some(held) = self.inner.locks.try_lock(order.id) else {
            tracing::info!(order = %order.order_number, by = %actor, "cancel requested while the sale is registering");
            // The request is durable in its own tree (the order's record belongs to the
            // register call now); the reply shows it.
            let mut order = self.get(&order.id)?;
            order.cancel_requested = true;
            return Ok(Claim::Answered(Box::new(Cancel::Requested(order))));
        };
        let ours = self
            .inner
            .store
            .take_cancel_request(&order.id)
            .await?
            .is_some();
        let now = self.get(&order.id)?;
        if !ours && matches!(now.state, State::Cancelled(_)) {
            return Ok(Claim::Answered(Box::new(Cancel::Done(now))));
        }
        Ok(Claim::Locked(held))
    }

    /// decline.do for an order the shop asked to cancel (the caller holds its lock), then the
    /// bank's status decides: Cancelled, or the money the customer paid meanwhile.
    pub(super) async fn decline_cancelled(
        &self,
        order: Order,
        actor: Option<&Actor>,
    ) -> Result<Order, EngineError> {
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
        if declined.is_ok() {
            return self.transition_by(&order, Input::Cancelled, actor).await;
        }
        // Refused (errorCode 7: not declinable now) or unknown: the bank's status is the truth.
        let report = match self.status_of(&order).await {
            Ok(report) => report,
            Err(_) => return Ok(order),
        };
        let (inputs, _) = decide(&order, &report, self.now(), &self.policy());
        let mut order = order;
        for input in inputs {
            order = self.transition(&order, input).await?;
        }
        if matches!(order.state, State::Held(_)) && self.inner.settings.auto_deposit {
            order = self.deposit_locked(order).await?;
        }
        Ok(order)
    }

    /// A cancel asked for while the sale was registering, now that it is registered (the
    /// caller holds the lock).
    pub(super) async fn cancel_if_requested(&self, order: Order) -> Result<Order, EngineError> {
        let Some(actor) = self.inner.store.take_cancel_request(&order.id).await? else {
            return Ok(order);
        };
        if !matches!(order.state, State::AwaitingPayment(_)) {
            return Ok(order);
        }
        let order = self
            .transition_by(&order, Input::CancelRequested, Some(&actor))
            .await?;
        self.decline_cancelled(order, Some(&actor)).await
    }
}

/// Why an order cannot be cancelled: the customer has paid (the same answer whether chasti knew
/// it before the cancel or learned it from the bank's refusal), or a state with no sale to cancel.
fn refuse_cancel(order: &Order) -> Result<(), EngineError> {
    match order.state {
        State::Held(_) | State::Depositing(_) | State::Paid(_) => Err(already_paid(order)),
        _ => Ok(order.check_cancel()?),
    }
}

fn already_paid(order: &Order) -> EngineError {
    EngineError::AlreadyPaid {
        order_number: order.order_number.to_string(),
        state: order.state.russian(),
    }
}
