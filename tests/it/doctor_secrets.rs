//! «Going live» step 5 as the README writes it: the gateway password lives in `secrets.env`
//! (which systemd gives `chasti serve`), and `chasti doctor` run by hand reads the same file,
//! so it checks the credentials the service will use instead of calling them missing.

use std::path::Path;
use std::process::Command;

use crate::common::BIN;

/// `chasti doctor --config dir/chasti.toml [extra]` with no secrets in its environment: its
/// output lines.
fn doctor(config: &Path, extra: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["doctor", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("CHASTI_GATEWAY_PASSWORD")
        .env_remove("CHASTI_GATEWAY_TOKEN")
        .env_remove("CHASTI_CALLBACK_KEY")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn line<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reads_the_secrets_file_systemd_gives_the_service() {
    const USER: &str = "shop-test-api";
    const PASSWORD: &str = "welcome-letter-Pa55";
    let sandbox = crate::common::sandbox_with(chasti::sandbox::SandboxSettings {
        users: vec![(USER.into(), chasti::secret::Secret::new(PASSWORD))],
        ..Default::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chasti.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nenvironment = \"test\"\nbase_url = \"{}\"\nuser_name = \"{}\"\n\
             return_url = \"https://shop.example/paid\"\n[store]\npath = \"{}\"\n",
            sandbox.gateway_url(),
            USER,
            dir.path().join("orders.db").display()
        ),
    )
    .unwrap();

    // No secrets file: the password is missing, and doctor says where it looked.
    let without = tokio::task::spawn_blocking({
        let config = config.clone();
        move || doctor(&config, &[])
    })
    .await
    .unwrap();
    assert!(line(&without, "secrets").starts_with("ok"), "{without}");
    assert!(
        line(&without, "secrets").contains("secrets.env"),
        "{without}"
    );
    assert!(line(&without, "config").starts_with("FAIL"), "{without}");

    // The password in secrets.env, 0640 as the README says: credentials accepted.
    let secrets = dir.path().join("secrets.env");
    std::fs::write(
        &secrets,
        format!("# the bank's\nCHASTI_GATEWAY_PASSWORD={PASSWORD}\n"),
    )
    .unwrap();
    set_mode(&secrets, 0o640);
    let with = tokio::task::spawn_blocking({
        let config = config.clone();
        move || doctor(&config, &[])
    })
    .await
    .unwrap();
    assert!(
        line(&with, "secrets").starts_with("ok")
            && line(&with, "secrets").contains("CHASTI_GATEWAY_PASSWORD"),
        "{with}"
    );
    assert!(line(&with, "config").starts_with("ok"), "{with}");
    assert!(
        line(&with, "credentials").starts_with("ok    credentials  accepted"),
        "{with}"
    );
    assert!(
        !with.contains(PASSWORD),
        "the password is never printed:\n{with}"
    );

    // Readable by everyone: a warning, and a failure for --go-live.
    set_mode(&secrets, 0o644);
    let open = tokio::task::spawn_blocking({
        let config = config.clone();
        move || doctor(&config, &["--go-live"])
    })
    .await
    .unwrap();
    assert!(line(&open, "secrets").starts_with("FAIL"), "{open}");
    assert!(line(&open, "secrets").contains("chmod 0640"), "{open}");

    // A file named with --env-file must be there.
    let named = tokio::task::spawn_blocking({
        let config = config.clone();
        move || doctor(&config, &["--env-file", "/nonexistent/secrets.env"])
    })
    .await
    .unwrap();
    assert!(line(&named, "secrets").starts_with("FAIL"), "{named}");
}

/// The packaged unit's `EnvironmentFile` is the file doctor reads by default for the config
/// its `ExecStart` names.
#[test]
fn the_units_environment_file_is_the_one_doctor_reads() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/chasti.service"
    ))
    .unwrap();
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in the unit"))
            .to_string()
    };
    let exec = value("ExecStart=");
    let config = exec
        .split_once("--config ")
        .unwrap()
        .1
        .split_whitespace()
        .next()
        .unwrap();
    let env_file = value("EnvironmentFile=");
    assert_eq!(
        Path::new(env_file.trim_start_matches('-')),
        chasti::config::env_file::beside(Path::new(config))
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
