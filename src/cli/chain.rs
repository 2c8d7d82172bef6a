//! A chain's commands: `chasti replicate` (the head office's schema, from a till's config) and
//! `chasti hq report` (the head office's reports, from its PostgreSQL URL alone).

use std::path::{Path, PathBuf};

use chasti::config::{Config, ReplicateConfig};
use chasti::replicate::{central, report};

#[derive(clap::Args, Debug)]
pub struct ReplicateArgs {
    /// Create chasti's tables and views in the head office's database, or migrate them to
    /// this version (needs a user that may create tables; safe to repeat).
    #[arg(long)]
    init: bool,
}

#[derive(clap::Args, Debug)]
pub struct HqArgs {
    #[command(subcommand)]
    command: HqCommand,
}

#[derive(clap::Subcommand, Debug)]
enum HqCommand {
    /// A report from the head office's database as CSV (Excel) on standard output.
    Report {
        /// First Moscow day: 2026-12-01 or 01.12.2026.
        #[arg(long)]
        from: String,
        /// Last Moscow day (the first when absent).
        #[arg(long)]
        to: Option<String>,
        /// totals (each store's days), attention (orders needing a decision), receipts
        /// (movements without their fiscal receipt past the deadline).
        #[arg(long, default_value = "totals")]
        what: String,
        /// The head office's database (else `[replicate] postgres_url` of --config); the
        /// password from CHASTI_REPLICATE_PASSWORD.
        #[arg(long, env = "CHASTI_HQ_URL")]
        postgres_url: Option<String>,
        /// A CA file for a TLS connection (`sslmode=require`).
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
}

fn replicate_config(config: &Path) -> Result<ReplicateConfig, String> {
    let config = Config::load(config).map_err(|e| e.to_string())?;
    config.replicate.ok_or_else(|| {
        format!(
            "{}: no [replicate] section with postgres_url and store_id",
            config.file.display()
        )
    })
}

pub async fn replicate(config: &Path, args: ReplicateArgs) -> Result<(), String> {
    let r = replicate_config(config)?;
    let mut client = central::connect(&r).await.map_err(|e| e.explain())?;
    if args.init {
        let (before, after) = central::migrate(&mut client)
            .await
            .map_err(|e| e.explain())?;
        if before == after {
            println!(
                "the head office's schema at {} is at version {after}: nothing to do",
                r.url_shown
            );
        } else {
            println!(
                "the head office's schema at {}: version {before} -> {after}",
                r.url_shown
            );
        }
        return Ok(());
    }
    let version = central::version(&client).await.map_err(|e| e.explain())?;
    println!(
        "the head office's database at {}: schema version {version} (this chasti writes {})",
        r.url_shown,
        central::latest()
    );
    if version < central::latest() {
        return Err("run `chasti replicate --init` once to create or migrate it".into());
    }
    for (store, at, chasti) in central::stores(&client).await.map_err(|e| e.explain())? {
        let at = at
            .with_timezone(&chrono_tz::Europe::Moscow)
            .format("%d.%m.%Y %H:%M МСК");
        let mine = if store == r.store_id {
            "  (this store)"
        } else {
            ""
        };
        println!("  {store:<20} last shipment {at}, chasti {chasti}{mine}");
    }
    Ok(())
}

pub async fn hq(config: &Path, args: HqArgs) -> Result<(), String> {
    let HqCommand::Report {
        from,
        to,
        what,
        postgres_url,
        ca_file,
    } = args.command;
    let kind = report::Report::parse(&what)
        .ok_or_else(|| format!("--what {what:?}: allowed: totals, attention, receipts"))?;
    let day = |text: &str, flag: &str| {
        chasti::http::api::lists::parse_day(text)
            .ok_or_else(|| format!("{flag} {text:?}: allowed: 2026-12-01 or 01.12.2026"))
    };
    let from_day = day(&from, "--from")?;
    let to_day = match &to {
        Some(t) => day(t, "--to")?,
        None => from_day,
    };
    if to_day < from_day {
        return Err(format!("--to {to_day} is before --from {from_day}"));
    }
    let r = match postgres_url {
        Some(url) => {
            let (url_shown, postgres, tls) =
                chasti::config::postgres_connection(&url, &|name| std::env::var(name).ok())
                    .map_err(|e| format!("--postgres-url: {e}"))?;
            ReplicateConfig {
                url_shown,
                postgres,
                tls,
                ca_file,
                store_id: String::new(),
                outbox_max: 0,
                batch: 0,
            }
        }
        None => replicate_config(config)
            .map_err(|e| format!("{e}; or give the head office's database with --postgres-url"))?,
    };
    let client = central::connect(&r).await.map_err(|e| e.explain())?;
    let version = central::version(&client).await.map_err(|e| e.explain())?;
    if version == 0 {
        return Err(format!(
            "{} has no chasti tables: run `chasti replicate --init` from a till",
            r.url_shown
        ));
    }
    let text = report::csv(&client, kind, from_day, to_day)
        .await
        .map_err(|e| e.explain())?;
    print!("{text}");
    Ok(())
}
