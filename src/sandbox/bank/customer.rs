//! What the customer does on the payment page, and what time does: pay, refuse, let the
//! lifetime run out.

use chrono::{DateTime, Utc};

use super::{
    accept_payment, issue, page_state_text, refuse, AttemptFailure, Bank, Notice, Outcome, Refusal,
    ACTION_ATTEMPTS_EXHAUSTED, ACTION_SESSION_EXPIRED,
};
use crate::gateway::OrderStatus;
use crate::money::Kopecks;

impl Bank {
    /// The customer paid on the payment page (also at the end of a 3-D Secure check).
    pub fn customer_pays(&mut self, order_id: &str, now: DateTime<Utc>) -> Outcome<OrderStatus> {
        let mut notices = Vec::new();
        let order = self.orders.get_mut(order_id).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        if !payable(order.status) {
            let result = refuse(7, page_state_text(order.status));
            self.record(
                "page:pay",
                now,
                Some(order_id.into()),
                None,
                Kopecks::ZERO,
                "refused".into(),
            );
            return result;
        }
        notices.push(accept_payment(order, now));
        if !order.two_stage {
            issue(
                &mut self.kkt,
                order,
                "AUTHORIZATION",
                false,
                order.amount,
                now,
            );
        }
        if order.auto_payment && order.binding_id.is_none() {
            let binding = uuid::Uuid::new_v4().to_string();
            order.binding_id = Some(binding.clone());
            if let Some(client) = order.client_id.clone() {
                self.bindings.insert(binding, client);
            }
        }
        let (status, number, amount) = (order.status, order.number.clone(), order.amount);
        self.record(
            "page:pay",
            now,
            Some(order_id.into()),
            Some(number),
            amount,
            "ok".into(),
        );
        Ok((status, notices))
    }

    /// A payment attempt fails. The order stays payable (orderStatus 0, the failure's action
    /// code) until the last allowed attempt, which closes it (orderStatus 6, actionCode −2013).
    /// Each failure is called back with status 0, as the bank does.
    pub fn attempt_fails(
        &mut self,
        order_id: &str,
        why: AttemptFailure,
        now: DateTime<Utc>,
    ) -> Outcome<OrderStatus> {
        let order = self.orders.get_mut(order_id).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        if !payable(order.status) {
            return refuse(7, page_state_text(order.status));
        }
        order.attempts_left = order.attempts_left.saturating_sub(1);
        if order.attempts_left == 0 {
            order.status = OrderStatus::Declined;
            order.action_code = ACTION_ATTEMPTS_EXHAUSTED;
            order.action_text = "Исчерпаны попытки оплаты".into();
        } else {
            order.status = OrderStatus::Registered;
            order.action_code = why.action_code();
            order.action_text = why.text().into();
        }
        let operation = if order.two_stage {
            "approved"
        } else {
            "deposited"
        };
        let notice = order.notice(operation, 0, Some(order.amount));
        let (status, number, left) = (order.status, order.number.clone(), order.attempts_left);
        self.record(
            "page:attempt-failed",
            now,
            Some(order_id.into()),
            Some(number),
            Kopecks::ZERO,
            format!("actionCode {}, attempts left {left}", why.action_code()),
        );
        Ok((status, vec![notice]))
    }

    /// The customer's bank is checking them (3-D Secure): orderStatus 5 until they pay or fail.
    pub fn authentication_starts(
        &mut self,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> Outcome<OrderStatus> {
        let order = self.orders.get_mut(order_id).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        if order.status != OrderStatus::Registered {
            return refuse(7, page_state_text(order.status));
        }
        order.status = OrderStatus::Authenticating;
        let number = order.number.clone();
        self.record(
            "page:3ds",
            now,
            Some(order_id.into()),
            Some(number),
            Kopecks::ZERO,
            "ok".into(),
        );
        Ok((OrderStatus::Authenticating, Vec::new()))
    }

    /// Orders whose lifetime ran out unpaid become declined by timeout.
    pub fn expire_due(&mut self, now: DateTime<Utc>) -> Vec<Notice> {
        let mut notices = Vec::new();
        let mut expired = Vec::new();
        for order in self.orders.values_mut() {
            if order.status == OrderStatus::Registered && now >= order.expires {
                order.status = OrderStatus::Declined;
                order.action_code = ACTION_SESSION_EXPIRED;
                order.action_text = "Время сессии истекло".into();
                notices.push(order.notice("declinedByTimeout", 1, Some(order.amount)));
                expired.push((order.id.clone(), order.number.clone()));
            }
        }
        for (id, number) in expired {
            self.record(
                "expiry",
                now,
                Some(id),
                Some(number),
                Kopecks::ZERO,
                "ok".into(),
            );
        }
        notices
    }
}

/// An order the customer can still pay (not yet paid, closed, or in 3-D Secure).
fn payable(status: OrderStatus) -> bool {
    matches!(
        status,
        OrderStatus::Registered | OrderStatus::Authenticating
    )
}
