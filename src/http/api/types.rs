//! What the till API takes and answers, as types: the handlers return them, the OpenAPI
//! document is generated from them, and the command line's client parses the same ones.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{
    Description, Email, GatewayOrderId, IdempotencyKey, OrderNumber, PaymentUrl, Phone, TillId,
};
use crate::money::Kopecks;
use crate::orders::{
    Actor, DayTotals, Event, FailedAttempt, Mode, Order, Receipt, ReceiptStatus, Refund,
    RefundStatus, StateKind,
};

/// `POST /api/v1/sales`. Every field is checked and every bad one named in one 422.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SaleBody {
    /// Roubles as a string: `1499`, `1499.50`, `1 499,50`. JSON numbers are refused: no floats.
    /// More than zero and at most `orders.max_amount` (1 000 000 ₽ as shipped).
    #[schema(
        example = "1499.00",
        pattern = r"^ *\+?[0-9][0-9 ]{0,12}([.,][0-9]{1,2})? *$"
    )]
    pub amount: String,
    /// `one-stage` (the default) or `two-stage` (hold, then deposit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Description>,
    /// The till; the config's `store.till` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub till: Option<TillId>,
    /// The same key for every retry of one sale (a UUID is good).
    pub idempotency_key: IdempotencyKey,
    /// The customer's mobile number (any usual spelling: `+7 912 345-67-89`,
    /// `8 (912) 3456789`): it goes to the bank with the order (its sign-in for the
    /// installments, the electronic receipt), and the payment link is sent there by SMS when
    /// SMS is set up; empty or absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    /// The customer's e-mail, for the electronic receipt (goes to the bank with the order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<Email>,
    /// What the customer buys, line by line; the lines must add up to `amount` to the kopeck.
    /// Stored with the order, shown in its history, the API and the CSV, and the fiscal
    /// receipt's lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<super::cart::ItemBody>>,
}

impl SaleBody {
    /// The body's keys: anything else is refused by name.
    pub const FIELDS: [&'static str; 8] = [
        "amount",
        "mode",
        "description",
        "till",
        "idempotency_key",
        "phone",
        "email",
        "items",
    ];
}

/// `POST /api/v1/orders/{id}/send-link`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SendLinkBody {
    /// The customer's mobile number, in any usual spelling.
    pub phone: Phone,
}

/// What became of a request to send the link by SMS, at the moment of the answer (the order's
/// history says later whether it was sent, delivered or failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SmsView {
    /// `queued`, `already_sent` or `refused`.
    pub status: String,
    /// For the cashier.
    pub message: String,
}

/// `POST /api/v1/orders/{id}/deposit`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DepositBody {
    /// Roubles as a string (`600.00`): take this much of the hold and release the rest; the
    /// whole hold when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "600.00", min_length = 1, max_length = 32)]
    pub amount: Option<String>,
}

impl DepositBody {
    pub const FIELDS: [&'static str; 1] = ["amount"];
}

/// `POST /api/v1/orders/{id}/refund`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundBody {
    /// Roubles as a string (`300.00`); all that is left when absent. Never empty: an empty
    /// amount is refused rather than read as «all».
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        example = "300.00",
        min_length = 1,
        max_length = 32,
        pattern = r"^ *\+?[0-9][0-9 ]{0,12}([.,][0-9]{1,2})? *$"
    )]
    pub amount: Option<String>,
    /// The same key for every retry of this refund: it is refunded once.
    pub idempotency_key: IdempotencyKey,
}

impl RefundBody {
    pub const FIELDS: [&'static str; 2] = ["amount", "idempotency_key"];
}

/// A fiscal receipt an order owes, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReceiptView {
    /// The receipt's id (the POS webhook's `event_id`).
    pub id: uuid::Uuid,
    /// `sell` («приход») or `sell_return` («возврат прихода»).
    pub kind: String,
    pub amount: Kopecks,
    /// `owed`, `sent` (handed to whoever issues it), `issued`, `failed`.
    pub status: String,
    /// Past its deadline unissued, or failed: «чек не пробит».
    pub missing: bool,
    /// For the manager: `ФД 123`, «ожидается», «чек не пробит».
    pub text: String,
    pub owed_at: DateTime<Utc>,
    pub due_by: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_document_number: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_sign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fn_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
    /// The last try's problem, in the issuer's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl From<&Receipt> for ReceiptView {
    fn from(r: &Receipt) -> ReceiptView {
        let fiscal = match &r.status {
            ReceiptStatus::Issued(f) => Some(f),
            _ => None,
        };
        ReceiptView {
            id: r.id,
            kind: r.kind.code().to_string(),
            amount: r.amount,
            status: match &r.status {
                ReceiptStatus::Owed => "owed",
                ReceiptStatus::Sent { .. } => "sent",
                ReceiptStatus::Issued(_) => "issued",
                ReceiptStatus::Failed { .. } => "failed",
            }
            .to_string(),
            missing: r.missing(),
            text: r.short_text(),
            owed_at: r.owed_at,
            due_by: r.due_by,
            fiscal_document_number: fiscal.map(|f| f.document_number),
            fiscal_sign: fiscal.map(|f| f.sign.clone()),
            fn_number: fiscal.map(|f| f.fn_number.clone()),
            issued_at: fiscal.map(|f| f.at),
            problem: match &r.status {
                ReceiptStatus::Failed { why } => Some(why.clone()),
                _ => r.last_problem.clone(),
            },
        }
    }
}

/// The order's receipts in one cell: `приход: ФД 123; возврат: чек не пробит`.
pub fn receipt_text(o: &Order) -> String {
    o.receipts
        .iter()
        .map(|r| {
            let kind = match r.kind {
                crate::orders::ReceiptKind::Sell => "приход",
                crate::orders::ReceiptKind::SellReturn => "возврат",
            };
            format!("{kind} {}: {}", r.amount, r.short_text())
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// One refund request as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub key: IdempotencyKey,
    pub amount: Kopecks,
    pub status: RefundStatusView,
    pub requested_at: DateTime<Utc>,
}

/// Where a refund is; a failed one says why (in English).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum RefundStatusView {
    Pending,
    Done,
    Failed { why: String },
}

impl From<&Refund> for RefundView {
    fn from(r: &Refund) -> RefundView {
        RefundView {
            key: r.key.clone(),
            amount: r.amount,
            status: match &r.status {
                RefundStatus::Pending => RefundStatusView::Pending,
                RefundStatus::Done => RefundStatusView::Done,
                RefundStatus::Failed { why } => RefundStatusView::Failed { why: why.what() },
            },
            requested_at: r.requested_at,
        }
    }
}

/// The state's name and, for the states that have one (declined, failed, needs attention),
/// why: in English for the integrator's logs, and in Russian for the cashier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StateView {
    pub name: StateKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why_text: Option<String>,
}

/// An order as the API shows it (not as it is stored).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    pub id: uuid::Uuid,
    /// What the slip and the screen show; every route takes it in place of the id.
    pub order_number: OrderNumber,
    pub amount: Kopecks,
    /// `1 499,50 ₽`.
    pub amount_text: String,
    pub mode: Mode,
    #[serde(default)]
    pub description: Option<Description>,
    pub till: TillId,
    #[serde(default)]
    pub cashier: Option<String>,
    pub state: StateView,
    /// The state in Russian, for the cashier.
    pub state_text: String,
    #[serde(default)]
    pub gateway_order_id: Option<GatewayOrderId>,
    #[serde(default)]
    pub payment_url: Option<PaymentUrl>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub link_expires_at: DateTime<Utc>,
    #[serde(default)]
    pub held_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub paid_at: Option<DateTime<Utc>>,
    /// Money the bank took, including what was later reversed or refunded.
    pub deposited: Kopecks,
    /// Given back by a same-day reversal (all that was taken, or nothing).
    #[serde(default)]
    pub reversed: Kopecks,
    /// Given back by refunds that are done.
    pub refunded: Kopecks,
    /// What the shop keeps: deposited − reversed − refunded.
    #[serde(default)]
    pub left: Kopecks,
    /// What a manager can refund now: nothing unless the order is paid or partly refunded.
    pub refundable: Kopecks,
    pub refunds: Vec<RefundView>,
    /// Payment attempts the bank declined while the order stayed payable.
    #[serde(default)]
    pub failed_attempts: Vec<FailedAttempt>,
    /// The shop asked to cancel it.
    #[serde(default)]
    pub cancel_requested: bool,
    /// Who sold it and who asked for each action on its money, in Russian.
    #[serde(default)]
    pub who: String,
    /// The order's history, oldest first, each line with who asked for it.
    pub events: Vec<EventView>,
    /// What the customer buys, line by line (empty when the sale carried no cart).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<super::cart::ItemView>,
    /// The customer's phone, masked (`+7912***6789`): the whole number stays in chasti.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_phone: Option<String>,
    /// The customer's e-mail, masked (`iv***@mail.ru`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    /// The fiscal receipts its money movements owe (when `[fiscal] mode` is not `none`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receipts: Vec<ReceiptView>,
    /// For an order with a refund: that the money reaches the customer in days, not at once
    /// (up to 10 working days through the installment service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the «Чек» column shows: each receipt in a word (`ФД 123`, «ожидается», «чек не
    /// пробит»), empty without receipts.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub receipt_text: String,
}

/// One line of an order's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    pub at: DateTime<Utc>,
    pub from: StateKind,
    pub to: StateKind,
    /// What happened, in English, for logs and the integrator.
    pub what: String,
    /// What happened, in Russian, for the cashier and the manager.
    pub text: String,
    /// Who asked for it; absent when the bank or chasti itself moved the order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> EventView {
        EventView {
            at: e.at,
            from: e.from,
            to: e.to,
            what: e.what(),
            text: e.text(),
            actor: e.actor.clone(),
        }
    }
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> OrderView {
        let balance = o.balance();
        OrderView {
            id: o.id,
            order_number: o.order_number.clone(),
            amount: o.amount,
            amount_text: o.amount.to_string(),
            mode: o.mode,
            description: o.description.clone(),
            till: o.till.clone(),
            cashier: o.cashier.clone(),
            state: StateView {
                name: o.state.kind(),
                why: o.state.why().map(|why| why.what()),
                why_text: o.state.why().map(|why| why.text()),
            },
            state_text: o.state.russian().to_string(),
            gateway_order_id: o.state.bank_id().cloned(),
            payment_url: o.state.bank().map(|b| b.link.clone()),
            created_at: o.created_at,
            updated_at: o.updated_at,
            link_expires_at: o.link_expires_at,
            held_at: o.held_at,
            paid_at: o.paid_at,
            deposited: balance.paid,
            reversed: balance.reversed,
            refunded: balance.refunded,
            left: balance.left,
            refundable: balance.refundable,
            refunds: o.refunds.iter().map(RefundView::from).collect(),
            failed_attempts: o.failed_attempts.clone(),
            cancel_requested: o.cancel_requested,
            who: o.who(),
            events: o.history.iter().map(EventView::from).collect(),
            items: o
                .cart
                .as_ref()
                .map(|c| c.items().iter().map(super::cart::ItemView::from).collect())
                .unwrap_or_default(),
            customer_phone: o.customer.phone.as_ref().map(|p| p.masked()),
            customer_email: o.customer.email.as_ref().map(|e| e.masked()),
            receipts: o.receipts.iter().map(ReceiptView::from).collect(),
            receipt_text: receipt_text(o),
            message: (!o.refunds.is_empty()).then(|| crate::orders::REFUND_TAKES_DAYS.to_string()),
        }
    }
}

/// What the printer and the display were asked to do for a sale.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DevicesView {
    pub printer: String,
    pub display: String,
}

impl From<crate::devices::DevicesOutcome> for DevicesView {
    fn from(o: crate::devices::DevicesOutcome) -> DevicesView {
        DevicesView {
            printer: o.printer,
            display: o.display,
        }
    }
}

/// `201` of `POST /api/v1/sales`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SaleReply {
    pub order: OrderView,
    pub payment_url: PaymentUrl,
    /// The payment link as a QR code (SVG), for the till's own screen.
    pub qr_svg: String,
    pub devices: DevicesView,
    /// The link by SMS, when the sale named a phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<SmsView>,
}

/// `GET /api/v1/orders`: one page of the range's orders and the range's money.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderList {
    /// The first Moscow day listed (the only one for `day=`).
    pub day: NaiveDate,
    /// The last Moscow day listed.
    pub to: NaiveDate,
    /// This page, oldest first.
    pub orders: Vec<OrderView>,
    /// Orders on this page.
    pub count: usize,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Each day's money, oldest day first: every order of the day, whatever `state` and page.
    pub days: Vec<DayTotals>,
    /// The whole range's money (`total.count`: orders in the range; `total.day`: its first day).
    pub total: DayTotals,
    /// What the shop keeps in the range: taken minus reversed minus refunded.
    pub net_paid: Kopecks,
    pub net_paid_text: String,
    /// Orders the bank has under this store's numbers and the store lacks, found after a
    /// restore («есть в банке, нет в кассе»): whatever the range.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bank_only: Vec<crate::store::BankOnly>,
}

/// One field's problem, in Russian.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub problem: String,
}

/// Every error the API answers: a Russian message fit to show a cashier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Also in the `x-request-id` header and in the daemon's log line for this request.
    pub request_id: String,
    /// `unauthorized`, `forbidden`, `not_found`, `validation`, `conflict`, `busy`, `already_paid`,
    /// `closed`, `needs_attention`, `registering`, `gateway`, `unreachable`, `pending`,
    /// `shutting_down`, `device`, `bad_request`, `internal`.
    pub error_type: String,
    pub message: String,
    pub errors: Vec<FieldProblem>,
    /// The order the error is about, as it stands now (a retried sale that is no longer
    /// payable, say): never with a payment link to print.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Box<OrderView>>,
}

/// `POST /api/v1/orders/{id}/cancel`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CancelReply {
    pub order: OrderView,
    /// What happened, in Russian, for the cashier.
    pub message: String,
}

/// `GET /api/v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ready` (sales are taken), `stopping`, or `engine_stopped` (the process is about to
    /// exit).
    pub status: String,
    /// Orders interrupted before this start are still being reconciled with the bank (sales
    /// are taken meanwhile).
    #[serde(default)]
    pub recovering: bool,
}

/// `POST /api/v1/orders/{id}/reprint`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reprinted {
    /// Which slip was printed, for the cashier: «Напечатан повторно чек «оплачено» заказа …».
    pub printed: String,
}
