//! The customer-facing screen's stream and the two embedded pages (the customer screen and the
//! manager's page).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::auth::Viewer;
use super::error::ApiError;
use super::{update_stream, Api};
use crate::devices::qr::QrSymbol;
use crate::domain::TillId;
use crate::orders::{Order, State as OrderState};

/// The web pages, embedded: no build step, no files to install.
pub const SCREEN_PAGE: &str = include_str!("pages/screen.html");
pub const MANAGER_PAGE: &str = include_str!("pages/manager.html");

/// Why a screen cannot open: each says, in Russian, the address that would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScreenRefusal {
    /// No till asked for, and the store has several: which one is this screen's?
    NoTill { tills: Vec<TillId> },
    /// `?till=` is not a till id.
    BadTill { found: String },
    /// The screen token belongs to another till.
    OtherTill { bound: TillId },
    /// Beyond loopback, a screen needs a token in its address.
    NoToken,
}

impl ScreenRefusal {
    pub fn status(&self) -> StatusCode {
        match self {
            ScreenRefusal::NoTill { .. } | ScreenRefusal::BadTill { .. } => StatusCode::BAD_REQUEST,
            ScreenRefusal::OtherTill { .. } => StatusCode::FORBIDDEN,
            ScreenRefusal::NoToken => StatusCode::UNAUTHORIZED,
        }
    }

    /// What the person setting up the screen reads.
    pub fn message(&self) -> String {
        match self {
            ScreenRefusal::NoTill { tills } => {
                let first = tills.first().map_or("1", TillId::as_str);
                let all: Vec<&str> = tills.iter().map(TillId::as_str).collect();
                format!(
                    "Экран покупателя не привязан к кассе: в магазине несколько касс ({}). \
                     Откройте адрес экрана своей кассы, например /screen?till={first}",
                    all.join(", ")
                )
            }
            ScreenRefusal::BadTill { found } => format!(
                "Касса «{found}» в адресе экрана: допустимы 1–4 латинские буквы или цифры, \
                 например /screen?till=1"
            ),
            ScreenRefusal::OtherTill { bound } => format!(
                "Этот токен экрана — для кассы {bound}: откройте /screen?till={bound}",
                bound = bound.as_str()
            ),
            ScreenRefusal::NoToken => "Нужен токен экрана: откройте /screen?till=1&token=… \
                 (токен из [[api.tokens]] с role = \"screen\")"
                .into(),
        }
    }
}

impl From<ScreenRefusal> for ApiError {
    fn from(refusal: ScreenRefusal) -> ApiError {
        let error_type = match refusal.status() {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::UNAUTHORIZED => "unauthorized",
            _ => "bad_request",
        };
        ApiError::new(refusal.status(), error_type, refusal.message())
    }
}

/// The till a screen shows: the one asked for (`?till=`), which a bound screen token must
/// match; else the token's till; else the store's only till. A screen never shows whichever
/// till sold last: in a two-till shop that would let a customer pay another's order.
pub fn screen_till(
    api: &Api,
    viewer: &Viewer,
    asked: Option<&str>,
) -> Result<Result<TillId, ScreenRefusal>, ApiError> {
    let asked = asked.map(str::trim).filter(|t| !t.is_empty());
    let till = match (asked, &viewer.till) {
        (Some(text), bound) => match TillId::parse(text) {
            Err(_) => Err(ScreenRefusal::BadTill {
                found: text.chars().take(16).collect(),
            }),
            Ok(till) => match bound {
                Some(bound) if bound != &till => Err(ScreenRefusal::OtherTill {
                    bound: bound.clone(),
                }),
                _ => Ok(till),
            },
        },
        (None, Some(bound)) => Ok(bound.clone()),
        (None, None) => {
            let mut tills = api.engine.tills()?;
            if tills.len() == 1 {
                Ok(tills.remove(0))
            } else {
                Err(ScreenRefusal::NoTill { tills })
            }
        }
    };
    Ok(till)
}

#[derive(Debug, Deserialize)]
pub struct ScreenPageQuery {
    till: Option<String>,
    token: Option<String>,
}

/// `/screen?till=1`: the customer screen of one till. Without a till it goes to the token's
/// or the store's only till, or says how to open it; a refusal is a page, not JSON, since a
/// person is looking at it.
pub async fn screen_page(
    State(api): State<Api>,
    viewer: Result<Viewer, ApiError>,
    query: Result<Query<ScreenPageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return refusal_page(&ScreenRefusal::BadTill {
            found: String::new(),
        });
    };
    let Ok(viewer) = viewer else {
        return refusal_page(&ScreenRefusal::NoToken);
    };
    let asked = q.till.as_deref().filter(|t| !t.trim().is_empty());
    match screen_till(&api, &viewer, asked) {
        Err(e) => e.into_response(),
        Ok(Err(refusal)) => refusal_page(&refusal),
        Ok(Ok(_)) if asked.is_some() => Html(SCREEN_PAGE).into_response(),
        Ok(Ok(till)) => {
            // A query-only reference keeps whatever path prefix a proxy put in front.
            let token = q.token.map_or(String::new(), |t| {
                format!(
                    "&token={}",
                    url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                )
            });
            Redirect::to(&format!("?till={}{token}", till.as_str())).into_response()
        }
    }
}

/// A plain page with the refusal's sentence, large enough to read on the screen it is on.
fn refusal_page(refusal: &ScreenRefusal) -> Response {
    // The message holds only till ids (Latin letters and digits) and fixed text, but it is
    // escaped all the same: a page never echoes raw input.
    let text = crate::html::escape(&refusal.message());
    let page = format!(
        "<!doctype html>\n<html lang=\"ru\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Экран покупателя</title><style>body{{margin:0;font-family:system-ui,sans-serif;\
         display:flex;min-height:100vh;align-items:center;justify-content:center}}\
         p{{font-size:4vh;max-width:80vw;text-align:center}}</style></head>\
         <body><p id=\"refusal\">{text}</p></body></html>\n"
    );
    (refusal.status(), Html(page)).into_response()
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
    /// The till whose screen this is. May be left out when the screen token is bound to a
    /// till or the store has one till; otherwise a 400 says which tills there are.
    till: Option<String>,
}

/// The customer screen's stream (`event: screen`): one till's current sale, then every change.
/// Open without a token while the API listens on loopback (it shows what the customer sees
/// anyway); beyond loopback any token, `screen` role included, in `Authorization` or as
/// `access_token` (a browser's EventSource cannot send headers). A screen token bound to a
/// till opens that till's stream only.
#[utoipa::path(
    get,
    path = "/api/v1/screen/events",
    tag = "screen",
    params(ScreenQuery),
    responses(
        (status = 200, description = "A stream of `event: screen`", content_type = "text/event-stream", body = ScreenView),
        (status = 400, description = "No till named and the store has several, or not a till id", body = super::types::ErrorBody),
        (status = 403, description = "The screen token is bound to another till", body = super::types::ErrorBody),
    )
)]
pub async fn screen_events(
    State(api): State<Api>,
    viewer: Viewer,
    Query(q): Query<ScreenQuery>,
) -> Result<Response, ApiError> {
    let till = screen_till(&api, &viewer, q.till.as_deref())??;
    let updates = api.engine.subscribe();
    let current = api.engine.current_sale(&till)?;
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
            (order.till == till && shown).then(|| screen_state(Some(order)))
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
