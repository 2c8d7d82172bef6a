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
