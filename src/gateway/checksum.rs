//! The callback checksum from the bank's docs: every parameter but `checksum` and
//! `sign_alias`, sorted by name byte-wise, joined as `name;value;`, then signed.
//! The sandbox signs with it; the daemon's callback intake verifies with it.

use hmac::{Hmac, Mac};
use sha2::Sha256;

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
