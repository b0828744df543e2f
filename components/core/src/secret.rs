//! Secrets: random opaque tokens, their at-rest hashes, and constant-time comparison.
//!
//! Codes, refresh tokens, client secrets, registration access tokens and device codes are
//! 256-bit random values sent to their holder once; the store keeps only their SHA-256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::env::Env;

/// A secret value. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// A fresh 256-bit secret, base64url without padding (43 characters).
    pub fn generate(env: &Env) -> Secret {
        Secret(URL_SAFE_NO_PAD.encode(env.random_bytes::<32>()))
    }

    /// The value, for sending to its holder exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The at-rest form: lowercase hex SHA-256. Used as (part of) store keys.
    pub fn hash(&self) -> String {
        hash(&self.0)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Lowercase hex SHA-256 of `value`.
pub fn hash(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

/// SHA-256 of `value`, base64url without padding (PKCE S256, RFC 7636 §4.2).
pub fn sha256_b64url(value: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value))
}

/// Compare two strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Does `presented` hash to `stored_hash`? Constant time in the hash comparison.
pub fn verify_hash(presented: &str, stored_hash: &str) -> bool {
    constant_time_eq(&hash(presented), stored_hash)
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(verify_hash("abc", &hash("abc")));
        assert!(!verify_hash("abd", &hash("abc")));
    }
}
