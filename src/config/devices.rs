//! `[devices]`, `[[printer]]` and `[[display]]`: the shop's name on slips, device profiles,
//! ports.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, Fail};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDevices {
    shop_name: String,
    profiles_dir: Option<PathBuf>,
    /// One or two lines the customer display shows between sales.
    display_idle: Vec<String>,
}

impl Default for RawDevices {
    fn default() -> Self {
        RawDevices {
            shop_name: "Магазин".into(),
            profiles_dir: None,
            display_idle: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPort {
    name: String,
    profile: String,
    port: PathBuf,
    #[serde(default = "default_baud")]
    baud: u32,
    #[serde(default)]
    flow_control: crate::devices::link::Flow,
}

pub(super) fn default_baud() -> u32 {
    9600
}

#[derive(Debug, Clone)]
pub struct DevicesConfig {
    pub shop_name: String,
    pub profiles_dir: Option<PathBuf>,
    pub printers: Vec<PrinterConfig>,
    pub displays: Vec<DisplayConfig>,
}

#[derive(Debug, Clone)]
pub struct PrinterConfig {
    pub name: String,
    pub profile: crate::devices::profile::PrinterProfile,
    pub port: crate::devices::link::PortSettings,
}

#[derive(Debug, Clone)]
pub struct DisplayConfig {
    pub name: String,
    pub profile: crate::devices::profile::DisplayProfile,
    pub port: crate::devices::link::PortSettings,
}

impl DevicesConfig {
    pub fn printer(&self, name: &str) -> Option<&PrinterConfig> {
        self.printers.iter().find(|p| p.name == name)
    }
}

const BAUD_RATES: [u32; 8] = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200];

pub(super) fn check_port(
    key: &str,
    raw: &RawPort,
    fail: &Fail,
) -> Result<crate::devices::link::PortSettings, ConfigError> {
    if !BAUD_RATES.contains(&raw.baud) {
        return Err(fail(
            &format!("{key}.baud"),
            format!("found {}; allowed: {BAUD_RATES:?}", raw.baud),
        ));
    }
    if let Some(problem) = crate::devices::link::Transport::problem(&raw.port) {
        return Err(fail(&format!("{key}.port"), problem));
    }
    Ok(crate::devices::link::PortSettings {
        path: raw.port.clone(),
        baud: raw.baud,
        flow: raw.flow_control,
        retry: Duration::from_secs(2),
    })
}

/// `devices.display_idle`: one or two lines, each fitting the display, no control characters.
fn idle_lines(lines: &[String], columns: usize, fail: &Fail) -> Result<[String; 2], ConfigError> {
    let allowed = format!("allowed: one or two lines of at most {columns} characters");
    if lines.len() > 2 {
        return Err(fail(
            "devices.display_idle",
            format!("found {} lines; {allowed}", lines.len()),
        ));
    }
    for line in lines {
        if line.chars().count() > columns || line.chars().any(char::is_control) {
            return Err(fail(
                "devices.display_idle",
                format!("found {line:?}; {allowed}, without control characters"),
            ));
        }
    }
    Ok([
        lines.first().cloned().unwrap_or_default(),
        lines.get(1).cloned().unwrap_or_default(),
    ])
}

pub(super) fn check_devices(
    d: RawDevices,
    printers: Vec<RawPort>,
    displays: Vec<RawPort>,
    fail: &Fail,
) -> Result<DevicesConfig, ConfigError> {
    let dir = d.profiles_dir.as_deref();
    let mut out = DevicesConfig {
        shop_name: d.shop_name,
        profiles_dir: d.profiles_dir.clone(),
        printers: Vec::new(),
        displays: Vec::new(),
    };
    for (i, p) in printers.iter().enumerate() {
        let key = format!("printer[{i}]");
        let profile = crate::devices::profile::printer(&p.profile, dir).map_err(|e| {
            fail(
                &format!("{key}.profile"),
                format!("found {:?}; {e}", p.profile),
            )
        })?;
        let port = check_port(&key, p, fail)?;
        if out.printers.iter().any(|x| x.name == p.name) {
            return Err(fail(
                &format!("{key}.name"),
                format!("found {:?} twice; allowed: a name per printer", p.name),
            ));
        }
        out.printers.push(PrinterConfig {
            name: p.name.clone(),
            profile,
            port,
        });
    }
    for (i, p) in displays.iter().enumerate() {
        let key = format!("display[{i}]");
        let profile = crate::devices::profile::display(&p.profile, dir).map_err(|e| {
            fail(
                &format!("{key}.profile"),
                format!("found {:?}; {e}", p.profile),
            )
        })?;
        let port = check_port(&key, p, fail)?;
        let mut profile = profile;
        if !d.display_idle.is_empty() {
            profile.idle = Some(idle_lines(&d.display_idle, profile.columns, fail)?);
        }
        out.displays.push(DisplayConfig {
            name: p.name.clone(),
            profile,
            port,
        });
    }
    Ok(out)
}
