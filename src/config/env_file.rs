//! `/etc/chasti/secrets.env`, read as systemd reads a unit's `EnvironmentFile=`: the secrets
//! `chasti serve` gets from systemd, so that `chasti doctor` run by hand checks the same
//! set-up the service will run with. Values are secrets: they are kept as `Secret` and never
//! printed; a problem names the line, never its text.
//!
//! Hand-written rather than a dotenv crate: those follow shell or dotenv rules (`export`,
//! `${VAR}` expansion) that systemd does not, and the point is to read what systemd reads.

use std::path::{Path, PathBuf};

use crate::secret::Secret;

/// A secrets file larger than this is not a secrets file.
const MAX_BYTES: u64 = 64 * 1024;

/// The secrets file the packaged unit names beside the config: `/etc/chasti/secrets.env`
/// for `/etc/chasti/chasti.toml`.
pub fn beside(config: &Path) -> PathBuf {
    config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join("secrets.env")
}

#[derive(Debug)]
pub struct EnvFile {
    pub path: PathBuf,
    values: Vec<(String, Secret)>,
    /// Lines systemd would skip (it logs them): «line 3: no `=`».
    pub problems: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {size} bytes; allowed: at most {MAX_BYTES} (a file of KEY=value lines)")]
    TooLarge { path: String, size: u64 },
    #[error("{path}: not UTF-8 text")]
    NotText { path: String },
}

impl EnvFile {
    pub fn read(path: &Path) -> Result<EnvFile, EnvFileError> {
        let shown = path.display().to_string();
        let read = |source| EnvFileError::Read {
            path: shown.clone(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_BYTES {
            return Err(EnvFileError::TooLarge { path: shown, size });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        let text = String::from_utf8(bytes).map_err(|_| EnvFileError::NotText {
            path: shown.clone(),
        })?;
        Ok(EnvFile::parse(path, &text))
    }

    /// `KEY=value` lines; `#` and `;` start comments; blank lines skipped; a value may be in
    /// single or double quotes (`\"` and `\\` inside double quotes), else it is trimmed.
    pub fn parse(path: &Path, text: &str) -> EnvFile {
        let mut values: Vec<(String, Secret)> = Vec::new();
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                problems.push(format!("line {}: no `=`; allowed: KEY=value", i + 1));
                continue;
            };
            let key = key.trim();
            let valid_key = key
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_key {
                problems.push(format!(
                    "line {}: not a variable name before `=`; allowed: letters, digits and _",
                    i + 1
                ));
                continue;
            }
            let Some(value) = unquote(value.trim()) else {
                problems.push(format!("line {}: a quote is not closed", i + 1));
                continue;
            };
            // The last assignment wins, as in systemd.
            values.retain(|(k, _)| k != key);
            values.push((key.to_string(), Secret::new(value)));
        }
        EnvFile {
            path: path.to_path_buf(),
            values,
            problems,
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.expose().to_string())
    }

    /// The variables it sets, by name only.
    pub fn names(&self) -> Vec<&str> {
        self.values.iter().map(|(k, _)| k.as_str()).collect()
    }
}

fn unquote(value: &str) -> Option<String> {
    if let Some(rest) = value.strip_prefix('\'') {
        return rest.strip_suffix('\'').map(str::to_string);
    }
    let Some(rest) = value.strip_prefix('"') else {
        return Some(value.to_string());
    };
    let inner = rest.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => out.push(next),
                None => return None,
            },
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_what_systemd_reads() {
        let f = EnvFile::parse(
            Path::new("secrets.env"),
            "# the bank's\nCHASTI_GATEWAY_PASSWORD=p@ss=word \n; a comment\n\n\
             CHASTI_CALLBACK_KEY=\"a \\\"quoted\\\" key\"\nSINGLE='x y'\nexport X=1\n\
             NOEQUALS\nOPEN=\"never closed\nA=1\nA=2\n",
        );
        assert_eq!(
            f.get("CHASTI_GATEWAY_PASSWORD").as_deref(),
            Some("p@ss=word")
        );
        assert_eq!(
            f.get("CHASTI_CALLBACK_KEY").as_deref(),
            Some("a \"quoted\" key")
        );
        assert_eq!(f.get("SINGLE").as_deref(), Some("x y"));
        assert_eq!(f.get("A").as_deref(), Some("2"), "the last one wins");
        assert_eq!(f.get("X"), None, "`export` is not systemd's");
        assert_eq!(f.problems.len(), 3, "{:?}", f.problems);
        assert!(
            f.problems.iter().all(|p| !p.contains("never closed")),
            "no values in problems"
        );
        assert_eq!(
            f.names(),
            [
                "CHASTI_GATEWAY_PASSWORD",
                "CHASTI_CALLBACK_KEY",
                "SINGLE",
                "A"
            ]
        );
        assert!(!format!("{f:?}").contains("p@ss"), "Debug hides the values");
    }

    #[test]
    fn the_file_beside_the_config() {
        assert_eq!(
            beside(Path::new("/etc/chasti/chasti.toml")),
            Path::new("/etc/chasti/secrets.env")
        );
        assert_eq!(beside(Path::new("chasti.toml")), Path::new("./secrets.env"));
    }
}
