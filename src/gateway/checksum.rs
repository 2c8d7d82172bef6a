//! The callback checksum from the bank's docs: every parameter but `checksum` and
//! `sign_alias`, sorted by name byte-wise, joined as `name;value;`, then signed.
//! The sandbox signs with it; the daemon's callback intake verifies with it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use x509_cert::der::asn1::UintRef;
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};

type HmacSha256 = Hmac<Sha256>;

/// Parameters that are never part of the signed string.
const UNSIGNED: [&str; 2] = ["checksum", "sign_alias"];

/// The string the bank signs, e.g. `mdOrder;…;operation;approved;orderNumber;2003;status;1;`.
pub fn signed_string<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut signed: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(name, _)| !UNSIGNED.contains(name))
        .collect();
    // Byte-wise on the name; values break ties so the result never depends on arrival order.
    signed.sort_unstable();
    let mut out = String::new();
    for (name, value) in signed {
        out.push_str(name);
        out.push(';');
        out.push_str(value);
        out.push(';');
    }
    out
}

/// HMAC-SHA256 of the signed string, hex, upper case: what the bank puts in `checksum`.
pub fn hmac_sha256_checksum<'a>(
    key: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut mac =
        HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(signed_string(params).as_bytes());
    hex::encode_upper(mac.finalize().into_bytes())
}

/// Checks a received checksum in constant time; case-insensitive on the received hex.
pub fn verify_hmac_sha256<'a>(
    key: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    received: &str,
) -> bool {
    let Ok(received) = hex::decode(received.trim()) else {
        return false;
    };
    let mut mac =
        HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(signed_string(params).as_bytes());
    mac.verify_slice(&received).is_ok()
}

/// The bank's public key for asymmetric callback signatures: an RSA key, kept as its PKCS#1
/// `RSAPublicKey` DER, which is what ring verifies with.
///
/// Verified with ring (already here for TLS) rather than the `rsa` crate (RUSTSEC-2023-0071):
/// ring's `RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY`, because the bank's documented
/// example key is 1024-bit and its default verifiers start at 2048.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackPublicKey {
    pkcs1: Vec<u8>,
    bits: usize,
}

impl std::fmt::Debug for CallbackPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CallbackPublicKey(RSA, {} bits)", self.bits)
    }
}

/// Why a PEM or certificate gives no key to verify callbacks with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    #[error("the certificate PEM is unreadable: {0}")]
    CertificatePem(String),
    #[error("not an X.509 certificate: {0}")]
    Certificate(String),
    #[error("not a public key PEM (-----BEGIN PUBLIC KEY-----): {0}")]
    PublicKeyPem(String),
    #[error("not a SubjectPublicKeyInfo: {0}")]
    Spki(String),
    #[error("the key is not RSA (algorithm {0})")]
    NotRsa(String),
    #[error("the RSA key is unreadable: {0}")]
    Rsa(String),
    #[error("an RSA key of {0} bits; allowed: 1024 to 8192")]
    Size(usize),
}

/// rsaEncryption (PKCS #1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

impl CallbackPublicKey {
    /// From a `-----BEGIN PUBLIC KEY-----` or a `-----BEGIN CERTIFICATE-----` PEM text (the
    /// bank hands out either). A certificate's dates are not checked: the bank's own example
    /// certificate expired in 2018 and still signs valid callbacks.
    pub fn from_pem(text: &str) -> Result<CallbackPublicKey, PublicKeyError> {
        use rustls_pki_types::pem::PemObject;
        if text.contains("BEGIN CERTIFICATE") {
            let der = rustls_pki_types::CertificateDer::from_pem_slice(text.as_bytes())
                .map_err(|e| PublicKeyError::CertificatePem(e.to_string()))?;
            return CallbackPublicKey::from_certificate_der(der.as_ref());
        }
        let der = rustls_pki_types::SubjectPublicKeyInfoDer::from_pem_slice(text.trim().as_bytes())
            .map_err(|e| PublicKeyError::PublicKeyPem(e.to_string()))?;
        let spki = SubjectPublicKeyInfoOwned::from_der(der.as_ref())
            .map_err(|e| PublicKeyError::Spki(e.to_string()))?;
        CallbackPublicKey::from_spki(&spki)
    }

    pub fn from_certificate_der(der: &[u8]) -> Result<CallbackPublicKey, PublicKeyError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| PublicKeyError::Certificate(e.to_string()))?;
        CallbackPublicKey::from_spki(&cert.tbs_certificate.subject_public_key_info)
    }

    fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<CallbackPublicKey, PublicKeyError> {
        if spki.algorithm.oid != RSA_ENCRYPTION {
            return Err(PublicKeyError::NotRsa(spki.algorithm.oid.to_string()));
        }
        let pkcs1 = spki.subject_public_key.raw_bytes().to_vec();
        // ring checks the key only when it verifies: read it now (modulus and exponent), so
        // a bad key fails the config check, not the first callback.
        let mut reader =
            SliceReader::new(&pkcs1).map_err(|e| PublicKeyError::Rsa(e.to_string()))?;
        let bits = reader
            .sequence(|r| {
                let modulus = UintRef::decode(r)?;
                let _exponent = UintRef::decode(r)?;
                let bytes = modulus.as_bytes();
                let top = bytes.first().map_or(0, |b| 8 - b.leading_zeros() as usize);
                Ok(bytes.len().saturating_sub(1) * 8 + top)
            })
            .map_err(|e| PublicKeyError::Rsa(e.to_string()))?;
        reader
            .finish(())
            .map_err(|e| PublicKeyError::Rsa(e.to_string()))?;
        if !(1024..=8192).contains(&bits) {
            return Err(PublicKeyError::Size(bits));
        }
        Ok(CallbackPublicKey { pkcs1, bits })
    }
}

/// Checks an RSA PKCS#1 v1.5 signature with SHA-512 over the signed string (the bank's
/// asymmetric checksum; only SHA-512 verifies, whatever `sign_alias` says).
pub fn verify_rsa_sha512<'a>(
    key: &CallbackPublicKey,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    received: &str,
) -> bool {
    use ring::signature::{UnparsedPublicKey, RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY};
    let Ok(signature) = hex::decode(received.trim()) else {
        return false;
    };
    UnparsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY, &key.pkcs1)
        .verify(signed_string(params).as_bytes(), &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_string_sorts_and_drops_unsigned_fields() {
        let params = [
            ("status", "1"),
            ("sign_alias", "SHA-256 with RSA"),
            ("mdOrder", "m"),
            ("checksum", "X"),
            ("amount", "5"),
        ];
        assert_eq!(signed_string(params), "amount;5;mdOrder;m;status;1;");
    }

    #[test]
    fn a_changed_value_fails_verification() {
        let params = [("mdOrder", "a"), ("status", "1")];
        let sum = hmac_sha256_checksum("key", params);
        assert!(verify_hmac_sha256("key", params, &sum));
        assert!(verify_hmac_sha256("key", params, &sum.to_lowercase()));
        assert!(!verify_hmac_sha256(
            "key",
            [("mdOrder", "a"), ("status", "0")],
            &sum
        ));
        assert!(!verify_hmac_sha256("other", params, &sum));
        assert!(!verify_hmac_sha256("key", params, "not hex"));
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use x509_cert::der::asn1::BitString;
    use x509_cert::der::Encode;
    use x509_cert::spki::AlgorithmIdentifierOwned;

    /// A SubjectPublicKeyInfo PEM of an RSA key with this modulus (exponent 65537).
    fn rsa_spki_pem(modulus: &[u8]) -> String {
        let mut n = vec![0x02];
        let body_len = modulus.len() + 1;
        if body_len < 128 {
            n.push(body_len as u8);
        } else {
            n.extend([0x81, body_len as u8]);
        }
        n.push(0);
        n.extend_from_slice(modulus);
        let mut seq_body = n;
        seq_body.extend([0x02, 0x03, 0x01, 0x00, 0x01]);
        let mut pkcs1 = vec![0x30];
        if seq_body.len() < 128 {
            pkcs1.push(seq_body.len() as u8);
        } else {
            pkcs1.extend([0x81, seq_body.len() as u8]);
        }
        pkcs1.extend(seq_body);
        let spki = SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(x509_cert::der::asn1::Null.into()),
            },
            subject_public_key: BitString::from_bytes(&pkcs1).unwrap(),
        };
        let der = spki.to_der().unwrap();
        let b64 = base64_encode(&der);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
    }

    fn base64_encode(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn an_rsa_key_is_read_with_its_size_and_a_small_one_refused() {
        let key = CallbackPublicKey::from_pem(&rsa_spki_pem(&[0xC5; 128])).unwrap();
        assert_eq!(format!("{key:?}"), "CallbackPublicKey(RSA, 1024 bits)");
        assert_eq!(
            CallbackPublicKey::from_pem(&rsa_spki_pem(&[0xC5; 64])),
            Err(PublicKeyError::Size(512))
        );
        assert!(matches!(
            CallbackPublicKey::from_pem(
                "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----"
            ),
            Err(PublicKeyError::PublicKeyPem(_) | PublicKeyError::Spki(_))
        ));
        // A signature that is not hex, or not the key's, never verifies.
        assert!(!verify_rsa_sha512(&key, [("a", "1")], "zz"));
        assert!(!verify_rsa_sha512(&key, [("a", "1")], &"00".repeat(128)));
    }

    #[test]
    fn a_key_that_is_not_rsa_is_named() {
        let ec = rcgen::KeyPair::generate().unwrap();
        let pem = ec.public_key_pem();
        assert!(matches!(
            CallbackPublicKey::from_pem(&pem),
            Err(PublicKeyError::NotRsa(oid)) if oid == "1.2.840.10045.2.1"
        ));
    }
}
