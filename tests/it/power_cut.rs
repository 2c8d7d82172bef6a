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
