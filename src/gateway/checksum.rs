//! The callback checksum from the bank's docs: every parameter but `checksum` and
//! `sign_alias`, sorted by name byte-wise, joined as `name;value;`, then signed.
//! The sandbox signs with it; the daemon's callback intake verifies with it.

use hmac::{Hmac, Mac};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use sha2::{Sha256, Sha512};
use x509_cert::der::{Decode, Encode};

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

/// The bank's public key for asymmetric callback signatures.
///
/// RSA verification uses the `rsa` crate: ring and webpki refuse keys under 2048 bits, and the
/// bank's documented example key is 1024-bit. Only public-key verification is done here, which
/// the crate's known timing issue (private-key operations) does not touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackPublicKey(RsaPublicKey);

impl CallbackPublicKey {
    /// From a `-----BEGIN PUBLIC KEY-----` or a `-----BEGIN CERTIFICATE-----` PEM text (the
    /// bank hands out either). A certificate's dates are not checked: the bank's own example
    /// certificate expired in 2018 and still signs valid callbacks.
    pub fn from_pem(text: &str) -> Result<CallbackPublicKey, String> {
        if text.contains("BEGIN CERTIFICATE") {
            use rustls_pki_types::pem::PemObject;
            let der = rustls_pki_types::CertificateDer::from_pem_slice(text.as_bytes())
                .map_err(|e| format!("the certificate PEM is unreadable: {e}"))?;
            return CallbackPublicKey::from_certificate_der(der.as_ref());
        }
        RsaPublicKey::from_public_key_pem(text.trim())
            .map(CallbackPublicKey)
            .map_err(|e| format!("not an RSA public key PEM: {e}"))
    }

    pub fn from_certificate_der(der: &[u8]) -> Result<CallbackPublicKey, String> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| format!("the certificate's key is unreadable: {e}"))?;
        RsaPublicKey::from_public_key_der(&spki)
            .map(CallbackPublicKey)
            .map_err(|e| format!("the certificate does not hold an RSA key: {e}"))
    }
}

/// Checks an RSA PKCS#1 v1.5 signature with SHA-512 over the signed string (the bank's
/// asymmetric checksum; only SHA-512 verifies, whatever `sign_alias` says).
pub fn verify_rsa_sha512<'a>(
    key: &CallbackPublicKey,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    received: &str,
) -> bool {
    let Ok(bytes) = hex::decode(received.trim()) else {
        return false;
    };
    let Ok(signature) = Signature::try_from(bytes.as_slice()) else {
        return false;
    };
    VerifyingKey::<Sha512>::new(key.0.clone())
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
