//! What can go wrong in the store. Every variant says what was being done; the underlying
//! error (SQLite's, the file system's, sled's during an import) is its source, shared behind an
//! `Arc` so one failed commit can be reported to every writer that was waiting on it.

use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused or failed a statement.
    #[error("order store: {during}: {source}")]
    Sqlite {
        during: &'static str,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    /// A file of the store could not be created, moved, synced or read.
    #[error("order store: {during}: {source}")]
    File {
        during: String,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Another process holds the store.
    #[error("{path} is in use by {holder}: only one chasti may use a store. Stop the other one (systemctl stop chasti) or give this one its own store.path")]
    InUse { path: String, holder: String },
    /// The database was written by a newer chasti whose schema this one does not know.
    #[error("{path} has schema version {found}; this chasti knows versions up to {known}: it was written by a newer chasti, so run that one (or restore a backup made by this one)")]
    NewerSchema {
        path: String,
        found: i64,
        known: i64,
    },
    /// The store's writer thread is gone (the store is closing, or the thread could not start).
    #[error("order store: its writer has stopped; the change was not written")]
    WriterStopped,
    /// Another writer changed the order first; re-read and decide again.
    #[error("order {id} changed under us (expected version {expected}, found {found})")]
    Conflict {
        id: String,
        expected: u64,
        found: u64,
    },
    #[error("order {0} is not in the store")]
    Missing(String),
    /// A sale with this idempotency key exists already.
    #[error("a sale with this idempotency key exists: {0}")]
    Duplicate(String),
    #[error("order record {id} is unreadable: {problem}")]
    Corrupt { id: String, problem: String },
    /// An old sled store could not be imported; it is left as it was.
    #[error("importing the sled store {path}: {problem}")]
    Import { path: String, problem: String },
}

impl StoreError {
    pub(crate) fn sqlite(during: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
        move |source| StoreError::Sqlite {
            during,
            source: Arc::new(source),
        }
    }

    pub(crate) fn file(during: impl Into<String>) -> impl FnOnce(std::io::Error) -> StoreError {
        let during = during.into();
        move |source| StoreError::File {
            during,
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(id: impl Into<String>, problem: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            id: id.into(),
            problem: problem.to_string(),
        }
    }
}

/// `?` on a SQLite call inside the store when no better description fits.
impl From<rusqlite::Error> for StoreError {
    fn from(source: rusqlite::Error) -> Self {
        StoreError::Sqlite {
            during: "a statement",
            source: Arc::new(source),
        }
    }
}
