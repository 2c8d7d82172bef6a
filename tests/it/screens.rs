//! A customer screen belongs to one till: in a two-till shop `/screen` without `?till=` is
//! refused (a customer must never see, or pay, the order of the till beside), a screen token
//! can be bound to its till, and the store's only till needs no naming.

use chasti::config::{ApiToken, Config, Role};
use chasti::domain::TillId;
use chasti::orders::Mode;
use chasti::secret::Secret;

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
    h.engine.create_sale(sale).await.unwrap()
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
