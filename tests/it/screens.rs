//! A customer screen belongs to one till: in a two-till shop `/screen` without `?till=` is
//! refused (a customer must never see, or pay, the order of the till beside), a screen token
//! can be bound to its till, and the store's only till needs no naming.

use chasti::config::{ApiToken, Config, Role};
use chasti::domain::TillId;
use chasti::orders::Mode;
use chasti::sandbox::AttemptFailure;
use chasti::secret::Secret;
use serde_json::Value;

use crate::common::browser::{decode_qr, require_browser, Browser, SCREEN_STATE};
use crate::common::{Harness, HarnessOptions};

const TILL_2_SCREEN: &str = "screen-of-till-2-0123456789";

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    let tls = chasti::gateway::tls::client_config(&Default::default()).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sell_on(h: &Harness, till: &str, roubles: u64) -> chasti::orders::Order {
    let mut sale = Harness::sale(roubles, Mode::OneStage);
    sale.till = Some(TillId::parse(till).unwrap());
    h.engine.sell(sale).await.map(|sold| sold.order).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_one_till_opens_its_screen_without_naming_it() {
    let h = Harness::new(HarnessOptions::default()).await;
    let resp = no_redirects()
        .get(format!("{}/screen", h.api()))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(resp.headers()["location"], "?till=1");

    // The stream without a till is till 1's.
    sell_on(&h, "1", 1499).await;
    let api = crate::common::TillClient::new(h.api());
    let mut screen = api.events("/api/v1/screen/events", None).await;
    let shown = screen
        .until("the sale on the screen", |s| s["state"] == "awaiting")
        .await;
    assert!(
        shown["amount_text"].as_str().unwrap().contains("1 499"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_till_shop_refuses_a_screen_without_a_till_and_shows_each_its_own() {
    let h = Harness::new(HarnessOptions::default()).await;
    sell_on(&h, "1", 1111).await;
    sell_on(&h, "2", 2222).await;
    let http = crate::common::http();

    let page = http
        .get(format!("{}/screen", h.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("id=\"refusal\""), "{html}");
    assert!(html.contains("несколько касс (1, 2)"), "{html}");
    assert!(html.contains("/screen?till=1"), "{html}");

    let (code, body) = crate::common::TillClient::new(h.api())
        .call("GET", "/api/v1/screen/events", None, None)
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("не привязан к кассе"),
        "{body}"
    );

    // Till 2's screen shows till 2's sale, and a later sale on till 1 does not reach it: the
    // next event it shows is till 2's own next sale.
    let api = crate::common::TillClient::new(h.api());
    let mut two = api.events("/api/v1/screen/events?till=2", None).await;
    let first = two
        .until("till 2's sale", |s| s["state"] == "awaiting")
        .await;
    assert!(
        first["amount_text"].as_str().unwrap().contains("2 222"),
        "{first}"
    );
    sell_on(&h, "1", 3333).await;
    sell_on(&h, "2", 4444).await;
    let next = two
        .until("till 2's next sale", |s| s["state"] == "awaiting")
        .await;
    assert!(
        next["amount_text"].as_str().unwrap().contains("4 444"),
        "{next}"
    );

    // A till id that cannot be one is refused, not shown as an empty screen.
    let bad = http
        .get(format!("{}/screen?till=%3Cb%3E12345", h.api()))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let html = bad.text().await.unwrap();
    assert!(!html.contains("<b>"), "the page echoes raw input: {html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_token_bound_to_a_till_opens_that_till_only() {
    let h = Harness::new(HarnessOptions {
        configure: Some(Box::new(|c: &mut Config| {
            c.api.listen = "0.0.0.0:0".parse().unwrap();
            c.api.tokens.push(ApiToken {
                name: "screen-2".into(),
                role: Role::Screen,
                token: Secret::new(TILL_2_SCREEN.to_string()),
                till: Some(TillId::parse("2").unwrap()),
            });
        })),
        ..HarnessOptions::default()
    })
    .await;
    let base = h.api().replacen("0.0.0.0", "127.0.0.1", 1);
    sell_on(&h, "1", 1111).await;
    sell_on(&h, "2", 2222).await;

    let resp = no_redirects()
        .get(format!("{base}/screen?token={TILL_2_SCREEN}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    assert_eq!(
        resp.headers()["location"],
        format!("?till=2&token={TILL_2_SCREEN}").as_str()
    );

    let http = crate::common::http();
    let other = http
        .get(format!("{base}/screen?till=1&token={TILL_2_SCREEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    assert!(other.text().await.unwrap().contains("для кассы 2"));

    let events = |query: &str| format!("{base}/api/v1/screen/events?{query}");
    let other = http
        .get(events(&format!("till=1&access_token={TILL_2_SCREEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 403);
    let own = http
        .get(events(&format!("access_token={TILL_2_SCREEN}")))
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let mut own = crate::common::EventStream::from_response(own);
    let shown = own
        .until("till 2's sale", |s| s["state"] == "awaiting")
        .await;
    assert!(
        shown["amount_text"].as_str().unwrap().contains("2 222"),
        "{shown}"
    );
}

/// The screen's boxes as the browser lays them out: the window, the page's scroll size and
/// each shown block (with its font size), the QR's square itself as `svg`.
const LAYOUT: &str = "const d = document.documentElement;
    const box = (id, e) => { const b = e.getBoundingClientRect();
        return {id, top: b.top, bottom: b.bottom, left: b.left, right: b.right, height: b.height,
                font: parseFloat(getComputedStyle(e).fontSize)}; };
    const shown = [...document.querySelectorAll('main > div')].filter(e => !e.hidden)
        .map(e => box(e.id, e));
    const svg = document.querySelector('#qr svg');
    if (svg && !document.getElementById('qr').hidden) shown.push(box('svg', svg));
    return JSON.stringify({vw: innerWidth, vh: innerHeight, sw: d.scrollWidth, sh: d.scrollHeight,
                           shown});";

/// At 800×600, 1024×768 and 1920×1080: nothing scrolls, every shown block is inside the
/// window, and while a QR is shown it is the largest thing, the amount the largest text, and
/// the QR decodes from a screenshot to the link.
async fn fits_every_size(browser: &Browser, state: &str, link: Option<&str>) {
    for (width, height) in [(800, 600), (1024, 768), (1920, 1080)] {
        browser.set_viewport(width, height).await;
        let layout: Value =
            serde_json::from_str(browser.script(LAYOUT).await.as_str().unwrap()).unwrap();
        let at = format!("{state} at {width}×{height}: {layout}");
        let (vw, vh) = (
            layout["vw"].as_f64().unwrap(),
            layout["vh"].as_f64().unwrap(),
        );
        assert!(
            vw >= f64::from(width) - 20.0 && vh >= f64::from(height) - 150.0,
            "{at}"
        );
        assert!(layout["sh"].as_f64().unwrap() <= vh, "scrolls down: {at}");
        assert!(
            layout["sw"].as_f64().unwrap() <= vw,
            "scrolls sideways: {at}"
        );
        let shown = layout["shown"].as_array().unwrap();
        for b in shown {
            let edge = |k: &str| b[k].as_f64().unwrap();
            assert!(
                edge("top") >= 0.0
                    && edge("bottom") <= vh
                    && edge("left") >= 0.0
                    && edge("right") <= vw,
                "{} is cut off: {at}",
                b["id"]
            );
        }
        let find = |id: &str| shown.iter().find(|b| b["id"] == id);
        // `CHASTI_SCREENSHOTS=dir` keeps each state at each size, for a person to look at.
        if let Some(dir) = std::env::var_os("CHASTI_SCREENSHOTS") {
            let name = format!("screen-{}-{width}x{height}.png", state.replace(' ', "-"));
            let png = browser.c().screenshot().await.unwrap();
            std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
        }
        if let Some(link) = link {
            let qr = find("svg").unwrap_or_else(|| panic!("no QR: {at}"));
            let qr_height = qr["height"].as_f64().unwrap();
            assert!(qr_height >= 0.35 * vh, "the QR is small: {at}");
            let font = |id: &str| find(id).map_or(0.0, |b| b["font"].as_f64().unwrap());
            for other in ["title", "notice", "hint"] {
                assert!(
                    font("amount") > font(other),
                    "{other} outsizes the amount: {at}"
                );
            }
            for b in shown.iter().filter(|b| b["id"] != "svg" && b["id"] != "qr") {
                assert!(
                    b["height"].as_f64().unwrap() < qr_height,
                    "{} outsizes the QR: {at}",
                    b["id"]
                );
            }
            let shot = browser.screenshot().await;
            assert_eq!(decode_qr(&shot), [link], "the QR does not scan: {at}");
        }
    }
}

/// Every state of the customer screen, the failed attempt's notice included, fits the three
/// window sizes without scrolling (before, the notice pushed the title and the hint off a
/// 1024×768 screen and a scrollbar appeared).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn every_state_of_the_screen_fits_800_1024_and_1920_without_scrolling() {
    require_browser();
    let h = Harness::new(HarnessOptions::default()).await;
    let browser = Browser::start().await;
    browser.open_screen(&h.api()).await;
    fits_every_size(&browser, "idle", None).await;

    let order = sell_on(&h, "1", 149_999).await;
    let link = Harness::link(&order);
    browser.wait_for(SCREEN_STATE, "awaiting").await;
    fits_every_size(&browser, "awaiting", Some(&link)).await;

    let bank_id = Harness::gateway_id(&order);
    h.sandbox
        .fail_attempt(&bank_id, AttemptFailure::InsufficientFunds)
        .unwrap();
    let notice = "return document.getElementById('notice').hidden ? '' : 'shown'";
    browser.wait_for(notice, "shown").await;
    fits_every_size(&browser, "awaiting with a failed attempt", Some(&link)).await;

    h.sandbox
        .fail_attempt(&bank_id, AttemptFailure::CardExpired)
        .unwrap();
    h.sandbox
        .fail_attempt(&bank_id, AttemptFailure::InsufficientFunds)
        .unwrap();
    browser.wait_for(SCREEN_STATE, "declined").await;
    fits_every_size(&browser, "declined", None).await;

    let paid = sell_on(&h, "1", 700).await;
    browser.wait_for(SCREEN_STATE, "awaiting").await;
    h.sandbox.pay(Harness::gateway_id(&paid)).unwrap();
    browser.wait_for(SCREEN_STATE, "paid").await;
    fits_every_size(&browser, "paid", None).await;
    browser.close().await;
}
