//! The manager page's sign-in over real HTTP: a token or a person's password becomes an
//! HttpOnly, SameSite=Strict session cookie with an end; changes through the cookie need the
//! session's CSRF token; signing out ends the session on the daemon; attempts are limited.

use std::sync::Arc;

use chasti::engine::ManualClock;
use chasti::orders::Mode;
use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{json, Value};

use crate::common::browser::{require_browser, Browser};
use crate::common::{Harness, HarnessOptions, CASHIER, MANAGER};

const PASSWORD: &str = "склад-и-касса-2026";

/// A sign-in's answer: the status, the body and the `Set-Cookie` line.
async fn sign_in(h: &Harness, body: Value) -> (u16, Value, String) {
    let resp = crate::common::http()
        .post(format!("{}/api/v1/session", h.api()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let cookie = resp
        .headers()
        .get(SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, resp.json().await.unwrap_or(Value::Null), cookie)
}

/// `chasti_session=…` out of a `Set-Cookie` line.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// A call with the session cookie and, when given, the CSRF header.
async fn with_cookie(
    h: &Harness,
    method: reqwest::Method,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> (u16, Value) {
    let mut req = crate::common::http()
        .request(method, format!("{}{path}", h.api()))
        .header(COOKIE, cookie);
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn with_people() -> HarnessOptions {
    let hash = chasti::passwords::hash(PASSWORD).unwrap();
    HarnessOptions {
        extra_config: format!(
            "[[api.people]]\nname = \"Петрова\"\nrole = \"manager\"\npassword_hash = \"{hash}\"\n\
             [[api.people]]\nname = \"Смирнов\"\nrole = \"cashier\"\npassword_hash = \"{hash}\"\n"
        ),
        ..HarnessOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_becomes_a_strict_httponly_session_and_changes_need_its_csrf_token() {
    let h = Harness::new(HarnessOptions::default()).await;
    let order = h.paid_sale(700, Mode::OneStage).await;

    let (status, body, set_cookie) = sign_in(&h, json!({"token": MANAGER})).await;
    assert_eq!(status, 200, "{body}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(part), "{part} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    assert!(!set_cookie.contains(MANAGER), "the token is not the cookie");
    assert_eq!(body["name"], "boss");
    assert_eq!(body["signed_in_as"], "Вы вошли: boss (менеджер)");
    assert!(
        body["expires_text"].as_str().unwrap().contains("МСК"),
        "{body}"
    );
    assert!(body["may"].as_array().unwrap().contains(&json!("refund")));
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    let cookie = cookie_pair(&set_cookie);

    let (status, me) =
        with_cookie(&h, reqwest::Method::GET, "/api/v1/session", &cookie, None).await;
    assert_eq!((status, me["name"].clone()), (200, json!("boss")));
    let (status, _) = with_cookie(&h, reqwest::Method::GET, "/api/v1/orders", &cookie, None).await;
    assert_eq!(status, 200, "a read needs the cookie only");

    // A change without the page's CSRF token is refused and changes nothing.
    let reverse = format!("/api/v1/orders/{}/reverse", order.id);
    let (status, body) = with_cookie(&h, reqwest::Method::POST, &reverse, &cookie, None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error_type"], "csrf");
    let (status, _) = with_cookie(
        &h,
        reqwest::Method::POST,
        &reverse,
        &cookie,
        Some("0".repeat(64).as_str()),
    )
    .await;
    assert_eq!(status, 403, "a wrong CSRF token");
    assert_eq!(h.engine.get(&order.id).unwrap().state.name(), "paid");
    let (status, body) =
        with_cookie(&h, reqwest::Method::POST, &reverse, &cookie, Some(&csrf)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "reversed");

    // Signing out needs the CSRF token too, then ends the session on the daemon.
    let (status, _) = with_cookie(
        &h,
        reqwest::Method::DELETE,
        "/api/v1/session",
        &cookie,
        None,
    )
    .await;
    assert_eq!(status, 403);
    let resp = crate::common::http()
        .delete(format!("{}/api/v1/session", h.api()))
        .header(COOKIE, &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    let cleared = resp.headers()[SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, body) =
        with_cookie(&h, reqwest::Method::GET, "/api/v1/orders", &cookie, None).await;
    assert_eq!(status, 401, "the old cookie opens nothing: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashiers_session_offers_and_does_only_what_a_cashier_may() {
    let h = Harness::new(HarnessOptions::default()).await;
    let order = h.paid_sale(700, Mode::OneStage).await;
    let (status, body, set_cookie) = sign_in(&h, json!({"token": CASHIER})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["signed_in_as"], "Вы вошли: till-1 (кассир)");
    let may: Vec<&str> = body["may"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(may, ["list", "csv", "cancel", "send_link", "reprint"]);
    let csrf = body["csrf_token"].as_str().unwrap();
    let (status, body) = with_cookie(
        &h,
        reqwest::Method::POST,
        &format!("/api/v1/orders/{}/reverse", order.id),
        &cookie_pair(&set_cookie),
        Some(csrf),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(h.engine.get(&order.id).unwrap().state.name(), "paid");

    // A body with neither way is named; a wrong token opens nothing.
    let (status, body, _) = sign_in(&h, json!({})).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["errors"][0]["problem"]
        .as_str()
        .unwrap()
        .contains("name и password"));
    let (status, _, _) = sign_in(&h, json!({"token": "not-a-token-at-all-0000"})).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_with_a_password_and_the_history_names_them() {
    let h = Harness::new(with_people()).await;
    let order = h.paid_sale(700, Mode::OneStage).await;

    let (status, body, _) =
        sign_in(&h, json!({"name": "петрова", "password": "wrong-password"})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], "Имя или пароль не подходят.");
    let (status, unknown, _) = sign_in(&h, json!({"name": "Никто", "password": PASSWORD})).await;
    assert_eq!(
        (status, &unknown["message"]),
        (401, &body["message"]),
        "the same answer"
    );
    let (status, _, _) = sign_in(
        &h,
        json!({"name": "Петрова", "password": "я".repeat(10_000)}),
    )
    .await;
    assert_eq!(status, 401, "an over-long password is refused, not hashed");

    let (status, body, set_cookie) =
        sign_in(&h, json!({"name": " петрова ", "password": PASSWORD})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["signed_in_as"], "Вы вошли: Петрова (менеджер)");
    assert!(
        body["expires_text"]
            .as_str()
            .unwrap()
            .ends_with("МСК (по паролю)"),
        "{body}"
    );
    let (status, reply) = with_cookie(
        &h,
        reqwest::Method::POST,
        &format!("/api/v1/orders/{}/reverse", order.id),
        &cookie_pair(&set_cookie),
        body["csrf_token"].as_str(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let reversed = h.engine.get(&order.id).unwrap();
    assert!(
        reversed
            .history
            .iter()
            .any(|e| e.actor.as_ref().is_some_and(|a| a.token == "Петрова")),
        "the history names who reversed: {:?}",
        reversed.history
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_attempts_are_limited_per_address() {
    let h = Harness::new(with_people()).await;
    for _ in 0..5 {
        let (status, _, _) =
            sign_in(&h, json!({"name": "Петрова", "password": "guess-guess"})).await;
        assert_eq!(status, 401);
    }
    let resp = crate::common::http()
        .post(format!("{}/api/v1/session", h.api()))
        .json(&json!({"name": "Петрова", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        429,
        "even the right password, for now"
    );
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=12).contains(&wait), "{wait}");
    let body: Value = resp.json().await.unwrap();
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("Слишком много попыток входа"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_after_its_hours() {
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let h = Harness::new(HarnessOptions {
        clock: Some(clock.clone()),
        ..HarnessOptions::default()
    })
    .await;
    let (_, _, set_cookie) = sign_in(&h, json!({"token": MANAGER})).await;
    let cookie = cookie_pair(&set_cookie);
    let (status, _) = with_cookie(&h, reqwest::Method::GET, "/api/v1/orders", &cookie, None).await;
    assert_eq!(status, 200);
    clock.advance(chrono::Duration::hours(12) + chrono::Duration::seconds(1));
    let (status, body) =
        with_cookie(&h, reqwest::Method::GET, "/api/v1/orders", &cookie, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], "Вход истёк: войдите снова.");
}

/// The buttons a row of `order` shows, by class.
const ROW_BUTTONS: &str = "return [...document.querySelectorAll(`tr[data-id='${arguments[0]}'] button`)].map(b => b.className).join(' ')";

/// In the browser: a cashier's token shows the orders without the manager's buttons and says
/// whose token it is; a manager's shows them; «Выйти» signs out for good (a reload asks again);
/// a person signs in by name and password; the page's script never sees the session cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_manager_page_shows_what_the_role_may_and_signs_out() {
    require_browser();
    let h = Harness::new(with_people()).await;
    let order = h.paid_sale(700, Mode::OneStage).await;
    let browser = Browser::start().await;
    let id = order.id.to_string();
    let buttons = || async {
        browser
            .wait_for(
                &format!(
                    "return document.querySelector(\"tr[data-id='{id}']\")?.dataset.state || ''"
                ),
                "paid",
            )
            .await;
        let found = browser
            .c()
            .execute(ROW_BUTTONS, vec![json!(id)])
            .await
            .unwrap();
        found.as_str().unwrap().to_string()
    };

    browser.sign_in_with_token(&h.api(), CASHIER).await;
    let who = browser
        .script("return document.getElementById('signed-in').textContent")
        .await;
    assert_eq!(who, "Вы вошли: till-1 (кассир)");
    let shown = buttons().await;
    assert!(
        !shown.contains("reverse") && !shown.contains("refund"),
        "a cashier sees: {shown}"
    );
    let cookies = browser.script("return document.cookie").await;
    assert!(
        !cookies.as_str().unwrap().contains("chasti_session"),
        "HttpOnly: {cookies}"
    );

    browser.click("sign-out").await;
    browser
        .wait_for(
            "return document.getElementById('sign-in').hidden ? '' : 'asks'",
            "asks",
        )
        .await;
    browser.c().refresh().await.unwrap();
    browser
        .wait_for(
            "return document.getElementById('sign-in').hidden ? '' : 'asks'",
            "asks",
        )
        .await;
    assert_eq!(
        h.daemon.api.sessions().count(),
        0,
        "signed out on the daemon too"
    );

    browser.sign_in_with_token(&h.api(), MANAGER).await;
    let shown = buttons().await;
    assert!(
        shown.contains("reverse") && shown.contains("refund"),
        "a manager sees: {shown}"
    );
    browser.click("sign-out").await;

    // By name and password; a wrong one is said on the page.
    browser
        .wait_for(
            "return document.getElementById('sign-in').hidden ? '' : 'asks'",
            "asks",
        )
        .await;
    browser.type_into("name", "Петрова").await;
    browser.type_into("password", "not-it-at-all").await;
    browser.click("enter").await;
    browser
        .wait_for(
            "return document.getElementById('sign-in-error').textContent",
            "Имя или пароль не подходят",
        )
        .await;
    browser.type_into("password", PASSWORD).await;
    browser.click("enter").await;
    browser
        .wait_for(
            "return document.getElementById('signed-in').textContent",
            "Вы вошли: Петрова (менеджер)",
        )
        .await;
    let until = browser
        .script("return document.getElementById('until').textContent")
        .await;
    assert!(until.as_str().unwrap().contains("МСК"), "{until}");
    browser.close().await;
}
