//! The head office's side of a chain: `chasti replicate --init` makes the schema and `doctor`
//! says how shipping goes (the link, the schema's version, what waits in this store's outbox);
//! `chasti hq report` reads orders needing attention and missing receipts, and refuses bad
//! arguments with what is allowed. Each test on a private PostgreSQL cluster.

use std::time::Duration;

use chasti::orders::{Mode, StateKind};

use crate::common::postgres::{replicate_section, wait_for, Postgres};
use crate::common::{Harness, HarnessOptions};
use crate::replicate::count;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_made_by_replicate_init_and_doctor_says_how_shipping_goes() {
    let Some(pg) = Postgres::start("replicate_init") else {
        return;
    };
    pg.client("postgres")
        .await
        .batch_execute("CREATE DATABASE chain")
        .await
        .unwrap();
    let sandbox = crate::common::sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let config = crate::replicate_crash::write_config(dir.path(), &sandbox, &pg.url("chain"));
    let chasti = |args: &[&str]| {
        crate::common::run_output(
            std::process::Command::new(crate::common::BIN)
                .args(args)
                .arg("--config")
                .arg(&config),
        )
    };
    let checks = |config: &std::path::Path| {
        let config = chasti::config::Config::load(config).unwrap();
        async move {
            chasti::doctor::replicate(&config, chrono::Utc::now())
                .await
                .unwrap()
        }
    };
    // Before --init: the daemon's doctor and `chasti replicate` say what to run.
    let before = checks(&config).await;
    assert_eq!(before.verdict, chasti::doctor::Verdict::Fail);
    assert!(
        before.detail.contains("chasti replicate --init"),
        "{}",
        before.detail
    );
    let (ok, said) = chasti(&["replicate"]);
    assert!(!ok && said.contains("chasti replicate --init"), "{said}");
    let (ok, said) = chasti(&["replicate", "--init"]);
    assert!(ok && said.contains("version 0 -> 1"), "{said}");
    let (ok, said) = chasti(&["replicate", "--init"]);
    assert!(ok && said.contains("nothing to do"), "{said}");
    assert!(
        !said.contains(crate::common::postgres::ADMIN_PASSWORD),
        "{said}"
    );
    let after = checks(&config).await;
    assert_eq!(
        after.verdict,
        chasti::doctor::Verdict::Ok,
        "{}",
        after.detail
    );
    assert!(
        after.detail.contains("has sent nothing yet"),
        "{}",
        after.detail
    );
    // Changes waiting in this store's outbox (the daemon stopped): doctor counts them.
    {
        let loaded = chasti::config::Config::load(&config).unwrap();
        let store = chasti::store::Store::open_with(
            &loaded.store.path,
            chasti::store::StoreOptions {
                replication: chasti::store::Replication::On { outbox_max: 1_000 },
                ..Default::default()
            },
        )
        .unwrap();
        let day = chasti::moscow::date(chrono::Utc::now());
        store
            .insert_many(&crate::common::history::day_of_orders(day, 3, "1", 0))
            .await
            .unwrap();
    }
    let waiting = checks(&config).await;
    assert!(
        waiting
            .detail
            .contains("here: 3 changes wait, the oldest from")
            && waiting.detail.contains("МСК"),
        "{}",
        waiting.detail
    );
    // A store that shipped: the head office's view of it.
    let central = pg.client("chain").await;
    central
        .execute(
            "INSERT INTO stores VALUES ('msk-001', now() - interval '3 hours', '0.1.0')",
            &[],
        )
        .await
        .unwrap();
    let late = checks(&config).await;
    assert_eq!(
        late.verdict,
        chasti::doctor::Verdict::Warn,
        "{}",
        late.detail
    );
    assert!(
        late.detail.contains("last heard from store msk-001"),
        "{}",
        late.detail
    );
    let (ok, said) = chasti(&["replicate"]);
    assert!(
        ok && said.contains("msk-001") && said.contains("(this store)"),
        "{said}"
    );

    // A head office's database altered by hand: errors that say what they read, no panic.
    central
        .batch_execute(
            "ALTER TABLE stores ALTER COLUMN last_shipped_at TYPE text;
             UPDATE chasti_schema SET version = -1;",
        )
        .await
        .unwrap();
    let (ok, said) = chasti(&["replicate", "--init"]);
    assert!(
        !ok && said.contains("version -1, which no chasti writes") && !said.contains("panicked"),
        "{said}"
    );
    let broken = checks(&config).await;
    assert_eq!(broken.verdict, chasti::doctor::Verdict::Fail);
    central
        .batch_execute("UPDATE chasti_schema SET version = 1")
        .await
        .unwrap();
    let (ok, said) = chasti(&["replicate"]);
    assert!(
        !ok && said.contains("reading the stores") && !said.contains("panicked"),
        "{said}"
    );
    let broken = checks(&config).await;
    assert!(
        broken.verdict == chasti::doctor::Verdict::Fail
            && broken.detail.contains("reading the stores"),
        "{}",
        broken.detail
    );
}

/// What a head office reads besides the totals: an order a manager must decide about (a hold
/// the bank refuses to take) and a sale whose fiscal receipt the POS never took (past its
/// deadline by the store's clock), through `chasti hq report`; and its bad arguments refused
/// with what is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_office_reads_orders_needing_attention_and_missing_receipts() {
    let Some(pg) = Postgres::start("hq_reports") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let url = pg.url("chain");
    // The POS's webhook is a port where nothing listens: the receipt is never issued.
    let fiscal = format!(
        "\n[fiscal]\nmode = \"pos\"\ndeadline_minutes = 15\n[fiscal.pos]\nwebhook_url = \"http://127.0.0.1:{}/receipts\"\nkey = \"pos-webhook-key-0123456789\"\n",
        crate::common::free_port()
    );
    let clock = std::sync::Arc::new(chasti::engine::ManualClock::new(chrono::Utc::now()));
    let h = Harness::new(HarnessOptions {
        extra_config: format!("{}{fiscal}", replicate_section(&url, "msk-001")),
        clock: Some(clock.clone()),
        ..Default::default()
    })
    .await;
    let unreceipted = h.paid_sale(1200, Mode::OneStage).await;
    let hold = h.sell(450, Mode::TwoStage).await;
    h.sandbox.add_fault(
        chasti::sandbox::FaultRule::new(
            "deposit.do",
            chasti::sandbox::Fault::Refuse {
                code: 5,
                message: "Сумма списания превышает сумму блокировки".into(),
            },
        )
        .before(),
    );
    h.sandbox.pay(Harness::gateway_id(&hold)).unwrap();
    h.wait_state(&hold.id, StateKind::NeedsAttention).await;
    clock.advance(chrono::Duration::minutes(16));
    crate::common::wait_until("the receipt is late", Duration::from_secs(10), || {
        h.engine.get(&unreceipted.id).unwrap().receipts[0].late
    })
    .await;
    // The POS is tried again and again (each try a change): wait for what the views need,
    // not for an outbox that stays empty.
    wait_for(
        "the head office has the order to decide about and the late receipt",
        Duration::from_secs(30),
        async || {
            let attention = count(&central, "SELECT count(*) FROM orders_needing_attention").await;
            let late = count(&central, "SELECT count(*) FROM receipts WHERE late").await;
            (attention, late)
        },
        |seen| *seen == (1, 1),
    )
    .await;

    let today = chasti::moscow::date(chrono::Utc::now());
    let around = |d: i64| {
        (today + chrono::Duration::days(d))
            .format("%d.%m.%Y")
            .to_string()
    };
    // Read as a role that may only read the views, as docs/chain.md says.
    central
        .batch_execute(
            "CREATE ROLE hq_reader LOGIN PASSWORD 'reader-password-0123';
             GRANT SELECT ON chasti_schema, store_day_totals, orders_needing_attention, receipts_missing TO hq_reader;",
        )
        .await
        .unwrap();
    let reader = url.replace(
        &format!("hq:{}@", crate::common::postgres::ADMIN_PASSWORD),
        "hq_reader:reader-password-0123@",
    );
    assert_ne!(reader, url);
    let report = |what: &str| {
        crate::common::run_output(
            std::process::Command::new(crate::common::BIN)
                .args(["hq", "report", "--from", &around(-1), "--to", &around(1)])
                .args(["--what", what, "--postgres-url", &reader])
                .env_remove("CHASTI_HQ_URL"),
        )
    };
    let (ok, attention) = report("attention");
    assert!(ok, "{attention}");
    assert!(
        attention
            .starts_with("\u{feff}Магазин;Заказ;Касса;Сумма;Оплачено;Почему;Изменён (МСК)\r\n"),
        "{attention}"
    );
    let line = attention
        .lines()
        .find(|l| l.contains(hold.order_number.as_str()))
        .unwrap_or_else(|| panic!("{attention}"));
    assert!(
        line.starts_with(&format!("msk-001;{};1;450,00;", hold.order_number))
            && line.contains("превышает сумму блокировки"),
        "{line}"
    );
    assert_eq!(attention.lines().count(), 2, "{attention}");

    let (ok, receipts) = report("receipts");
    assert!(ok, "{receipts}");
    let line = receipts
        .lines()
        .find(|l| l.contains(unreceipted.order_number.as_str()))
        .unwrap_or_else(|| panic!("{receipts}"));
    assert!(
        line.starts_with(&format!(
            "msk-001;{};1;приход;1200,00;",
            unreceipted.order_number
        )),
        "{line}"
    );
    assert!(
        line.contains("не передан на кассу") || line.contains("передан, ответа нет"),
        "{line}"
    );

    // Bad arguments: each named with what is allowed, nothing read.
    for (args, expected) in [
        (
            vec!["--from", "32.13.2026"],
            "--from \"32.13.2026\": allowed: 2026-12-01 or 01.12.2026",
        ),
        (
            vec!["--from", "02.12.2026", "--to", "01.12.2026"],
            "is before --from",
        ),
        (
            vec!["--from", "01.12.2026", "--what", "everything"],
            "--what \"everything\": allowed: totals, attention, receipts",
        ),
        (
            vec!["--from", "01.12.2026", "--postgres-url", "mysql://x@h/db"],
            "not a postgres://",
        ),
        (
            vec![
                "--from",
                "01.12.2026",
                "--postgres-url",
                "postgres://u@h/db?sslmode=maybe",
            ],
            "sslmode=maybe; allowed: disable, prefer",
        ),
    ] {
        let (ok, said) = crate::common::run_output(
            std::process::Command::new(crate::common::BIN)
                .args(["hq", "report"])
                .args(&args)
                .env_remove("CHASTI_HQ_URL"),
        );
        assert!(!ok && said.contains(expected), "{args:?}: {said}");
    }
}
