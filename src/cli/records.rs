//! `chasti backup`, `chasti restore`, `chasti export`: the shop's records out of the till and
//! back. Messages are for the store manager, in Russian.

use std::io::Write;
use std::path::{Path, PathBuf};

use chasti::config::{Config, Role};
use chasti::store::{BackupReceiver, BackupSummary, Store, StoreOptions, BACKUP_FILE};

use super::till::{client, ApiArgs};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// A new folder for the copy (it holds one SQLite database, `orders.db`).
    dir: PathBuf,
    #[command(flatten)]
    api: ApiArgs,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// A folder made by `chasti backup` (also one made by chasti 0.1, a sled store).
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
    std::fs::create_dir_all(&partial).map_err(|e| format!("{}: {e}", partial.display()))?;
    // Whatever goes wrong, no half-written copy is left behind.
    let copied = copy_into(&partial.join(BACKUP_FILE), config_path, &api).await;
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

/// The backup, from the daemon's stream or (none answering) the store itself, into the new
/// database file `file`: where it came from and what it held.
async fn copy_into(
    file: &Path,
    config_path: &Path,
    api: &super::daemon_api::DaemonApi,
) -> Result<(&'static str, BackupSummary), String> {
    match api.download("/api/v1/backup").await {
        Ok(mut response) => {
            let mut receiver = BackupReceiver::create(file).map_err(|e| e.to_string())?;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| format!("копия прервалась: {}", e.without_url()))?
            {
                receiver.feed(&chunk).map_err(|e| e.to_string())?;
            }
            let summary = receiver.finish().map_err(|e| e.to_string())?;
            Ok(("работающего chasti", summary))
        }
        Err(Some(refused)) => Err(refused),
        Err(None) => {
            // No daemon answers: copy the store directly (it fails if something holds it).
            let config = Config::load(config_path).map_err(|e| e.to_string())?;
            let live = Store::open_with(
                &config.store.path,
                StoreOptions {
                    cache_bytes: config.store.cache_bytes,
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
            let summary = live.backup_to(file).map_err(|e| e.to_string())?;
            Ok(("хранилища (chasti не запущен)", summary))
        }
    }
}

/// The database a backup folder holds: `orders.db`, or (a folder made by chasti 0.1) a sled
/// store imported into a new database beside the live one. The second value is that
/// temporary import, to remove afterwards.
fn backup_database(dir: &Path, live: &Path) -> Result<(PathBuf, Option<PathBuf>), String> {
    if dir.join(BACKUP_FILE).is_file() {
        return Ok((dir.join(BACKUP_FILE), None));
    }
    if dir.is_file() {
        return Ok((dir.to_path_buf(), None));
    }
    if chasti::store::is_sled_store(dir) {
        let temp = PathBuf::from(format!("{}.restore-import", live.display()));
        let _ = std::fs::remove_file(&temp);
        chasti::store::import_folder(dir, &temp).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            format!("{} не открывается как резервная копия: {e}", dir.display())
        })?;
        return Ok((temp.clone(), Some(temp)));
    }
    Err(format!(
        "{} не резервная копия chasti: в ней нет {BACKUP_FILE}",
        dir.display()
    ))
}

/// Puts a backup in place of the store: only with the daemon stopped; the store it replaces
/// is kept beside it.
pub async fn restore(config_path: &Path, args: RestoreArgs) -> Result<(), String> {
    let config = Config::load(config_path).map_err(|e| e.to_string())?;
    let live = chasti::store::database_file(&config.store.path);
    if let Some(dir) = live.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let (source, temp) = backup_database(&args.dir, &live)?;
    let options = StoreOptions {
        cache_bytes: config.store.cache_bytes,
        ..Default::default()
    };
    let restored = Store::restore(&source, &config.store.path, options, chrono::Utc::now()).await;
    if let Some(temp) = temp {
        let _ = std::fs::remove_file(temp);
    }
    let restored = restored.map_err(|e| match e {
        chasti::store::StoreError::InUse { .. } => {
            format!("{e}\nОстановите chasti перед восстановлением: systemctl stop chasti")
        }
        other => format!("восстановление не удалось: {other}"),
    })?;
    if let Some(aside) = &restored.set_aside {
        println!("Прежнее хранилище сохранено в {}", aside.display());
    }
    println!(
        "Восстановлено {} заказов в {}; запустите chasti: systemctl start chasti",
        restored.orders,
        live.display()
    );
    println!(
        "После запуска chasti сверит каждый заказ с банком и найдёт заказы, которых нет в копии (chasti doctor покажет их)."
    );
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
