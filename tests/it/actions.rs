//! A manager's actions against the sandbox: the same-day reversal until Moscow midnight
//! (whatever the host's time zone), one reversal try, refunds within what was paid.

use std::sync::Arc;

use crate::common::{Harness, HarnessOptions};
use chasti::engine::{EngineError, ManualClock};
use chasti::money::Kopecks;
use chasti::orders::{ActionError, Mode, StateKind};
use chasti::sandbox::{Fault, FaultRule};
use chrono::TimeZone;

fn key(k: &str) -> chasti::domain::IdempotencyKey {
    chasti::domain::IdempotencyKey::parse(k).unwrap()
}

fn rub(r: u64) -> Kopecks {
    Kopecks::from_roubles(r).unwrap()
}

fn callbacks_only() -> HarnessOptions {
    HarnessOptions {
        poll_first: std::time::Duration::from_secs(600),
        ..HarnessOptions::default()
    }
}

fn msk(h: u32, m: u32, s: u32) -> chrono::DateTime<chrono::Utc> {
    // 2026-11-23 in Moscow = UTC+3.
    chrono::Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).unwrap() - chrono::Duration::hours(3)
}

/// The reversal deadline is 00:00 Moscow time whatever the host's zone: this test also runs
/// again in a child process with TZ set far from Moscow (below).
#[tokio::test]
async fn reversal_until_moscow_midnight_then_refund() {
    let clock = Arc::new(ManualClock::new(msk(23, 59, 0)));
    let h = Harness::new(HarnessOptions {
        clock: Some(clock.clone()),
        ..callbacks_only()
    })
    .await;
    h.sandbox.set_clock(msk(23, 59, 0));
    let a = h.sell(100, Mode::OneStage).await;
    let b = h.sell(100, Mode::OneStage).await;
    h.sandbox.pay(Harness::gateway_id(&a)).unwrap();
    h.sandbox.pay(Harness::gateway_id(&b)).unwrap();
    h.wait_state(&a.id, StateKind::Paid).await;
    h.wait_state(&b.id, StateKind::Paid).await;

    clock.set(msk(23, 59, 59));
    h.sandbox.set_clock(msk(23, 59, 59));
    let reversed = h.engine.reverse(&a.id, None).await.unwrap();
    assert_eq!(reversed.state.kind(), StateKind::Reversed);

    clock.set(msk(23, 59, 59) + chrono::Duration::seconds(1)); // 00:00:00 MSK
    h.sandbox
        .set_clock(msk(23, 59, 59) + chrono::Duration::seconds(1));
    let err = h.engine.reverse(&b.id, None).await.unwrap_err();
    assert!(
        matches!(err, EngineError::Action(ActionError::ReversalDayOver)),
        "{err}"
    );
    assert!(err.cashier_text().contains("Оформите возврат"), "{err}");
    assert_eq!(
        h.engine.get(&b.id).unwrap().state.kind(),
        StateKind::Paid,
        "a refused action changes nothing"
    );
    assert_eq!(
        h.sandbox.ledger().count_ok("reverse.do", &b.order_number),
        0
    );
    let refunded = h
        .engine
        .refund(&b.id, None, &key("r1"), None)
        .await
        .unwrap();
    assert_eq!(refunded.state.kind(), StateKind::Refunded);
}

#[test]
fn reversal_midnight_holds_with_the_host_in_another_zone() {
    if std::env::var_os("CHASTI_TZ_CHILD").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for zone in ["America/Los_Angeles", "Pacific/Kiritimati"] {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "actions::reversal_until_moscow_midnight_then_refund",
                "--test-threads=1",
            ])
            .env("TZ", zone)
            .env("CHASTI_TZ_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "TZ={zone}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("1 passed"), "TZ={zone}: {stdout}");
    }
}

#[tokio::test]
async fn a_hold_is_reversed_and_a_failed_reversal_is_not_repeated() {
    let h = Harness::new(HarnessOptions {
        auto_deposit: false,
        ..callbacks_only()
    })
    .await;
    let held = h.held_sale(30).await;
    let reversed = h.engine.reverse(&held.id, None).await.unwrap();
    assert_eq!(reversed.state.kind(), StateKind::Reversed);

    // The bank refuses a reversal (its own state changed): reported, then never tried again.
    let paid = h.held_sale(30).await;
    h.engine.deposit(&paid.id, None, None).await.unwrap();
    h.sandbox
        .add_fault(FaultRule::new("reverse.do", Fault::HttpStatus { status: 500 }).before());
    let err = h.engine.reverse(&paid.id, None).await.unwrap_err();
    assert!(matches!(err, EngineError::BankRefused { .. }), "{err}");
    let after = h.engine.get(&paid.id).unwrap();
    assert_eq!(after.state.kind(), StateKind::Paid);
    let again = h.engine.reverse(&paid.id, None).await.unwrap_err();
    assert!(
        matches!(
            again,
            EngineError::Action(ActionError::ReversalAlreadyTried)
        ),
        "{again}"
    );
    assert_eq!(
        h.sandbox
            .ledger()
            .count_ok("reverse.do", &paid.order_number),
        0
    );
}

#[tokio::test]
async fn refunds_are_limited_and_idempotent() {
    let h = Harness::new(callbacks_only()).await;
    let order = h.paid_sale(100, Mode::OneStage).await;

    let part = h
        .engine
        .refund(&order.id, Some(rub(30)), &key("k1"), None)
        .await
        .unwrap();
    assert_eq!(part.state.kind(), StateKind::PartiallyRefunded);
    let retry = h
        .engine
        .refund(&order.id, Some(rub(30)), &key("k1"), None)
        .await
        .unwrap();
    assert_eq!(retry.refunded, rub(30), "the same key never refunds twice");
    let too_much = h
        .engine
        .refund(&order.id, Some(rub(71)), &key("k2"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            too_much,
            EngineError::Action(ActionError::RefundTooLarge { .. })
        ),
        "{too_much}"
    );
    assert!(too_much.cashier_text().contains("70,00 ₽"), "{too_much}");

    // A refund whose reply is lost after the bank did it: confirmed by status, not repeated.
    h.sandbox
        .add_fault(FaultRule::new("refund.do", Fault::DropConnection));
    let rest = h
        .engine
        .refund(&order.id, None, &key("k3"), None)
        .await
        .unwrap();
    assert_eq!(rest.state.kind(), StateKind::Refunded);
    assert_eq!(rest.refunded, rub(100));
    let ledger = h.sandbox.ledger();
    assert_eq!(ledger.count_ok("refund.do", &order.order_number), 2);
    assert_eq!(
        ledger.order(&order.order_number).unwrap().refunded,
        rub(100)
    );
}

#[tokio::test]
async fn a_request_for_an_order_being_worked_on_is_409_not_a_hang() {
    let h = Harness::new(HarnessOptions {
        configure: Some(Box::new(|c: &mut chasti::config::Config| {
            c.orders.busy_wait = std::time::Duration::from_secs(1);
        })),
        ..callbacks_only()
    })
    .await;
    let order = h.paid_sale(100, Mode::OneStage).await;
    // A reversal whose answer takes 3 s holds the order; a refund meanwhile is told it is busy.
    h.sandbox
        .add_fault(FaultRule::new("reverse.do", Fault::Latency { ms: 3000 }));
    let engine = h.engine.clone();
    let id = order.id;
    let reversal = tokio::spawn(async move { engine.reverse(&id, None).await });
    crate::common::wait_ledger(&h.sandbox, "the reversal reaches the bank", |l| {
        l.operations.iter().any(|o| o.operation == "reverse.do")
    })
    .await;
    let started = std::time::Instant::now();
    let reply = crate::common::http()
        .post(format!(
            "{}/api/v1/orders/{}/refund",
            h.api(),
            order.order_number
        ))
        .bearer_auth(crate::common::MANAGER)
        .json(&serde_json::json!({"idempotency_key": "busy-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 409);
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error_type"], "busy", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("обрабатывается"),
        "{body}"
    );
    assert_eq!(
        reversal.await.unwrap().unwrap().state.kind(),
        StateKind::Reversed
    );
    assert_eq!(h.engine.lock_entries(), 0);
}

/// A manager takes part of a hold: the bank takes that much and releases the rest; the order
/// shows what was taken, and a sum above the hold or below a rouble is refused, naming both.
#[tokio::test]
async fn part_of_a_hold_is_taken_and_the_rest_released() {
    let h = Harness::new(HarnessOptions {
        auto_deposit: false,
        ..callbacks_only()
    })
    .await;
    let held = h.held_sale(1000).await;
    let api = crate::common::TillClient::new(h.api());
    let path = format!("/api/v1/orders/{}/deposit", held.order_number);
    for (asked, says) in [
        (
            "1000.01",
            "до заблокированных 1 000,00 ₽; указано 1 000,01 ₽",
        ),
        ("0.50", "от 1,00 ₽"),
    ] {
        let (status, body) = api
            .call(
                "POST",
                &path,
                Some(crate::common::MANAGER),
                Some(serde_json::json!({"amount": asked})),
            )
            .await;
        assert_eq!(status, 409, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, body) = api
        .call(
            "POST",
            &path,
            Some(crate::common::MANAGER),
            Some(serde_json::json!({"amount": "600.00"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"]["name"], "paid", "{body}");
    assert_eq!(
        (body["deposited"].as_u64(), body["left"].as_u64()),
        (Some(60_000), Some(60_000))
    );
    assert_eq!(body["refundable"], 60_000);
    assert!(
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text"]
                == "Запрошено списание 600,00 ₽ из заблокированных 1 000,00 ₽; остаток будет разблокирован"),
        "{body}"
    );
    let at_bank = h
        .sandbox
        .ledger()
        .orders
        .into_iter()
        .find(|o| o.order_number == held.order_number.as_str())
        .unwrap();
    assert_eq!(
        at_bank.deposited,
        chasti::money::Kopecks::new(60_000).unwrap()
    );
    // Read back from the store, the order still knows what was asked.
    let kept = h.engine.get(&held.id).unwrap();
    assert_eq!(kept.deposit_asked, chasti::money::Kopecks::new(60_000));
    assert_eq!(kept.state.kind(), StateKind::Paid);
}
