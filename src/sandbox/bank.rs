//! The bank's side of the contract: orders, their states and amounts, and the rules that
//! refuse an operation. Pure: the caller passes the time and sends the notices it returns.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::gateway::{
    ActionCode, BindingInfo, Feature, Method, NameValue, OrderStatus, OrderStatusReport,
    PaymentAmountInfo, PaymentState, CURRENCY_RUB,
};
use crate::money::{Kopecks, MAX_KOPECKS};
use crate::moscow;

/// The bank's "no attempt yet" action code.
pub const ACTION_NO_ATTEMPT: i64 = -100;
/// The action code for a lifetime that ran out.
pub const ACTION_SESSION_EXPIRED: i64 = -2007;
/// The sandbox's action code for a customer who refused the installment plan.
pub const ACTION_CUSTOMER_DECLINED: i64 = -2006;

const MAX_ORDER_NUMBER: usize = 32;
const MAX_DESCRIPTION: usize = 99;

/// The gateway said no: `errorCode` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
}

fn refuse<T>(code: i64, message: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        code,
        message: message.into(),
    })
}

/// Request parameters as received (query and form merged, first occurrence wins).
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Params {
        Params(pairs)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that is present and not blank.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    fn required(&self, name: &str, what: &str) -> Result<&str, Refusal> {
        self.value(name).ok_or(Refusal {
            code: 4,
            message: format!("{what} is empty"),
        })
    }
}

/// A state change the merchant is told about by callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub md_order: String,
    pub order_number: String,
    pub operation: &'static str,
    pub status: u8,
    pub amount: Option<Kopecks>,
    /// `dynamicCallbackUrl` of the order, when it has one.
    pub callback_url: Option<String>,
}

/// One call as the bank saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub seq: u64,
    pub at: DateTime<Utc>,
    /// `register.do`, …, or `page:pay`, `page:decline`, `expiry`.
    pub operation: String,
    pub order_id: Option<String>,
    pub order_number: Option<String>,
    pub amount: Kopecks,
    /// `ok`, or `errorCode N: message`.
    pub outcome: String,
}

impl LedgerEntry {
    pub fn ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// An order as the bank holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerOrder {
    pub order_id: String,
    pub order_number: String,
    pub amount: Kopecks,
    pub two_stage: bool,
    pub order_status: u8,
    pub approved: Kopecks,
    pub deposited: Kopecks,
    pub refunded: Kopecks,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub form_url: String,
}

#[derive(Debug, Clone)]
struct Order {
    id: String,
    number: String,
    amount: Kopecks,
    two_stage: bool,
    description: Option<String>,
    return_url: String,
    fail_url: String,
    client_id: Option<String>,
    auto_payment: bool,
    json_params: BTreeMap<String, String>,
    callback_url: Option<String>,
    created: DateTime<Utc>,
    expires: DateTime<Utc>,
    status: OrderStatus,
    action_code: i64,
    action_text: String,
    approved: Kopecks,
    deposited: Kopecks,
    refunded: Kopecks,
    paid_at: Option<DateTime<Utc>>,
    reversal_attempted: bool,
    refund_ids: HashMap<String, Kopecks>,
    binding_id: Option<String>,
    form_url: String,
}

impl Order {
    fn payment_state(&self) -> PaymentState {
        match self.status {
            OrderStatus::Registered | OrderStatus::Authenticating => PaymentState::Created,
            OrderStatus::Held => PaymentState::Approved,
            OrderStatus::Deposited => PaymentState::Deposited,
            OrderStatus::Reversed => PaymentState::Reversed,
            OrderStatus::Refunded => PaymentState::Refunded,
            OrderStatus::Declined => PaymentState::Declined,
        }
    }

    fn notice(&self, operation: &'static str, status: u8, amount: Option<Kopecks>) -> Notice {
        Notice {
            md_order: self.id.clone(),
            order_number: self.number.clone(),
            operation,
            status,
            amount,
            callback_url: self.callback_url.clone(),
        }
    }
}

/// The bank.
#[derive(Debug, Default)]
pub struct Bank {
    orders: HashMap<String, Order>,
    by_number: HashMap<String, String>,
    /// bindingId → clientId
    bindings: HashMap<String, String>,
    ledger: Vec<LedgerEntry>,
}

/// What an operation did: its JSON-ready outcome and the callbacks to send.
pub type Outcome<T> = Result<(T, Vec<Notice>), Refusal>;

impl Bank {
    pub fn new() -> Bank {
        Bank::default()
    }

    /// Runs a gateway method; records it in the ledger whatever the outcome. The caller runs
    /// [`Bank::expire_due`] first, so a lapsed order answers as declined.
    pub fn call(
        &mut self,
        method: Method,
        p: &Params,
        now: DateTime<Utc>,
        page_base: &Url,
    ) -> Outcome<serde_json::Value> {
        let result = match method {
            Method::Register => self.register(p, false, now, page_base),
            Method::RegisterPreAuth => self.register(p, true, now, page_base),
            Method::Deposit => self.deposit(p, now),
            Method::Reverse => self.reverse(p, now),
            Method::Refund => self.refund(p),
            Method::Decline => self.decline(p),
            Method::OrderStatusExtended => self.status(p),
            Method::PaymentOrderBinding => self.pay_with_binding(p, now),
        };
        let (order_id, order_number, amount) = self.subject(p);
        let outcome = match &result {
            Ok(_) => "ok".to_string(),
            Err(r) => format!("errorCode {}: {}", r.code, r.message),
        };
        self.record(method.path(), now, order_id, order_number, amount, outcome);
        result
    }

    /// Which order a call was about, for the ledger.
    fn subject(&self, p: &Params) -> (Option<String>, Option<String>, Kopecks) {
        let id = p
            .value("orderId")
            .or(p.value("mdOrder"))
            .map(str::to_string);
        let number = p.value("orderNumber").map(str::to_string);
        let order = id
            .as_deref()
            .and_then(|id| self.orders.get(id))
            .or_else(|| number.as_deref().and_then(|n| self.find_by_number(n)));
        let amount = p
            .value("amount")
            .and_then(|a| a.parse::<u64>().ok())
            .and_then(Kopecks::new)
            .unwrap_or_default();
        match order {
            Some(o) => (Some(o.id.clone()), Some(o.number.clone()), amount),
            None => (id, number, amount),
        }
    }

    fn record(
        &mut self,
        operation: &str,
        at: DateTime<Utc>,
        order_id: Option<String>,
        order_number: Option<String>,
        amount: Kopecks,
        outcome: String,
    ) {
        let seq = self.ledger.len() as u64 + 1;
        self.ledger.push(LedgerEntry {
            seq,
            at,
            operation: operation.to_string(),
            order_id,
            order_number,
            amount,
            outcome,
        });
    }

    fn find_by_number(&self, number: &str) -> Option<&Order> {
        self.by_number
            .get(number)
            .and_then(|id| self.orders.get(id))
    }

    fn order_mut(&mut self, p: &Params) -> Result<&mut Order, Refusal> {
        let id = p.required("orderId", "Order ID")?;
        self.orders.get_mut(id).ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })
    }

    fn register(
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
            paid_at: None,
            reversal_attempted: false,
            refund_ids: HashMap::new(),
            binding_id: None,
            form_url: form_url.clone(),
        };
        self.by_number.insert(number, id.clone());
        self.orders.insert(id.clone(), order);
        // The legacy host omits errorCode on a successful register.
        let reply = serde_json::json!({"orderId": id, "formUrl": form_url});
        Ok((reply, Vec::new()))
    }

    fn deposit(&mut self, p: &Params, now: DateTime<Utc>) -> Outcome<serde_json::Value> {
        let amount = parse_amount_or_zero(p)?;
        let order = self.order_mut(p)?;
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
        order.deposited = amount;
        order.status = OrderStatus::Deposited;
        order.paid_at = Some(now);
        let notice = order.notice("deposited", 1, Some(amount));
        Ok((success_number(), vec![notice]))
    }

    fn reverse(&mut self, p: &Params, now: DateTime<Utc>) -> Outcome<serde_json::Value> {
        let partial = p.value("amount").is_some();
        let order = self.order_mut(p)?;
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
        order.status = OrderStatus::Reversed;
        let notice = order.notice("reversed", 1, Some(amount));
        Ok((success_number(), vec![notice]))
    }

    fn refund(&mut self, p: &Params) -> Outcome<serde_json::Value> {
        let asked = match p.get("amount") {
            None => return refuse(4, "Amount is empty"),
            Some(_) => parse_amount_or_zero(p)?,
        };
        let refund_id = parse_json_params(p)?.remove("externalRefundId");
        let order = self.order_mut(p)?;
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

    fn decline(&mut self, p: &Params) -> Outcome<serde_json::Value> {
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
        if order.status != OrderStatus::Registered {
            return refuse(7, "Only an order that is not paid can be declined");
        }
        order.status = OrderStatus::Declined;
        order.action_code = ACTION_CUSTOMER_DECLINED;
        order.action_text = "Заказ отменён магазином".into();
        // The merchant's own decline.do is not notified back by callback.
        Ok((success_number(), Vec::new()))
    }

    fn status(&mut self, p: &Params) -> Outcome<serde_json::Value> {
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

    fn pay_with_binding(&mut self, p: &Params, now: DateTime<Utc>) -> Outcome<serde_json::Value> {
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
        let reply = serde_json::json!({"errorCode": 0, "redirect": order.return_url});
        Ok((reply, vec![notice]))
    }

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

    /// What the payment page needs to show.
    pub fn page_view(&self, order_id: &str) -> Option<PageOrder> {
        let o = self.orders.get(order_id)?;
        Some(PageOrder {
            order_number: o.number.clone(),
            amount: o.amount,
            description: o.description.clone(),
            status: o.status,
            expires: o.expires,
            return_url: if o.status == OrderStatus::Declined {
                o.fail_url.clone()
            } else {
                o.return_url.clone()
            },
        })
    }

    pub fn report(&self, order_id: &str) -> Option<OrderStatusReport> {
        self.orders.get(order_id).map(report)
    }

    pub fn ledger_orders(&self) -> Vec<LedgerOrder> {
        let mut orders: Vec<LedgerOrder> = self
            .orders
            .values()
            .map(|o| LedgerOrder {
                order_id: o.id.clone(),
                order_number: o.number.clone(),
                amount: o.amount,
                two_stage: o.two_stage,
                order_status: o.status.code(),
                approved: o.approved,
                deposited: o.deposited,
                refunded: o.refunded,
                created: o.created,
                expires: o.expires,
                paid_at: o.paid_at,
                form_url: o.form_url.clone(),
            })
            .collect();
        orders.sort_by(|a, b| {
            a.created
                .cmp(&b.created)
                .then(a.order_number.cmp(&b.order_number))
        });
        orders
    }

    pub fn ledger_operations(&self) -> Vec<LedgerEntry> {
        self.ledger.clone()
    }
}

/// The order for the payment page.
#[derive(Debug, Clone)]
pub struct PageOrder {
    pub order_number: String,
    pub amount: Kopecks,
    pub description: Option<String>,
    pub status: OrderStatus,
    pub expires: DateTime<Utc>,
    pub return_url: String,
}

fn page_state_text(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Held | OrderStatus::Deposited => "Заказ уже оплачен",
        OrderStatus::Declined => "Заказ закрыт: оплата отклонена или время на оплату истекло",
        OrderStatus::Reversed => "Оплата заказа отменена",
        OrderStatus::Refunded => "По заказу оформлен возврат",
        OrderStatus::Registered | OrderStatus::Authenticating => "Заказ ожидает оплаты",
    }
}

/// A successful payment: a hold for two-stage orders, money taken for one-stage.
fn accept_payment(order: &mut Order, now: DateTime<Utc>) -> Notice {
    order.action_code = 0;
    order.action_text = "Успешно".into();
    order.approved = order.amount;
    if order.two_stage {
        order.status = OrderStatus::Held;
        order.notice("approved", 1, Some(order.amount))
    } else {
        order.status = OrderStatus::Deposited;
        order.deposited = order.amount;
        order.paid_at = Some(now);
        order.notice("deposited", 1, Some(order.amount))
    }
}

fn report(o: &Order) -> OrderStatusReport {
    let mut merchant_order_params: Vec<NameValue> = o
        .json_params
        .iter()
        .map(|(name, value)| NameValue {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    merchant_order_params.sort_by(|a, b| a.name.cmp(&b.name));
    OrderStatusReport {
        order_number: o.number.clone(),
        order_status: Some(o.status),
        action_code: Some(ActionCode::from_code(o.action_code)),
        action_code_description: Some(o.action_text.clone()),
        amount: o.amount,
        currency: Some(CURRENCY_RUB.to_string()),
        date: Some(o.created.timestamp_millis()),
        order_description: o.description.clone(),
        payment_amount_info: Some(PaymentAmountInfo {
            approved_amount: o.approved,
            deposited_amount: o.deposited,
            refunded_amount: o.refunded,
            payment_state: o.payment_state(),
        }),
        merchant_order_params,
        attributes: vec![NameValue {
            name: "mdOrder".into(),
            value: o.id.clone(),
        }],
        binding_info: o.client_id.as_ref().map(|client| BindingInfo {
            client_id: Some(client.clone()),
            binding_id: o.binding_id.clone(),
        }),
        card_auth_info: (o.approved.get() > 0).then(|| {
            serde_json::json!({"maskedPan": "220220**1111", "cardholderName": "SANDBOX INSTALLMENTS"})
        }),
    }
}

/// `{"errorCode":0,...}` with a number, as deposit/reverse/refund answer on the legacy host.
fn success_number() -> serde_json::Value {
    serde_json::json!({"errorCode": 0, "errorMessage": "Успешно"})
}

fn parse_kopecks(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| *v <= MAX_KOPECKS)
}

fn parse_register_amount(p: &Params) -> Result<Kopecks, Refusal> {
    match p.get("amount") {
        None => refuse(4, "Amount is not specified"),
        Some(a) if a.trim().is_empty() => refuse(12, "Empty amount"),
        Some(a) => match parse_kopecks(a).filter(|v| *v > 0).and_then(Kopecks::new) {
            Some(k) => Ok(k),
            None => refuse(
                5,
                "Wrong amount: a positive integer number of kopecks, at most 12 digits",
            ),
        },
    }
}

fn parse_amount_or_zero(p: &Params) -> Result<Kopecks, Refusal> {
    match p.value("amount") {
        None => Ok(Kopecks::ZERO),
        Some(a) => parse_kopecks(a).and_then(Kopecks::new).ok_or(Refusal {
            code: 5,
            message: "Wrong amount: an integer number of kopecks, at most 12 digits".into(),
        }),
    }
}

fn check_absolute(name: &str, url: &str) -> Result<(), Refusal> {
    match Url::parse(url) {
        Ok(_) => Ok(()),
        Err(_) => refuse(5, format!("{name} must be an absolute URL")),
    }
}

fn parse_features(p: &Params) -> Result<Vec<Feature>, Refusal> {
    let Some(text) = p.value("features") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(|f| {
            Feature::parse(f.trim()).ok_or(Refusal {
                code: 14,
                message: format!("Features are malformed: unknown feature {:?}", f.trim()),
            })
        })
        .collect()
}

fn parse_json_params(p: &Params) -> Result<BTreeMap<String, String>, Refusal> {
    let Some(text) = p.value("jsonParams") else {
        return Ok(BTreeMap::new());
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|_| Refusal {
        code: 5,
        message: "jsonParams is not valid JSON".into(),
    })?;
    let Some(map) = value.as_object() else {
        return refuse(5, "jsonParams must be a JSON object");
    };
    Ok(map
        .iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect())
}

fn order_expiry(p: &Params, now: DateTime<Utc>) -> Result<DateTime<Utc>, Refusal> {
    if let Some(text) = p.value("expirationDate") {
        let local =
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S").map_err(|_| Refusal {
                code: 5,
                message: "expirationDate must be yyyy-MM-ddTHH:mm:ss (Moscow time)".into(),
            })?;
        let at = moscow::from_local(local).ok_or(Refusal {
            code: 5,
            message: "expirationDate is not a valid Moscow time".into(),
        })?;
        if at <= now {
            return refuse(5, "expirationDate is in the past");
        }
        return Ok(at);
    }
    let secs = match p.value("sessionTimeoutSecs") {
        None => 1200,
        Some(s) => s
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0 && *s <= 30 * 86_400)
            .ok_or(Refusal {
                code: 5,
                message: "sessionTimeoutSecs must be a positive number of seconds".into(),
            })?,
    };
    Ok(now + chrono::Duration::seconds(secs))
}
