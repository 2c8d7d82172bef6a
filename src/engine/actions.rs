//! A manager's actions: capture a hold, reverse, refund. Each is checked against the order's
//! rules first (a refusal changes nothing), written before the gateway is called, and settled
//! by the gateway's status afterwards.

use super::{bank_refused, Engine, EngineError};
use crate::domain::IdempotencyKey;
use crate::gateway::{GatewayError, Method};
use crate::money::Kopecks;
use crate::orders::order::{Actor, Order, RefundStatus};
use crate::orders::reason::Reason;
use crate::orders::state::State;
use crate::orders::transition::Input;

impl Engine {
    /// Captures a hold now (for `deposit = "manual"`).
    pub async fn deposit(
        &self,
        id: &uuid::Uuid,
        amount: Option<Kopecks>,
        actor: Option<&Actor>,
    ) -> Result<Order, EngineError> {
        let order = self.get(id)?;
        let _held = self.lock_order(&order).await?;
        let order = self.get(id)?;
        let amount = order.check_deposit(amount)?;
        let order = self
            .transition_by(&order, Input::DepositStarted { amount }, actor)
            .await?;
        let order = self.deposit_locked(order).await?;
        match &order.state {
            State::Paid(_) => Ok(order),
            State::Depositing(_) => Err(EngineError::Pending {
                order_number: order.order_number.to_string(),
                detail: "the deposit is not confirmed yet".into(),
            }),
            other => Err(EngineError::BankRefused {
                message: format!(
                    "банк не списал сумму, заказ в состоянии «{}»",
                    other.russian()
                ),
                detail: format!("state after deposit.do: {}", other.name()),
            }),
        }
    }

    /// A slip printed again on someone's request: a line in the order's history.
    pub async fn note_reprint(
        &self,
        id: &uuid::Uuid,
        slip: &str,
        russian: &str,
        actor: Option<&Actor>,
    ) -> Result<Order, EngineError> {
        let order = self.get(id)?;
        let _held = self.lock_order(&order).await?;
        let order = self.get(id)?;
        self.transition_by(
            &order,
            Input::Reprinted {
                slip: slip.to_string(),
                russian: russian.to_string(),
            },
            actor,
        )
        .await
    }

    /// What became of the payment link's SMS: a line in the order's history.
    pub async fn note_sms(
        &self,
        id: &uuid::Uuid,
        note: crate::orders::event::SmsNote,
    ) -> Result<Order, EngineError> {
        let order = self.get(id)?;
        let _held = self.lock_order(&order).await?;
        let order = self.get(id)?;
        self.transition_by(&order, Input::Sms(note), None).await
    }

    /// Reverses a hold, or a payment on its own Moscow day. The gateway allows one try: a
    /// failed reversal is reported, never repeated.
    pub async fn reverse(
        &self,
        id: &uuid::Uuid,
        actor: Option<&Actor>,
    ) -> Result<Order, EngineError> {
        let order = self.get(id)?;
        let _held = self.lock_order(&order).await?;
        let order = self.get(id)?;
        order.check_reversal(self.now())?;
        let order = self
            .transition_by(&order, Input::ReversalStarted, actor)
            .await?;
        let State::Reversing(bank) = &order.state else {
            return Ok(order);
        };
        // A return receipt only for money taken (a hold's release owes none).
        let cart = (!order.deposited.is_zero())
            .then(|| {
                self.bank_cart(
                    &order,
                    crate::orders::ReceiptKind::SellReturn,
                    order.deposited,
                    &crate::orders::receipt::Movement::Reversal,
                )
            })
            .flatten();
        let result = self
            .journaled(
                Method::Reverse,
                &order.order_number,
                self.inner
                    .gateway
                    .reverse_with(&bank.id, None, cart.as_ref()),
            )
            .await;
        self.settle_action(order, result, |o| matches!(o.state, State::Reversed(_)))
            .await
    }

    /// Refunds `amount` (None = all that is left). `key` identifies this refund request: the
    /// same key again returns the order as it stands and never refunds twice.
    pub async fn refund(
        &self,
        id: &uuid::Uuid,
        amount: Option<Kopecks>,
        key: &IdempotencyKey,
        actor: Option<&Actor>,
    ) -> Result<Order, EngineError> {
        let order = self.get(id)?;
        let _held = self.lock_order(&order).await?;
        let order = self.get(id)?;
        if let Some(existing) = order.refunds.iter().find(|r| &r.key == key) {
            return match existing.status {
                RefundStatus::Pending => Ok(self.look_locked(order).await?.order),
                _ => Ok(order),
            };
        }
        let amount = order.check_refund(amount)?;
        let order = self
            .transition_by(
                &order,
                Input::RefundStarted {
                    key: key.clone(),
                    amount,
                },
                actor,
            )
            .await?;
        let State::Refunding(bank) = &order.state else {
            return Ok(order);
        };
        let cart = self.bank_cart(
            &order,
            crate::orders::ReceiptKind::SellReturn,
            amount,
            &crate::orders::receipt::Movement::Refund(Some(key.clone())),
        );
        let result = self
            .journaled(
                Method::Refund,
                &order.order_number,
                self.inner
                    .gateway
                    .refund_with(&bank.id, amount, Some(key.as_str()), cart.as_ref()),
            )
            .await;
        let key = key.clone();
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
        let settled = match self.status_of(&order).await {
            Ok(report) => self.act_on(order, &report).await?,
            Err(status_error) => {
                return match &result {
                    Err(e) if !e.outcome_unknown() => {
                        let input = match order.pending_refund() {
                            Some(refund) if matches!(order.state, State::Refunding(_)) => {
                                Input::RefundFailed {
                                    key: refund.key.clone(),
                                    why: Reason::from(e),
                                }
                            }
                            _ => Input::ReversalFailed {
                                why: Reason::from(e),
                            },
                        };
                        self.transition(&order, input).await?;
                        Err(bank_refused(e))
                    }
                    Err(e) => Err(EngineError::Pending {
                        order_number: order.order_number.to_string(),
                        detail: e.to_string(),
                    }),
                    Ok(()) => Err(EngineError::Pending {
                        order_number: order.order_number.to_string(),
                        detail: status_error.to_string(),
                    }),
                }
            }
        };
        if succeeded(&settled) {
            return Ok(settled);
        }
        if settled.state.is_transitional() {
            return Err(EngineError::Pending {
                order_number: settled.order_number.to_string(),
                detail: "the gateway has not confirmed it yet".into(),
            });
        }
        Err(match &result {
            Err(e) => bank_refused(e),
            Ok(()) => EngineError::BankRefused {
                message: format!(
                    "банк не подтвердил операцию, заказ в состоянии «{}»",
                    settled.state.russian()
                ),
                detail: format!("state after the call: {}", settled.state.name()),
            },
        })
    }
}
