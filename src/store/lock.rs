//! One daemon per store: an exclusive `flock` on `<database>.lock`, held for as long as the
//! store is open and let go when the process ends however it ends. A second chasti (or a
//! `chasti restore` while the daemon runs) is refused with the process that holds it and what
//! to do, found in `/proc/locks`.
//!
//! A file of its own rather than a lock on the database: SQLite's own POSIX locks on the
//! database file would be dropped by the kernel when any other descriptor of that file in the
//! process is closed.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The held lock; dropping it lets the store go.
#[derive(Debug)]
pub(super) struct StoreLock {
    _file: File,
}

pub(super) fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the store's lock, or says who has it.
pub(super) fn acquire(database: &Path) -> Result<StoreLock, StoreError> {
    let path = lock_path(database);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(StoreError::file(format!("opening {}", path.display())))?;
    // A process forked by this one (any thread starting a program) holds a copy of every
    // descriptor, this lock's included, until it execs: a refusal is only believed once it
    // has lasted a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(500);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(StoreLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::InUse {
                    path: database.display().to_string(),
                    holder: holder_of(&file),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError::file(format!("locking {}", path.display()))(e))
            }
        }
    }
}

/// Whether someone holds the lock now, without taking it for long: for `doctor`.
pub(super) fn holder_now(database: &Path) -> Option<String> {
    let path = lock_path(database);
    let file = std::fs::File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => Some(holder_of(&file)),
    }
}

/// The process holding an flock on this file, by its pid and command line.
fn holder_of(file: &File) -> String {
    let found = file.metadata().ok().and_then(|meta| {
        use std::os::unix::fs::MetadataExt;
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        holder_in(&locks, meta.dev(), meta.ino())
    });
    match found {
        Some(pid) if pid == std::process::id() => format!("this process (pid {pid})"),
        Some(pid) => {
            let command = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    raw.split(|b| *b == 0)
                        .filter(|part| !part.is_empty())
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            format!("process {pid} ({command})")
        }
        None => "another process (not visible to this user)".to_string(),
    }
}

/// The pid of the FLOCK on device `dev`, inode `ino` in `/proc/locks`' text. A line reads
/// `1: FLOCK  ADVISORY  WRITE 4242 fd:01:1835011 0 EOF` (device as hex major:minor).
fn holder_in(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    // The kernel's split of a device number (glibc's gnu_dev_major / gnu_dev_minor).
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let wanted = format!("{major:02x}:{minor:02x}:{ino}");
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // Blocked waiters are shown with "->" after the number; they do not hold the lock.
        if fields.get(1) != Some(&"FLOCK") {
            return None;
        }
        let place = fields.get(5)?;
        if !place.eq_ignore_ascii_case(&wanted) {
            return None;
        }
        fields.get(4)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_names_its_holder_and_the_first_drop_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("orders.db");
        let first = acquire(&db).unwrap();
        let second = acquire(&db).unwrap_err();
        let text = second.to_string();
        assert!(
            text.contains("this process") && text.contains("systemctl stop chasti"),
            "{text}"
        );
        assert!(holder_now(&db).is_some());
        drop(first);
        assert!(holder_now(&db).is_none());
        acquire(&db).unwrap();
    }

    #[test]
    fn the_holder_is_read_from_proc_locks() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 fd:01:1835011 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 fd:01:1835011 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 77 fd:01:1835011 0 EOF\n";
        let dev = (0xfd << 8) | 0x01;
        assert_eq!(holder_in(locks, dev, 1_835_011), Some(4242));
        assert_eq!(holder_in(locks, dev, 5), None);
        assert_eq!(holder_in("garbage\n\n1:", dev, 1), None);
    }
}
