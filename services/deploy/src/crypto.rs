//! Encryption at rest of endpoint passwords (and, later, sensitive run inputs).
//!
//! Current format: base64( 0x01 ‖ nonce(12) ‖ AES-256-GCM ciphertext‖tag ), key derived with
//! HKDF-SHA256 from `secrets_key` (GOT_SECRETS_KEY) or, when unset, from the first token secret
//! with a different `info` string, so the two sources never yield the same key. The leading
//! version byte lets a later key or algorithm coexist with records written under this one.
//!
//! The original service's format is still read, for migrated data: base64( nonce(12) ‖
//! ciphertext‖tag ) keyed by the 32 ASCII characters of hex(MD5(token secret)). It has no
//! version byte, so a record starting with 0x01 is tried as current first and as original
//! second; GCM's tag makes a wrong guess fail instead of yielding garbage.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use goterra_core::{Config, Sensitive};
use hkdf::Hkdf;
use md5::{Digest, Md5};
use rand::RngCore;
use sha2::Sha256;

const VERSION_1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const INFO_DEDICATED: &[u8] = b"goterra/deploy/secrets/v1";
const INFO_FROM_TOKEN_SECRET: &[u8] = b"goterra/deploy/secrets-from-token-secret/v1";

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("no key to encrypt secrets: set GOT_SECRETS_KEY or GOT_SECRET")]
    NoKey,
    #[error("stored secret is not valid base64")]
    Encoding,
    #[error("stored secret cannot be decrypted with the configured keys")]
    Undecryptable,
}

/// Encrypts and decrypts small secrets with the platform's keys.
pub struct SecretBox {
    current: Aes256Gcm,
    /// Keys of the original format, one per configured token secret (rotation-friendly).
    original: Vec<Aes256Gcm>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox").finish_non_exhaustive()
    }
}

impl SecretBox {
    pub fn from_config(config: &Config) -> Result<Self, CryptoError> {
        Self::new(config.secrets_key.as_ref(), &config.fernet)
    }

    /// `dedicated` is GOT_SECRETS_KEY; `token_secrets` the fernet secrets (first one first).
    pub fn new(
        dedicated: Option<&Sensitive<String>>,
        token_secrets: &[Sensitive<String>],
    ) -> Result<Self, CryptoError> {
        let (material, info) = match dedicated.filter(|key| !key.expose().is_empty()) {
            Some(key) => (key.expose().as_bytes(), INFO_DEDICATED),
            None => (
                token_secrets.first().ok_or(CryptoError::NoKey)?.expose().as_bytes(),
                INFO_FROM_TOKEN_SECRET,
            ),
        };
        let mut key = [0u8; 32];
        Hkdf::<Sha256>::new(None, material)
            .expand(info, &mut key)
            .map_err(|_| CryptoError::NoKey)?;
        let current = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&key));
        let original = token_secrets
            .iter()
            .map(|secret| original_cipher(secret.expose()))
            .collect();
        Ok(Self { current, original })
    }

    /// Encrypts `plaintext` in the current format.
    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .current
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption fails only past 64 GiB"));
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION_1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    /// Decrypts a record of the current or of the original format.
    pub fn decrypt(&self, stored: &str) -> Result<Sensitive<Vec<u8>>, CryptoError> {
        let data = STANDARD.decode(stored.trim()).map_err(|_| CryptoError::Encoding)?;
        if data.first() == Some(&VERSION_1)
            && data.len() >= 1 + NONCE_LEN + TAG_LEN
            && let Some(plain) = open(&self.current, &data[1..])
        {
            return Ok(Sensitive::new(plain));
        }
        if data.len() >= NONCE_LEN + TAG_LEN {
            for cipher in &self.original {
                if let Some(plain) = open(cipher, &data) {
                    return Ok(Sensitive::new(plain));
                }
            }
        }
        Err(CryptoError::Undecryptable)
    }
}

fn open(cipher: &Aes256Gcm, nonce_and_sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, sealed) = nonce_and_sealed.split_at_checked(NONCE_LEN)?;
    cipher.decrypt(Nonce::from_slice(nonce), sealed).ok()
}

/// The original's key: the lowercase hex MD5 of the secret, its 32 ASCII bytes used as is.
fn original_cipher(secret: &str) -> Aes256Gcm {
    let hex_digest = hex::encode(Md5::digest(secret.as_bytes()));
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(hex_digest.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[&str]) -> Vec<Sensitive<String>> {
        values.iter().map(|v| Sensitive::new((*v).to_string())).collect()
    }

    /// Encrypts as the original Go service did.
    fn original_encrypt(secret: &str, plaintext: &[u8]) -> String {
        let nonce = [7u8; NONCE_LEN];
        let sealed = original_cipher(secret)
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap();
        STANDARD.encode([nonce.as_slice(), &sealed].concat())
    }

    #[test]
    fn round_trip_and_version_byte() {
        let sealed = SecretBox::new(None, &secrets(&["token-secret"])).unwrap();
        let stored = sealed.encrypt(b"hunter2");
        assert_eq!(STANDARD.decode(&stored).unwrap()[0], VERSION_1);
        assert!(!stored.contains("hunter2"));
        assert_eq!(sealed.decrypt(&stored).unwrap().expose(), b"hunter2");
        assert_ne!(sealed.encrypt(b"hunter2"), stored, "a fresh nonce each time");
    }

    #[test]
    fn dedicated_key_differs_from_token_secret_key() {
        let tokens = secrets(&["same"]);
        let dedicated = Sensitive::new("same".to_string());
        let with_dedicated = SecretBox::new(Some(&dedicated), &tokens).unwrap();
        let without = SecretBox::new(None, &tokens).unwrap();
        let stored = with_dedicated.encrypt(b"x");
        assert!(
            without.decrypt(&stored).is_err(),
            "distinct HKDF info strings give distinct keys"
        );
    }

    #[test]
    fn reads_the_original_format_with_any_token_secret() {
        let stored = original_encrypt("0123456789", b"cloud-password");
        let current = SecretBox::new(None, &secrets(&["new-secret", "0123456789"])).unwrap();
        assert_eq!(current.decrypt(&stored).unwrap().expose(), b"cloud-password");
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let sealed = SecretBox::new(None, &secrets(&["s"])).unwrap();
        for bad in ["", "%%%", "AQ==", &STANDARD.encode([1u8; 40])] {
            assert!(sealed.decrypt(bad).is_err(), "{bad}");
        }
        let other = SecretBox::new(None, &secrets(&["other"])).unwrap();
        assert!(other.decrypt(&sealed.encrypt(b"x")).is_err());
    }

    #[test]
    fn no_key_is_an_error() {
        assert!(matches!(SecretBox::new(None, &[]), Err(CryptoError::NoKey)));
    }
}
