//! `chasti doctor`'s checks against a real sandbox and the bundled certificates.

use chasti::config::Config;
use chasti::doctor::{self, Verdict};
use chrono::TimeZone;

fn config_for(
    sandbox: &chasti::sandbox::Sandbox,
    environment: &str,
    user: &str,
    password: &str,
) -> Config {
    let text = format!(
        "[gateway]\nenvironment = \"{environment}\"\nbase_url = \"{}\"\nuser_name = \"{user}\"\npassword = \"{password}\"\nreturn_url = \"https://shop.example/\"\n",
        sandbox.gateway_url()
    );
    Config::parse(std::path::Path::new("doctor.toml"), &text, |_| None).unwrap()
}

#[tokio::test]
async fn accepted_and_refused_credentials() {
    let sb = crate::common::sandbox().await;
    let now = chrono::Utc::now();
    let good = doctor::gateway(&config_for(&sb, "test", "sandbox-api", "sandbox"), now).await;
    assert!(good.iter().all(|c| c.verdict == Verdict::Ok), "{good:?}");
    let bad = doctor::gateway(
        &config_for(&sb, "production", "shop", "wrong-password"),
        now,
    )
    .await;
    let creds = bad.iter().find(|c| c.name == "credentials").unwrap();
    assert_eq!(creds.verdict, Verdict::Fail);
    assert!(
        creds.detail.contains("Access denied")
            && creds
                .detail
                .contains("test credentials on the production host"),
        "{}",
        creds.detail
    );
    assert!(creds.detail.contains("ends in -api"), "{}", creds.detail);
    assert!(
        !creds.detail.contains("wrong-password"),
        "no secret in the output"
    );
    let clock = doctor::clock(&config_for(&sb, "test", "sandbox-api", "sandbox"), now).await;
    assert_eq!(clock.verdict, Verdict::Ok, "{clock:?}");
}

#[test]
fn the_2022_sub_ca_is_flagged_before_it_expires() {
    let day = |y, m, d| chrono::Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).unwrap();
    let verdict_of = |checks: &[doctor::Check], name: &str| {
        checks
            .iter()
            .find(|c| c.detail.contains(name))
            .unwrap()
            .verdict
    };
    let today = doctor::certificates(day(2026, 11, 23));
    assert_eq!(
        verdict_of(&today, "sub_ca_2022"),
        Verdict::Ok,
        "103 days left"
    );
    let soon = doctor::certificates(day(2027, 1, 1));
    assert_eq!(verdict_of(&soon, "sub_ca_2022"), Verdict::Warn);
    assert_eq!(verdict_of(&soon, "root_ca"), Verdict::Ok);
    let after = doctor::certificates(day(2027, 3, 7));
    assert_eq!(verdict_of(&after, "sub_ca_2022"), Verdict::Fail);
}

#[test]
fn the_shipped_demo_tokens_are_flagged() {
    let shipped = include_str!("../../config/chasti.toml");
    let config = Config::parse(std::path::Path::new("chasti.toml"), shipped, |_| None).unwrap();
    let c = doctor::api_tokens(&config);
    assert_eq!(c.verdict, Verdict::Warn);
    assert!(c.detail.contains("demo token"), "{}", c.detail);
    assert!(
        !c.detail.contains("change-me"),
        "the token itself is not shown: {}",
        c.detail
    );
}

#[test]
fn unsigned_callbacks_warn_and_fail_the_go_live_check() {
    let base = "[gateway]\nenvironment = \"sandbox\"\nuser_name = \"u\"\npassword = \"p\"\nreturn_url = \"https://shop.example/paid\"\n[callback]\nlisten = \"127.0.0.1:0\"\n";
    let parse = |extra: &str| {
        Config::parse(
            std::path::Path::new("doctor.toml"),
            &format!("{base}{extra}"),
            |_| None,
        )
        .unwrap()
    };
    let verdict = |config: &Config, go_live: bool| {
        doctor::callback(config, go_live)
            .into_iter()
            .find(|c| c.name == "callback key")
            .unwrap()
            .verdict
    };
    let unsigned = parse("");
    assert_eq!(verdict(&unsigned, false), Verdict::Warn);
    assert_eq!(verdict(&unsigned, true), Verdict::Fail);
    let signed = parse("key = \"merchant-key\"\n");
    assert_eq!(verdict(&signed, true), Verdict::Ok);
}

#[tokio::test]
async fn the_store_check_names_an_unwritable_folder_and_a_store_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[gateway]\nenvironment = \"sandbox\"\nuser_name = \"u\"\npassword = \"p\"\nreturn_url = \"https://shop.example/paid\"\n";
    let config_for = |path: &std::path::Path| {
        Config::parse(
            std::path::Path::new("doctor.toml"),
            &format!("{base}[store]\npath = {:?}\n", path.display().to_string()),
            |_| None,
        )
        .unwrap()
    };
    // Not there yet: fine, it is made at the first start.
    let fresh = doctor::store(&config_for(&dir.path().join("orders")));
    assert_eq!(fresh.verdict, Verdict::Ok, "{}", fresh.detail);
    assert!(fresh.detail.contains("will be created"), "{}", fresh.detail);
    // Read-only folder (unless this runs as root, which writes anywhere).
    let locked_down = dir.path().join("ro");
    std::fs::create_dir(&locked_down).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&locked_down, std::fs::Permissions::from_mode(0o555)).unwrap();
    let probe = locked_down.join("probe");
    let root = std::fs::write(&probe, b"x").is_ok();
    let _ = std::fs::remove_file(&probe);
    if !root {
        let ro = doctor::store(&config_for(&locked_down.join("orders")));
        assert_eq!(ro.verdict, Verdict::Fail, "{}", ro.detail);
        assert!(ro.detail.contains("not writable"), "{}", ro.detail);
    }
    std::fs::set_permissions(&locked_down, std::fs::Permissions::from_mode(0o755)).unwrap();
    // In use by this process's own store handle: reported as in use, with what to do.
    let path = dir.path().join("busy");
    let _held = chasti::orders::Store::open(&path).unwrap();
    let busy = doctor::store(&config_for(&path));
    assert!(busy.detail.contains("only one chasti"), "{}", busy.detail);
}
