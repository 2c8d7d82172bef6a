//! When the store cannot be opened because another process holds it: say which process and
//! what to do, rather than sled's "could not acquire lock … WouldBlock".

use std::path::Path;

use super::StoreError;

/// The process holding `folder/db` open, by its pid and command line (Linux: from /proc).
fn holder_of(folder: &Path) -> Option<(u32, String)> {
    let db = std::fs::canonicalize(folder.join("db")).ok()?;
    let me = std::process::id();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // another user's process: not ours to see
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == db));
        if holds {
            let command = std::fs::read(entry.path().join("cmdline"))
                .map(|raw| {
                    raw.split(|b| *b == 0)
                        .filter(|part| !part.is_empty())
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            return Some((pid, command));
        }
    }
    None
}

/// The error for a store that did not open.
pub(super) fn open_error(folder: &Path, error: sled::Error) -> StoreError {
    let text = error.to_string();
    if !text.contains("could not acquire lock") {
        return StoreError::Io(format!("cannot open {}: {text}", folder.display()));
    }
    let who = match holder_of(folder) {
        Some((pid, command)) => format!("process {pid} ({command})"),
        None => "another process (not visible to this user)".to_string(),
    };
    StoreError::Io(format!(
        "{} is in use by {who}: only one chasti may use a store. Stop the other one (systemctl stop chasti) or give this one its own store.path",
        folder.display()
    ))
}
