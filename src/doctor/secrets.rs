//! The secrets file systemd gives `chasti serve` (`EnvironmentFile=-/etc/chasti/secrets.env`):
//! doctor reads it the same way, so a password kept there is checked, not reported missing.

use std::path::Path;

use super::{check, risk, Check, Verdict};
use crate::config::env_file::{EnvFile, EnvFileError};

/// Reads the secrets file at `path`; `named`: the integrator named it (`--env-file`), so its
/// absence is a failure, not the ordinary "no secrets file".
pub fn secrets_file(path: &Path, named: bool) -> (Option<EnvFile>, Check) {
    let shown = path.display();
    let file = match EnvFile::read(path) {
        Ok(file) => file,
        Err(EnvFileError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound && !named =>
        {
            let line =
                format!("no {shown}: the secrets, if any, come from the config or the environment");
            return (None, check("secrets", Verdict::Ok, line));
        }
        Err(EnvFileError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            let line = format!(
                "{shown}: cannot read it (permission denied), so the secrets systemd gives chasti are not checked: run doctor as the service's user (sudo -u chasti chasti doctor), and keep the file chown root:chasti, chmod 0640"
            );
            return (None, check("secrets", Verdict::Fail, line));
        }
        Err(e) => return (None, check("secrets", Verdict::Fail, e.to_string())),
    };
    let names = file.names().join(", ");
    let c = if !file.problems.is_empty() {
        check(
            "secrets",
            Verdict::Warn,
            format!(
                "{shown}: systemd skips these lines: {}",
                file.problems.join("; ")
            ),
        )
    } else if readable_by_all(path) {
        risk(
            "secrets",
            format!("{shown} is readable by every user of the host: chown root:chasti {shown}; chmod 0640 {shown}"),
        )
    } else if names.is_empty() {
        check("secrets", Verdict::Ok, format!("{shown}: sets nothing"))
    } else {
        check(
            "secrets",
            Verdict::Ok,
            format!("{shown}: {names} (read as systemd gives them to chasti serve)"),
        )
    };
    (Some(file), c)
}

#[cfg(unix)]
fn readable_by_all(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

#[cfg(not(unix))]
fn readable_by_all(_: &Path) -> bool {
    false
}
