//! `[store]`: the order database, the order-number prefix and this till, how long the
//! diagnostics are kept, and the database's page cache.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Fail};
use crate::domain::{StorePrefix, TillId};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStore {
    path: PathBuf,
    prefix: String,
    till: String,
    retention_days: u64,
    cache_mb: u64,
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            path: PathBuf::from("chasti-data/orders.db"),
            prefix: "S1".into(),
            till: "1".into(),
            retention_days: 90,
            // The writer's page cache; readers get a quarter each. The sale path touches the
            // newest pages and the indexes' upper levels only, so a few megabytes hold them.
            cache_mb: 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The database file as configured (`crate::store::database_file` says which file that
    /// is for a path without `.db`).
    pub path: PathBuf,
    pub prefix: StorePrefix,
    pub till: TillId,
    /// How long the gateway-call journal and received callbacks are kept.
    pub retention: Duration,
    /// The store writer's page cache, in bytes (`store.cache_mb`).
    pub cache_bytes: u64,
}

pub(super) fn check_store(s: RawStore, fail: &Fail) -> Result<StoreConfig, ConfigError> {
    let retention =
        super::seconds_in("store.retention_days", s.retention_days, 1..=3650, fail)? * 86_400;
    if !(1..=1024).contains(&s.cache_mb) {
        return Err(fail(
            "store.cache_mb",
            format!(
                "found {}; allowed: 1..1024 (megabytes of the store's page cache)",
                s.cache_mb
            ),
        ));
    }
    Ok(StoreConfig {
        cache_bytes: s.cache_mb << 20,
        prefix: StorePrefix::parse(&s.prefix).map_err(|e| fail("store.prefix", e.to_string()))?,
        till: TillId::parse(&s.till).map_err(|e| fail("store.till", e.to_string()))?,
        path: s.path,
        retention,
    })
}
