//! A chain of stores: each daemon ships every order change to the head office's PostgreSQL (a
//! private cluster per test, Debian's binaries on a free port): two stores into one database,
//! the database stopped and started again, a backlog caught up, a wrong password and a host
//! that is not there (sales go on). The SIGKILL between shipping and acknowledging is in
//! `replicate_crash.rs`.

use std::time::Duration;

use chasti::orders::{Mode, StateKind};
use serde_json::Value;

use crate::common::postgres::{replicate_section, wait_for, Postgres};
use crate::common::{get_json, Harness, HarnessOptions, MANAGER};

/// A daemon that ships to `url` as store `store_id`.
async fn store(url: &str, store_id: &str) -> Harness {
    Harness::new(HarnessOptions {
        extra_config: replicate_section(url, store_id),
        ..Default::default()
    })
    .await
}

pub(crate) async fn count(pg: &tokio_postgres::Client, sql: &str) -> i64 {
    pg.query_one(sql, &[]).await.unwrap().get(0)
}

async fn replication(h: &Harness) -> Value {
    get_json(format!("{}/api/v1/replication", h.api()), MANAGER).await
}

/// Waits until the store's outbox is empty and the head office has the store's orders at
/// their versions.
async fn caught_up(h: &Harness, pg: &tokio_postgres::Client, store_id: &str) {
    let orders = h.engine.store().all().unwrap();
    let want: Vec<(uuid::Uuid, i64)> = orders.iter().map(|o| (o.id, o.version as i64)).collect();
    wait_for(
        "the head office has every order at its version",
        Duration::from_secs(30),
        async || {
            let rows = pg
                .query(
                    "SELECT order_id, version FROM orders WHERE store_id = $1",
                    &[&store_id],
                )
                .await
                .unwrap();
            let mut have: Vec<(uuid::Uuid, i64)> =
                rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            have.sort();
            have
        },
        |have| {
            let mut want = want.clone();
            want.sort();
            *have == want
        },
    )
    .await;
    wait_for(
        "the outbox is empty and no resync is due",
        Duration::from_secs(30),
        async || h.engine.store().outbox_status().unwrap(),
        |status| status.pending == 0 && status.resync.is_none(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_ship_into_one_database_and_the_views_add_them_up() {
    let Some(pg) = Postgres::start("two_stores") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let url = pg.url("chain");
    let a = store(&url, "msk-001").await;
    // The second store as the role docs/chain.md grants the stores.
    let b = store(&pg.store_role_url("chain").await, "spb-002").await;
    a.paid_sale(1000, Mode::OneStage).await;
    let back = a.paid_sale(300, Mode::OneStage).await;
    a.engine.reverse(&back.id, None).await.unwrap();
    let part = b.paid_sale(500, Mode::OneStage).await;
    b.engine
        .refund(
            &part.id,
            Some(chasti::money::Kopecks::from_roubles(100).unwrap()),
            &chasti::domain::IdempotencyKey::parse("r-1").unwrap(),
            None,
        )
        .await
        .unwrap();
    caught_up(&a, &central, "msk-001").await;
    caught_up(&b, &central, "spb-002").await;

    // Every history line once, each store's under its name.
    let lines: usize = a
        .engine
        .store()
        .all()
        .unwrap()
        .iter()
        .chain(b.engine.store().all().unwrap().iter())
        .map(|o| o.history.len())
        .sum();
    assert_eq!(
        count(&central, "SELECT count(*) FROM order_events").await,
        lines as i64
    );
    // The day's totals per store, by the day's-close rule.
    let day = chasti::moscow::date(chrono::Utc::now());
    let totals = central
        .query(
            "SELECT store_id, sales, sales_kopecks, reversals, reversals_kopecks, refunds,
                refunds_kopecks, net_kopecks
             FROM store_day_totals WHERE day = $1 ORDER BY store_id",
            &[&day],
        )
        .await
        .unwrap();
    let got: Vec<(String, Vec<i64>)> = totals
        .iter()
        .map(|r| (r.get(0), (1..8).map(|i| r.get::<_, i64>(i)).collect()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("msk-001".into(), vec![2, 130_000, 1, 30_000, 0, 0, 100_000]),
            ("spb-002".into(), vec![1, 50_000, 0, 0, 1, 10_000, 40_000]),
        ]
    );
    // The same as the head office reads it: `chasti hq report`.
    let day_text = day.format("%d.%m.%Y").to_string();
    let (ok, csv) = crate::common::run_output(
        std::process::Command::new(crate::common::BIN)
            .args(["hq", "report", "--from", &day_text, "--postgres-url", &url])
            .env_remove("CHASTI_HQ_URL"),
    );
    assert!(ok, "{csv}");
    assert!(
        csv.contains(&format!(
            "msk-001;{day_text};2;1300,00;1;300,00;0;0,00;1000,00"
        )),
        "{csv}"
    );
    assert!(
        csv.contains(&format!(
            "spb-002;{day_text};1;500,00;0;0,00;1;100,00;400,00"
        )),
        "{csv}"
    );
    let view = replication(&a).await;
    assert_eq!(view["enabled"], true);
    assert_eq!(view["pending"], 0);
    assert!(view["notice"].is_null(), "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_for_a_while_loses_nothing_and_doubles_nothing() {
    let Some(pg) = Postgres::start("postgres_down") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let h = store(&pg.url("chain"), "msk-001").await;
    h.paid_sale(700, Mode::OneStage).await;
    caught_up(&h, &central, "msk-001").await;
    drop(central);

    pg.stop();
    // Sales go on while the head office is away; their changes wait in the outbox.
    let started = std::time::Instant::now();
    for amount in [100, 200, 300] {
        h.paid_sale(amount, Mode::OneStage).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "sales are not slowed by the head office"
    );
    let behind = wait_for(
        "the daemon notices the head office is away",
        Duration::from_secs(30),
        async || replication(&h).await,
        |v| v["pending"].as_u64().unwrap_or(0) >= 3 && v["last_error"].is_string(),
    )
    .await;
    // Each sale is several changes (made, registered, paid); the notice counts them all.
    let waiting = behind["pending"].as_u64().unwrap();
    let notice = behind["notice"].as_str().unwrap_or_default();
    assert!(
        notice.contains(&format!("не отправлено изменений: {waiting}"))
            && notice.contains("последняя связь"),
        "{behind}"
    );
    let metrics = h.metrics().await;
    assert!(
        metrics.contains(&format!("chasti_replicate_pending {waiting}")),
        "{metrics}"
    );

    pg.start_again();
    let central = pg.client("chain").await;
    caught_up(&h, &central, "msk-001").await;
    let lines: usize = h
        .engine
        .store()
        .all()
        .unwrap()
        .iter()
        .map(|o| o.history.len())
        .sum();
    assert_eq!(
        count(&central, "SELECT count(*) FROM order_events").await,
        lines as i64,
        "every history line once"
    );
    assert_eq!(count(&central, "SELECT count(*) FROM movements").await, 4);
    let after = wait_for(
        "the notice goes",
        Duration::from_secs(30),
        async || replication(&h).await,
        |v| v["notice"].is_null(),
    )
    .await;
    assert!(after["last_error"].is_null(), "{after}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_no_host_is_told_plainly_and_sales_go_on() {
    let Some(pg) = Postgres::start("wrong_password") else {
        return;
    };
    drop(pg.chain_database("chain").await);
    let nobody = format!(
        "postgres://hq:x@127.0.0.1:{}/chain",
        crate::common::free_port()
    );
    for (url, expected) in [
        (
            pg.url_with("chain", "not-the-password"),
            "password authentication failed",
        ),
        (nobody, "cannot connect"),
    ] {
        let h = store(&url, "msk-001").await;
        let sold = h.paid_sale(1000, Mode::OneStage).await;
        assert_eq!(sold.state.kind(), StateKind::Paid);
        let view = wait_for(
            "the failure is reported",
            Duration::from_secs(30),
            async || replication(&h).await,
            |v| v["last_error"].is_string(),
        )
        .await;
        let error = view["last_error"].as_str().unwrap();
        assert!(error.contains(expected), "{error}");
        assert!(
            !error.contains("not-the-password"),
            "the password is never shown: {error}"
        );
        assert!(view["pending"].as_u64().unwrap() >= 1, "{view}");
        assert!(view["notice"].as_str().is_some(), "{view}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_of_a_hundred_thousand_changes_is_caught_up() {
    let Some(pg) = Postgres::start("backlog") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    // A store that noted 100 000 changes while the head office was away.
    {
        let store = chasti::store::Store::open_with(
            &dir.path().join("orders"),
            chasti::store::StoreOptions {
                replication: chasti::store::Replication::On {
                    outbox_max: 1_000_000,
                },
                ..Default::default()
            },
        )
        .unwrap();
        // A new store has no history to resync.
        assert_eq!(store.outbox_status().unwrap().resync, None);
        let first = chasti::moscow::date(chrono::Utc::now()) - chrono::Duration::days(20);
        for d in 0..20 {
            let day = first + chrono::Duration::days(d);
            let orders = crate::common::history::day_of_orders(day, 5_000, "1", 0);
            store.insert_many(&orders).await.unwrap();
        }
        let status = store.outbox_status().unwrap();
        assert_eq!((status.pending, status.resync), (100_000, None));
        store.flush().await.unwrap();
    }
    let started = std::time::Instant::now();
    let h = Harness::new(HarnessOptions {
        extra_config: replicate_section(&pg.url("chain"), "msk-001"),
        dir: Some(dir),
        run: false,
        ..Default::default()
    })
    .await;
    wait_for(
        "100 000 orders in the head office",
        Duration::from_secs(600),
        async || count(&central, "SELECT count(*) FROM orders").await,
        |n| *n == 100_000,
    )
    .await;
    let took = started.elapsed();
    eprintln!(
        "backlog: 100000 changes caught up in {:.1} s ({:.0} changes/s, debug build)",
        took.as_secs_f64(),
        100_000.0 / took.as_secs_f64()
    );
    wait_for(
        "the outbox is empty",
        Duration::from_secs(60),
        async || h.engine.store().outbox_status().unwrap().pending,
        |p| *p == 0,
    )
    .await;
}

/// A store that sold before it was part of a chain, then noted more changes than its outbox
/// holds while its daemon was stopped: when the daemon starts, the outbox is shipped, then
/// every order again (a resync), and the head office has each order once, at its version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_an_overflowing_outbox_are_resynced_whole() {
    let Some(pg) = Postgres::start("resync") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("orders");
    let today = chasti::moscow::date(chrono::Utc::now());
    let open = |replication| {
        chasti::store::Store::open_with(
            &path,
            chasti::store::StoreOptions {
                replication,
                ..Default::default()
            },
        )
        .unwrap()
    };
    {
        let store = open(chasti::store::Replication::Off);
        let before =
            crate::common::history::day_of_orders(today - chrono::Duration::days(3), 300, "1", 0);
        store.insert_many(&before).await.unwrap();
        store.flush().await.unwrap();
    }
    {
        let store = open(chasti::store::Replication::On { outbox_max: 1_000 });
        assert_eq!(
            store.outbox_status().unwrap().resync,
            Some(1),
            "history asks for a resync"
        );
        let more =
            crate::common::history::day_of_orders(today - chrono::Duration::days(1), 1_500, "2", 0);
        store.insert_many(&more).await.unwrap();
        let status = store.outbox_status().unwrap();
        assert_eq!(status.pending, 1_000, "the outbox stops at its bound");
        assert!(status.resync > Some(1), "and asks for a newer resync");
        store.flush().await.unwrap();
    }
    let h = Harness::new(HarnessOptions {
        extra_config: format!(
            "{}outbox_max = 1000\n",
            replicate_section(&pg.url("chain"), "msk-001")
        ),
        dir: Some(dir.clone()),
        run: false,
        ..Default::default()
    })
    .await;
    caught_up(&h, &central, "msk-001").await;
    assert_eq!(count(&central, "SELECT count(*) FROM orders").await, 1_800);
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("chasti_replicate_resync_due 0")
            && metrics.contains("chasti_replicate_pending 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_used_when_the_url_asks_and_the_certificate_is_checked() {
    let Some(pg) = Postgres::start("replicate_tls") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let ca = pg.restart_with_tls();
    let central = {
        drop(central);
        pg.client("chain").await
    };
    let url = format!("{}?sslmode=verify-full", pg.url("chain"));
    let h = Harness::new(HarnessOptions {
        extra_config: format!(
            "{}ca_file = \"{}\"\n",
            replicate_section(&url, "msk-001"),
            ca.display()
        ),
        ..Default::default()
    })
    .await;
    h.paid_sale(1000, Mode::OneStage).await;
    caught_up(&h, &central, "msk-001").await;
    let encrypted: bool = central
        .query_one(
            "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.application_name = 'chasti'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(encrypted, "chasti's connection is TLS");

    // Without the CA the server's certificate is not trusted: said, and nothing is sent.
    let untrusting = store(&url, "spb-002").await;
    untrusting.paid_sale(500, Mode::OneStage).await;
    let view = wait_for(
        "the untrusted certificate is reported",
        Duration::from_secs(30),
        async || replication(&untrusting).await,
        |v| v["last_error"].is_string(),
    )
    .await;
    assert!(
        view["last_error"].as_str().unwrap().contains("certificate"),
        "{view}"
    );
}

/// A store restored from a backup is sent again under a new epoch: the head office replaces
/// what it had of the orders (their versions went back, their history after the backup was
/// learned again from the bank), and a refund it had before the restore is not counted twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_store_replaces_what_the_head_office_had_of_it() {
    let Some(pg) = Postgres::start("restore") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    // As the role the documentation grants (a restore needs its DELETE).
    let url = pg.store_role_url("chain").await;
    let sandbox = std::sync::Arc::new(crate::common::sandbox().await);
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let options = || HarnessOptions {
        dir: Some(dir.clone()),
        extra_config: replicate_section(&url, "msk-001"),
        ..HarnessOptions::default()
    };
    let mut h = Harness::with_sandbox(sandbox.clone(), options()).await;
    let sale = h.sell(700, Mode::OneStage).await;
    sandbox.pay(Harness::gateway_id(&sale)).unwrap();
    h.wait_state(&sale.id, StateKind::Paid).await;
    let backup = dir.path().join("backup.db");
    h.engine.store().backup_to(&backup).unwrap();
    // After the backup: a refund, shipped.
    let key = chasti::domain::IdempotencyKey::parse("after-backup").unwrap();
    h.engine.refund(&sale.id, None, &key, None).await.unwrap();
    caught_up(&h, &central, "msk-001").await;
    let refunds = "SELECT count(*) FROM movements WHERE kind = 'refund'";
    assert_eq!(count(&central, refunds).await, 1);
    h.stop().await.unwrap();
    drop(h);

    for suffix in ["orders.db", "orders.db-wal", "orders.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(suffix));
    }
    chasti::store::Store::restore(
        &backup,
        &dir.path().join("orders"),
        chasti::store::StoreOptions::default(),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    let h = Harness::with_sandbox(sandbox.clone(), options()).await;
    let refunded = h.wait_state(&sale.id, StateKind::Refunded).await;
    crate::common::wait_until(
        "the restored store is checked against the bank",
        Duration::from_secs(30),
        || h.engine.store().restore_check().unwrap().is_none(),
    )
    .await;
    caught_up(&h, &central, "msk-001").await;
    let refunded = h.engine.get(&refunded.id).unwrap();
    // The head office holds the order as the restored store does: its epoch, its history
    // line for line, and one refund.
    let row = central
        .query_one(
            "SELECT epoch, version FROM orders WHERE order_id = $1",
            &[&sale.id],
        )
        .await
        .unwrap();
    assert!(row.get::<_, i64>(0) > 0, "a restored store's epoch");
    assert_eq!(row.get::<_, i64>(1), refunded.version as i64);
    let lines: Vec<String> = central
        .query(
            "SELECT text FROM order_events WHERE order_id = $1 ORDER BY line",
            &[&sale.id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let store_lines: Vec<String> = refunded.history.iter().map(|e| e.text()).collect();
    assert_eq!(lines, store_lines);
    assert!(
        lines.iter().any(|l| l.contains("после восстановления")),
        "{lines:#?}"
    );
    assert_eq!(count(&central, refunds).await, 1, "the refund counted once");
    let totals = central
        .query_one(
            "SELECT sum(refunds_kopecks)::bigint, sum(net_kopecks)::bigint FROM store_day_totals",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        (totals.get::<_, i64>(0), totals.get::<_, i64>(1)),
        (70_000, 0)
    );
}
