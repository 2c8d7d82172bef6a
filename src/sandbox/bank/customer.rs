//! What the customer does on the payment page, and what time does: pay, refuse, let the
//! lifetime run out.

use chrono::{DateTime, Utc};

use super::{
    accept_payment, page_state_text, refuse, Bank, Notice, Outcome, Refusal,
    ACTION_CUSTOMER_DECLINED, ACTION_SESSION_EXPIRED,
};
use crate::gateway::OrderStatus;
use crate::money::Kopecks;

impl Bank {
    /// The customer paid on the payment page.
    pub fn customer_pays(&mut self, order_id: &str, now: DateTime<Utc>) -> Outcome<OrderStatus> {
        let mut notices = Vec::new();
        let order = self.orders.get_mut(order_id).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        if order.status != OrderStatus::Registered {
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

    /// The customer refused to pay on the payment page.
    pub fn customer_declines(
        &mut self,
        order_id: &str,
        now: DateTime<Utc>,
    ) -> Outcome<OrderStatus> {
        let mut notices = Vec::new();
        let order = self.orders.get_mut(order_id).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        if order.status != OrderStatus::Registered {
            return refuse(7, page_state_text(order.status));
        }
        order.status = OrderStatus::Declined;
        order.action_code = ACTION_CUSTOMER_DECLINED;
        order.action_text = "Покупатель отказался от оплаты частями".into();
        let operation = if order.two_stage {
            "approved"
        } else {
            "deposited"
        };
        notices.push(order.notice(operation, 0, Some(order.amount)));
        let number = order.number.clone();
        self.record(
            "page:decline",
            now,
            Some(order_id.into()),
            Some(number),
            Kopecks::ZERO,
            "ok".into(),
        );
        Ok((OrderStatus::Declined, notices))
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
