//! Backups: a consistent copy of the database taken with SQLite's online backup API while the
//! daemon runs (writers go on: the copy is one read transaction of the WAL database), sent as
//! a checked stream, and written back into a folder that `chasti restore` puts in place.
//!
//! A backup folder holds one file, [`BACKUP_FILE`]: a complete SQLite database (rollback
//! journal mode, so it is one self-contained file) that `sqlite3` opens as it is.
//!
//! The stream (`GET /api/v1/backup`): [`MAGIC`], the database's bytes, then a trailer of their
//! length (u64 BE) and their SHA-256. A stream cut short or altered is refused as a whole.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use sha2::{Digest, Sha256};

use super::{orders, schema, sync_dir, Store, StoreError};

pub const MAGIC: &[u8] = b"chasti-backup 2\n";
/// The database's name inside a backup folder.
pub const BACKUP_FILE: &str = "orders.db";
const TRAILER: usize = 8 + 32;
const CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone, thiserror::Error)]
pub enum BackupError {
    #[error("not a chasti backup (it does not start with {:?}); a backup stream from chasti 0.1 cannot be read, but its backup folders can be restored", String::from_utf8_lossy(MAGIC).trim_end())]
    NotABackup,
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup ends before its end mark: it was cut short")]
    Truncated,
    #[error("{0}")]
    Store(#[from] StoreError),
}

/// What a backup held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackupSummary {
    pub orders: u64,
    pub bytes: u64,
}

/// Temporary copies are made beside the database (the same disk, never a RAM-backed /tmp):
/// `<database>.backup-<uuid>.tmp`.
fn temp_for(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(format!(".backup-{}.tmp", uuid::Uuid::new_v4().simple()));
    PathBuf::from(name)
}

/// Removes temporary copies a crash left behind.
pub(super) fn remove_leftovers(database: &Path) {
    let (Some(dir), Some(stem)) = (database.parent(), database.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!("{}.backup-", stem.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Counts and decodes every order of the database at `file` (read only): a copy whose every
/// record and history line reads back.
pub fn inspect(file: &Path) -> Result<BackupSummary, StoreError> {
    let conn = schema::open_read_only(file, "opening the copy")?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sqlite("reading the copy's schema version"))?;
    if version != schema::latest() {
        return Err(StoreError::NewerSchema {
            path: file.display().to_string(),
            found: version,
            known: schema::latest(),
        });
    }
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(StoreError::sqlite("checking the copy"))?;
    if check != "ok" {
        return Err(StoreError::corrupt(file.display().to_string(), check));
    }
    let mut next = [0u8; 16];
    let mut count = 0u64;
    loop {
        let page = orders::page(&conn, next, [0xff; 16], 256)?;
        count += page.len() as u64;
        match page.last() {
            Some(last) if page.len() == 256 => next = orders::after(*last.id.as_bytes()),
            _ => break,
        }
    }
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary {
        orders: count,
        bytes,
    })
}

fn sync_file(file: &Path) -> Result<(), StoreError> {
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(StoreError::file(format!("syncing {}", file.display())))
}

impl Store {
    /// Copies the whole database into a new file `to` (blocking: run it off the async
    /// workers). The copy is consistent: one read transaction, writers never paused.
    pub fn backup_to(&self, to: &Path) -> Result<BackupSummary, StoreError> {
        if to.exists() {
            return Err(StoreError::file(format!(
                "writing the copy {}",
                to.display()
            ))(std::io::Error::from(
                std::io::ErrorKind::AlreadyExists,
            )));
        }
        let source = schema::connect(self.path(), schema::Role::Reader, 1024)?;
        let mut copy = Connection::open(to).map_err(StoreError::sqlite("creating the copy"))?;
        copy.execute_batch("PRAGMA cache_size = -1024; PRAGMA mmap_size = 0;")
            .map_err(StoreError::sqlite("setting up the copy"))?;
        {
            let backup = rusqlite::backup::Backup::new(&source, &mut copy)
                .map_err(StoreError::sqlite("starting the copy"))?;
            // Every page in one step: one read transaction, so one consistent moment.
            loop {
                use rusqlite::backup::StepResult;
                match backup
                    .step(-1)
                    .map_err(StoreError::sqlite("copying the database"))?
                {
                    StepResult::Done => break,
                    StepResult::More | StepResult::Busy | StepResult::Locked => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => std::thread::sleep(std::time::Duration::from_millis(20)),
                }
            }
        }
        // One self-contained file: no WAL beside it.
        copy.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))
            .map_err(StoreError::sqlite("making the copy one file"))?;
        copy.close()
            .map_err(|(_, e)| StoreError::sqlite("closing the copy")(e))?;
        sync_file(to)?;
        sync_dir(to)?;
        inspect(to)
    }

    /// The backup stream in chunks of about 64 KiB. The copy is made first, beside the
    /// database, and removed when the stream is dropped.
    pub fn backup_stream(&self) -> Result<BackupStream, StoreError> {
        let temp = temp_for(self.path());
        let made = self.backup_to(&temp);
        let summary = match made {
            Ok(summary) => summary,
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                return Err(e);
            }
        };
        let file = std::fs::File::open(&temp)
            .map_err(StoreError::file(format!("reading {}", temp.display())))?;
        Ok(BackupStream {
            temp,
            file,
            hasher: Sha256::new(),
            length: 0,
            summary,
            started: false,
            finished: false,
        })
    }
}

pub struct BackupStream {
    temp: PathBuf,
    file: std::fs::File,
    hasher: Sha256,
    length: u64,
    summary: BackupSummary,
    started: bool,
    finished: bool,
}

impl BackupStream {
    pub fn summary(&self) -> BackupSummary {
        self.summary
    }
}

impl Drop for BackupStream {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}

impl Iterator for BackupStream {
    type Item = Result<Vec<u8>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut out = Vec::with_capacity(CHUNK + MAGIC.len() + TRAILER);
        if !self.started {
            self.started = true;
            out.extend_from_slice(MAGIC);
        }
        let mut buf = vec![0u8; CHUNK];
        match self.file.read(&mut buf) {
            Ok(0) => {
                out.extend_from_slice(&self.length.to_be_bytes());
                let digest = std::mem::take(&mut self.hasher).finalize();
                out.extend_from_slice(&digest);
                self.finished = true;
            }
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.length += n as u64;
                out.extend_from_slice(&buf[..n]);
            }
            Err(e) => {
                self.finished = true;
                return Some(Err(StoreError::file("reading the copy")(e)));
            }
        }
        Some(Ok(out))
    }
}

/// Writes a backup stream, fed in pieces as it arrives, into a database file.
pub struct BackupReceiver {
    path: PathBuf,
    file: std::fs::File,
    /// Bytes not yet known to be the database's (the trailer is the stream's last 40).
    held: Vec<u8>,
    hasher: Sha256,
    length: u64,
    seen_magic: bool,
}

impl BackupReceiver {
    /// Into a new file (refused if it exists).
    pub fn create(path: &Path) -> Result<BackupReceiver, BackupError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(StoreError::file(format!("creating {}", path.display())))?;
        Ok(BackupReceiver {
            path: path.to_path_buf(),
            file,
            held: Vec::new(),
            hasher: Sha256::new(),
            length: 0,
            seen_magic: false,
        })
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.held.extend_from_slice(bytes);
        if !self.seen_magic {
            let n = MAGIC.len().min(self.held.len());
            if self.held[..n] != MAGIC[..n] {
                return Err(BackupError::NotABackup);
            }
            if self.held.len() < MAGIC.len() {
                return Ok(());
            }
            self.held.drain(..MAGIC.len());
            self.seen_magic = true;
        }
        if self.held.len() > TRAILER {
            let body = self.held.len() - TRAILER;
            self.hasher.update(&self.held[..body]);
            self.file
                .write_all(&self.held[..body])
                .map_err(StoreError::file(format!("writing {}", self.path.display())))?;
            self.length += body as u64;
            self.held.drain(..body);
        }
        Ok(())
    }

    /// Checks the trailer, makes the file durable and checks the database it holds.
    pub fn finish(mut self) -> Result<BackupSummary, BackupError> {
        if !self.seen_magic || self.held.len() < TRAILER {
            return Err(BackupError::Truncated);
        }
        let length = u64::from_be_bytes(self.held[..8].try_into().unwrap_or_default());
        let digest = std::mem::take(&mut self.hasher).finalize();
        if length != self.length || digest.as_slice() != &self.held[8..TRAILER] {
            return Err(BackupError::Damaged(format!(
                "its end mark does not match its contents ({length} bytes announced, {} read)",
                self.length
            )));
        }
        self.file
            .sync_all()
            .map_err(StoreError::file(format!("syncing {}", self.path.display())))?;
        sync_dir(&self.path)?;
        Ok(inspect(&self.path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream_of(store: &Store) -> Vec<u8> {
        store
            .backup_stream()
            .unwrap()
            .flat_map(|c| c.unwrap())
            .collect()
    }

    #[tokio::test]
    async fn a_stream_is_received_in_pieces_of_any_size_and_its_copy_left_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.db")).unwrap();
        let stream = stream_of(&store);
        let leftovers = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".backup-")
            })
            .count();
        assert_eq!(leftovers, 0, "the temporary copy is removed");
        for (i, piece) in [1, 7, 4096, 1 << 20].into_iter().enumerate() {
            let to = dir.path().join(format!("copy{i}.db"));
            let mut r = BackupReceiver::create(&to).unwrap();
            for chunk in stream.chunks(piece) {
                r.feed(chunk).unwrap();
            }
            let summary = r.finish().unwrap();
            assert_eq!(summary.orders, 0);
        }
    }

    #[tokio::test]
    async fn foreign_cut_or_altered_streams_are_refused_without_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("live.db")).unwrap();
        let stream = stream_of(&store);
        let receiver = |name: &str| BackupReceiver::create(&dir.path().join(name)).unwrap();

        let mut r = receiver("a");
        assert!(matches!(
            r.feed(b"PK\x03\x04 a zip file"),
            Err(BackupError::NotABackup)
        ));
        let mut r = receiver("b");
        assert!(matches!(
            r.feed(b"chasti-backup 1\n"),
            Err(BackupError::NotABackup)
        ));

        let mut r = receiver("c");
        r.feed(&stream[..stream.len() - 5]).unwrap();
        assert!(r.finish().is_err(), "cut short");

        let mut altered = stream.clone();
        altered[MAGIC.len() + 200] ^= 0x55;
        let mut r = receiver("d");
        r.feed(&altered).unwrap();
        assert!(matches!(r.finish(), Err(BackupError::Damaged(_))));

        let mut longer = stream.clone();
        longer.extend_from_slice(b"more");
        let mut r = receiver("e");
        r.feed(&longer).unwrap();
        assert!(r.finish().is_err(), "bytes after the end mark");

        // Noise after the magic: refused, never a panic.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for i in 0..50 {
            let mut noise = MAGIC.to_vec();
            for _ in 0..(64 + i * 37) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                noise.push(state as u8);
            }
            let mut r = receiver(&format!("noise{i}"));
            r.feed(&noise).unwrap();
            assert!(r.finish().is_err());
        }
    }
}
