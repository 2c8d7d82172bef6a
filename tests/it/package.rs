//! The Debian package `.ci/build-deb` builds (CI builds it before the tests): its control
//! fields, conffiles and maintainer scripts, and its files unpacked into a throwaway root with
//! `dpkg -x` (never installed on this machine): the binary runs and reads the packaged config,
//! the unit passes `systemd-analyze verify` and its `Documentation=` file exists.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The package to check: `CHASTI_DEB`, or the newest `target/debian/chasti_*.deb`.
fn package_or_skip() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHASTI_DEB") {
        return Some(PathBuf::from(path));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debian");
    let newest = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with("chasti_") && name.ends_with("_amd64.deb")
        })
        .max_by_key(|path| fs::metadata(path).and_then(|m| m.modified()).ok());
    if newest.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "no package in {}: .ci/run builds it with .ci/build-deb before the tests",
            dir.display()
        );
        eprintln!(
            "skipped: no package in {} (run .ci/build-deb)",
            dir.display()
        );
    }
    newest
}

fn run(command: &mut Command) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8(run(command).stdout).unwrap()
}

#[test]
fn the_package_declares_what_it_is_and_what_it_needs() {
    let Some(deb) = package_or_skip() else { return };
    let field = |name: &str| {
        stdout(Command::new("dpkg-deb").arg("--field").arg(&deb).arg(name))
            .trim()
            .to_string()
    };
    assert_eq!(field("Package"), "chasti");
    assert_eq!(field("Architecture"), "amd64");
    assert!(
        field("Version").starts_with(env!("CARGO_PKG_VERSION")),
        "a stale package: {} is not version {}",
        deb.display(),
        env!("CARGO_PKG_VERSION")
    );
    let depends = field("Depends");
    assert!(depends.contains("adduser"), "{depends}");
    assert!(depends.contains("libc6"), "{depends}");
    assert!(!field("Maintainer").is_empty());
    assert!(field("Description").contains("«Плати частями»"));
}

#[test]
fn the_config_is_a_conffile_and_the_scripts_create_the_user_and_the_state_folder() {
    let Some(deb) = package_or_skip() else { return };
    let control = tempfile::tempdir().unwrap();
    run(Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(control.path()));
    let conffiles = fs::read_to_string(control.path().join("conffiles")).unwrap();
    assert_eq!(conffiles.trim(), "/etc/chasti/chasti.toml");
    for script in ["postinst", "postrm"] {
        let path = control.path().join(script);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o755, 0o755, "{script} is not executable");
        run(Command::new("sh").arg("-n").arg(&path));
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("#DEBHELPER#"),
            "{script}: the token was not replaced"
        );
    }

    // postinst run against stand-ins for the tools that would change this machine (adduser,
    // chown, …): they record their arguments instead, so the script's logic is checked without
    // creating a user here. A first install: the user does not exist yet.
    let bin = tempfile::tempdir().unwrap();
    let log = bin.path().join("calls.log");
    for tool in [
        "adduser",
        "install",
        "chown",
        "chmod",
        "deb-systemd-invoke",
        "systemctl",
    ] {
        stand_in(bin.path(), tool, &log, 0, "");
    }
    // Nothing was installed or enabled before.
    stand_in(bin.path(), "deb-systemd-helper", &log, 1, "");
    // No user chasti yet; the groups dialout and lp exist.
    fs::write(
        bin.path().join("getent"),
        format!(
            "#!/bin/sh\necho \"getent $*\" >> {}\n[ \"$1\" = group ] && exit 0\nexit 2\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(bin.path().join("getent"), fs::Permissions::from_mode(0o755)).unwrap();
    stand_in(bin.path(), "id", &log, 0, "chasti");
    let path = format!("{}:/usr/bin:/bin", bin.path().display());
    run(Command::new("sh")
        .arg(control.path().join("postinst"))
        .arg("configure")
        .env_clear()
        .env("PATH", path)
        .env("DPKG_MAINTSCRIPT_PACKAGE", "chasti"));
    let calls = fs::read_to_string(&log).unwrap();
    for expected in [
        "adduser --system --group --home /var/lib/chasti --no-create-home",
        "adduser chasti dialout",
        "adduser chasti lp",
        "install -d -m 0700 /var/lib/chasti",
        "install -d -o chasti -g chasti -m 0700 /var/lib/chasti",
        "chown root:chasti /etc/chasti /etc/chasti/chasti.toml",
        "chmod 0640 /etc/chasti/chasti.toml",
    ] {
        assert!(
            calls.contains(expected),
            "postinst did not run `{expected}`:\n{calls}"
        );
    }
    assert!(
        calls.find("install -d -m 0700 /var/lib/chasti") < calls.find("adduser --system"),
        "the home folder exists before adduser looks for it:\n{calls}"
    );
    // Neither enabled nor started: the shipped config is the sandbox with demo tokens.
    assert!(!calls.contains("systemctl start"), "{calls}");
    assert!(!calls.contains("deb-systemd-helper enable"), "{calls}");
}

/// A stand-in for `tool` that appends its command line to `log` and exits with `code`.
fn stand_in(dir: &Path, tool: &str, log: &Path, code: i32, output: &str) {
    let path = dir.join(tool);
    let script = format!(
        "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nprintf '%s\\n' '{output}'\nexit {code}\n",
        log.display()
    );
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn unpacked_the_binary_runs_the_packaged_config_and_the_unit_verifies() {
    let Some(deb) = package_or_skip() else { return };
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(root.path()));
    let r = root.path();

    let binary = r.join("usr/bin/chasti");
    let mode = fs::metadata(&binary).unwrap().permissions().mode();
    assert_eq!(mode & 0o755, 0o755);
    let version = stdout(Command::new(&binary).arg("--version"));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");

    // The packaged config parses and keeps the orders in the state directory.
    let config = r.join("etc/chasti/chasti.toml");
    let checked = stdout(
        Command::new(&binary)
            .arg("check-config")
            .arg("--config")
            .arg(&config),
    );
    assert!(
        checked.contains("store         /var/lib/chasti/orders.db"),
        "{checked}"
    );

    let unit_path = ["lib/systemd/system", "usr/lib/systemd/system"]
        .iter()
        .map(|dir| r.join(dir).join("chasti.service"))
        .find(|path| path.exists())
        .expect("the package installs chasti.service");
    let unit = fs::read_to_string(&unit_path).unwrap();
    let doc = unit
        .lines()
        .find_map(|line| line.strip_prefix("Documentation=file://"))
        .expect("the unit names its documentation");
    assert!(
        r.join(doc.trim_start_matches('/')).is_file(),
        "Documentation={doc} is not in the package"
    );
    let exec = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .unwrap();
    let program = exec.split_whitespace().next().unwrap();
    assert!(
        r.join(program.trim_start_matches('/')).is_file(),
        "ExecStart={program} is not in the package"
    );
    assert!(exec.contains("--config /etc/chasti/chasti.toml"));
    // «Going live» step 5: doctor, run by hand, reads the secrets systemd gives the service.
    let env_file = unit
        .lines()
        .find_map(|line| line.strip_prefix("EnvironmentFile="))
        .expect("the unit reads a secrets file");
    assert_eq!(
        Path::new(env_file.trim_start_matches('-')),
        chasti::config::env_file::beside(Path::new("/etc/chasti/chasti.toml"))
    );
    let secrets = r.join("etc/chasti/secrets.env");
    fs::write(
        &secrets,
        "CHASTI_GATEWAY_PASSWORD=from-the-welcome-letter\n",
    )
    .unwrap();
    fs::set_permissions(&secrets, fs::Permissions::from_mode(0o640)).unwrap();
    let doctor = Command::new(&binary)
        .args(["doctor", "--config"])
        .arg(&config)
        .env_remove("CHASTI_GATEWAY_PASSWORD")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&doctor.stdout);
    let line = said.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("ok    secrets")
            && line.contains("etc/chasti/secrets.env: CHASTI_GATEWAY_PASSWORD"),
        "{said}"
    );
    assert!(!said.contains("from-the-welcome-letter"), "{said}");
    for example in [
        "usr/share/doc/chasti/examples/nginx-chasti.conf",
        "usr/share/doc/chasti/examples/hardware/epson-tm-t20iii.toml",
        "usr/share/doc/chasti/copyright",
    ] {
        assert!(r.join(example).is_file(), "{example} is not in the package");
    }

    if Path::new("/usr/bin/systemd-analyze").exists() {
        // The unit as installed, its program pointed into the unpacked root (`--root` would
        // need a whole systemd tree there): its syntax, every directive known to this systemd,
        // and that the program exists and is executable.
        let unit_dir = tempfile::tempdir().unwrap();
        let relocated = unit.replace(program, &binary.display().to_string());
        let copy = unit_dir.path().join("chasti.service");
        fs::write(&copy, relocated).unwrap();
        let output = Command::new("systemd-analyze")
            .arg("verify")
            .arg("--man=no")
            .arg(&copy)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(output.status.success(), "systemd-analyze verify:\n{report}");
        assert!(
            !report.contains("chasti.service:"),
            "systemd-analyze finds fault with the unit:\n{report}"
        );
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is missing in CI"
        );
        eprintln!("systemd-analyze is not installed: the unit's verification is skipped");
    }
}

#[test]
fn the_1c_add_in_ships_as_its_library_and_as_the_zip_a_configuration_attaches() {
    let Some(deb) = package_or_skip() else { return };
    let root = tempfile::tempdir().unwrap();
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(root.path()));
    let library = root.path().join("usr/lib/chasti/libchasti_onec.so");
    let elf = fs::read(&library).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{}", library.display());
    for export in [
        "GetClassNames",
        "GetClassObject",
        "DestroyObject",
        "SetPlatformCapabilities",
        "GetAttachType",
    ] {
        assert!(
            elf.windows(export.len() + 1)
                .any(|w| &w[..export.len()] == export.as_bytes() && w[export.len()] == 0),
            "{export} is not in the library's symbols"
        );
    }
    let zip = root.path().join("usr/share/chasti/onec/chasti-onec.zip");
    let listing = stdout(
        Command::new("python3")
            .args(["-m", "zipfile", "-l"])
            .arg(&zip),
    );
    assert!(listing.contains("MANIFEST.XML"), "{listing}");
    assert!(listing.contains("libchasti_onec.so"), "{listing}");
    let out = tempfile::tempdir().unwrap();
    run(Command::new("python3")
        .args(["-m", "zipfile", "-e"])
        .arg(&zip)
        .arg(out.path()));
    let manifest = fs::read_to_string(out.path().join("MANIFEST.XML")).unwrap();
    assert!(
        manifest.contains(
            r#"<component os="Linux" arch="x86_64" path="libchasti_onec.so" type="native"/>"#
        ),
        "{manifest}"
    );
    assert_eq!(
        fs::read(out.path().join("libchasti_onec.so")).unwrap(),
        elf,
        "the zipped library is the packaged one"
    );
}
