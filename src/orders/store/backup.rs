//! Backups: the store as a stream of frames, taken while the daemon runs, and a stream turned
//! back into a store directory that `chasti serve` opens as it is.
//!
//! No writer is paused. Orders are never deleted and each record is written whole in one
//! transaction, so a pass over the orders copies every order that existed when the backup
//! began, each at its state at the moment it was read or later. The indexes and the day sums
//! are not copied but rebuilt from the copied orders when the stream is restored, so they agree
//! with them exactly; the counters (`meta`) are copied after the orders, so no order number in
//! the backup can be handed out again after a restore. The journal, the callbacks received and
//! the cancels asked for are copied as they are; the print queue is not (a restored till does
//! not print yesterday's slips again).
//!
//! The stream (written here: a handful of length-prefixed frames, checked end to end, needs no
//! format crate):
//! `chasti-backup 1\n`, then frames `part (u8) · key length (u32 BE) · key · value length
//! (u32 BE) · value`, then the end: part 0, the number of frames (u64 BE) and the SHA-256 of
//! every byte before that end mark. A stream cut short or altered is refused as a whole.

use sha2::{Digest, Sha256};

use super::{decode, Store, StoreError};

pub const MAGIC: &[u8] = b"chasti-backup 1\n";
/// No key or value in a store comes near this; a bigger length is a damaged stream.
const MAX_FIELD: usize = 16 << 20;
/// Bytes gathered before a chunk is handed over.
const CHUNK: usize = 64 * 1024;

/// The trees a backup carries, in the order they are copied (orders before the counters).
const PARTS: [(u8, &str); 5] = [
    (1, "orders2"),
    (2, "meta"),
    (3, "journal2"),
    (4, "callbacks2"),
    (5, "cancel2"),
];
const ORDERS: u8 = 1;
const END: u8 = 0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error("not a chasti backup (it does not start with {:?})", String::from_utf8_lossy(MAGIC).trim_end())]
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
    pub frames: u64,
}

impl Store {
    /// The backup stream in chunks of about 64 KiB, read lazily: memory stays one chunk.
    pub fn backup_chunks(&self) -> BackupChunks {
        BackupChunks {
            store: self.clone(),
            part: 0,
            iter: None,
            hasher: Sha256::new(),
            frames: 0,
            started: false,
            finished: false,
        }
    }
}

pub struct BackupChunks {
    store: Store,
    /// Index into PARTS of the tree being copied.
    part: usize,
    iter: Option<sled::Iter>,
    hasher: Sha256,
    frames: u64,
    started: bool,
    finished: bool,
}

impl BackupChunks {
    fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.store.db.open_tree(name)?)
    }

    fn fill(&mut self, out: &mut Vec<u8>) -> Result<(), StoreError> {
        if !self.started {
            self.started = true;
            out.extend_from_slice(MAGIC);
        }
        while out.len() < CHUNK {
            let Some(&(tag, name)) = PARTS.get(self.part) else {
                self.hasher.update(&*out);
                out.push(END);
                out.extend_from_slice(&self.frames.to_be_bytes());
                let digest = std::mem::take(&mut self.hasher).finalize();
                out.extend_from_slice(&digest);
                self.finished = true;
                return Ok(());
            };
            if self.iter.is_none() {
                self.iter = Some(self.tree(name)?.iter());
            }
            match self.iter.as_mut().and_then(|i| i.next()) {
                Some(entry) => {
                    let (key, value) = entry?;
                    out.push(tag);
                    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
                    out.extend_from_slice(&key);
                    out.extend_from_slice(&(value.len() as u32).to_be_bytes());
                    out.extend_from_slice(&value);
                    self.frames += 1;
                }
                None => {
                    self.iter = None;
                    self.part += 1;
                }
            }
        }
        self.hasher.update(&*out);
        Ok(())
    }
}

impl Iterator for BackupChunks {
    type Item = Result<Vec<u8>, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let mut out = Vec::with_capacity(CHUNK + 1024);
        match self.fill(&mut out) {
            Ok(()) => Some(Ok(out)),
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

/// Turns a backup stream, fed in pieces as it arrives, into a store.
pub struct Restorer {
    store: Store,
    pending: Vec<u8>,
    hasher: Sha256,
    seen_magic: bool,
    summary: BackupSummary,
    ended: bool,
}

impl Restorer {
    /// Into a new store (the caller makes sure the folder is new).
    pub fn new(store: Store) -> Restorer {
        Restorer {
            store,
            pending: Vec::new(),
            hasher: Sha256::new(),
            seen_magic: false,
            summary: BackupSummary::default(),
            ended: false,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        if self.ended {
            if bytes.is_empty() {
                return Ok(());
            }
            return Err(BackupError::Damaged("bytes after the end mark".into()));
        }
        self.pending.extend_from_slice(bytes);
        if !self.seen_magic {
            let n = MAGIC.len().min(self.pending.len());
            if self.pending[..n] != MAGIC[..n] {
                return Err(BackupError::NotABackup);
            }
            if self.pending.len() < MAGIC.len() {
                return Ok(());
            }
            self.hasher.update(MAGIC);
            self.pending.drain(..MAGIC.len());
            self.seen_magic = true;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let mut at = 0;
        let parsed = loop {
            match self.frame(&pending[at..]) {
                Ok(Some(used)) => at += used,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
            if self.ended {
                break Ok(());
            }
        };
        pending.drain(..at);
        self.pending = pending;
        parsed?;
        if self.ended && !self.pending.is_empty() {
            return Err(BackupError::Damaged("bytes after the end mark".into()));
        }
        Ok(())
    }

    /// One frame from the front of `bytes`: how many bytes it took, or None when it is not
    /// all there yet.
    fn frame(&mut self, bytes: &[u8]) -> Result<Option<usize>, BackupError> {
        let Some(&tag) = bytes.first() else {
            return Ok(None);
        };
        if tag == END {
            if bytes.len() < 1 + 8 + 32 {
                return Ok(None);
            }
            let frames = u64::from_be_bytes(bytes[1..9].try_into().unwrap_or_default());
            let digest = std::mem::take(&mut self.hasher).finalize();
            if frames != self.summary.frames || digest.as_slice() != &bytes[9..41] {
                return Err(BackupError::Damaged(format!(
                    "its end mark does not match its contents ({frames} frames announced, {} read)",
                    self.summary.frames
                )));
            }
            self.ended = true;
            return Ok(Some(41));
        }
        let Some(&(_, tree)) = PARTS.iter().find(|(t, _)| *t == tag) else {
            return Err(BackupError::Damaged(format!("unknown part {tag}")));
        };
        let length = |at: usize| -> Result<Option<usize>, BackupError> {
            let Some(raw) = bytes.get(at..at + 4) else {
                return Ok(None);
            };
            let n = u32::from_be_bytes(raw.try_into().unwrap_or_default()) as usize;
            if n > MAX_FIELD {
                return Err(BackupError::Damaged(format!("a field of {n} bytes")));
            }
            Ok(Some(n))
        };
        let Some(key_len) = length(1)? else {
            return Ok(None);
        };
        let Some(value_len) = length(5 + key_len)? else {
            return Ok(None);
        };
        let total = 9 + key_len + value_len;
        if bytes.len() < total {
            return Ok(None);
        }
        let key = &bytes[5..5 + key_len];
        let value = &bytes[9 + key_len..total];
        self.hasher.update(&bytes[..total]);
        if tag == ORDERS {
            let order = decode(key, value)?;
            self.store.write_new(&order)?;
            self.summary.orders += 1;
        } else {
            let tree = self.store.db.open_tree(tree).map_err(StoreError::from)?;
            tree.insert(key, value).map_err(StoreError::from)?;
        }
        self.summary.frames += 1;
        Ok(Some(total))
    }

    /// Checks the stream ended with its mark and flushes the new store.
    pub async fn finish(self) -> Result<BackupSummary, BackupError> {
        if !self.ended {
            return Err(BackupError::Truncated);
        }
        self.store.flush().await?;
        Ok(self.summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Restorer) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        (dir, Restorer::new(store))
    }

    /// A valid stream of an empty store.
    fn empty_backup() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        store.backup_chunks().flat_map(|c| c.unwrap()).collect()
    }

    #[tokio::test]
    async fn a_stream_restores_in_pieces_of_any_size() {
        let stream = empty_backup();
        for piece in [1, 7, 4096] {
            let (_dir, mut r) = fresh();
            for chunk in stream.chunks(piece) {
                r.feed(chunk).unwrap();
            }
            let summary = r.finish().await.unwrap();
            assert_eq!(summary.orders, 0);
            assert!(summary.frames >= 1, "the layout mark in meta");
        }
    }

    #[tokio::test]
    async fn foreign_cut_altered_or_oversized_streams_are_refused_without_panic() {
        let stream = empty_backup();
        let (_dir, mut r) = fresh();
        assert_eq!(
            r.feed(b"PK\x03\x04 a zip file"),
            Err(BackupError::NotABackup)
        );

        let (_dir, mut r) = fresh();
        r.feed(&stream[..stream.len() - 5]).unwrap();
        assert_eq!(r.finish().await, Err(BackupError::Truncated));

        let mut altered = stream.clone();
        let at = MAGIC.len() + 12;
        altered[at] ^= 0x55;
        let (_dir, mut r) = fresh();
        let fed = r.feed(&altered);
        assert!(matches!(fed, Err(BackupError::Damaged(_))) || r.finish().await.is_err());

        let mut huge = MAGIC.to_vec();
        huge.push(3);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let (_dir, mut r) = fresh();
        assert!(matches!(r.feed(&huge), Err(BackupError::Damaged(_))));

        let mut unknown = MAGIC.to_vec();
        unknown.extend_from_slice(&[9, 0, 0, 0, 0]);
        let (_dir, mut r) = fresh();
        assert!(matches!(r.feed(&unknown), Err(BackupError::Damaged(_))));

        let mut after = stream.clone();
        after.extend_from_slice(b"more");
        let (_dir, mut r) = fresh();
        assert!(matches!(r.feed(&after), Err(BackupError::Damaged(_))));

        // Noise after the magic: refused or incomplete, never a panic.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200 {
            let mut noise = MAGIC.to_vec();
            for _ in 0..64 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                noise.push(state as u8);
            }
            let (_dir, mut r) = fresh();
            if r.feed(&noise).is_ok() {
                assert!(r.finish().await.is_err());
            }
        }
    }
}
