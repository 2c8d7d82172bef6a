//! This host: who runs the check, the order store's folder, the API tokens, the devices.

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use super::{check, risk, Check, Verdict};
use crate::config::Config;

/// The system user the package and the systemd unit run chasti as.
pub const SERVICE_USER: &str = "chasti";

/// Who runs this check: file and device checks mean what they say only for the service user.
pub fn runner() -> Check {
    match effective_uid() {
        Some(0) => check(
            "runs as",
            Verdict::Warn,
            format!("root: the store, config and devices are checked with root's rights, not the service's; run it as the service user: sudo -u {SERVICE_USER} chasti doctor"),
        ),
        Some(uid) => check("runs as", Verdict::Ok, format!("uid {uid}")),
        None => check("runs as", Verdict::Warn, "cannot tell which user runs this (no /proc/self/status)"),
    }
}

/// The effective uid, from /proc (std has no getuid; a libc binding for one number is not worth
/// a dependency).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The service user's uid from /etc/passwd, when that user exists on this host.
fn service_uid() -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == SERVICE_USER).then_some(())?;
        fields.nth(1)?.parse().ok()
    })
}

/// The order store: its folder there or creatable and writable by whoever runs this, its
/// files owned by the service user where that user exists, and the store either free or held
/// by the running daemon.
pub fn store(config: &Config) -> Check {
    store_for_owner(config, service_uid())
}

/// A file under `path` (itself, or in it when a folder) not owned by `owner` (a store once opened
/// by `sudo chasti serve` has root's files the service cannot write).
fn foreign_file(path: &Path, owner: u32) -> Option<(std::path::PathBuf, u32)> {
    let mut stack = vec![(path.to_path_buf(), 0)];
    let mut seen = 0;
    while let Some((path, depth)) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.uid() != owner {
            return Some((path, meta.uid()));
        }
        seen += 1;
        if meta.is_dir() && depth < 3 && seen < 10_000 {
            for entry in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                stack.push((entry.path(), depth + 1));
            }
        }
    }
    None
}

/// The store's files: the database, its WAL and lock, and a chasti 0.1 sled folder waiting to
/// be imported.
fn store_files(config: &Config) -> Vec<std::path::PathBuf> {
    let database = crate::store::database_file(&config.store.path);
    let mut files: Vec<std::path::PathBuf> = ["", "-wal", "-shm", ".lock"]
        .iter()
        .map(|suffix| {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        })
        .collect();
    files.push(config.store.path.clone());
    files.push(database.with_extension(""));
    files.retain(|f| f.exists());
    files.dedup();
    files
}

/// [`store`], with the service user's uid given (tests; None = no such user on this host).
pub fn store_for_owner(config: &Config, service_uid: Option<u32>) -> Check {
    let database = crate::store::database_file(&config.store.path);
    if let Some(uid) = service_uid {
        for file in store_files(config) {
            if let Some((path, theirs)) = foreign_file(&file, uid) {
                let folder = database.parent().unwrap_or(Path::new("."));
                return check(
                    "store",
                    Verdict::Fail,
                    format!(
                        "{} belongs to uid {theirs}, not the service user {SERVICE_USER} (uid {uid}), which cannot write it: chown -R {SERVICE_USER}:{SERVICE_USER} {}",
                        path.display(),
                        folder.display()
                    ),
                );
            }
        }
    }
    let folder = match database.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // A relative store.path is where `serve` started from, as `serve` reads it: resolve it
    // the same way, so a missing folder under a writable one is fine (serve creates it).
    let folder = std::path::absolute(&folder).unwrap_or(folder);
    let Some(existing) = folder.ancestors().find(|a| a.exists()) else {
        return check(
            "store",
            Verdict::Fail,
            format!(
                "{}: no part of the path exists; set store.path",
                database.display()
            ),
        );
    };
    let probe = existing.join(format!(".chasti-doctor-{}", std::process::id()));
    if let Err(e) = std::fs::write(&probe, b"probe") {
        return check(
            "store",
            Verdict::Fail,
            format!(
                "{} is not writable by this user ({e}); the service user must own it (chown -R chasti: {})",
                existing.display(),
                existing.display()
            ),
        );
    }
    let _ = std::fs::remove_file(&probe);
    match crate::store::Store::check_openable(&config.store.path) {
        Ok(found) if database.exists() => check(
            "store",
            Verdict::Ok,
            format!("{found}: opens and its folder is writable"),
        ),
        Ok(found) => check("store", Verdict::Ok, found),
        Err(e @ crate::store::StoreError::InUse { .. }) => check(
            "store",
            Verdict::Ok,
            format!("{e} (fine when that is this till's running daemon)"),
        ),
        Err(e) => check("store", Verdict::Fail, e.to_string()),
    }
}

/// What a restore left: orders the bank has under this store's numbers that the store lacks
/// («есть в банке, нет в кассе»), and whether the check against the bank is still running.
pub fn restore_findings(config: &Config) -> Check {
    let database = crate::store::database_file(&config.store.path);
    match crate::store::restore_findings(&database) {
        Ok((found, checking)) if found.is_empty() && !checking => check(
            "restore",
            Verdict::Ok,
            "no order is at the bank and missing here",
        ),
        Ok((found, checking)) => {
            let mut detail = String::new();
            if checking {
                detail.push_str(
                    "the check of the restored store against the bank is still running; ",
                );
            }
            if !found.is_empty() {
                let listed: Vec<String> = found
                    .iter()
                    .map(|b| format!("{} {} ({})", b.order_number, b.amount, b.status_text()))
                    .collect();
                detail.push_str(&format!(
                    "{} order(s) the bank has and this store lacks («есть в банке, нет в кассе»): {}; made after the backup that was restored, check them in the bank's back office",
                    found.len(),
                    listed.join("; ")
                ));
            }
            check(
                "restore",
                Verdict::Warn,
                detail.trim_end_matches("; ").to_string(),
            )
        }
        Err(e) => check(
            "restore",
            Verdict::Warn,
            format!("could not read the store: {e}"),
        ),
    }
}

/// The till API's tokens: present, and not the shipped demo ones.
pub fn api_tokens(config: &Config) -> Check {
    let tokens = &config.api.tokens;
    if tokens.is_empty() {
        return risk(
            "api tokens",
            "no [[api.tokens]]: every till API call will be refused (401)",
        );
    }
    if let Some(t) = tokens
        .iter()
        .find(|t| t.token.expose().contains("change-me"))
    {
        return risk("api tokens", format!("{:?} still has the shipped demo token: set a random one (e.g. openssl rand -hex 24) or token_env", t.name));
    }
    let managers = tokens
        .iter()
        .filter(|t| t.role == crate::config::Role::Manager)
        .count();
    check(
        "api tokens",
        Verdict::Ok,
        format!("{} token(s), {managers} manager", tokens.len()),
    )
}

/// What went wrong with a port, for doctor's (and serve's) English lines: the system's own
/// reason, without the cashier's promise that the slip is kept.
fn why(e: &crate::devices::link::DeviceError) -> String {
    match e {
        crate::devices::link::DeviceError::Port { detail, .. } => detail.clone(),
        other => other.cause(),
    }
}

/// Each configured device answers.
pub fn devices(config: &Config) -> Vec<Check> {
    use crate::devices::link::{self, Transport};
    let mut out = Vec::new();
    for p in &config.devices.printers {
        let transport = Transport::of(&p.port.path);
        let opened = link::open(&p.port, Duration::from_millis(500)).map_err(|e| why(&e));
        let verdict = match opened {
            Err(e) if p.port.path.is_file() => check(
                "printer",
                Verdict::Fail,
                format!("{}: {} ({e})", p.name, p.port.path.display()),
            ),
            Err(e) => {
                let hint = match transport {
                    Transport::Serial => "check the cable, the path (ls -l /dev/serial/by-id) and that the user is in the dialout group",
                    Transport::UsbPrinter => "check the cable, the path (ls -l /dev/usb/lp*) and that the user is in the lp group",
                    Transport::Network(_) => "check the printer's IP address (its self-test page shows it), power and the network",
                };
                check("printer", Verdict::Fail, format!("{}: cannot open {} ({e}); {hint}", p.name, p.port.path.display()))
            }
            Ok(port) if !port.reads_answers() => check("printer", Verdict::Warn, format!("{}: {} opens; the USB printer class gives no status here, so paper-out is not seen before a slip (a serial or network connection reports it)", p.name, p.port.path.display())),
            Ok(mut port) if p.profile.status => {
                let mut answer = [0u8; 1];
                let asked = port.write_all(&[0x10, 0x04, 4]).and_then(|_| port.read_exact(&mut answer));
                match asked {
                    Ok(()) if answer[0] & 0x60 == 0x60 => check("printer", Verdict::Fail, format!("{}: paper out", p.name)),
                    Ok(()) if answer[0] & 0x0c == 0x0c => check("printer", Verdict::Warn, format!("{}: paper near its end", p.name)),
                    Ok(()) => check("printer", Verdict::Ok, format!("{} ({}) answers on {}", p.name, p.profile.model, p.port.path.display())),
                    Err(e) => check("printer", Verdict::Fail, format!("{}: no answer to a status query ({e}); check power, baud ({}) and the profile", p.name, p.port.baud)),
                }
            }
            Ok(_) => check("printer", Verdict::Ok, format!("{}: port {} opens (this model does not answer status queries)", p.name, p.port.path.display())),
        };
        out.push(verdict);
    }
    for d in &config.devices.displays {
        match crate::devices::link::open(&d.port, Duration::from_millis(500)).map_err(|e| why(&e)) {
            Ok(_) => out.push(check(
                "display",
                Verdict::Ok,
                format!("{}: port {} opens", d.name, d.port.path.display()),
            )),
            Err(e) => out.push(check(
                "display",
                Verdict::Fail,
                format!("{}: cannot open {} ({e})", d.name, d.port.path.display()),
            )),
        }
    }
    if out.is_empty() {
        out.push(check("devices", Verdict::Warn, "no [[printer]] or [[display]] configured: the payment link is shown only through the API and pages"));
    }
    out
}

/// The SMS provider (`[sms]`): set up, and answering at its address. A link that cannot go by
/// SMS still goes by QR, so nothing here fails the go-live check.
pub async fn sms(config: &Config) -> Check {
    use crate::config::SmsProviderConfig;
    let Some(sms) = &config.sms else {
        return check(
            "sms",
            Verdict::Ok,
            "not set up: the link is handed over as a QR only",
        );
    };
    let (url, hint) = match &sms.provider {
        SmsProviderConfig::Kannel { url, .. } => {
            (url, "check that smsbox runs and its sendsms-port")
        }
        SmsProviderConfig::Smsc { url, .. } | SmsProviderConfig::SmsRu { url, .. } => {
            (url, "check the network and DNS")
        }
        SmsProviderConfig::Webhook { url, .. } => (url, "check the webhook's service"),
    };
    let name = sms.provider.name();
    if matches!(sms.provider, SmsProviderConfig::Kannel { .. }) && sms.sender.is_none() {
        return check("sms", Verdict::Warn, "kannel without sms.sender: Kannel refuses such messages unless its own global-sender is set");
    }
    let client = crate::gateway::tls::http_client(
        &crate::gateway::tls::public_trust(),
        Duration::from_secs(5),
    )
    .ok()
    .and_then(|b| b.build().ok());
    let Some(client) = client else {
        return check(
            "sms",
            Verdict::Warn,
            "cannot build an HTTP client to check the provider",
        );
    };
    // Any HTTP answer proves the address; no message is sent and no credentials go with it.
    let mut probe = url.clone();
    probe.set_query(None);
    match client.head(probe).send().await {
        Ok(reply) => check(
            "sms",
            Verdict::Ok,
            format!(
                "{name} answers at {} (HTTP {})",
                url.host_str().unwrap_or("?"),
                reply.status().as_u16()
            ),
        ),
        Err(e) => check(
            "sms",
            Verdict::Warn,
            format!(
                "{name} does not answer at {} ({}): the link goes by QR only until it does; {hint}",
                url.host_str().unwrap_or("?"),
                crate::gateway::error_chain(&e.without_url())
            ),
        ),
    }
}
