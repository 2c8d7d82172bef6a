//! The web pages in a real headless Chromium (Debian's `chromium` + `chromium-driver`), driven
//! with fantoccini over WebDriver: the customer screen's QR decodes to the payment link and
//! turns to «Оплачено» after the sandbox payment; the manager's reverse button reverses.
//! Outside CI, when Chromium is not installed, the build marks them ignored with the reason
//! (`cargo test` lists them as ignored); in CI they always run.

use std::time::Duration;

use chasti::orders::Mode;
use chasti::orders::StateKind;
use fantoccini::Locator;
use serde_json::json;

use crate::common::browser::{decode_qr, require_browser, Browser, SCREEN_STATE};
use crate::common::{Harness, HarnessOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_customer_screen_shows_a_scannable_qr_then_paid() {
    require_browser();
    let h = Harness::new(HarnessOptions::default()).await;
    let browser = Browser::start().await;
    browser.open_screen(&h.api()).await;

    let order = h.sell(1499, Mode::OneStage).await;
    browser.wait_for(SCREEN_STATE, "awaiting").await;
    let text = browser.script("return document.body.innerText").await;
    assert!(text.as_str().unwrap().contains("1 499,00 ₽"), "{text}");
    let shot = browser.screenshot().await;
    assert_eq!(
        decode_qr(&shot),
        [Harness::link(&order)],
        "the QR on the screen is the link"
    );

    h.sandbox.pay(Harness::gateway_id(&order)).unwrap();
    browser.wait_for(SCREEN_STATE, "paid").await;
    let title = browser
        .script("return document.getElementById('title').textContent")
        .await;
    assert_eq!(title, "Оплачено");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_managers_reverse_button_reverses_the_payment() {
    require_browser();
    let h = Harness::new(HarnessOptions::default()).await;
    let order = h.paid_sale(700, Mode::OneStage).await;

    let browser = Browser::start().await;
    let row = browser.manager_row(&h.api(), &order.id, "paid").await;
    let row_state = format!("return document.querySelector(\"{row}\")?.dataset.state || ''");
    let totals = browser
        .script("return document.getElementById('totals').textContent")
        .await;
    assert!(totals.as_str().unwrap().contains("700,00 ₽"), "{totals}");
    browser
        .c()
        .find(Locator::Css(&format!("{row} button.reverse")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let question = browser
        .script("return document.getElementById('question').textContent")
        .await;
    assert!(
        question
            .as_str()
            .unwrap()
            .contains(order.order_number.as_str())
            && question.as_str().unwrap().contains("700,00"),
        "{question}"
    );
    browser
        .c()
        .find(Locator::Id("yes"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for(&row_state, "reversed").await;
    assert_eq!(
        h.engine.get(&order.id).unwrap().state.kind(),
        chasti::orders::StateKind::Reversed
    );
    // A reversed payment reads as given back everywhere: nothing left, nothing to refund.
    let cells = browser
        .script(&format!(
            "const r = document.querySelector(\"{row}\"); return ['paid', 'reversed', 'refunded', 'left', 'who'].map((c) => r.querySelector('.' + c).textContent).concat([r.querySelectorAll('button.refund').length])"
        ))
        .await;
    assert_eq!(
        cells,
        serde_json::json!([
            "700,00\u{a0}₽",
            "700,00\u{a0}₽",
            "0,00\u{a0}₽",
            "0,00\u{a0}₽",
            cells[4],
            0
        ]),
        "{cells}"
    );
    let who = cells[4].as_str().unwrap();
    assert_eq!(who, "отмена оплаты: boss", "who reversed it");
    assert_eq!(
        h.sandbox
            .ledger()
            .count_ok("reverse.do", &order.order_number),
        1
    );
    browser.close().await;
}

/// A store manager's page over two days: ДД.ММ.ГГГГ dates, totals per day, who did what; each
/// action asks first (naming the order and the amount), «Не надо» does nothing, a double click
/// on «Подтвердить» refunds once; a hold is deposited and an unpaid sale cancelled from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_managers_page_asks_first_and_a_double_click_refunds_once() {
    require_browser();
    let day_one = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 11, 22, 9, 0, 0).unwrap();
    let clock = std::sync::Arc::new(chasti::engine::ManualClock::new(day_one));
    let h = Harness::new(HarnessOptions {
        clock: Some(clock.clone()),
        auto_deposit: false,
        ..HarnessOptions::default()
    })
    .await;
    let till = crate::common::TillClient::new(h.api());
    let sell = |amount: &'static str, mode: &'static str, key: &'static str| {
        let till = &till;
        async move {
            let (status, sale) = till
                .call_as(
                    "POST",
                    "/api/v1/sales",
                    Some(crate::common::CASHIER),
                    Some("Иванова"),
                    Some(json!({"amount": amount, "mode": mode, "idempotency_key": key})),
                )
                .await;
            assert_eq!(status, 201, "{sale}");
            let id = uuid::Uuid::parse_str(sale["order"]["id"].as_str().unwrap()).unwrap();
            (
                id,
                sale["order"]["order_number"].as_str().unwrap().to_string(),
            )
        }
    };
    let (yesterday, _) = sell("1000", "one-stage", "y").await;
    h.sandbox
        .pay(Harness::gateway_id(&h.engine.get(&yesterday).unwrap()))
        .unwrap();
    h.wait_state(&yesterday, StateKind::Paid).await;
    clock.advance(chrono::Duration::days(1));
    let (held, _) = sell("400", "two-stage", "h").await;
    let (paid, paid_number) = sell("700", "one-stage", "p").await;
    let (unpaid, unpaid_number) = sell("250", "one-stage", "u").await;
    for id in [held, paid] {
        h.sandbox
            .pay(Harness::gateway_id(&h.engine.get(&id).unwrap()))
            .unwrap();
    }
    h.wait_state(&held, StateKind::Held).await;
    h.wait_state(&paid, StateKind::Paid).await;

    let browser = Browser::start().await;
    browser.manager_page(&h.api()).await;
    let c = browser.c();
    let set = |id: &'static str, value: &'static str| async move {
        let field = c.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    };
    let click = |css: String| async move {
        c.find(Locator::Css(&css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    };

    // ISO dates are refused with the format to use.
    set("from", "2026-11-22").await;
    click("#load".into()).await;
    browser
        .wait_for(
            "return document.getElementById('error').textContent",
            "ДД.ММ.ГГГГ",
        )
        .await;
    set("from", "22.11.2026").await;
    set("to", "23.11.2026").await;
    click("#load".into()).await;
    let state_of = |id: uuid::Uuid| {
        format!("return document.querySelector(\"tr[data-id='{id}']\")?.dataset.state || ''")
    };
    browser
        .wait_for(&state_of(unpaid), "awaiting_payment")
        .await;
    let days = browser
        .script("return [...document.querySelectorAll('#days tbody tr')].map(r => r.innerText)")
        .await;
    let days: Vec<String> = serde_json::from_value::<Vec<String>>(days)
        .unwrap()
        .iter()
        .map(|d| d.replace('\u{a0}', " "))
        .collect();
    assert_eq!(days.len(), 2, "{days:?}");
    assert!(
        days[0].starts_with("22.11.2026") && days[0].contains("1 000,00 ₽"),
        "{days:?}"
    );
    assert_eq!(days[1], "23.11.2026\t3\t700,00 ₽\t0,00 ₽\t0,00 ₽\t700,00 ₽");
    let who = browser
        .script(&format!(
            "return document.querySelector(\"tr[data-id='{paid}'] .who\").textContent"
        ))
        .await;
    assert_eq!(who, "продал: till-1 (Иванова)");

    // Cancel: asked first; «Не надо» does nothing.
    let row = |id: uuid::Uuid| format!("tr[data-id='{id}']");
    click(format!("{} button.cancel", row(unpaid))).await;
    let question = browser
        .script("return document.getElementById('question').textContent")
        .await;
    let question = question.as_str().unwrap().to_string();
    assert!(
        question.contains(&unpaid_number) && question.contains("250,00"),
        "{question}"
    );
    click("#no".into()).await;
    let open = browser
        .script("return document.getElementById('confirm').open")
        .await;
    assert_eq!(open, false);
    assert_eq!(
        h.engine.get(&unpaid).unwrap().state.kind(),
        chasti::orders::StateKind::AwaitingPayment
    );
    assert_eq!(h.sandbox.ledger().count_ok("decline.do", &unpaid_number), 0);
    click(format!("{} button.cancel", row(unpaid))).await;
    click("#yes".into()).await;
    browser.wait_for(&state_of(unpaid), "cancelled").await;
    assert_eq!(h.sandbox.ledger().count_ok("decline.do", &unpaid_number), 1);

    // The hold, deposited from the page.
    click(format!("{} button.deposit", row(held))).await;
    click("#yes".into()).await;
    browser.wait_for(&state_of(held), "paid").await;

    // A refund of 300 ₽ with «Подтвердить» clicked twice: one refund at the bank.
    c.find(Locator::Css(&format!("{} input.refund", row(paid))))
        .await
        .unwrap()
        .send_keys("300")
        .await
        .unwrap();
    click(format!("{} button.refund", row(paid))).await;
    let question = browser
        .script("return document.getElementById('question').textContent")
        .await;
    let question = question.as_str().unwrap().to_string();
    assert!(
        question.contains(&paid_number)
            && question.contains("700,00")
            && question.contains("300 ₽"),
        "{question}"
    );
    browser
        .script("const yes = document.getElementById('yes'); yes.click(); yes.click(); return ''")
        .await;
    browser
        .wait_for(&state_of(paid), "partially_refunded")
        .await;
    let left = browser
        .script(&format!(
            "return document.querySelector(\"{} .left\").textContent",
            row(paid)
        ))
        .await;
    assert_eq!(left, "400,00\u{a0}₽");
    let who = browser
        .script(&format!(
            "return document.querySelector(\"{} .who\").textContent",
            row(paid)
        ))
        .await;
    assert!(who.as_str().unwrap().contains("boss"), "{who}");
    assert_eq!(h.sandbox.ledger().count_ok("refund.do", &paid_number), 1);
    assert_eq!(h.engine.get(&paid).unwrap().refunds.len(), 1);
    browser.close().await;
}

/// A busy day on the manager's page: a page of orders at a time, «Показать ещё» for the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_managers_page_shows_a_busy_day_a_page_at_a_time() {
    require_browser();
    let h = Harness::new(HarnessOptions::default()).await;
    let today = chasti::moscow::date(h.engine.now());
    let orders = crate::common::history::day_of_orders(today, 150, "1", 0);
    h.engine.store().insert_many(&orders).await.unwrap();
    let browser = Browser::start().await;
    let c = browser.c();
    browser.manager_page(&h.api()).await;
    let day = today.format("%d.%m.%Y").to_string();
    for (id, value) in [("from", day.as_str()), ("to", day.as_str())] {
        let field = c.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
    c.find(Locator::Id("load"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let shown = "return document.getElementById('shown').textContent";
    browser.wait_for(shown, "Показано 100 из 150").await;
    c.find(Locator::Id("more"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser.wait_for(shown, "Показано 150 из 150").await;
    let hidden = browser
        .script("return document.getElementById('more').hidden")
        .await;
    assert_eq!(hidden, true);
    let last = browser
        .script("const rows = document.getElementById('orders').rows; return rows[rows.length - 1].dataset.id")
        .await;
    assert_eq!(last, orders[149].id.to_string());
    browser.close().await;
}

/// The manager's page sends an unpaid order's link by SMS; a bad number is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_managers_page_sends_the_link_by_sms() {
    require_browser();
    let hook = crate::sms::FakeProvider::start("/hook", vec![(200, "{}")]).await;
    let h = Harness::new(HarnessOptions {
        extra_config: format!("[sms]\nprovider = \"webhook\"\nurl = \"{}\"\n", hook.url),
        ..HarnessOptions::default()
    })
    .await;
    let order = h.sell(900, Mode::OneStage).await;
    let browser = Browser::start().await;
    let row = browser
        .manager_row(&h.api(), &order.id, "awaiting_payment")
        .await;
    let c = browser.c();
    let send = |phone: &'static str| {
        let row = row.clone();
        async move {
            let input = c
                .find(Locator::Css(&format!("{row} input.phone")))
                .await
                .unwrap();
            input.clear().await.unwrap();
            input.send_keys(phone).await.unwrap();
            c.find(Locator::Css(&format!("{row} button.send-link")))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };
    send("не номер").await;
    let error = "return document.getElementById('error').textContent";
    let shown = browser.wait_for(error, "phone: «не номер»").await;
    assert!(
        shown.as_str().unwrap().contains("пример: +7 912 345-67-89"),
        "{shown}"
    );
    send("8 912 345 67 89").await;
    let done = "return document.getElementById('done').textContent";
    browser
        .wait_for(done, "Ссылка отправляется по SMS на +7912***6789.")
        .await;
    crate::common::wait_until("the webhook is called", Duration::from_secs(10), || {
        hook.seen().len() == 1
    })
    .await;
    browser.close().await;
}

/// The manager's page at 800 px: order numbers on one line, the page itself never wider than
/// the window (the orders table scrolls in its own box), a row's actions reachable; and a
/// message of an earlier action is gone once another range is loaded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_managers_page_fits_800_px_and_forgets_old_messages() {
    require_browser();
    let h = Harness::new(HarnessOptions::default()).await;
    let order = h.paid_sale(1499, Mode::OneStage).await;
    let browser = Browser::start().await;
    let row = browser.manager_row(&h.api(), &order.id, "paid").await;
    for (width, height) in [(800, 600), (1024, 768), (1920, 1080)] {
        browser.set_viewport(width, height).await;
        let layout = browser
            .script(&format!(
                "const r = document.querySelector(\"{row}\");
                 const n = r.querySelector('.number');
                 const text = document.createRange();
                 text.selectNodeContents(n);
                 const refund = r.querySelector('button.refund');
                 refund.scrollIntoView({{block: 'nearest', inline: 'nearest'}});
                 const b = refund.getBoundingClientRect();
                 return [text.getClientRects().length === 1,
                         document.documentElement.scrollWidth <= window.innerWidth,
                         b.left >= 0 && b.right <= window.innerWidth];"
            ))
            .await;
        assert_eq!(
            layout,
            json!([true, true, true]),
            "{width} px: [number on one line, page fits, refund reachable]"
        );
    }
    browser
        .script(
            "document.getElementById('done').textContent = 'Готово: Оплата отменена'; return ''",
        )
        .await;
    browser
        .c()
        .find(Locator::Id("load"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let done = browser
            .script("return document.getElementById('done').textContent")
            .await;
        if done == json!("") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still shown: {done}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    browser.close().await;
}

/// «Сверка итогов» on the manager's page: asks first, checks the day with the bank, shows the
/// report (the day's payments and reversals for the till and the store) and what the bank said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_managers_close_day_button_shows_the_days_report_checked_with_the_bank() {
    require_browser();
    let h = Harness::new(HarnessOptions::default()).await;
    h.paid_sale(700, Mode::OneStage).await;
    let back = h.paid_sale(300, Mode::OneStage).await;
    h.engine.reverse(&back.id, None).await.unwrap();

    let browser = Browser::start().await;
    browser.manager_page(&h.api()).await;
    browser.click("close-day").await;
    let question = browser
        .script("return document.getElementById('question').textContent")
        .await;
    assert!(
        question.as_str().unwrap().contains("Сверка итогов"),
        "{question}"
    );
    browser.click("yes").await;
    let report = browser
        .wait_for(
            "return document.getElementById('day-close').textContent",
            "Магазин:",
        )
        .await;
    let report = report.as_str().unwrap();
    assert!(
        report.contains("оплаты 2 на 1\u{a0}000,00\u{a0}₽")
            && report.contains("отмены 1 на 300,00\u{a0}₽")
            && report.contains("итого 700,00\u{a0}₽"),
        "{report}"
    );
    assert!(report.contains("Сверено с банком заказов: 2"), "{report}");
    let done = browser
        .wait_for(
            "return document.getElementById('done').textContent",
            "расхождений с банком нет",
        )
        .await;
    assert!(
        done.as_str().unwrap().starts_with("Сверка итогов"),
        "{done}"
    );
    browser.close().await;
}

/// A chain's store whose head office cannot be reached: the manager page says how many changes
/// wait and that there has been no contact yet; the sale itself went through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(chasti_no_browser, ignore = "Chromium is not installed here")]
async fn the_managers_page_says_when_the_head_office_is_behind() {
    require_browser();
    let nowhere = format!(
        "postgres://hq:x@127.0.0.1:{}/chain",
        crate::common::free_port()
    );
    let h = Harness::new(HarnessOptions {
        extra_config: crate::common::postgres::replicate_section(&nowhere, "msk-001"),
        ..Default::default()
    })
    .await;
    h.paid_sale(700, Mode::OneStage).await;
    let view = crate::common::postgres::wait_for(
        "the daemon has tried the head office",
        Duration::from_secs(30),
        async || {
            crate::common::get_json(
                format!("{}/api/v1/replication", h.api()),
                crate::common::MANAGER,
            )
            .await
        },
        |v| v["last_error"].is_string() && v["pending"].as_u64().unwrap_or(0) > 0,
    )
    .await;
    let waiting = view["pending"].as_u64().unwrap();

    let browser = Browser::start().await;
    browser.manager_page(&h.api()).await;
    let notice = browser
        .wait_for(
            "const b = document.getElementById('replication'); return b.hidden ? '' : b.textContent",
            "связи ещё не было",
        )
        .await;
    assert_eq!(
        notice.as_str().unwrap(),
        format!("В центральную базу не отправлено изменений: {waiting}, связи ещё не было.")
    );
    browser.close().await;
}
