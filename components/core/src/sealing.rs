//! Sealing secrets kept at rest: AES-256-GCM (NIST SP 800-38D) with a random 96-bit nonce
//! per seal and the record's own name as associated data, so a sealed value copied under
//! another name does not open.
//!
//! The key comes from `upstream_token_key` when it is set; otherwise one is generated from
//! [`Env::rng`] on first use and kept under [`STORED_KEY`]. Generation is race-safe across
//! hosts without compare-and-swap, as for the signing key ([`crate::keys`]): a
//! [`records::claim`] on a per-minute generation key picks the single writer; the others
//! re-read and, if the winner has not written yet, answer 503 `temporarily_unavailable`.
//!
//! AES-GCM rather than ChaCha20-Poly1305: jwt-simple already links it (through superboring),
//! so it adds no crate, and less code to the `token` and `authorize` components.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::records::{self, Claim};

/// Where a generated key is kept.
pub const STORED_KEY: &str = "keys/upstream-tokens";
/// How often a host that lost the generation claim looks for the winner's key.
const RE_READS: usize = 3;
/// A generation attempt's window, seconds.
const GENERATION_WINDOW: u64 = 60;

/// A sealed value as stored: nonce and ciphertext (with its tag), base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    n: String,
    c: String,
}

/// The key that seals and opens.
pub struct SealingKey(Aes256Gcm);

impl SealingKey {
    pub fn from_bytes(key: &[u8; 32]) -> SealingKey {
        SealingKey(Aes256Gcm::new(key.into()))
    }

    /// Seal `plaintext` for the record named `name`.
    pub fn seal(&self, env: &Env, name: &str, plaintext: &[u8]) -> Result<Sealed, OAuthError> {
        let nonce = env.random_bytes::<12>();
        let payload = Payload {
            msg: plaintext,
            aad: name.as_bytes(),
        };
        let sealed = self
            .0
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| OAuthError::new(ErrorCode::ServerError, "sealing failed"))?;
        Ok(Sealed {
            n: URL_SAFE_NO_PAD.encode(nonce),
            c: URL_SAFE_NO_PAD.encode(sealed),
        })
    }

    /// The plaintext of `sealed` if it was sealed with this key for the record `name`.
    pub fn open(&self, name: &str, sealed: &Sealed) -> Option<Vec<u8>> {
        let nonce: [u8; 12] = URL_SAFE_NO_PAD.decode(&sealed.n).ok()?.try_into().ok()?;
        let ciphertext = URL_SAFE_NO_PAD.decode(&sealed.c).ok()?;
        let payload = Payload {
            msg: &ciphertext,
            aad: name.as_bytes(),
        };
        self.0.decrypt(&Nonce::from(nonce), payload).ok()
    }
}

/// The 32 key bytes of an `upstream_token_key` value (base64url, padding allowed).
pub fn decode_key(value: &str) -> Option<[u8; 32]> {
    let bytes = URL_SAFE_NO_PAD
        .decode(value.trim().trim_end_matches('='))
        .ok()?;
    bytes.try_into().ok()
}

/// The configured key, else the stored one, generated once if there is none.
pub fn key(env: &Env) -> Result<SealingKey, OAuthError> {
    if let Some(configured) = &env.settings.upstream_token_key {
        // Checked when the settings were read.
        let bytes = decode_key(configured.expose()).ok_or_else(|| {
            OAuthError::new(ErrorCode::ServerError, "upstream_token_key is malformed")
        })?;
        return Ok(SealingKey::from_bytes(&bytes));
    }
    if let Some(key) = load_stored(env)? {
        return Ok(key);
    }
    let attempt = format!(
        "keys/upstream-tokens-generation/{}",
        env.now() / GENERATION_WINDOW
    );
    if records::claim(env, &attempt, Claim::Redeem)? {
        // The attempt record only gives its claim counter a lifetime for the sweep.
        records::put(env, &attempt, &(), Some(env.now() + 2 * GENERATION_WINDOW))?;
        let bytes = env.random_bytes::<32>();
        records::put(env, STORED_KEY, &URL_SAFE_NO_PAD.encode(bytes), None)?;
        return Ok(SealingKey::from_bytes(&bytes));
    }
    for _ in 0..RE_READS {
        if let Some(key) = load_stored(env)? {
            return Ok(key);
        }
    }
    Err(OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "the key for upstream tokens is being generated; retry shortly",
    )
    .with_header("retry-after", "1"))
}

fn load_stored(env: &Env) -> Result<Option<SealingKey>, OAuthError> {
    let Some(stored) = records::get::<String>(env, STORED_KEY)? else {
        return Ok(None);
    };
    let bytes = decode_key(&stored).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::ServerError,
            format!("the stored key `{STORED_KEY}` is unreadable"),
        )
    })?;
    Ok(Some(SealingKey::from_bytes(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    #[test]
    fn a_sealed_value_opens_only_under_its_own_name_and_key() {
        let h = Harness::new();
        let env = h.env();
        let key = SealingKey::from_bytes(&[7; 32]);
        let sealed = key.seal(&env, "upstream/f1", b"secret").unwrap();
        assert_eq!(key.open("upstream/f1", &sealed).unwrap(), b"secret");
        assert_eq!(key.open("upstream/f2", &sealed), None);
        assert_eq!(
            SealingKey::from_bytes(&[8; 32]).open("upstream/f1", &sealed),
            None
        );
        // A fresh nonce every time.
        assert_ne!(key.seal(&env, "upstream/f1", b"secret").unwrap(), sealed);
    }

    #[test]
    fn a_generated_key_is_generated_once_and_kept() {
        let h = Harness::new();
        let env = h.env();
        let sealed = key(&env).unwrap().seal(&env, "n", b"v").unwrap();
        env.flush().unwrap();
        let stored = h.store.snapshot()[STORED_KEY].clone();
        assert_eq!(key(&h.env()).unwrap().open("n", &sealed).unwrap(), b"v");
        assert_eq!(h.store.snapshot()[STORED_KEY], stored);
    }

    #[test]
    fn keys_are_32_bytes_of_base64url() {
        assert_eq!(decode_key(&URL_SAFE_NO_PAD.encode([1; 32])), Some([1; 32]));
        assert_eq!(
            decode_key(&format!("{}=", URL_SAFE_NO_PAD.encode([1; 32]))),
            Some([1; 32])
        );
        assert_eq!(decode_key(&URL_SAFE_NO_PAD.encode([1; 31])), None);
        assert_eq!(decode_key("not base64!"), None);
    }
}
