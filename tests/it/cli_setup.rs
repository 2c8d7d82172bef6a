//! The `chasti` binary as the integrator runs it on a till host: `check-config`, `render`, a
//! printer port that is a file, and what a till user or the service user is told when the
//! files are not theirs (run as `nobody` via runuser when the tests run as root).

use std::process::Command;

use crate::cli::BIN;

#[test]
fn check_config_accepts_the_shipped_file_and_names_the_bad_key() {
    let ok = Command::new(BIN)
        .args([
            "check-config",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/chasti.toml"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("sandbox-api (password set)"), "{stdout}");
    assert!(!stdout.contains("password = "), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let shipped = include_str!("../../config/chasti.toml");
    std::fs::write(
        &bad,
        shipped.replace("environment = \"sandbox\"", "environment = \"prod\""),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config"])
        .env("CHASTI_CONFIG", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml: gateway.environment: found `prod`"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sandbox\""),
        "no secret in the error: {stderr}"
    );
}

#[test]
fn render_writes_the_bytes_and_a_picture_of_the_slip() {
    let dir = tempfile::tempdir().unwrap();
    let (bin, png) = (dir.path().join("slip.bin"), dir.path().join("slip.png"));
    let out = Command::new(BIN)
        .args(["render", "--printer", "xprinter-xp58", "--out"])
        .arg(&bin)
        .arg("--png")
        .arg(&png)
        .env("CHASTI_CONFIG", dir.path().join("none.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&bin).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0x1B, b'@', 0x1C, b'.'],
        "init, then FS . for this printer"
    );
    let picture = std::fs::read(&png).unwrap();
    assert_eq!(&picture[..8], b"\x89PNG\r\n\x1a\n");
    // 384 dots of head plus margins: a 58 mm slip.
    let width = u32::from_be_bytes(picture[16..20].try_into().unwrap());
    assert_eq!(width, 384 + 32);

    let unknown = Command::new(BIN)
        .args(["render", "--printer", "nope", "--out"])
        .arg(&bin)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("known: epson-tm-t20iii"), "{stderr}");

    let no_port = Command::new(BIN)
        .args([
            "print-test",
            "--printer",
            "epson-tm-t20iii",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/config/chasti.toml"),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&no_port.stderr);
    assert_eq!(no_port.status.code(), Some(1));
    assert!(stderr.contains("add a [[printer]]"), "{stderr}");
}

#[test]
fn render_raster_forces_the_raster_qr_on_a_native_qr_printer() {
    let dir = tempfile::tempdir().unwrap();
    let (native, raster) = (dir.path().join("n.bin"), dir.path().join("r.bin"));
    for (path, extra) in [(&native, None), (&raster, Some("--raster"))] {
        let mut cmd = Command::new(BIN);
        cmd.args(["render", "--printer", "epson-tm-t20iii", "--out"])
            .arg(path);
        if let Some(flag) = extra {
            cmd.arg(flag);
        }
        assert!(cmd.output().unwrap().status.success());
    }
    let has = |bytes: &[u8], needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let (n, r) = (
        std::fs::read(native).unwrap(),
        std::fs::read(raster).unwrap(),
    );
    assert!(has(&n, b"\x1d(k") && !has(&n, b"\x1dv0"));
    assert!(has(&r, b"\x1dv0") && !has(&r, b"\x1d(k"));
}

/// A printer port that names a regular file: `print-test` and `doctor` say it is a file, not a
/// device, and the test slip is not claimed to be kept.
#[test]
fn a_printer_port_that_is_a_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_device = dir.path().join("ttyUSB0");
    std::fs::write(&not_a_device, b"").unwrap();
    let config = dir.path().join("chasti.toml");
    let text = format!(
        "{}\n[[printer]]\nname = \"receipt\"\nprofile = \"epson-tm-t20iii\"\nport = {:?}\n",
        include_str!("../../config/chasti.toml"),
        not_a_device.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let out = Command::new(BIN)
        .args(["print-test", "--printer", "receipt", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("это обычный файл, а не устройство"), "{said}");
    let told = said
        .lines()
        .find(|l| l.starts_with("chasti: "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(told.contains("тестовый чек не напечатан"), "{told}");
    assert!(
        !told.contains("сохранён"),
        "a test slip is not kept: {told}"
    );

    let parsed = chasti::config::Config::load(&config).unwrap();
    let checks = chasti::doctor::devices(&parsed);
    let printer = checks.iter().find(|c| c.name == "printer").unwrap();
    assert_eq!(printer.verdict, chasti::doctor::Verdict::Fail);
    assert!(
        printer.detail.contains("обычный файл"),
        "{}",
        printer.detail
    );
    assert!(
        !printer.detail.contains("check the cable"),
        "{}",
        printer.detail
    );
}

/// A till user who may not read the config (0640 root:chasti in the package) is told that,
/// and how a till user gets a token: not «нужен токен … в chasti.toml». Runs the binary as
/// `nobody` (needs root and runuser, as on CI); says it is skipped otherwise.
#[test]
fn a_cashier_who_cannot_read_the_config_is_told_so() {
    if !can_run_as_another_user() {
        eprintln!("skipped: needs root and runuser to run the CLI as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chasti.toml");
    std::fs::write(&config, include_str!("../../config/chasti.toml")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (ok, said) = crate::common::run_output(
        Command::new("/usr/sbin/runuser")
            .args(["-u", "nobody", "--", BIN, "orders", "--today", "--config"])
            .arg(&config)
            .env_remove("CHASTI_TOKEN"),
    );
    assert!(!ok, "{said}");
    assert!(
        said.contains("нет доступа к")
            && said.contains("CHASTI_TOKEN")
            && said.contains("usermod -aG chasti"),
        "{said}"
    );
}

/// `serve` on a store it may not write (the usual cause: the files are root's after a
/// `sudo chasti serve`) names the owner, who it runs as and the `chown` that fixes it, not a
/// bare «Permission denied». Runs as `nobody` (needs root and runuser); skipped otherwise.
#[test]
fn serve_on_a_store_it_cannot_write_says_whose_it_is_and_the_chown() {
    if !can_run_as_another_user() {
        eprintln!("skipped: needs root and runuser to run serve as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.path().join("state").join("orders.db");
    let text = include_str!("../../config/chasti.toml")
        .replace("listen = \"127.0.0.1:8907\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8081\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "path = \"chasti-data/orders.db\"",
            &format!("path = {:?}", store.display().to_string()),
        );
    let config = dir.path().join("chasti.toml");
    std::fs::write(&config, text).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("/usr/sbin/runuser")
        .args(["-u", "nobody", "--", BIN, "serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("belongs to root")
            && said.contains("runs as nobody")
            && said.contains("sudo chown -R chasti:chasti"),
        "{said}"
    );
}

/// Whether a test may run the binary as `nobody`: it runs as root and runuser is there (CI).
fn can_run_as_another_user() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    root && std::path::Path::new("/usr/sbin/runuser").exists()
}
