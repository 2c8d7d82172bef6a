//! The customer-facing screen's stream and the two embedded pages (the customer screen and the
//! manager's page).

use axum::extract::{Query, State};
use axum::response::{Html, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::{update_stream, Api};
use crate::devices::qr::QrSymbol;
use crate::orders::{Order, State as OrderState};

/// The web pages, embedded: no build step, no files to install.
pub const SCREEN_PAGE: &str = include_str!("pages/screen.html");
pub const MANAGER_PAGE: &str = include_str!("pages/manager.html");

pub async fn screen_page() -> Html<&'static str> {
    Html(SCREEN_PAGE)
}

pub async fn manager_page() -> Html<&'static str> {
    Html(MANAGER_PAGE)
}

/// What the customer screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ScreenView {
    /// `idle`, `awaiting`, `processing`, `paid`, `declined`.
    pub state: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// A failed attempt while the order stays payable: «Оплата не прошла. Можно попробовать ещё раз».
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

fn view(state: &str, title: &str, amount: Option<String>, hint: Option<&str>) -> ScreenView {
    ScreenView {
        state: state.into(),
        title: title.into(),
        amount_text: amount,
        qr_svg: None,
        hint: hint.map(str::to_string),
        notice: None,
    }
}

/// The bank's reason for a failed attempt in a customer's words: no card-industry jargon
/// («3-D Secure», «эмитент») on a screen a shopper reads.
fn for_customer(code: i64, why: &str) -> String {
    let jargon = ["3-D Secure", "3DS", "3-DS", "эмитент", "ACS"];
    if code == -2006 || jargon.iter().any(|j| why.contains(j)) {
        "банк, выпустивший карту, не подтвердил оплату".into()
    } else {
        why.trim_end_matches('.').to_string()
    }
}

/// What the customer screen shows for an order (or for none: idle).
pub fn screen_state(order: Option<&Order>) -> ScreenView {
    let Some(o) = order else {
        return view("idle", "Добро пожаловать!", None, None);
    };
    let amount = Some(o.amount.to_string());
    match &o.state {
        OrderState::AwaitingPayment(bank) => ScreenView {
            qr_svg: QrSymbol::encode(bank.link.as_str())
                .map(|q| q.to_svg())
                .ok(),
            notice: o.failed_attempts.last().map(|a| {
                let left = crate::orders::reconcile::ATTEMPTS_ALLOWED
                    .saturating_sub(o.failed_attempts.len());
                format!(
                    "Оплата не прошла: {}. Осталось попыток: {left}. Можно попробовать ещё раз",
                    for_customer(a.code, &a.why)
                )
            }),
            ..view(
                "awaiting",
                "Оплата частями",
                amount,
                Some("Наведите камеру телефона на QR-код и оплатите частями"),
            )
        },
        OrderState::Held(_) | OrderState::Depositing(_) => {
            view("processing", "Оплата обрабатывается…", amount, None)
        }
        OrderState::Paid(_) => view("paid", "Оплачено", amount, Some("Спасибо за покупку!")),
        OrderState::Declined { .. } | OrderState::Expired(_) | OrderState::Failed { .. } => view(
            "declined",
            "Оплата не прошла",
            None,
            Some("Обратитесь к кассиру"),
        ),
        _ => view("idle", "Добро пожаловать!", None, None),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScreenQuery {
    /// Only this till's sales.
    till: Option<String>,
}

/// The customer screen's stream (`event: screen`): the till's current sale, then every change.
/// Open without a token while the API listens on loopback (it shows what the customer sees
/// anyway); beyond loopback any token, `screen` role included, in `Authorization` or as
/// `access_token` (a browser's EventSource cannot send headers).
#[utoipa::path(
    get,
    path = "/api/v1/screen/events",
    tag = "screen",
    params(ScreenQuery),
    responses((status = 200, description = "A stream of `event: screen`", content_type = "text/event-stream", body = ScreenView))
)]
pub async fn screen_events(
    State(api): State<Api>,
    _viewer: super::auth::Viewer,
    Query(q): Query<ScreenQuery>,
) -> Result<Response, ApiError> {
    let till = q.till.filter(|t| !t.is_empty());
    let updates = api.engine.subscribe();
    // A till id that cannot exist shows nothing (and never matches an order).
    let parsed = till.as_deref().map(crate::domain::TillId::parse);
    let current = match &parsed {
        Some(Err(_)) => None,
        Some(Ok(t)) => api.engine.current_sale(Some(t))?,
        None => api.engine.current_sale(None)?,
    };
    let ours = move |o: &Order| till.as_deref().is_none_or(|t| o.till.as_str() == t);
    Ok(update_stream(
        &api.engine,
        "screen",
        updates,
        screen_state(current.as_ref()),
        move |order| {
            let shown = matches!(
                order.state,
                OrderState::AwaitingPayment(_)
                    | OrderState::Held(_)
                    | OrderState::Depositing(_)
                    | OrderState::Paid(_)
                    | OrderState::Declined { .. }
                    | OrderState::Expired(_)
                    | OrderState::Cancelled(_)
                    | OrderState::Failed { .. }
            );
            (ours(order) && shown).then(|| screen_state(Some(order)))
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::for_customer;

    #[test]
    fn a_customer_reads_no_card_jargon() {
        assert_eq!(
            for_customer(
                -2006,
                "Банк, выпустивший карту, отклонил проверку 3-D Secure"
            ),
            "банк, выпустивший карту, не подтвердил оплату"
        );
        assert_eq!(
            for_customer(71, "Отказ эмитента"),
            "банк, выпустивший карту, не подтвердил оплату"
        );
        assert_eq!(
            for_customer(116, "Недостаточно средств на карте"),
            "Недостаточно средств на карте"
        );
    }
}
