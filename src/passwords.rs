//! Per-person passwords for the manager page: argon2id hashes in the config (PHC strings, as
//! `chasti hash-password` prints them), checked with the RustCrypto `argon2` crate. Nothing
//! here keeps or logs a password.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

/// The longest password taken: argon2 takes any length, but a megabyte "password" is an
/// attempt to make each check cost more.
pub const PASSWORD_MAX: usize = 256;
/// The shortest a new password may be.
pub const PASSWORD_MIN: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is shorter than {PASSWORD_MIN} characters")]
    TooShort,
    #[error("the password is longer than {PASSWORD_MAX} bytes")]
    TooLong,
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// The most memory a configured hash may ask of each sign-in (KiB): a hash made elsewhere
/// with, say, 4 GiB would let one sign-in take the till host's memory.
pub const MAX_MEMORY_KIB: u32 = 64 * 1024;
/// The most passes a configured hash may ask for.
pub const MAX_PASSES: u32 = 16;

/// New hashes: argon2id with 7 MiB and 5 passes, one of OWASP's equal-strength settings
/// (beside 19 MiB × 2): the till host keeps less memory after a sign-in for the same cost to
/// a guesser.
const MEMORY_KIB: u32 = 7 * 1024;
const PASSES: u32 = 5;

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(MEMORY_KIB, PASSES, 1, None).map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A hash of a password nobody knows, with the parameters `hash` uses: a sign-in with a name
/// that is nobody's is checked against it, and costs what a known name's check does.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=7168,t=5,p=1$c2FsdHNhbHRzYWx0$qcRMbT0GyEnvKP5rkrrEu3y5r4JY3gC7cvCTyWd6/0I";

/// True when `text` is an argon2 PHC string (`$argon2id$v=19$m=…$salt$hash`) whose cost is
/// within what a sign-in may take (`MAX_MEMORY_KIB`, `MAX_PASSES`, at most 4 lanes).
pub fn is_hash(text: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(text) else {
        return false;
    };
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return false;
    }
    Params::try_from(&parsed)
        .is_ok_and(|p| p.m_cost() <= MAX_MEMORY_KIB && p.t_cost() <= MAX_PASSES && p.p_cost() <= 4)
}

/// A new hash of `password` with a random salt (argon2id, 7 MiB, 5 passes).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > PASSWORD_MAX {
        return Err(PasswordError::TooLong);
    }
    hasher()?
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` is the one `hash` was made from. A hash that does not parse (the config
/// check refuses those) or an over-long password never matches. Costs tens of milliseconds
/// of CPU on purpose: call it off the async threads.
pub fn verify(password: &str, hash: &str) -> bool {
    if password.len() > PASSWORD_MAX {
        return false;
    }
    if !is_hash(hash) {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // The hash's own parameters are used, whatever the verifier was built with.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_no_other() {
        let h = hash("касса-пароль-1").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{h}");
        assert!(is_hash(&h));
        assert!(verify("касса-пароль-1", &h));
        assert!(!verify("касса-пароль-2", &h));
        assert!(!verify(&"x".repeat(PASSWORD_MAX + 1), &h));
        assert_ne!(h, hash("касса-пароль-1").unwrap(), "a fresh salt each time");
    }

    #[test]
    fn the_dummy_hash_costs_what_a_new_hash_costs() {
        let params = |h: &str| {
            let parsed = PasswordHash::new(h).unwrap();
            let p = Params::try_from(&parsed).unwrap();
            (
                parsed.algorithm.as_str().to_string(),
                p.m_cost(),
                p.t_cost(),
                p.p_cost(),
            )
        };
        assert_eq!(params(DUMMY_HASH), params(&hash("any-password-1").unwrap()));
    }

    #[test]
    fn what_is_not_an_argon2_hash_is_refused() {
        assert!(!is_hash("hunter22"));
        assert!(!is_hash(""));
        assert!(!is_hash("$2b$12$abcdefghijklmnopqrstuv"), "bcrypt");
        assert!(!verify("hunter22", "hunter22"));
        assert!(matches!(hash("short"), Err(PasswordError::TooShort)));
        // Well formed, but each sign-in would take 4 GiB.
        assert!(!is_hash("$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0$qcRMbT0GyEnvKP5rkrrEu3y5r4JY3gC7cvCTyWd6/0I"));
    }
}
