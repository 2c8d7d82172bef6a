//! `[replicate]`: that the head office's PostgreSQL takes this store's changes: it answers
//! with these credentials, chasti's schema is there at this version, and when it last heard
//! from this store (a store far behind shows here, in the manager page's notice and in
//! `/metrics`).

use chrono::{DateTime, Utc};

use super::{check, risk, Check, Verdict};
use crate::config::Config;
use crate::replicate::central;

/// What waits in this store's outbox, for the end of the line: "" when nothing does.
fn waiting_here(config: &Config) -> String {
    let database = crate::store::database_file(&config.store.path);
    match crate::store::outbox_in_file(&database) {
        Ok(Some(outbox)) if outbox.resync.is_some() => {
            "; here: every order is to be sent again (a resync)".into()
        }
        Ok(Some(outbox)) if outbox.pending > 0 => format!(
            "; here: {} changes wait, the oldest from {}",
            outbox.pending,
            outbox
                .oldest
                .map(|at| at
                    .with_timezone(&chrono_tz::Europe::Moscow)
                    .format("%d.%m.%Y %H:%M МСК")
                    .to_string())
                .unwrap_or_default()
        ),
        Ok(_) => String::new(),
        Err(e) => format!("; the store's outbox could not be read: {e}"),
    }
}

pub async fn replicate(config: &Config, now: DateTime<Utc>) -> Option<Check> {
    let mut found = replicate_link(config, now).await?;
    found.detail.push_str(&waiting_here(config));
    Some(found)
}

async fn replicate_link(config: &Config, now: DateTime<Utc>) -> Option<Check> {
    let r = config.replicate.as_ref()?;
    let client = match central::connect(r).await {
        Ok(c) => c,
        Err(e) => {
            return Some(check(
                "replicate",
                Verdict::Fail,
                format!(
                    "{} (sales go on; changes wait in the outbox until it answers)",
                    e.explain()
                ),
            ))
        }
    };
    let version = match central::version(&client).await {
        Ok(v) => v,
        Err(e) => return Some(check("replicate", Verdict::Fail, e.explain())),
    };
    if version != central::latest() {
        return Some(check(
            "replicate",
            Verdict::Fail,
            format!(
                "{}: chasti's schema is at version {version}, this chasti needs {}: run `chasti replicate --init`",
                r.url_shown,
                central::latest()
            ),
        ));
    }
    let last = match central::stores(&client).await {
        Ok(stores) => stores
            .into_iter()
            .find(|(id, _, _)| id == &r.store_id)
            .map(|(_, at, _)| at),
        Err(e) => return Some(check("replicate", Verdict::Fail, e.explain())),
    };
    Some(match last {
        Some(at) if now - at > chrono::Duration::hours(1) => risk(
            "replicate",
            format!(
                "{} answers, but last heard from store {} at {}: is chasti running? (GET /api/v1/replication says what waits)",
                r.url_shown,
                r.store_id,
                at.with_timezone(&chrono_tz::Europe::Moscow).format("%d.%m.%Y %H:%M МСК")
            ),
        ),
        Some(at) => check(
            "replicate",
            Verdict::Ok,
            format!(
                "{} takes store {}'s changes (last {})",
                r.url_shown,
                r.store_id,
                at.with_timezone(&chrono_tz::Europe::Moscow).format("%d.%m.%Y %H:%M МСК")
            ),
        ),
        None => check(
            "replicate",
            Verdict::Ok,
            format!(
                "{} answers with schema {version}; store {} has sent nothing yet",
                r.url_shown, r.store_id
            ),
        ),
    })
}
