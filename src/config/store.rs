//! `[store]`: the sled directory, the order-number prefix and this till, how long the
//! diagnostics are kept.

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
            path: PathBuf::from("chasti-data/orders"),
            prefix: "S1".into(),
            till: "1".into(),
            retention_days: 90,
            // sled 0.34 counts a page's serialised size against this, while its nodes in
            // memory take two to three times that: 2 MB keeps a busy till near 30 MB RSS
            // (8 MB: 45 MB after 17 000 sales), and the sale path only touches recent pages.
            cache_mb: 2,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub prefix: StorePrefix,
    pub till: TillId,
    /// How long the gateway-call journal and received callbacks are kept.
    pub retention: Duration,
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
}

pub(super) fn check_store(s: RawStore, fail: &Fail) -> Result<StoreConfig, ConfigError> {
    let retention =
        super::seconds_in("store.retention_days", s.retention_days, 1..=3650, fail)? * 86_400;
    if !(1..=1024).contains(&s.cache_mb) {
        return Err(fail(
            "store.cache_mb",
            format!(
                "found {}; allowed: 1..1024 (megabytes of sled's page cache)",
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
