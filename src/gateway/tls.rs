//! Whom the client trusts. The bank's hosts chain to the НУЦ Минцифры CAs, which are in no
//! browser or webpki store, so chasti bundles the root and both Sub CAs (some servers send
//! only their leaf, and rustls never fetches a missing intermediate). Extra PEM files from the
//! config are added; the OS store only when the config asks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The bundled CA files, compiled into the binary so an installed daemon needs no data files.
pub const BUNDLED_CAS: [(&str, &str); 3] = [
    (
        "russian_trusted_root_ca.pem",
        include_str!("../../certs/russian_trusted_root_ca.pem"),
    ),
    (
        "russian_trusted_sub_ca_2024.pem",
        include_str!("../../certs/russian_trusted_sub_ca_2024.pem"),
    ),
    (
        "russian_trusted_sub_ca_2022.pem",
        include_str!("../../certs/russian_trusted_sub_ca_2022.pem"),
    ),
];

/// Where trust comes from, beyond the bundled CAs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustSettings {
    pub extra_ca_files: Vec<PathBuf>,
    /// Every `*.pem` / `*.crt` file in these folders.
    pub extra_ca_dirs: Vec<PathBuf>,
    pub use_os_roots: bool,
}

/// The one crypto provider chasti uses (ring), passed explicitly so no process-wide
/// default has to be installed.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why a TLS set-up (the CAs chasti trusts, or the certificate it serves) cannot be made.
/// Each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    #[error("cannot read CA folder {path}: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no certificate (expected -----BEGIN CERTIFICATE-----)")]
    NoCertificate { path: String },
    #[error("{path} is not a usable CA certificate: {source}")]
    UnusableCa {
        path: String,
        #[source]
        source: rustls::Error,
    },
    #[error("TLS setup failed: {0}")]
    Setup(#[source] rustls::Error),
    #[error("certificate and key do not make a TLS identity: {0}")]
    Identity(#[source] rustls::Error),
}

/// The DER certificates of the bundled CA files.
pub fn bundled_certificates() -> Result<Vec<(&'static str, CertificateDer<'static>)>, TlsError> {
    let mut out = Vec::new();
    for (name, pem) in BUNDLED_CAS {
        let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Read {
                what: "bundled CA",
                path: name.to_string(),
                source,
            })?;
        for cert in certs {
            out.push((name, cert));
        }
    }
    Ok(out)
}

/// Reads every certificate of one PEM file; a file with none is an error (a wrong path or a
/// key file given by mistake must not pass silently).
pub fn load_pem_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    pem_certificates(path, "CA file")
}

/// Every certificate of a PEM file, at least one.
pub fn pem_certificates(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read = |source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn pem_files_in(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TlsError::Folder {
        path: dir.display().to_string(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("pem") | Some("crt")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The certificates of the configured extra CA files and folders, each with its file.
pub fn configured_certificates(
    settings: &TrustSettings,
) -> Result<Vec<(String, CertificateDer<'static>)>, TlsError> {
    let mut files = settings.extra_ca_files.clone();
    for dir in &settings.extra_ca_dirs {
        files.extend(pem_files_in(dir)?);
    }
    let mut out = Vec::new();
    for file in &files {
        for cert in load_pem_file(file)? {
            out.push((file.display().to_string(), cert));
        }
    }
    Ok(out)
}

/// The anchors: bundled CAs, extra files and folders, and the OS store when asked.
pub fn root_store(settings: &TrustSettings) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for (name, cert) in bundled_certificates()? {
        store.add(cert).map_err(|source| TlsError::UnusableCa {
            path: format!("bundled {name}"),
            source,
        })?;
    }
    let mut files = settings.extra_ca_files.clone();
    for dir in &settings.extra_ca_dirs {
        files.extend(pem_files_in(dir)?);
    }
    for file in &files {
        for cert in load_pem_file(file)? {
            store.add(cert).map_err(|source| TlsError::UnusableCa {
                path: file.display().to_string(),
                source,
            })?;
        }
    }
    if settings.use_os_roots {
        let found = rustls_native_certs::load_native_certs();
        // Unparseable OS certificates are skipped, as every TLS client on the host does.
        let (_added, _ignored) = store.add_parsable_certificates(found.certs);
    }
    Ok(store)
}

/// A rustls client configuration with exactly these anchors.
pub fn client_config(settings: &TrustSettings) -> Result<rustls::ClientConfig, TlsError> {
    let roots = root_store(settings)?;
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Setup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// The start of an HTTP client to a peer that is not the bank (a POS, the ATOL driver, an SMS
/// provider, the addresses `doctor` probes): TLS with `trust`, `timeout` for a whole request,
/// chasti's user agent, and no proxy from the environment. The caller adds what is its own
/// (a connect timeout, a redirect policy) and builds it.
pub fn http_client(
    trust: &TrustSettings,
    timeout: std::time::Duration,
) -> Result<reqwest::ClientBuilder, TlsError> {
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(trust)?)
        .timeout(timeout)
        .user_agent(concat!("chasti/", env!("CARGO_PKG_VERSION")))
        .no_proxy())
}

/// Trust for peers with public certificates as well as chasti's bundled CAs.
pub fn public_trust() -> TrustSettings {
    TrustSettings {
        use_os_roots: true,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// Pinned from ../shared/certs/FINGERPRINTS.md: a swapped or corrupted bundle fails here.
    #[test]
    fn bundled_cas_have_the_published_fingerprints() {
        let expected = [
            (
                "russian_trusted_root_ca.pem",
                "D26D2D0231B7C39F92CC738512BA54103519E4405D68B5BD703E9788CA8ECF31",
            ),
            (
                "russian_trusted_sub_ca_2024.pem",
                "2155785036C900DBB5F1BB2A1569C80C55595BD6BF94867A29BBDDBC7D88A3F2",
            ),
            (
                "russian_trusted_sub_ca_2022.pem",
                "BBBDE2103E790B999EC62BD03CF625A5A2E7C316E10AFE6A490EEDEAD8B3FD9B",
            ),
        ];
        let certs = bundled_certificates().unwrap();
        assert_eq!(certs.len(), 3, "one certificate per bundled file");
        for (name, fingerprint) in expected {
            let (_, der) = certs.iter().find(|(n, _)| *n == name).unwrap();
            let got = hex::encode_upper(Sha256::digest(der.as_ref()));
            assert_eq!(got, fingerprint, "{name}");
        }
    }

    #[test]
    fn bundled_cas_make_a_store() {
        let store = root_store(&TrustSettings::default()).unwrap();
        assert_eq!(store.len(), 3);
    }

    #[test]
    fn a_file_without_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate").unwrap();
        let err = root_store(&TrustSettings {
            extra_ca_files: vec![path],
            ..TrustSettings::default()
        })
        .unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }
}
