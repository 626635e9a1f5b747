//! Fernet (version 0x80: AES-128-CBC then HMAC-SHA256, URL-safe base64), done with the key
//! work kept between calls.
//!
//! The `fernet` crate re-derives the HMAC key and the AES key schedule on every call, decodes
//! the token into fresh vectors and reads the OS random generator (a system call) for each IV:
//! that was most of the 4.6 µs a token cost. Here the keyed HMAC state and both AES key
//! schedules are built once per secret, a token is base64-decoded once into one buffer and
//! decrypted in place, and IVs come from the thread-local CSPRNG (`rand::thread_rng`, ChaCha
//! seeded from the OS). The format is byte for byte the one of the `fernet` crate and of the
//! original services; tests check both directions against the crate.

use aes::Aes128;
use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit};
use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const VERSION: u8 = 0x80;
const HEADER_LEN: usize = 1 + 8 + 16;
const MAC_LEN: usize = 32;
const BLOCK: usize = 16;

/// One fernet key, ready to seal and open tokens.
#[derive(Clone)]
pub struct FernetKey {
    /// HMAC-SHA256 keyed with the signing half: cloning it skips the key's two compressions.
    mac: Hmac<Sha256>,
    cipher: Aes128,
}

/// A token that opened: its issue time and plaintext.
pub struct Opened {
    pub issued_at: u64,
    pub plaintext: Vec<u8>,
}

impl FernetKey {
    /// From the URL-safe base64 of 32 bytes (signing key, then encryption key), as the
    /// `fernet` crate takes it.
    pub fn new(key: &str) -> Option<Self> {
        let bytes = URL_SAFE.decode(key).ok()?;
        if bytes.len() != 32 {
            return None;
        }
        let (signing, encryption) = bytes.split_at(16);
        Some(Self {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(signing).ok()?,
            cipher: Aes128::new_from_slice(encryption).ok()?,
        })
    }

    /// A token of `plaintext` stamped `issued_at`, with a fresh random IV.
    pub fn seal(&self, plaintext: &[u8], issued_at: u64) -> String {
        let mut iv = [0u8; BLOCK];
        rand::thread_rng().fill_bytes(&mut iv);
        self.seal_with_iv(plaintext, issued_at, &iv)
    }

    fn seal_with_iv(&self, plaintext: &[u8], issued_at: u64, iv: &[u8; BLOCK]) -> String {
        let padded_len = (plaintext.len() / BLOCK + 1) * BLOCK;
        let mut token = Vec::with_capacity(HEADER_LEN + padded_len + MAC_LEN);
        token.push(VERSION);
        token.extend_from_slice(&issued_at.to_be_bytes());
        token.extend_from_slice(iv);
        token.extend_from_slice(plaintext);
        token.resize(HEADER_LEN + padded_len, 0);
        let encryptor = cbc::Encryptor::<Aes128>::inner_iv_init(self.cipher.clone(), iv.into());
        let encrypted = encryptor
            .encrypt_padded_mut::<Pkcs7>(&mut token[HEADER_LEN..], plaintext.len())
            .map(<[u8]>::len);
        debug_assert!(
            matches!(encrypted, Ok(len) if len == padded_len),
            "the buffer holds the padding"
        );
        let mut mac = self.mac.clone();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes());
        URL_SAFE.encode(&token)
    }

    /// The issue time written in a token, without checking anything else (cheap: decodes
    /// only the first 12 characters).
    pub fn issued_at(token: &str) -> Option<u64> {
        let head = URL_SAFE_NO_PAD.decode(token.get(..12)?).ok()?;
        if head.first() != Some(&VERSION) {
            return None;
        }
        let stamp: [u8; 8] = head.get(1..9)?.try_into().ok()?;
        Some(u64::from_be_bytes(stamp))
    }

    /// The issue time and plaintext of a token sealed with this key, or `None` when the token
    /// is malformed or its MAC does not match. Time checks are the caller's.
    pub fn open(&self, token: &str) -> Option<Opened> {
        let mut bytes = URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()?;
        self.open_decoded(&mut bytes)
    }

    /// [`Self::open`] on an already decoded token (several keys try one decoding).
    pub fn open_decoded(&self, bytes: &mut [u8]) -> Option<Opened> {
        if bytes.len() < HEADER_LEN + BLOCK + MAC_LEN
            || bytes[0] != VERSION
            || !(bytes.len() - HEADER_LEN - MAC_LEN).is_multiple_of(BLOCK)
        {
            return None;
        }
        let (signed, tag) = bytes.split_at_mut(bytes.len() - MAC_LEN);
        let mut mac = self.mac.clone();
        mac.update(signed);
        // Constant-time comparison (hmac's verify_slice).
        mac.verify_slice(tag).ok()?;
        let stamp: [u8; 8] = signed.get(1..9)?.try_into().ok()?;
        let (header, ciphertext) = signed.split_at_mut(HEADER_LEN);
        let iv: [u8; BLOCK] = header.get(9..HEADER_LEN)?.try_into().ok()?;
        let decryptor = cbc::Decryptor::<Aes128>::inner_iv_init(self.cipher.clone(), (&iv).into());
        let plaintext = decryptor.decrypt_padded_mut::<Pkcs7>(ciphertext).ok()?;
        Some(Opened {
            issued_at: u64::from_be_bytes(stamp),
            plaintext: plaintext.to_vec(),
        })
    }
}

/// Decodes a token for [`FernetKey::open_decoded`].
pub fn decode(token: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(token.trim_end_matches('=')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

    #[test]
    fn tokens_of_the_fernet_crate_open_and_ours_open_there() {
        let theirs = fernet::Fernet::new(KEY).unwrap();
        let ours = FernetKey::new(KEY).unwrap();
        for plaintext in [&b""[..], b"x", b"exactly sixteen!", br#"{"uid":"alice","admin":false}"#] {
            let token = theirs.encrypt_at_time(plaintext, 1_700_000_000);
            let opened = ours.open(&token).unwrap();
            assert_eq!(opened.plaintext, plaintext);
            assert_eq!(opened.issued_at, 1_700_000_000);
            assert_eq!(FernetKey::issued_at(&token), Some(1_700_000_000));

            let token = ours.seal(plaintext, 1_700_000_000);
            assert_eq!(theirs.decrypt_at_time(&token, None, 1_700_000_000).unwrap(), plaintext);
        }
    }

    #[test]
    fn same_iv_gives_the_crate_s_bytes() {
        // The crate's own test vector (from the fernet specification).
        let key = FernetKey::new(KEY).unwrap();
        let iv: [u8; 16] = (0..16).collect::<Vec<u8>>().try_into().unwrap();
        assert_eq!(
            key.seal_with_iv(b"hello", 499_162_800, &iv),
            "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA=="
        );
    }

    #[test]
    fn tampered_truncated_or_foreign_tokens_do_not_open() {
        let key = FernetKey::new(KEY).unwrap();
        let other = FernetKey::new(&URL_SAFE.encode([7u8; 32])).unwrap();
        let token = key.seal(b"payload", 1);
        assert!(other.open(&token).is_none());
        let mut bytes = decode(&token).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        assert!(key.open_decoded(&mut bytes).is_none());
        for cut in [0, 1, 10, 57, token.len() - 4] {
            assert!(key.open(&token[..cut]).is_none(), "{cut}");
        }
        assert!(FernetKey::new("too short").is_none());
    }
}
