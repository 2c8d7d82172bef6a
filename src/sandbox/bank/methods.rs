//! The gateway's methods as the bank runs them: register, deposit, reverse, refund, decline,
//! the status report and payment by binding.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use url::Url;

use super::params::{
    check_absolute, order_expiry, parse_amount_or_zero, parse_features, parse_json_params,
    parse_register_amount,
};
use super::{
    accept_payment, fiscal, issue, order_in, refuse, report, Bank, Order, Outcome, Params, Refusal,
    ACTION_NO_ATTEMPT, MAX_DESCRIPTION, MAX_ORDER_NUMBER,
};
use crate::gateway::{Feature, OrderStatus, CURRENCY_RUB};
use crate::money::Kopecks;
use crate::moscow;

impl Bank {
    pub(super) fn register(
        &mut self,
        p: &Params,
        two_stage: bool,
        now: DateTime<Utc>,
        page_base: &Url,
    ) -> Outcome<serde_json::Value> {
        let number = p.required("orderNumber", "Order number")?.to_string();
        let amount = parse_register_amount(p)?;
        let return_url = p.required("returnUrl", "Return URL")?.to_string();
        if number.chars().count() > MAX_ORDER_NUMBER {
            return refuse(
                5,
                format!("Order number is longer than {MAX_ORDER_NUMBER} characters"),
            );
        }
        if let Some(currency) = p.value("currency") {
            if currency != CURRENCY_RUB {
                return refuse(3, "Unknown currency");
            }
        }
        check_absolute("returnUrl", &return_url)?;
        let fail_url = match p.value("failUrl") {
            Some(u) => {
                check_absolute("failUrl", u)?;
                u.to_string()
            }
            None => return_url.clone(),
        };
        let description = p.value("description").map(str::to_string);
        if let Some(d) = &description {
            if d.chars().count() > MAX_DESCRIPTION {
                return refuse(
                    5,
                    format!("Description is longer than {MAX_DESCRIPTION} characters"),
                );
            }
            if d.contains(['%', '+', '\r', '\n']) {
                return refuse(
                    5,
                    "Description contains forbidden characters (%, +, CR, LF)",
                );
            }
        }
        let features = parse_features(p)?;
        let client_id = p.value("clientId").map(str::to_string);
        let auto_payment = features.contains(&Feature::AutoPayment);
        if auto_payment && client_id.is_none() {
            return refuse(4, "Client ID is empty (AUTO_PAYMENT needs clientId)");
        }
        let json_params = parse_json_params(p)?;
        let phone = p.value("phone").map(check_phone).transpose()?;
        let email = p.value("email").map(check_email).transpose()?;
        let cart = fiscal::check(p, amount, fiscal::Expect::Sell)?;
        let expires = order_expiry(p, now)?;
        if self.by_number.contains_key(&number) {
            return refuse(1, "Order with this number was already processed");
        }

        let id = uuid::Uuid::new_v4().to_string();
        let form_url = page_base
            .join(&format!("sandbox/pay/{id}"))
            .map(|u| u.to_string())
            .unwrap_or_default();
        let order = Order {
            id: id.clone(),
            number: number.clone(),
            amount,
            two_stage,
            description,
            return_url,
            fail_url,
            client_id,
            auto_payment,
            json_params,
            callback_url: p.value("dynamicCallbackUrl").map(str::to_string),
            created: now,
            expires,
            status: OrderStatus::Registered,
            action_code: ACTION_NO_ATTEMPT,
            action_text: String::new(),
            approved: Kopecks::ZERO,
            deposited: Kopecks::ZERO,
            refunded: Kopecks::ZERO,
            authorized: None,
            paid_at: None,
            attempts_left: super::ATTEMPTS,
            reversal_attempted: false,
            refund_ids: HashMap::new(),
            binding_id: None,
            form_url: form_url.clone(),
            phone,
            email,
            cart,
            receipts: Vec::new(),
        };
        self.by_number.insert(number, id.clone());
        self.orders.insert(id.clone(), order);
        // The legacy host omits errorCode on a successful register.
        let reply = serde_json::json!({"orderId": id, "formUrl": form_url});
        Ok((reply, Vec::new()))
    }

    pub(super) fn deposit(&mut self, p: &Params, now: DateTime<Utc>) -> Outcome<serde_json::Value> {
        let amount = parse_amount_or_zero(p)?;
        let kkt = &mut self.kkt;
        let order = order_in(&mut self.orders, p)?;
        if order.status != OrderStatus::Held {
            return refuse(
                7,
                "Deposit is possible only for an order with a held amount",
            );
        }
        let amount = if amount.is_zero() {
            order.approved
        } else {
            amount
        };
        if amount.get() < 100 {
            return refuse(5, "Deposit amount must be at least 1 rouble");
        }
        if amount > order.approved {
            return refuse(5, "Deposit amount exceeds the held amount");
        }
        let cart = fiscal::check(p, amount, fiscal::Expect::Sell)?;
        order.deposited = amount;
        order.status = OrderStatus::Deposited;
        order.paid_at = Some(now);
        if let (Some(cart), Some(_)) = (cart, &order.cart) {
            // What is taken is what the completion's cart lists.
            order.cart = Some(cart);
        }
        issue(kkt, order, "COMPLETION", false, amount, now);
        let notice = order.notice("deposited", 1, Some(amount));
        Ok((success_number(), vec![notice]))
    }

    pub(super) fn reverse(&mut self, p: &Params, now: DateTime<Utc>) -> Outcome<serde_json::Value> {
        let partial = p.value("amount").is_some();
        let kkt = &mut self.kkt;
        let order = order_in(&mut self.orders, p)?;
        if order.reversal_attempted {
            return refuse(
                7,
                "Reversal was already attempted for this order and cannot be repeated",
            );
        }
        order.reversal_attempted = true;
        if partial {
            let full = match order.status {
                OrderStatus::Held => order.approved,
                _ => order.deposited,
            };
            let asked = parse_amount_or_zero(p)?;
            if !asked.is_zero() && asked != full {
                return refuse(5, "Partial reversal is not allowed for this merchant");
            }
        }
        let amount = match order.status {
            OrderStatus::Held => order.approved,
            OrderStatus::Deposited => {
                let paid_day = order.paid_at.map(moscow::date);
                if paid_day != Some(moscow::date(now)) {
                    return refuse(
                        7,
                        "Reversal is possible only on the day of payment (until 24:00 Moscow time); use refund",
                    );
                }
                order.deposited
            }
            _ => return refuse(7, "Reversal is not possible in the order's current state"),
        };
        if order.status == OrderStatus::Deposited {
            fiscal::check(p, amount, fiscal::Expect::SellRefund)?;
            issue(kkt, order, "REVERSAL", true, amount, now);
        }
        order.status = OrderStatus::Reversed;
        let notice = order.notice("reversed", 1, Some(amount));
        Ok((success_number(), vec![notice]))
    }

    pub(super) fn refund(&mut self, p: &Params, now: DateTime<Utc>) -> Outcome<serde_json::Value> {
        let asked = match p.get("amount") {
            None => return refuse(4, "Amount is empty"),
            Some(_) => parse_amount_or_zero(p)?,
        };
        let refund_id = parse_json_params(p)?.remove("externalRefundId");
        let kkt = &mut self.kkt;
        let order = order_in(&mut self.orders, p)?;
        if let Some(id) = &refund_id {
            if let Some(done) = order.refund_ids.get(id) {
                // The same refund again: success, nothing moves.
                if !asked.is_zero() && asked != *done {
                    return refuse(5, "externalRefundId was already used with another amount");
                }
                return Ok((success_number(), Vec::new()));
            }
        }
        if !matches!(order.status, OrderStatus::Deposited | OrderStatus::Refunded) {
            return refuse(7, "Refund is possible only for a deposited order");
        }
        let remaining = order.deposited.saturating_sub(order.refunded);
        let amount = if asked.is_zero() { remaining } else { asked };
        if amount.is_zero() || amount > remaining {
            return refuse(5, "Refund amount exceeds the deposited amount");
        }
        fiscal::check(p, amount, fiscal::Expect::SellRefund)?;
        issue(kkt, order, "REFUND", true, amount, now);
        order.refunded = order
            .refunded
            .checked_add(amount)
            .unwrap_or(order.deposited);
        order.status = OrderStatus::Refunded;
        if let Some(id) = refund_id {
            order.refund_ids.insert(id, amount);
        }
        let notice = order.notice("refunded", 1, Some(amount));
        Ok((success_number(), vec![notice]))
    }

    pub(super) fn decline(&mut self, p: &Params) -> Outcome<serde_json::Value> {
        let id = match (p.value("orderId"), p.value("orderNumber")) {
            (Some(id), _) => id.to_string(),
            (None, Some(n)) => match self.by_number.get(n) {
                Some(id) => id.clone(),
                None => return refuse(6, "Order not found"),
            },
            (None, None) => return refuse(1, "Expected orderId or orderNumber"),
        };
        let order = self.orders.get_mut(&id).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        if !matches!(
            order.status,
            OrderStatus::Registered | OrderStatus::Authenticating
        ) {
            return refuse(7, "Only an order that is not paid can be declined");
        }
        // Not a payment attempt: the last attempt's actionCode stays as it was.
        order.status = OrderStatus::Declined;
        // The merchant's own decline.do is not notified back by callback.
        Ok((success_number(), Vec::new()))
    }

    /// getOrderStatus.do: the older short reply, fields capitalised as the bank sends them.
    pub(super) fn short_status(&mut self, p: &Params) -> Outcome<serde_json::Value> {
        let order = match (p.value("orderId"), p.value("orderNumber")) {
            (Some(id), _) => self.orders.get(id),
            (None, Some(n)) => self.find_by_number(n),
            (None, None) => return refuse(1, "Expected orderId or orderNumber"),
        };
        let Some(o) = order else {
            return refuse(6, "Order not found");
        };
        let mut reply = serde_json::json!({
            "ErrorCode": "0",
            "ErrorMessage": "Успешно",
            "OrderStatus": o.status.code(),
            "OrderNumber": o.number,
            "Amount": o.amount.get(),
            "currency": CURRENCY_RUB,
            "depositAmount": o.deposited.get(),
        });
        if o.approved.get() > 0 {
            reply["Pan"] = "220220**1111".into();
            reply["expiration"] = "203012".into();
            reply["cardholderName"] = "SANDBOX INSTALLMENTS".into();
            reply["approvalCode"] = "123456".into();
        }
        Ok((reply, Vec::new()))
    }

    pub(super) fn status(&mut self, p: &Params) -> Outcome<serde_json::Value> {
        let order = match (p.value("orderId"), p.value("orderNumber")) {
            (Some(id), _) => self.orders.get(id),
            (None, Some(n)) => self.find_by_number(n),
            (None, None) => return refuse(1, "Expected orderId or orderNumber"),
        };
        let Some(order) = order else {
            return refuse(6, "Order not found");
        };
        let mut value = serde_json::to_value(report(order)).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("errorCode".into(), "0".into());
            map.insert("errorMessage".into(), "Успешно".into());
        }
        Ok((value, Vec::new()))
    }

    pub(super) fn pay_with_binding(
        &mut self,
        p: &Params,
        now: DateTime<Utc>,
    ) -> Outcome<serde_json::Value> {
        let md_order = p.required("mdOrder", "mdOrder")?.to_string();
        let binding = p.required("bindingId", "Binding ID")?.to_string();
        p.required("ip", "IP address")?;
        let Some(binding_client) = self.bindings.get(&binding).cloned() else {
            return refuse(2, "Binding not found");
        };
        let order = self.orders.get_mut(&md_order).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        if order.client_id.as_deref() != Some(binding_client.as_str()) {
            return refuse(2, "Binding belongs to another client");
        }
        if order.status != OrderStatus::Registered {
            return refuse(7, "The order is already paid or closed");
        }
        order.binding_id = Some(binding);
        let notice = accept_payment(order, now);
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
        let reply = serde_json::json!({"errorCode": 0, "redirect": order.return_url});
        Ok((reply, vec![notice]))
    }
}

/// `{"errorCode":0,...}` with a number, as deposit/reverse/refund answer on the legacy host.
pub(super) fn success_number() -> serde_json::Value {
    serde_json::json!({"errorCode": 0, "errorMessage": "Успешно"})
}

/// The customer's phone as the bank takes it: `+7` and ten digits, or the same without `+`.
fn check_phone(phone: &str) -> Result<String, Refusal> {
    let digits = phone.strip_prefix('+').unwrap_or(phone);
    if digits.len() == 11 && digits.starts_with('7') && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(phone.to_string())
    } else {
        refuse(5, "Phone is invalid (expected +7XXXXXXXXXX)")
    }
}

/// The customer's e-mail: one `@` with something on each side and a dot in the host.
fn check_email(email: &str) -> Result<String, Refusal> {
    match email.split_once('@') {
        Some((local, host))
            if !local.is_empty()
                && host.contains('.')
                && email.len() <= 254
                && !email.contains(' ') =>
        {
            Ok(email.to_string())
        }
        _ => refuse(5, "Email is invalid"),
    }
}
