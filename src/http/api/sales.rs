//! `POST /api/v1/sales`: one call from the till, the payment link and its QR back.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::auth::Cashier;
use super::error::{ApiError, Fields};
use super::types::{DevicesView, ErrorBody, OrderView, SaleBody, SaleReply, SmsView};
use super::Api;
use crate::devices::qr::QrSymbol;
use crate::domain::{Description, Email, IdempotencyKey, Phone, TillId};
use crate::engine::SaleRequest;
use crate::money::Kopecks;
use crate::orders::cart::Vat;
use crate::orders::{Customer, Mode, State as OrderState};

/// What a sale must have, from the config.
#[derive(Debug, Clone)]
pub struct SaleRules {
    /// `orders.min_amount` to `orders.max_amount`.
    pub amounts: std::ops::RangeInclusive<Kopecks>,
    /// `[fiscal] mode = "bank"`: the bank's code of each VAT rate, and the rate of a sale
    /// without a cart (the bank's cloud makes the receipt from the cart).
    pub bank_tax_types: Option<(std::collections::BTreeMap<Vat, u8>, Vat)>,
}

impl SaleRules {
    pub fn of(config: &crate::config::Config) -> SaleRules {
        let bank = config
            .fiscal
            .bank
            .as_ref()
            .filter(|_| config.fiscal.mode == crate::config::FiscalMode::Bank);
        SaleRules {
            amounts: config.orders.min_amount..=config.orders.max_amount,
            bank_tax_types: bank.map(|b| (b.tax_types.clone(), config.fiscal.default_vat)),
        }
    }
}

/// Reads a sale (and the phone to send its link to), naming every bad field at once. The
/// amount must lie in `orders.min_amount` to `orders.max_amount`; the cart, when given, must add
/// up to it; when the bank issues the receipts, a contact and the bank's code of each rate.
pub fn read_sale(body: &[u8], rules: &SaleRules) -> Result<(SaleRequest, Option<Phone>), ApiError> {
    let mut f = Fields::read(body, &SaleBody::FIELDS)?;
    let sale = read_sale_fields(&mut f, rules);
    f.finish(|| sale)
}

/// A sale's fields out of a body another call shares (the terminal-shaped pay): its problems
/// are noted in `f`; the sale when every field was right.
pub(super) fn read_sale_fields(
    f: &mut Fields,
    rules: &SaleRules,
) -> Option<(SaleRequest, Option<Phone>)> {
    let (min, max) = (*rules.amounts.start(), *rules.amounts.end());
    let amount = f.required(
        "amount",
        "сумма в рублях строкой, например \"1499.00\"",
        ", например \"1499.00\" (числа JSON не принимаются: без дробных чисел)",
        |s| {
            let amount = Kopecks::parse_amount(s).map_err(|e| e.to_string())?;
            if amount > max {
                return Err(format!(
                    "сумма {amount} больше допустимой для одной продажи ({max}); проверьте, не лишние ли нули"
                ));
            }
            if amount < min {
                return Err(format!(
                    "сумма {amount} меньше наименьшей для оплаты частями ({min})"
                ));
            }
            Ok(amount)
        },
    );
    let cart = match f.value("items").cloned() {
        None | Some(serde_json::Value::Null) => None,
        Some(items) => match super::cart::read_items(&items, amount, true) {
            Ok(cart) => Some(cart),
            Err(problems) => {
                f.errors.extend(problems);
                None
            }
        },
    };
    let email = f
        .optional("email", "", |s| match s.trim() {
            "" => Ok(None),
            s => Email::parse(s).map(Some).map_err(|e| e.ru),
        })
        .flatten();
    let mode = f.optional("mode", "", |s| match s {
        "one-stage" => Ok(Mode::OneStage),
        "two-stage" => Ok(Mode::TwoStage),
        other => Err(format!("«{other}»: допустимо one-stage или two-stage")),
    });
    let description = f.optional("description", "", |s| {
        Description::parse(s).map_err(|e| e.ru)
    });
    let till = f.optional("till", "", |s| TillId::parse(s).map_err(|e| e.ru));
    // An empty phone is no phone: a POS form sends the field whether or not it was filled in.
    let phone = f
        .optional("phone", "", |s| match s.trim() {
            "" => Ok(None),
            s => Phone::parse(s).map(Some).map_err(|e| e.ru),
        })
        .flatten();
    let key = f.required(
        "idempotency_key",
        "ключ, одинаковый для повторов одной продажи (1–64 символа, например UUID)",
        "",
        |s| IdempotencyKey::parse(s).map_err(|e| e.ru),
    );
    if let Some((codes, default_vat)) = &rules.bank_tax_types {
        // The bank's cloud ККТ makes the receipt: it needs whom to send it to, and its own
        // code for every rate in the cart.
        if phone.is_none() && email.is_none() {
            f.problem(
                "phone",
                "для чека облачной кассы банка нужен телефон или почта покупателя (phone или email)",
            );
        }
        let rates: Vec<Vat> = match &cart {
            Some(cart) => cart.items().iter().map(|i| i.vat).collect(),
            None => vec![*default_vat],
        };
        for rate in rates.iter().filter(|r| !codes.contains_key(r)) {
            f.problem(
                "items",
                format!(
                    "ставка НДС {} не настроена для облачной кассы банка: укажите её код в fiscal.bank.tax_types по письму банка",
                    rate.code()
                ),
            );
        }
    }
    (|| {
        Some((
            SaleRequest {
                amount: amount?,
                mode: mode.unwrap_or_default(),
                description,
                till,
                cashier: None,
                idempotency_key: Some(key?),
                actor: None,
                cart,
                customer: Customer {
                    phone: phone.clone(),
                    email,
                },
            },
            phone,
        ))
    })()
}

/// Start a sale: register it with the bank, print its slip, show it on the display.
#[utoipa::path(
    post,
    path = "/api/v1/sales",
    tag = "sales",
    request_body = SaleBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The sale, its payment link and QR, and what the devices did. The same idempotency key returns the same sale.", body = SaleReply),
        (status = 400, description = "The body is not a JSON object", body = ErrorBody),
        (status = 401, description = "No token, or an unknown one", body = ErrorBody),
        (status = 409, description = "A sale with this key is still being registered (`registering`), or is no longer payable: paid (`already_paid`), cancelled, expired or declined (`closed`), or waiting for a manager (`needs_attention`); the body's `order` is the order as it stands, with no link to print", body = ErrorBody),
        (status = 422, description = "Bad fields, each named; or the key was used for another sale", body = ErrorBody),
        (status = 502, description = "The bank refused the sale (or a sale with this key failed)", body = ErrorBody),
        (status = 503, description = "Recovering, stopping, or the bank's answer is not known yet (the order is kept)", body = ErrorBody),
    )
)]
pub async fn create_sale(
    State(api): State<Api>,
    Cashier(caller): Cashier,
    body: Bytes,
) -> Result<(StatusCode, Json<SaleReply>), ApiError> {
    let (mut sale, phone) = read_sale(&body, &api.sale_rules)?;
    sale.cashier = caller.cashier.clone();
    sale.actor = Some(caller.actor());
    let sold = api.engine.sell(sale).await?;
    let order = sold.order;
    let OrderState::AwaitingPayment(bank) = &order.state else {
        // A retried key of a sale that has moved on: what the order is now, and no link.
        return Err(not_payable(&order));
    };
    // The SMS goes in the background: the sale never waits for it or fails because of it.
    let sms = match phone {
        Some(phone) => Some(api.send_link(&order, &phone).await),
        None => None,
    };
    // A fresh sale waits (bounded) for the printer's answer; a retry answers at once.
    let devices = match (&api.devices, sold.fresh) {
        (Some(d), true) => d.wait_outcome(order.id, api.device_wait).await.into(),
        _ => api.devices_now(),
    };
    Ok((
        StatusCode::CREATED,
        Json(SaleReply {
            qr_svg: qr_svg(bank.link.as_str()),
            payment_url: bank.link.clone(),
            order: OrderView::from(&order),
            devices,
            sms,
        }),
    ))
}

/// A retried sale that is no longer payable, as the till must hear it: 409 with the order as
/// it stands and no link, so a POS that prints what a 201 carries never hands out a dead link.
fn not_payable(order: &crate::orders::Order) -> ApiError {
    use crate::orders::StateKind as K;
    let n = &order.order_number;
    let (kind, message) = match order.state.kind() {
        K::Held | K::Depositing | K::Paid => (
            "already_paid",
            format!(
                "Продажа {n} на {} уже оплачена («{}»): ссылка на оплату больше не нужна.",
                order.amount,
                order.state.russian()
            ),
        ),
        K::Reversing | K::Reversed | K::Refunding | K::Refunded | K::PartiallyRefunded => (
            "already_paid",
            format!(
                "Продажа {n} на {} была оплачена, сейчас: «{}». Повторная оплата по ней невозможна.",
                order.amount,
                order.state.russian()
            ),
        ),
        K::NeedsAttention => (
            "needs_attention",
            format!(
                "Продажа {n} на {} требует внимания менеджера: касса и банк расходятся. Не принимайте оплату повторно, пока менеджер не проверит заказ.",
                order.amount
            ),
        ),
        // Cancelled, expired, declined (a registering or failed sale is answered by the engine).
        _ => (
            "closed",
            format!(
                "Продажа {n} на {} закрыта: «{}». Ссылка на оплату больше не действует; для новой оплаты начните новую продажу.",
                order.amount,
                order.state.russian()
            ),
        ),
    };
    let mut error = ApiError::new(StatusCode::CONFLICT, kind, message).with_order(order);
    if let Some(view) = error.order.as_mut() {
        view.payment_url = None;
    }
    error
}

fn qr_svg(link: &str) -> String {
    QrSymbol::encode(link)
        .map(|q| q.to_svg())
        .unwrap_or_default()
}

impl Api {
    /// Sends the order's link by SMS (in the background), or says why not.
    pub(super) async fn sms_send(
        &self,
        order: &crate::orders::Order,
        phone: &Phone,
    ) -> Result<crate::sms::Queued, crate::sms::SmsRefused> {
        match &self.sms {
            Some(courier) => courier.send_link(order, phone).await,
            None => Err(crate::sms::SmsRefused::NotConfigured),
        }
    }

    /// The same, as the till is told.
    pub(super) async fn send_link(&self, order: &crate::orders::Order, phone: &Phone) -> SmsView {
        sms_view(&self.sms_send(order, phone).await, phone)
    }

    /// What the devices are doing, without waiting.
    pub(super) fn devices_now(&self) -> DevicesView {
        match &self.devices {
            Some(d) => d.current().into(),
            None => DevicesView {
                printer: "не настроен".into(),
                display: "не настроен".into(),
            },
        }
    }
}

/// How a request to send the link went, for the till.
pub(super) fn sms_view(
    outcome: &Result<crate::sms::Queued, crate::sms::SmsRefused>,
    phone: &Phone,
) -> SmsView {
    match outcome {
        Ok(crate::sms::Queued::Queued) => SmsView {
            status: "queued".into(),
            message: format!("Ссылка отправляется по SMS на {}.", phone.masked()),
        },
        Ok(crate::sms::Queued::AlreadySent) => SmsView {
            status: "already_sent".into(),
            message: format!(
                "Ссылка уже отправлена на {}; повторно не отправляется.",
                phone.masked()
            ),
        },
        Err(refused) => SmsView {
            status: "refused".into(),
            message: refused.to_string(),
        },
    }
}
