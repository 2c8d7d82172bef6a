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

/// A config: `gateway` keys (a login and return URL added unless given), then `extra` for
/// `[callback]` keys or whole sections.
fn parse(gateway: &str, extra: &str) -> Config {
    let mut keys = gateway.to_string();
    for default in [
        "user_name = \"shop-api\"",
        "password = \"p\"",
        "return_url = \"https://shop.example/paid\"",
    ] {
        if !gateway.contains(default.split(' ').next().unwrap()) {
            keys.push_str(&format!("\n{default}"));
        }
    }
    let text = format!("[gateway]\n{keys}\n[callback]\nlisten = \"127.0.0.1:0\"\n{extra}");
    Config::parse(std::path::Path::new("doctor.toml"), &text, |_| None).unwrap()
}

/// The one check called `name`, after `--go-live` when `go_live`.
fn named(mut checks: Vec<doctor::Check>, name: &str, go_live: bool) -> doctor::Check {
    if go_live {
        doctor::for_go_live(&mut checks);
    }
    checks
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check"))
}

#[test]
fn unsigned_callbacks_warn_and_fail_the_go_live_check() {
    let unsigned = parse("environment = \"sandbox\"", "");
    let check = named(doctor::callback(&unsigned), "callback key", false);
    assert_eq!(check.verdict, Verdict::Warn);
    let check = named(doctor::callback(&unsigned), "callback key", true);
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(
        check.detail.contains("unsigned callbacks are accepted"),
        "{}",
        check.detail
    );
    let signed = parse(
        "environment = \"sandbox\"",
        "key = \"merchant-key-0123456789\"\n",
    );
    assert_eq!(
        named(doctor::callback(&signed), "callback key", true).verdict,
        Verdict::Ok
    );
}

#[test]
fn go_live_fails_the_sandbox_a_host_of_the_other_environment_and_the_sandbox_credentials() {
    let environment = |gateway: &str, go_live| {
        named(
            doctor::environment(&parse(gateway, "")),
            "environment",
            go_live,
        )
    };
    let sandbox = environment("environment = \"sandbox\"", false);
    assert_eq!(sandbox.verdict, Verdict::Warn);
    let sandbox = environment("environment = \"sandbox\"", true);
    assert_eq!(sandbox.verdict, Verdict::Fail);
    assert!(
        sandbox.detail.contains("no money moves"),
        "{}",
        sandbox.detail
    );

    let crossed = environment(
        "environment = \"production\"\nbase_url = \"https://3dsec.sberbank.ru/payment/rest/\"",
        false,
    );
    assert_eq!(crossed.verdict, Verdict::Fail);
    assert!(
        crossed.detail.contains(
            "is Production but gateway.base_url is the bank's Test host 3dsec.sberbank.ru"
        ),
        "{}",
        crossed.detail
    );

    let own_host = environment(
        "environment = \"test\"\nbase_url = \"https://pay.shop.example/rest/\"",
        true,
    );
    assert_eq!(own_host.verdict, Verdict::Fail);
    assert!(
        own_host.detail.contains("not one of the bank's Test hosts"),
        "{}",
        own_host.detail
    );

    let right = environment("environment = \"test\"", true);
    assert_eq!(right.verdict, Verdict::Ok, "{}", right.detail);

    let config = parse(
        "environment = \"test\"\nuser_name = \"sandbox-api\"\npassword = \"sandbox\"",
        "",
    );
    let login = named(doctor::environment(&config), "credentials", false);
    assert_eq!(login.verdict, Verdict::Fail);
    assert!(
        login.detail.contains("still the sandbox's"),
        "{}",
        login.detail
    );
    assert!(
        !login.detail.contains("\"sandbox\""),
        "no password shown: {}",
        login.detail
    );

    let not_api = parse("environment = \"test\"\nuser_name = \"shop\"", "");
    let login = named(doctor::environment(&not_api), "credentials", true);
    assert_eq!(login.verdict, Verdict::Fail);
    assert!(login.detail.contains("ends in -api"), "{}", login.detail);
}

#[tokio::test]
async fn go_live_fails_the_demo_tokens_a_wrong_clock_and_an_unchecked_public_address() {
    let shipped = include_str!("../../config/chasti.toml");
    let config = Config::parse(std::path::Path::new("chasti.toml"), shipped, |_| None).unwrap();
    let tokens = named(vec![doctor::api_tokens(&config)], "api tokens", true);
    assert_eq!(tokens.verdict, Verdict::Fail);
    assert!(tokens.detail.contains("demo token"), "{}", tokens.detail);

    // The clock: ten minutes off the gateway's Date header.
    let sb = crate::common::sandbox().await;
    let gateway = config_for(&sb, "test", "sandbox-api", "sandbox");
    let off = chrono::Utc::now() + chrono::Duration::minutes(10);
    let clock = doctor::clock(&gateway, off).await;
    assert_eq!(clock.verdict, Verdict::Fail);
    assert!(
        clock.detail.contains("s off the gateway's") && clock.detail.contains("NTP"),
        "{}",
        clock.detail
    );

    // No public address: go-live cannot tell the bank reaches chasti.
    let unset = named(
        vec![doctor::public_url(&parse("environment = \"sandbox\"", "")).await],
        "public url",
        true,
    );
    assert_eq!(unset.verdict, Verdict::Fail);
    assert!(
        unset.detail.contains("callback.public_url is not set"),
        "{}",
        unset.detail
    );

    // An address where nothing answers.
    let port = crate::common::free_port();
    let config = parse(
        "environment = \"sandbox\"",
        &format!("public_url = \"https://localhost:{port}/chasti/callback\"\n"),
    );
    let silent = doctor::public_url(&config).await;
    assert_eq!(silent.verdict, Verdict::Fail);
    assert!(
        silent.detail.contains("does not answer"),
        "{}",
        silent.detail
    );

    // Something else answers there (the sandbox bank, not chasti's callback route).
    let config = parse(
        "environment = \"sandbox\"",
        &format!(
            "public_url = \"{}\"\n",
            sb.gateway_url().join("callback").unwrap()
        ),
    );
    let stranger = doctor::public_url(&config).await;
    assert_eq!(stranger.verdict, Verdict::Fail);
    assert!(
        stranger.detail.contains("not chasti's probe reply"),
        "{}",
        stranger.detail
    );
}

#[test]
fn a_store_with_files_of_another_user_fails_with_the_chown_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orders.db");
    drop(chasti::store::Store::open(&path).unwrap());
    let config = parse(
        "environment = \"sandbox\"",
        &format!("[store]\npath = {:?}\n", path.display().to_string()),
    );
    // The files belong to whoever runs the test; pretend the service user is someone else.
    use std::os::unix::fs::MetadataExt;
    let mine = std::fs::metadata(&path).unwrap().uid();
    let other = mine.wrapping_add(4242);
    let check = doctor::store_for_owner(&config, Some(other));
    assert_eq!(check.verdict, Verdict::Fail);
    assert!(
        check.detail.contains(&format!(
            "belongs to uid {mine}, not the service user chasti (uid {other})"
        )),
        "{}",
        check.detail
    );
    assert!(
        check.detail.contains("chown -R chasti:chasti"),
        "{}",
        check.detail
    );
    assert_eq!(
        doctor::store_for_owner(&config, Some(mine)).verdict,
        Verdict::Ok
    );
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
    let _held = chasti::store::Store::open(&path).unwrap();
    let busy = doctor::store(&config_for(&path));
    assert!(busy.detail.contains("only one chasti"), "{}", busy.detail);
}

#[tokio::test]
async fn the_sms_provider_is_checked_without_sending() {
    let none = doctor::sms(&parse("environment = \"sandbox\"", "")).await;
    assert_eq!(none.verdict, Verdict::Ok);
    assert!(none.detail.contains("QR only"), "{}", none.detail);
    let hook = crate::sms::FakeProvider::start("/hook", vec![(200, "{}")]).await;
    let up = doctor::sms(&parse(
        "environment = \"sandbox\"",
        &format!("[sms]\nprovider = \"webhook\"\nurl = \"{}\"\n", hook.url),
    ))
    .await;
    assert_eq!(up.verdict, Verdict::Ok, "{}", up.detail);
    assert!(up.detail.contains("webhook answers"), "{}", up.detail);
    let seen = hook.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].method,
        axum::http::Method::HEAD,
        "a probe, not a message"
    );
    let port = crate::common::free_port();
    let down = doctor::sms(&parse(
        "environment = \"sandbox\"",
        &format!("[sms]\nprovider = \"kannel\"\nurl = \"http://127.0.0.1:{port}/cgi-bin/sendsms\"\nuser = \"u\"\npassword = \"kannel-pass\"\nsender = \"Shop\"\n"),
    ))
    .await;
    assert_eq!(down.verdict, Verdict::Warn);
    assert!(
        down.detail.contains("kannel does not answer") && down.detail.contains("smsbox"),
        "{}",
        down.detail
    );
    assert!(!down.detail.contains("kannel-pass"));
}

/// The shipped config's relative `store.path` in a fresh checkout: the folder does not exist
/// yet, its parent (the directory `serve` starts in) is writable, so `serve` will create it.
#[test]
fn a_relative_store_path_whose_folder_serve_creates_is_ok() {
    let relative = format!(
        "target/doctor-fresh-{}/chasti-data/orders.db",
        std::process::id()
    );
    let config = parse(
        "environment = \"sandbox\"",
        &format!("[store]\npath = {relative:?}\n"),
    );
    let check = doctor::store_for_owner(&config, None);
    assert_eq!(check.verdict, Verdict::Ok, "{}", check.detail);
    assert!(
        !std::path::Path::new(&relative).parent().unwrap().exists(),
        "doctor creates nothing"
    );
}

/// A CA the config adds (gateway.extra_ca_files) that ends within 90 days: doctor warns, with
/// what to do; one valid for years is ok.
#[test]
fn a_configured_ca_near_its_end_is_warned_about() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now();
    let ca = |name: &str, days: i64| {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let end = (now + chrono::Duration::days(days)).date_naive();
        use chrono::Datelike;
        params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
        let cert = params.self_signed(&KeyPair::generate().unwrap()).unwrap();
        let file = dir.path().join(format!("{name}.pem"));
        std::fs::write(&file, cert.pem()).unwrap();
        file
    };
    let (soon, later) = (ca("soon", 30), ca("later", 800));
    let config = parse(
        &format!(
            "environment = \"sandbox\"\nextra_ca_files = [{:?}, {:?}]",
            soon.display().to_string(),
            later.display().to_string()
        ),
        "",
    );
    let checks = doctor::configured_certificates(&config, now);
    assert_eq!(checks.len(), 2, "{checks:?}");
    let of = |file: &std::path::Path| {
        checks
            .iter()
            .find(|c| c.detail.starts_with(&file.display().to_string()))
            .unwrap()
    };
    assert_eq!(of(&soon).verdict, Verdict::Warn, "{}", of(&soon).detail);
    assert!(
        of(&soon).detail.contains("put the renewed CA in that file"),
        "{}",
        of(&soon).detail
    );
    assert_eq!(of(&later).verdict, Verdict::Ok, "{}", of(&later).detail);
}

/// No `[[api.tokens]]`: every till call would be refused; a warning, a failure for go-live.
#[test]
fn no_api_tokens_fail_the_go_live_check() {
    let config = parse("environment = \"test\"", "");
    assert!(config.api.tokens.is_empty());
    let today = named(vec![doctor::api_tokens(&config)], "api tokens", false);
    assert_eq!(today.verdict, Verdict::Warn, "{}", today.detail);
    let live = named(vec![doctor::api_tokens(&config)], "api tokens", true);
    assert_eq!(live.verdict, Verdict::Fail, "{}", live.detail);
    assert!(live.detail.contains("no [[api.tokens]]"), "{}", live.detail);
}
