//! The bank's side of the contract: orders, their states and amounts, and the rules that
//! refuse an operation. Pure: the caller passes the time and sends the notices it returns.

mod customer;
mod fiscal;
mod methods;
mod params;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::gateway::{
    ActionCode, BindingInfo, Method, NameValue, OrderStatus, OrderStatusReport, PaymentAmountInfo,
    PaymentState, CURRENCY_RUB,
};
use crate::money::Kopecks;

pub use fiscal::SandboxReceipt;
pub use params::Params;

/// The bank's "no attempt yet" action code.
pub const ACTION_NO_ATTEMPT: i64 = -100;
/// The action code for a lifetime that ran out.
pub const ACTION_SESSION_EXPIRED: i64 = -2007;
/// The action code of an order closed because its payment attempts are used up.
pub const ACTION_ATTEMPTS_EXHAUSTED: i64 = -2013;
/// How many payment attempts an order allows.
pub const ATTEMPTS: u8 = 3;

/// Why a payment attempt failed, with the bank's action code and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AttemptFailure {
    /// 116: not enough money on the card.
    #[default]
    InsufficientFunds,
    /// −2006: the card's issuer refused the 3-D Secure authentication.
    IssuerRefused3ds,
    /// 101: the card has expired.
    CardExpired,
}

impl AttemptFailure {
    pub fn action_code(self) -> i64 {
        match self {
            AttemptFailure::InsufficientFunds => 116,
            AttemptFailure::IssuerRefused3ds => -2006,
            AttemptFailure::CardExpired => 101,
        }
    }

    pub fn text(self) -> &'static str {
        match self {
            AttemptFailure::InsufficientFunds => "Недостаточно средств на карте",
            AttemptFailure::IssuerRefused3ds => {
                "Банк, выпустивший карту, отклонил проверку 3-D Secure"
            }
            AttemptFailure::CardExpired => "Истёк срок действия карты",
        }
    }
}

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
    /// Payment attempts still allowed.
    pub attempts_left: u8,
    pub action_code: i64,
    /// The customer's phone and e-mail as register.do gave them.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// The cart register.do carried, as the bank read it.
    #[serde(default)]
    pub cart: Option<serde_json::Value>,
    /// The receipts the bank's cloud fiscalisation made for it.
    #[serde(default)]
    pub receipts: Vec<SandboxReceipt>,
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
    /// When the bank authorized the payment (hold or one-stage payment).
    authorized: Option<DateTime<Utc>>,
    paid_at: Option<DateTime<Utc>>,
    attempts_left: u8,
    reversal_attempted: bool,
    refund_ids: HashMap<String, Kopecks>,
    binding_id: Option<String>,
    form_url: String,
    /// The customer's contact as register.do gave it (the installment sign-in, the receipt).
    phone: Option<String>,
    email: Option<String>,
    /// The cart register.do carried (the order is fiscalised by the bank), and the receipts
    /// the bank's cloud made for it.
    cart: Option<fiscal::Cart>,
    receipts: Vec<SandboxReceipt>,
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
    /// The cloud ККТ of the bank's fiscalisation.
    kkt: fiscal::Kkt,
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
            Method::Refund => self.refund(p, now),
            Method::Decline => self.decline(p),
            Method::OrderStatus => self.short_status(p),
            Method::OrderStatusExtended => self.status(p),
            Method::PaymentOrderBinding => self.pay_with_binding(p, now),
            Method::ReceiptStatus => self.receipt_status(p),
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

    /// The next receipt the cloud ККТ makes fails with `receiptStatus` (4, 5 or 6).
    pub fn fail_next_receipt(&mut self, status: i64, text: &str) {
        self.kkt.fail_next = Some((status, text.to_string()));
    }

    /// getReceiptStatus: the receipts of an order (by orderId or orderNumber).
    fn receipt_status(&mut self, p: &Params) -> Outcome<serde_json::Value> {
        let order = match (p.value("orderId"), p.value("orderNumber")) {
            (Some(id), _) => self.orders.get(id),
            (None, Some(n)) => self.find_by_number(n),
            (None, None) => return refuse(4, "orderId or orderNumber is required"),
        }
        .ok_or(Refusal {
            code: 6,
            message: "Order not found".into(),
        })?;
        let receipts: Vec<serde_json::Value> = order
            .receipts
            .iter()
            .map(|r| r.json(&order.number))
            .collect();
        let reply = serde_json::json!({
            "orderId": order.id,
            "orderNumber": order.number,
            "receipts": receipts,
        });
        Ok((reply, Vec::new()))
    }
}

/// The order for the payment page.
#[derive(Debug, Clone)]
pub struct PageOrder {
    pub attempts_left: u8,
    pub last_failure: Option<String>,
    pub order_number: String,
    pub amount: Kopecks,
    pub description: Option<String>,
    pub status: OrderStatus,
    pub expires: DateTime<Utc>,
    pub return_url: String,
}

pub(super) fn page_state_text(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Held | OrderStatus::Deposited => "Заказ уже оплачен",
        OrderStatus::Declined => "Заказ закрыт: оплата отклонена или время на оплату истекло",
        OrderStatus::Reversed => "Оплата заказа отменена",
        OrderStatus::Refunded => "По заказу оформлен возврат",
        OrderStatus::Registered | OrderStatus::Authenticating => "Заказ ожидает оплаты",
    }
}

impl Bank {
    /// What the payment page needs to show.
    pub fn page_view(&self, order_id: &str) -> Option<PageOrder> {
        let o = self.orders.get(order_id)?;
        Some(PageOrder {
            attempts_left: o.attempts_left,
            last_failure: (o.action_code != 0 && o.action_code != ACTION_NO_ATTEMPT)
                .then(|| o.action_text.clone()),
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
                attempts_left: o.attempts_left,
                action_code: o.action_code,
                phone: o.phone.clone(),
                email: o.email.clone(),
                cart: o.cart.as_ref().map(|c| c.json.clone()),
                receipts: o.receipts.clone(),
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

/// The order a call's `orderId` names (a free function: the caller may hold other fields of
/// the bank, such as its ККТ, at the same time).
fn order_in<'a>(
    orders: &'a mut HashMap<String, Order>,
    p: &Params,
) -> Result<&'a mut Order, Refusal> {
    let id = p.required("orderId", "Order ID")?;
    orders.get_mut(id).ok_or(Refusal {
        code: 6,
        message: "Order not found".into(),
    })
}

/// A receipt of the bank's cloud for a movement of an order that came with a cart (`cart` is
/// the movement's own when it carried one).
fn issue(
    kkt: &mut fiscal::Kkt,
    order: &mut Order,
    operation: &str,
    refund: bool,
    amount: Kopecks,
    now: DateTime<Utc>,
) {
    if let Some(cart) = &order.cart {
        let receipt = kkt.issue(operation, refund, amount, cart.lines, now);
        order.receipts.push(receipt);
    }
}

/// A successful payment: a hold for two-stage orders, money taken for one-stage.
fn accept_payment(order: &mut Order, now: DateTime<Utc>) -> Notice {
    order.action_code = 0;
    order.action_text = "Успешно".into();
    order.approved = order.amount;
    order.authorized = Some(now);
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
        auth_date_time: o.authorized.map(|t| t.timestamp_millis()),
        deposited_date: o.paid_at.map(|t| t.timestamp_millis()),
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
