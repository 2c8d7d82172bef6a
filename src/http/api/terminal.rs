//! The till API shaped like a card terminal, for POS software that drives one synchronous call
//! per operation (1C:Розница, Frontol, Set Retail…) and prints the slip text it gets back:
//! `POST /api/v1/pay` answers only when the payment has an outcome (or after `wait_secs`, with
//! 202: the same call again keeps waiting, so a POS whose call timed out just repeats it), and
//! `POST /api/v1/return` reverses the same day or refunds after, saying which it did.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{Cashier, Manager};
use super::error::{ApiError, Fields};
use super::sales::read_sale_fields;
use super::types::{ErrorBody, OrderView, SaleBody};
use super::Api;
use crate::domain::IdempotencyKey;
use crate::money::Kopecks;
use crate::orders::{Order, StateKind};

/// The longest a pay call waits before it answers 202 (a POS repeats it to wait on).
const WAIT_MAX: u64 = 300;
/// What a pay call waits when the POS does not say.
const WAIT_DEFAULT: u64 = 60;

/// `POST /api/v1/pay`: a sale's fields, and how long to wait and how wide the slip is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PayBody {
    #[serde(flatten)]
    pub sale: SaleBody,
    /// Seconds to wait for the outcome before answering 202 (1–300; 60 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_secs: Option<u64>,
    /// The slip text's width in characters: 32, 42 or 48 (the POS's receipt printer; 32).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slip_width: Option<u8>,
}

/// `POST /api/v1/return`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReturnBody {
    /// The order: its number from the slip (the POS's «RRN») or its id.
    pub order: String,
    /// Roubles as a string; all that is left when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    /// The POS's return receipt id: the same key returns once.
    pub idempotency_key: IdempotencyKey,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slip_width: Option<u8>,
    /// `reversal`: only a reversal will do (a POS's «cancel payment»: refused after the
    /// payment's Moscow day, or for part of it); `refund`: a refund even the same day.
    /// chasti chooses when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(reversal|refund)$")]
    pub operation: Option<String>,
}

/// What a terminal-shaped call did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TerminalReply {
    /// `paid`, `held` (two-stage with manual deposit), `declined`, `expired`, `cancelled`,
    /// `failed`, `needs_attention`, `reversed`, `refunded`, or `waiting` (202: call again).
    pub outcome: String,
    /// For a return: `reversal` (the same Moscow day, all of it) or `refund`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// The order's number: what the POS keeps as the operation's «RRN».
    pub order_number: String,
    pub amount: Kopecks,
    /// The lines the POS prints on its receipt (Russian, `slip_width` wide).
    pub slip_text: String,
    /// While waiting: the link the customer pays by (the QR is on chasti's printer and
    /// screens already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_url: Option<String>,
    pub order: OrderView,
}

const PAY_FIELDS: [&str; 10] = [
    "amount",
    "mode",
    "description",
    "till",
    "idempotency_key",
    "phone",
    "email",
    "items",
    "wait_secs",
    "slip_width",
];

fn width_of(f: &mut Fields) -> Option<usize> {
    let width = f.integer("slip_width", 32..=48, "ширина чека в символах")?;
    if [32, 42, 48].contains(&width) {
        Some(width as usize)
    } else {
        f.problem("slip_width", "ширина чека: 32, 42 или 48 символов");
        None
    }
}

/// What the payment came to, for a POS; None while it is still open.
fn outcome(order: &Order, holds_are_outcomes: bool) -> Option<&'static str> {
    Some(match order.state.kind() {
        StateKind::Paid => "paid",
        StateKind::Held if holds_are_outcomes => "held",
        StateKind::Declined => "declined",
        StateKind::Expired => "expired",
        StateKind::Cancelled => "cancelled",
        StateKind::Failed => "failed",
        StateKind::NeedsAttention => "needs_attention",
        StateKind::Reversing | StateKind::Reversed => "reversed",
        StateKind::Refunding | StateKind::Refunded | StateKind::PartiallyRefunded => "refunded",
        StateKind::Registering
        | StateKind::AwaitingPayment
        | StateKind::Held
        | StateKind::Depositing => return None,
    })
}

/// The slip lines a POS prints: centred title, the order, the amount, the verdict, the time.
pub fn slip_text(
    shop: &str,
    order: &Order,
    title: &str,
    verdict: &str,
    amount: Kopecks,
    width: usize,
) -> String {
    let centre = |text: &str| {
        let n = text.chars().count();
        if n >= width {
            text.chars().take(width).collect::<String>()
        } else {
            format!("{}{text}", " ".repeat((width - n) / 2))
        }
    };
    let pair = |left: &str, right: &str| {
        let used = left.chars().count() + right.chars().count();
        if used < width {
            format!("{left}{}{right}", " ".repeat(width - used))
        } else {
            format!("{left} {right}")
        }
    };
    let at = format!(
        "{} МСК",
        order
            .updated_at
            .with_timezone(&chrono_tz::Europe::Moscow)
            .format("%d.%m.%Y %H:%M")
    );
    let mut lines = vec![
        centre(shop),
        centre(title),
        centre("«Плати частями», Сбер"),
        "-".repeat(width),
        pair("Заказ", order.order_number.as_str()),
        pair("Сумма", &amount.to_string()),
        pair("Время", &at),
        "-".repeat(width),
        centre(verdict),
    ];
    if let Some(d) = &order.description {
        lines.insert(4, pair("Покупка", d.as_str()));
    }
    lines.join("\n") + "\n"
}

/// Pay: start the sale (or find it by its key) and answer when it has an outcome.
#[utoipa::path(
    post,
    path = "/api/v1/pay",
    tag = "terminal",
    request_body = PayBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The outcome, with the slip text", body = TerminalReply),
        (status = 202, description = "No outcome within wait_secs: call again with the same key to keep waiting", body = TerminalReply),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 409, description = "A sale with this key is still being registered", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn pay(
    State(api): State<Api>,
    Cashier(caller): Cashier,
    body: Bytes,
) -> Result<(StatusCode, Json<TerminalReply>), ApiError> {
    let mut f = Fields::read(&body, &PAY_FIELDS)?;
    let sale = read_sale_fields(&mut f, &api.sale_rules);
    let wait = f.integer("wait_secs", 1..=WAIT_MAX, "сколько секунд ждать исхода");
    let width = width_of(&mut f);
    let (mut sale, wait, width) = f.finish(|| Some((sale?, wait, width)))?;
    sale.0.cashier = caller.cashier.clone();
    sale.0.actor = Some(caller.actor());
    // Listening before the sale: an outcome that comes while it registers is not missed.
    let mut updates = api.engine.subscribe();
    let sold = api.engine.sell(sale.0).await?;
    let id = sold.order.id;
    let limit = Duration::from_secs(wait.unwrap_or(WAIT_DEFAULT));
    let deadline = tokio::time::Instant::now() + limit;
    let mut order = api.engine.get(&id)?;
    loop {
        if let Some(outcome) = outcome(&order, api.holds_are_outcomes) {
            return Ok((StatusCode::OK, Json(api.pay_reply(&order, outcome, width))));
        }
        let next = tokio::select! {
            update = updates.recv() => update.ok(),
            _ = tokio::time::sleep_until(deadline) => break,
            _ = api.engine.stopping() => break,
        };
        // A lagged or closed stream: read the order itself.
        order = match next {
            Some(o) if o.id == id => o,
            Some(_) => continue,
            None => api.engine.get(&id)?,
        };
    }
    let order = api.engine.get(&id)?;
    if let Some(outcome) = outcome(&order, api.holds_are_outcomes) {
        return Ok((StatusCode::OK, Json(api.pay_reply(&order, outcome, width))));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(api.pay_reply(&order, "waiting", width)),
    ))
}

impl Api {
    fn pay_reply(&self, order: &Order, outcome: &str, width: Option<usize>) -> TerminalReply {
        let (title, verdict) = match outcome {
            "paid" => ("ОПЛАТА", "ОДОБРЕНО"),
            "held" => ("ОПЛАТА", "СУММА ЗАБЛОКИРОВАНА"),
            "waiting" => ("ОПЛАТА", "ОЖИДАЕТ ОПЛАТЫ"),
            "reversed" => ("ОПЛАТА", "ОПЛАТА ОТМЕНЕНА"),
            "refunded" => ("ОПЛАТА", "ОПЛАЧЕНО, ЕСТЬ ВОЗВРАТ"),
            "needs_attention" => ("ОПЛАТА", "ТРЕБУЕТ ПРОВЕРКИ"),
            _ => ("ОПЛАТА", "ОТКАЗ"),
        };
        TerminalReply {
            outcome: outcome.to_string(),
            operation: None,
            order_number: order.order_number.to_string(),
            amount: order.amount,
            slip_text: slip_text(
                &self.shop_name,
                order,
                title,
                verdict,
                order.amount,
                width.unwrap_or(32),
            ),
            payment_url: order
                .state
                .bank()
                .map(|b| b.link.to_string())
                .filter(|_| outcome == "waiting"),
            order: OrderView::from(order),
        }
    }
}

/// What a return asked for, when it says.
enum Asked {
    Reversal,
    Refund,
}

/// Return: the same Moscow day, all of a payment is reversed; otherwise (or part of it) refunded.
#[utoipa::path(
    post,
    path = "/api/v1/return",
    tag = "terminal",
    request_body = ReturnBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Reversed or refunded, saying which, with the slip text", body = TerminalReply),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Nothing to return, or the order is busy", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 502, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub async fn return_payment(
    State(api): State<Api>,
    Manager(caller): Manager,
    body: Bytes,
) -> Result<Json<TerminalReply>, ApiError> {
    let mut f = Fields::read(
        &body,
        &[
            "order",
            "amount",
            "idempotency_key",
            "slip_width",
            "operation",
        ],
    )?;
    let reference = f.required(
        "order",
        "номер заказа с чека или его id",
        "",
        |s| Ok::<_, String>(s.to_string()),
    );
    let amount = f.optional("amount", ", например \"500.00\"", |s| {
        Kopecks::parse_amount(s).map_err(|e| e.to_string())
    });
    let key = f.required(
        "idempotency_key",
        "номер чека возврата на кассе (1–64 символа)",
        "",
        |s| IdempotencyKey::parse(s).map_err(|e| e.ru),
    );
    let width = width_of(&mut f);
    let asked = f.optional("operation", ": reversal или refund", |s| match s {
        "reversal" => Ok(Asked::Reversal),
        "refund" => Ok(Asked::Refund),
        _ => Err("ожидается reversal (отмена) или refund (возврат)".to_string()),
    });
    let (reference, amount, key, width) = f.finish(|| Some((reference?, amount, key?, width)))?;
    let order = api.engine.find(&reference)?;
    let actor = caller.actor();
    let whole = amount.is_none_or(|a| a == order.deposited);
    // A repeat of a return already made answers as it was (its key, or the reversal).
    let repeated_refund = order.refunds.iter().any(|r| r.key == key);
    let reversed = matches!(
        order.state.kind(),
        StateKind::Reversing | StateKind::Reversed
    );
    let reversal = match asked {
        Some(Asked::Refund) => false,
        Some(Asked::Reversal) if !whole => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!(
                    "Отменить можно только всю оплату ({}); часть возвращают возвратом.",
                    order.deposited
                ),
            ))
        }
        // The engine refuses a reversal after the day with the manager's words.
        Some(Asked::Reversal) => true,
        None => {
            !repeated_refund
                && whole
                && order.refunds.is_empty()
                && (order.check_reversal(api.engine.now()).is_ok() || reversed)
        }
    };
    let (operation, order) = if reversal {
        let order = match order.state.kind() {
            StateKind::Reversing | StateKind::Reversed => order,
            _ => api.engine.reverse(&order.id, Some(&actor)).await?,
        };
        ("reversal", order)
    } else {
        let order = api
            .engine
            .refund(&order.id, amount, &key, Some(&actor))
            .await?;
        ("refund", order)
    };
    let returned = match operation {
        "reversal" => order.deposited,
        _ => order
            .refunds
            .iter()
            .find(|r| r.key == key)
            .map(|r| r.amount)
            .unwrap_or(Kopecks::ZERO),
    };
    let (outcome, verdict) = match (operation, order.state.kind()) {
        ("reversal", StateKind::Reversed) => ("reversed", "ОПЛАТА ОТМЕНЕНА"),
        ("refund", StateKind::Refunded | StateKind::PartiallyRefunded) => {
            ("refunded", "ВОЗВРАТ ОФОРМЛЕН")
        }
        _ => ("pending", "ВОЗВРАТ В ОБРАБОТКЕ"),
    };
    let mut slip = slip_text(
        &api.shop_name,
        &order,
        if operation == "reversal" {
            "ОТМЕНА ОПЛАТЫ"
        } else {
            "ВОЗВРАТ"
        },
        verdict,
        returned,
        width.unwrap_or(32),
    );
    if operation == "refund" {
        slip.push_str(crate::orders::REFUND_TAKES_DAYS);
        slip.push('\n');
    }
    Ok(Json(TerminalReply {
        outcome: outcome.to_string(),
        operation: Some(operation.to_string()),
        order_number: order.order_number.to_string(),
        amount: returned,
        slip_text: slip,
        payment_url: None,
        order: OrderView::from(&order),
    }))
}
