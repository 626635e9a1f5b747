//! API keys and passwords: generation, hashing, verification.
//!
//! API keys carry 190 bits from the OS generator, so a fast hash (SHA-256) is enough to store
//! them and allows lookup by hash. Passwords are hashed with Argon2id.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use goterra_core::Sensitive;
use rand::Rng;
use sha2::{Digest, Sha256};

const API_KEY_LEN: usize = 32;
const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 1024;
pub const MIN_API_KEY_LEN: usize = 16;

/// A new API key: 32 characters of `[0-9A-Za-z]` from the OS CSPRNG (about 190 bits).
pub fn new_api_key() -> Sensitive<String> {
    let mut rng = rand::rngs::OsRng;
    let key: String = (0..API_KEY_LEN)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    Sensitive::new(key)
}

/// What the database stores for an API key.
pub fn api_key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| anyhow::anyhow!("cannot hash password: {err}"))
}

/// Checks a password against a stored hash. Without a stored hash (accounts created by an
/// identity provider) nothing matches, but the work is still done so that timing does not
/// tell which uids exist.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    let parsed = stored.and_then(|hash| PasswordHash::new(hash).ok());
    match parsed {
        Some(hash) => Argon2::default().verify_password(password.as_bytes(), &hash).is_ok(),
        None => {
            let _ = hash_password(password);
            false
        }
    }
}

pub fn check_password_policy(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(format!("password: must be at least {MIN_PASSWORD_LEN} characters"));
    }
    if len > MAX_PASSWORD_LEN {
        return Err(format!("password: must be at most {MAX_PASSWORD_LEN} characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_long_random_and_distinct() {
        let a = new_api_key();
        let b = new_api_key();
        assert_eq!(a.expose().len(), API_KEY_LEN);
        assert_ne!(a.expose(), b.expose());
        assert!(a.expose().chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn passwords_round_trip_and_unknown_hashes_never_match() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("anything", None));
        assert!(!verify_password("anything", Some("not a hash")));
    }
}
