//! `[daemon]`: how the service itself behaves, such as how long a stop may take.

use std::time::Duration;

use serde::Deserialize;

use super::{seconds_in, ConfigError, Fail};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDaemon {
    shutdown_grace_secs: u64,
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            shutdown_grace_secs: 10,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// On SIGTERM: how long requests under way, callback follow-ups and the printer's current
    /// slip may take to finish before the process exits anyway.
    pub shutdown_grace: Duration,
}

pub(super) fn check_daemon(d: RawDaemon, fail: &Fail) -> Result<DaemonConfig, ConfigError> {
    Ok(DaemonConfig {
        shutdown_grace: seconds_in(
            "daemon.shutdown_grace_secs",
            d.shutdown_grace_secs,
            1..=300,
            fail,
        )?,
    })
}
