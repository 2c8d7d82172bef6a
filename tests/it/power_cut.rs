//! Power cuts (`common/power_cuts.rs`): a real `chasti serve` with its store on LazyFS, killed
//! and cut off from every unsynced write 30 times under load; every acknowledged answer must
//! survive, no order number may be handed out twice, the store must always open.
//!
//! Ignored, with the reason, when LazyFS is not beside this checkout (a user's clone) or,
//! outside CI, when FUSE cannot be used (tests/support/build.rs). `CHASTI_POWER_CUTS=N` runs N
//! cuts (default 30).

use crate::common::power_cuts;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    chasti_no_lazyfs,
    ignore = "LazyFS is not here: ../shared/tools/lazyfs sits beside the project's own checkout, not a user's clone"
)]
#[cfg_attr(
    chasti_no_fuse,
    ignore = "FUSE cannot be used here (needs /dev/fuse, fuse3 and root): apt-get install fuse3, or run .ci/run"
)]
async fn every_acknowledged_answer_survives_power_cuts() {
    let cuts: usize = std::env::var("CHASTI_POWER_CUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30);
    let ctl = power_cuts::lazyfs_ctl().expect("the build found LazyFS");
    let report = power_cuts::run(std::path::Path::new(crate::common::BIN), ctl, cuts).await;
    eprintln!(
        "power cuts: {}, orders answered {}, of them paid/reversed/refunded {}, lost {}, numbers reused {}",
        report.cuts,
        report.answers,
        report.moved,
        report.lost.len(),
        report.reused
    );
    assert!(report.lost.is_empty(), "lost: {:#?}", report.lost);
    assert_eq!(report.reused, 0, "order numbers handed out twice");
    assert!(
        report.answers >= cuts,
        "the load did sell ({} orders)",
        report.answers
    );
    assert!(
        report.moved > 0,
        "payments, reversals and refunds were tested"
    );
    assert!(
        report.clean_stop,
        "a SIGTERM stop after the last cut exits 0"
    );
}

/// The same power cuts with `[replicate]` on, shipping to a private PostgreSQL: a change and
/// its outbox row are one fsynced transaction, so after the cuts the head office must come to
/// hold every order of the store in the state the store has it — none missing, none stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    chasti_no_lazyfs,
    ignore = "LazyFS is not here: ../shared/tools/lazyfs sits beside the project's own checkout, not a user's clone"
)]
#[cfg_attr(
    chasti_no_fuse,
    ignore = "FUSE cannot be used here (needs /dev/fuse, fuse3 and root): apt-get install fuse3, or run .ci/run"
)]
async fn every_change_reaches_the_head_office_through_power_cuts() {
    use crate::common::postgres::{replicate_section, wait_for, Postgres};
    let Some(pg) = Postgres::start("power_cut_replicate") else {
        return;
    };
    let central = pg.chain_database("chain").await;
    let ctl = power_cuts::lazyfs_ctl().expect("the build found LazyFS");
    let extra = replicate_section(&pg.url("chain"), "msk-001");
    let report = power_cuts::run_with(
        std::path::Path::new(crate::common::BIN),
        ctl,
        10,
        &extra,
        async |api| {
            let manager = power_cuts::MANAGER;
            wait_for(
                "the outbox is shipped after the last cut",
                std::time::Duration::from_secs(60),
                async || {
                    crate::common::get_json(format!("{api}/api/v1/replication"), manager).await
                        ["pending"]
                        .as_u64()
                },
                |p| *p == Some(0),
            )
            .await;
            // Every order the store has, in the state it has it (two days: a run at midnight).
            let today = chasti::moscow::date(chrono::Utc::now());
            let from = (today - chrono::Duration::days(1)).format("%d.%m.%Y");
            let mut store: Vec<(String, String)> = Vec::new();
            let mut cursor = String::new();
            loop {
                let page = crate::common::get_json(
                    format!(
                        "{api}/api/v1/orders?from={from}&to={}&limit=500{cursor}",
                        today.format("%d.%m.%Y")
                    ),
                    manager,
                )
                .await;
                for o in page["orders"].as_array().expect("a page of orders") {
                    store.push((
                        o["order_number"].as_str().unwrap().to_string(),
                        o["state"]["name"].as_str().unwrap().to_string(),
                    ));
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = format!("&cursor={next}"),
                    None => break,
                }
            }
            store.sort();
            let mut head_office: Vec<(String, String)> = central
                .query("SELECT order_number, state FROM orders", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            head_office.sort();
            assert!(!store.is_empty());
            assert_eq!(head_office, store, "the head office has what the store has");
        },
    )
    .await;
    assert!(report.lost.is_empty(), "lost: {:#?}", report.lost);
    assert_eq!(report.reused, 0, "order numbers handed out twice");
}
