//! `chasti backup`, `chasti restore`, `chasti export`: the shop's records out of the till and
//! back. Messages are for the store manager, in Russian.

use std::io::Write;
use std::path::{Path, PathBuf};

use chasti::config::{Config, Role};
use chasti::orders::store::{Restorer, StoreOptions};
use chasti::orders::Store;

use super::till::{client, ApiArgs};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// A new folder for the copy (it becomes a store `chasti serve` can open).
    dir: PathBuf,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// A folder made by `chasti backup`.
    dir: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// For Excel: `;` between fields, UTF-8 with a BOM, the history in the last column.
    Csv,
    /// One order a line with its whole history, as the API shows it.
    Jsonl,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The first Moscow day: 2026-11-01 or 01.11.2026.
    #[arg(long)]
    from: String,
    /// The last Moscow day (default: today).
    #[arg(long)]
    to: Option<String>,
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// The file to write (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
    #[command(flatten)]
    api: ApiArgs,
}

/// A backup from the running daemon (through its API, nothing paused), or straight from the
/// store when no daemon runs. Written into `DIR.partial` and renamed when complete and checked.
pub async fn backup(config_path: &Path, args: BackupArgs) -> Result<(), String> {
    let dir = &args.dir;
    if dir.exists() {
        return Err(format!(
            "{} уже существует: укажите новую папку для резервной копии",
            dir.display()
        ));
    }
    let partial = PathBuf::from(format!("{}.partial", dir.display()));
    if partial.exists() {
        // A backup of ours that was interrupted: never opened by anything else.
        std::fs::remove_dir_all(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    }
    let api = client(config_path, &args.api, Role::Manager)?;
    // Whatever goes wrong, no half-written copy is left behind.
    let copied = copy_into(&partial, config_path, &api).await;
    let (source, summary) = match copied {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    println!(
        "Резервная копия {source}: {} заказов в {}",
        summary.orders,
        dir.display()
    );
    println!(
        "Восстановить: остановите chasti и выполните chasti restore {}",
        dir.display()
    );
    Ok(())
}

/// The backup stream, from the daemon or (none answering) the store itself, into a new store
/// at `partial`: where it came from and what it held.
async fn copy_into(
    partial: &Path,
    config_path: &Path,
    api: &super::daemon_api::DaemonApi,
) -> Result<(&'static str, chasti::orders::store::BackupSummary), String> {
    let into = Store::open(partial).map_err(|e| e.to_string())?;
    let mut restorer = Restorer::new(into);
    let source = match api.download("/api/v1/backup").await {
        Ok(mut response) => {
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| format!("копия прервалась: {}", e.without_url()))?
            {
                restorer.feed(&chunk).map_err(|e| e.to_string())?;
            }
            "работающего chasti"
        }
        Err(Some(refused)) => return Err(refused),
        Err(None) => {
            // No daemon answers: copy the store directly (it fails if something holds it).
            let config = Config::load(config_path).map_err(|e| e.to_string())?;
            let live = Store::open_with(
                &config.store.path,
                StoreOptions {
                    cache_bytes: config.store.cache_bytes,
                },
            )
            .map_err(|e| e.to_string())?;
            for chunk in live.backup_chunks() {
                restorer
                    .feed(&chunk.map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            }
            "хранилища (chasti не запущен)"
        }
    };
    let summary = restorer.finish().await.map_err(|e| e.to_string())?;
    Ok((source, summary))
}

/// Puts a backup in place of the store: only with the daemon stopped; the store it replaces
/// is kept beside it.
pub async fn restore(config_path: &Path, args: RestoreArgs) -> Result<(), String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let backup = Store::open(&args.dir).map_err(|e| {
        format!(
            "{} не открывается как резервная копия: {e}",
            args.dir.display()
        )
    })?;
    let orders = backup
        .verify()
        .map_err(|e| format!("резервная копия повреждена: {e}"))?;
    drop(backup);
    let live = &config.store.path;
    let mut counters = Vec::new();
    if live.exists() {
        // Opening it proves no chasti holds it; its counters carry over, so numbers it handed
        // out after the backup (the bank has seen them) are not handed out again.
        let replaced = Store::open(live).map_err(|e| {
            format!("{e}\nОстановите chasti перед восстановлением: systemctl stop chasti")
        })?;
        counters = replaced.counters().map_err(|e| e.to_string())?;
        drop(replaced);
        let stamp = chrono::Utc::now()
            .with_timezone(&chrono_tz::Europe::Moscow)
            .format("%Y%m%d-%H%M%S");
        let aside = PathBuf::from(format!("{}.before-restore-{stamp}", live.display()));
        std::fs::rename(live, &aside).map_err(|e| format!("{}: {e}", live.display()))?;
        println!("Прежнее хранилище сохранено в {}", aside.display());
    }
    copy_dir(&args.dir, live).map_err(|e| format!("копирование в {}: {e}", live.display()))?;
    let restored =
        Store::open(live).map_err(|e| format!("восстановленное хранилище не открывается: {e}"))?;
    restored
        .raise_counters(&counters)
        .await
        .map_err(|e| e.to_string())?;
    let restored = restored
        .verify()
        .map_err(|e| format!("восстановленное хранилище повреждено: {e}"))?;
    if restored != orders {
        return Err(format!(
            "в восстановленном хранилище {restored} заказов, в копии {orders}"
        ));
    }
    println!(
        "Восстановлено {orders} заказов в {}; запустите chasti: systemctl start chasti",
        live.display()
    );
    Ok(())
}

/// A store folder copied file by file (sled's files and its blobs folder).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// The longest range one request covers (the API's limit); longer exports are made of several.
const WINDOW_DAYS: i64 = 366;

/// Every order of the days with its history, as CSV or JSON lines, from the running daemon.
pub async fn export(config_path: &Path, args: ExportArgs) -> Result<(), String> {
    let day = |text: &str| {
        chasti::http::api::lists::parse_day(text)
            .ok_or_else(|| format!("«{text}»: дата в виде ДД.ММ.ГГГГ или ГГГГ-ММ-ДД"))
    };
    let from = day(&args.from)?;
    let today = chasti::moscow::date(chrono::Utc::now());
    let to = match &args.to {
        Some(t) => day(t)?,
        None => today,
    };
    if to < from {
        return Err("--to раньше --from".into());
    }
    let api = client(config_path, &args.api, Role::Cashier)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let (route, extra) = match args.format {
        Format::Csv => ("orders.csv", "&history=true"),
        Format::Jsonl => ("orders.jsonl", ""),
    };
    let mut start = from;
    let mut first = true;
    while start <= to {
        let end = (start + chrono::Duration::days(WINDOW_DAYS - 1)).min(to);
        let path = format!("/api/v1/{route}?from={start}&to={end}{extra}");
        let mut response = api.download(&path).await.map_err(|e| {
            e.unwrap_or_else(|| "chasti не запущен: выгрузка идёт через него".into())
        })?;
        // Later windows of a CSV repeat its BOM and header line: skip them.
        let mut skip_header = args.format == Format::Csv && !first;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("выгрузка прервалась: {}", e.without_url()))?
        {
            let mut bytes = &chunk[..];
            if skip_header {
                match bytes.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        bytes = &bytes[i + 1..];
                        skip_header = false;
                    }
                    None => continue,
                }
            }
            out.write_all(bytes).map_err(|e| e.to_string())?;
        }
        first = false;
        start = end + chrono::Duration::days(1);
    }
    out.flush().map_err(|e| e.to_string())?;
    Ok(())
}
