//! Printer and display profiles: one TOML file a model in `hardware/`, compiled in; more can
//! be loaded from a folder. Everything vendor-specific (code table numbers, native QR, `FS .`)
//! lives here, not in the encoder.

use std::path::Path;

use serde::Deserialize;

use super::codepage::CodePage;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cut {
    None,
    Partial,
    Full,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrinterProfile {
    pub name: String,
    pub model: String,
    pub paper_mm: u32,
    /// Printable dots across the head (58 mm: 384, 80 mm: 576).
    pub dots_per_line: u32,
    pub dots_per_mm: u32,
    /// Characters a line in font A.
    pub columns: usize,
    pub code_page: CodePage,
    /// `ESC t n` for that code page on this vendor.
    pub code_table: u8,
    /// Send `FS .` to leave Chinese double-byte mode.
    pub fs_dot: bool,
    /// Knows `GS ( k` (QR Model 2).
    pub native_qr: bool,
    /// Knows `GS v 0` with m = 3 (each sent dot prints 2 x 2).
    pub raster_quadruple: bool,
    /// The QR's side on paper, in mm.
    pub qr_target_mm: u32,
    pub cut: Cut,
    /// Answers `DLE EOT`.
    pub status: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommandSet {
    Epson,
    Cd5220,
    /// AEDEX (UTC): `!#1 … CR` upper line, `!#2 … CR` lower, `!#9 … CR` both.
    Aedex,
    /// DSP-800: `EOT SOH P pos ETB` moves the cursor (positions 1..40 as 0x31..0x58), text
    /// follows; `EOT SOH C from to ETB` clears a range.
    Dsp800,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisplayProfile {
    pub name: String,
    pub model: String,
    pub command_set: CommandSet,
    pub columns: usize,
    pub code_page: CodePage,
    /// `ESC t n`, when the display needs it to show Cyrillic.
    pub code_table: Option<u8>,
    /// The character table has ₽; else amounts end in «руб».
    pub rouble_sign: bool,
    /// What the display shows between sales: the shop's `devices.display_idle`, set from the
    /// config (not part of a hardware profile); `None` = «Добро пожаловать!».
    #[serde(skip)]
    pub idle: Option<[String; 2]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Profile {
    Printer(PrinterProfile),
    Display(DisplayProfile),
}

/// The profiles shipped in `hardware/`.
const BUNDLED: [(&str, &str); 7] = [
    (
        "epson-tm-t20iii.toml",
        include_str!("../../hardware/epson-tm-t20iii.toml"),
    ),
    (
        "xprinter-xp58.toml",
        include_str!("../../hardware/xprinter-xp58.toml"),
    ),
    (
        "rongta-rp326.toml",
        include_str!("../../hardware/rongta-rp326.toml"),
    ),
    (
        "epson-dm-d110.toml",
        include_str!("../../hardware/epson-dm-d110.toml"),
    ),
    (
        "generic-cd5220.toml",
        include_str!("../../hardware/generic-cd5220.toml"),
    ),
    (
        "generic-aedex.toml",
        include_str!("../../hardware/generic-aedex.toml"),
    ),
    (
        "generic-dsp800.toml",
        include_str!("../../hardware/generic-dsp800.toml"),
    ),
];

/// Why a device profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {file}: {problem}")]
    Unreadable { file: String, problem: String },
    #[error("profile {file}: {key}: found {found}; allowed: {allowed}")]
    OutOfRange {
        file: String,
        key: &'static str,
        found: String,
        allowed: String,
    },
    #[error("cannot read profiles folder {dir}: {source}")]
    Folder {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no {kind} profile {name:?}; known: {known}")]
    Unknown {
        kind: &'static str,
        name: String,
        known: String,
    },
}

pub fn parse(file: &str, text: &str) -> Result<Profile, ProfileError> {
    let profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Unreadable {
        file: file.to_string(),
        problem: e.message().to_string(),
    })?;
    check(file, &profile)?;
    Ok(profile)
}

/// Numbers a real printer or display has: a profile outside them is a typo, and the sizes
/// computed from it (the QR's dots, the slip's picture) must never overflow.
fn check(file: &str, profile: &Profile) -> Result<(), ProfileError> {
    let out_of = |key: &'static str, found: String, allowed: String| ProfileError::OutOfRange {
        file: file.to_string(),
        key,
        found,
        allowed,
    };
    let within = |key: &'static str, value: u64, allowed: std::ops::RangeInclusive<u64>| {
        if allowed.contains(&value) {
            Ok(())
        } else {
            Err(out_of(
                key,
                value.to_string(),
                format!("{}..{}", allowed.start(), allowed.end()),
            ))
        }
    };
    match profile {
        Profile::Printer(p) => {
            within("paper_mm", p.paper_mm.into(), 38..=120)?;
            within("dots_per_mm", p.dots_per_mm.into(), 4..=24)?;
            within("dots_per_line", p.dots_per_line.into(), 128..=2048)?;
            within("columns", p.columns as u64, 16..=80)?;
            within(
                "qr_target_mm",
                p.qr_target_mm.into(),
                10..=u64::from(p.paper_mm),
            )?;
            if u64::from(p.dots_per_line) > u64::from(p.paper_mm) * u64::from(p.dots_per_mm) {
                return Err(out_of(
                    "dots_per_line",
                    p.dots_per_line.to_string(),
                    format!(
                        "at most what {} mm of paper at {} dots a mm holds",
                        p.paper_mm, p.dots_per_mm
                    ),
                ));
            }
            Ok(())
        }
        Profile::Display(d) => within("columns", d.columns as u64, 8..=40),
    }
}

/// Every bundled profile.
pub fn bundled() -> Vec<Profile> {
    BUNDLED
        .iter()
        .map(|(file, text)| parse(file, text).expect("bundled profiles are tested"))
        .collect()
}

/// The bundled profiles plus every `*.toml` in `dir` (a file there overrides a bundled one
/// of the same name).
pub fn all(dir: Option<&Path>) -> Result<Vec<Profile>, ProfileError> {
    let mut profiles = bundled();
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir).map_err(|source| ProfileError::Folder {
            dir: dir.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("toml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|source| ProfileError::File {
                path: path.display().to_string(),
                source,
            })?;
            let profile = parse(&path.display().to_string(), &text)?;
            profiles.retain(|p| name_of(p) != name_of(&profile));
            profiles.push(profile);
        }
    }
    Ok(profiles)
}

fn name_of(p: &Profile) -> &str {
    match p {
        Profile::Printer(p) => &p.name,
        Profile::Display(d) => &d.name,
    }
}

pub fn printer(name: &str, dir: Option<&Path>) -> Result<PrinterProfile, ProfileError> {
    let profiles = all(dir)?;
    let names: Vec<&str> = profiles
        .iter()
        .filter_map(|p| match p {
            Profile::Printer(p) => Some(p.name.as_str()),
            _ => None,
        })
        .collect();
    profiles
        .iter()
        .find_map(|p| match p {
            Profile::Printer(p) if p.name == name => Some(p.clone()),
            _ => None,
        })
        .ok_or_else(|| ProfileError::Unknown {
            kind: "printer",
            name: name.to_string(),
            known: names.join(", "),
        })
}

pub fn display(name: &str, dir: Option<&Path>) -> Result<DisplayProfile, ProfileError> {
    let profiles = all(dir)?;
    let names: Vec<&str> = profiles
        .iter()
        .filter_map(|p| match p {
            Profile::Display(d) => Some(d.name.as_str()),
            _ => None,
        })
        .collect();
    profiles
        .iter()
        .find_map(|p| match p {
            Profile::Display(d) if d.name == name => Some(d.clone()),
            _ => None,
        })
        .ok_or_else(|| ProfileError::Unknown {
            kind: "display",
            name: name.to_string(),
            known: names.join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_profile_reads_and_names_its_file() {
        for (file, text) in BUNDLED {
            let p = parse(file, text).unwrap();
            assert_eq!(format!("{}.toml", name_of(&p)), file);
        }
        assert_eq!(printer("epson-tm-t20iii", None).unwrap().code_table, 17);
        assert!(printer("xprinter-xp58", None).unwrap().fs_dot);
        assert_eq!(
            display("generic-cd5220", None).unwrap().command_set,
            CommandSet::Cd5220
        );
        let err = printer("nope", None).unwrap_err();
        assert!(
            matches!(&err, ProfileError::Unknown { known, .. } if known.contains("epson-tm-t20iii")),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_key_in_a_profile_is_an_error() {
        let text = BUNDLED[0].1.replace("columns = 48", "colums = 48");
        let err = parse("x.toml", &text).unwrap_err();
        assert!(matches!(err, ProfileError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("colums"), "{err}");
    }
}
