//! Signing keys for access tokens (RFC 9068) and the JWKS document that publishes them
//! (RFC 7517 §5).
//!
//! Keys come from `signing_keys` (base64url raw private keys: a 32-byte P-256 scalar for
//! ES256, a 32-byte Ed25519 seed for EdDSA; the first signs, all are published). Without
//! configured keys one key is generated from [`Env::rng`] on first use and kept under
//! [`STORED_KEY`] as raw bytes, which load without any PEM/DER parsing.
//!
//! Generation is race-safe across hosts without compare-and-swap: a [`records::claim`] on a
//! per-minute generation key picks the single writer; the others re-read the stored key and,
//! if the winner has not written it yet, answer 503 `temporarily_unavailable` (the client
//! retries). Should a winner die between its claim and its write, the next minute's claim
//! lets another host try.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair, ES256PublicKey, Ed25519KeyPair,
    Ed25519PublicKey, EdDSAKeyPairLike, EdDSAPublicKeyLike, HeaderOptions, JWTClaims,
    VerificationOptions,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Request, Response};
use crate::records::{self, Claim};
use crate::settings::SigningAlgorithm;

/// Where a generated key is kept.
pub const STORED_KEY: &str = "keys/signing";
/// How often a host that lost the generation claim looks for the winner's key.
const RE_READS: usize = 3;
/// A generation attempt's window, seconds.
const GENERATION_WINDOW: u64 = 60;
/// The `typ` of access tokens (RFC 9068 §2.1).
const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// `GET /jwks`: every published public key (RFC 7517 §5), cacheable for five minutes.
pub fn jwks(env: &Env, req: &Request) -> Response {
    if !matches!(req.method, Method::Get | Method::Head) {
        return OAuthError::new(ErrorCode::MethodNotAllowed, "use GET")
            .with_header("allow", "GET, HEAD")
            .into_response();
    }
    match published_keys(env) {
        Ok(keys) => {
            let keys: Vec<serde_json::Value> = keys.iter().map(PublicKey::to_jwk).collect();
            Response::json(200, &serde_json::json!({ "keys": keys }))
                .with_header("cache-control", "public, max-age=300")
        }
        Err(err) => err.into_response(),
    }
}

/// Builds what signing and deriving ES256 keys needs in every instance: p256 computes its
/// table of multiples of the base point (tens of KiB, most of the CPU of a `/token` request in a
/// fresh instance) on first use. Called by a host that pre-initializes components, so that every
/// instance starts with the table already in memory; calling it again costs nothing.
pub fn precompute() {
    // Any valid scalar: deriving its public key multiplies the base point.
    let _ = ES256KeyPair::from_bytes(&[1; 32]);
}

/// The key that signs new access tokens.
pub fn signing_key(env: &Env) -> Result<SigningKey, OAuthError> {
    match env.settings.signing_keys.first() {
        Some(configured) => SigningKey::from_config(configured, env.settings.signing_algorithm),
        None => stored_or_generated(env),
    }
}

/// Every key a token of ours may be signed with: all configured keys, or the stored one.
pub fn published_keys(env: &Env) -> Result<Vec<PublicKey>, OAuthError> {
    if env.settings.signing_keys.is_empty() {
        return Ok(vec![stored_or_generated(env)?.public_key()]);
    }
    env.settings
        .signing_keys
        .iter()
        .map(|k| SigningKey::from_config(k, env.settings.signing_algorithm).map(|k| k.public_key()))
        .collect()
}

/// A private key with its `kid` (the RFC 7638 JWK thumbprint of its public key).
pub struct SigningKey {
    kid: String,
    pair: KeyPair,
}

enum KeyPair {
    Es256(ES256KeyPair),
    EdDsa(Ed25519KeyPair),
}

impl SigningKey {
    /// A key from its raw 32 bytes: a P-256 scalar (ES256) or an Ed25519 seed (EdDSA).
    pub fn from_raw(raw: &[u8], algorithm: SigningAlgorithm) -> Option<SigningKey> {
        let (kid, pair) = match algorithm {
            SigningAlgorithm::Es256 => {
                let pair = ES256KeyPair::from_bytes(raw).ok()?;
                (pair.jwk_thumbprint(), KeyPair::Es256(pair))
            }
            SigningAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_der(&ed25519_pkcs8(raw)?).ok()?;
                (pair.jwk_thumbprint(), KeyPair::EdDsa(pair))
            }
        };
        let pair = match pair {
            KeyPair::Es256(p) => KeyPair::Es256(p.with_key_id(&kid)),
            KeyPair::EdDsa(p) => KeyPair::EdDsa(p.with_key_id(&kid)),
        };
        Some(SigningKey { kid, pair })
    }

    fn from_config(encoded: &str, algorithm: SigningAlgorithm) -> Result<SigningKey, OAuthError> {
        URL_SAFE_NO_PAD
            .decode(encoded.trim().trim_end_matches('='))
            .ok()
            .and_then(|raw| SigningKey::from_raw(&raw, algorithm))
            .ok_or_else(|| {
                OAuthError::new(
                    ErrorCode::ServerError,
                    format!(
                        "configuration variable `signing_keys` holds a value that is not a \
                         base64url 32-byte {} private key",
                        algorithm.as_str()
                    ),
                )
            })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        match self.pair {
            KeyPair::Es256(_) => SigningAlgorithm::Es256,
            KeyPair::EdDsa(_) => SigningAlgorithm::EdDsa,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        let key = match &self.pair {
            KeyPair::Es256(p) => PublicKeyKind::Es256(p.public_key().with_key_id(&self.kid)),
            KeyPair::EdDsa(p) => PublicKeyKind::EdDsa(p.public_key().with_key_id(&self.kid)),
        };
        PublicKey { key }
    }

    /// Sign `claims` as an access token: header `typ: at+jwt`, `kid`, `alg` (RFC 9068 §2.1).
    pub fn sign_access_token<C: Serialize>(
        &self,
        claims: JWTClaims<C>,
    ) -> Result<String, OAuthError> {
        let options = HeaderOptions {
            signature_type: Some(ACCESS_TOKEN_TYPE.into()),
            ..HeaderOptions::default()
        };
        match &self.pair {
            KeyPair::Es256(p) => p.sign_with_options(claims, &options),
            KeyPair::EdDsa(p) => p.sign_with_options(claims, &options),
        }
        .map_err(|e| OAuthError::new(ErrorCode::ServerError, format!("signing failed: {e}")))
    }
}

/// A public key as published in the JWKS.
pub struct PublicKey {
    key: PublicKeyKind,
}

enum PublicKeyKind {
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl PublicKey {
    /// The public JWK: `kty`, `crv`, coordinates, `alg`, `use: sig`, `kid` — never `d`.
    pub fn to_jwk(&self) -> serde_json::Value {
        let text = match &self.key {
            PublicKeyKind::Es256(k) => k.to_jwk(),
            PublicKeyKind::EdDsa(k) => k.to_jwk(),
        };
        // jwt-simple writes the JWK with serde_json itself; it always parses.
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    /// Verify a token's signature and standard claims (for resource servers and tests; our own
    /// endpoints look tokens up by hash instead, see [`crate::tokens`]).
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<JWTClaims<C>, jwt_simple::Error> {
        match &self.key {
            PublicKeyKind::Es256(k) => k.verify_token(token, Some(options)),
            PublicKeyKind::EdDsa(k) => k.verify_token(token, Some(options)),
        }
    }
}

/// The generated key as stored: algorithm and raw private bytes, base64url.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    alg: String,
    d: String,
}

impl StoredKey {
    fn load(&self) -> Option<SigningKey> {
        let algorithm = match self.alg.as_str() {
            "ES256" => SigningAlgorithm::Es256,
            "EdDSA" => SigningAlgorithm::EdDsa,
            _ => return None,
        };
        SigningKey::from_raw(&URL_SAFE_NO_PAD.decode(&self.d).ok()?, algorithm)
    }
}

/// The stored key, generating it once if there is none. A stored key keeps its algorithm
/// even if `jwt_algorithm` changes later (configure `signing_keys` to switch).
fn stored_or_generated(env: &Env) -> Result<SigningKey, OAuthError> {
    if let Some(key) = load_stored(env)? {
        return Ok(key);
    }
    let attempt = format!("keys/generation/{}", env.now() / GENERATION_WINDOW);
    if records::claim(env, &attempt, Claim::Redeem)? {
        // The attempt record only gives its claim counter a lifetime for the sweep.
        records::put(env, &attempt, &(), Some(env.now() + 2 * GENERATION_WINDOW))?;
        let (raw, key) = generate(env, env.settings.signing_algorithm);
        let stored = StoredKey {
            alg: key.algorithm().as_str().into(),
            d: URL_SAFE_NO_PAD.encode(raw),
        };
        records::put(env, STORED_KEY, &stored, None)?;
        return Ok(key);
    }
    for _ in 0..RE_READS {
        if let Some(key) = load_stored(env)? {
            return Ok(key);
        }
    }
    Err(OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "the signing key is being generated; retry shortly",
    )
    .with_header("retry-after", "1"))
}

fn load_stored(env: &Env) -> Result<Option<SigningKey>, OAuthError> {
    let Some(stored) = records::get::<StoredKey>(env, STORED_KEY)? else {
        return Ok(None);
    };
    stored.load().map(Some).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::ServerError,
            format!("the stored signing key `{STORED_KEY}` is unreadable"),
        )
    })
}

/// 32 random bytes that make a valid key. Every Ed25519 seed is; a P-256 scalar must lie in
/// `[1, n)`, which random bytes miss with probability about 2^-32, so this loops at most a
/// handful of times.
fn generate(env: &Env, algorithm: SigningAlgorithm) -> ([u8; 32], SigningKey) {
    loop {
        let raw = env.random_bytes::<32>();
        if let Some(key) = SigningKey::from_raw(&raw, algorithm) {
            return (raw, key);
        }
    }
}

/// PKCS#8 DER of an Ed25519 seed (RFC 8410 §7): jwt-simple derives the public key from it.
fn ed25519_pkcs8(seed: &[u8]) -> Option<Vec<u8>> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    (seed.len() == 32).then(|| [&PREFIX[..], seed].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8037 Appendix A.1: the Ed25519 key whose RFC 7638 thumbprint is given in A.3.
    #[test]
    fn rfc8037_ed25519_thumbprint() {
        let seed = URL_SAFE_NO_PAD
            .decode("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
            .unwrap();
        let key = SigningKey::from_raw(&seed, SigningAlgorithm::EdDsa).unwrap();
        assert_eq!(key.kid(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
        let jwk = key.public_key().to_jwk();
        assert_eq!(jwk["x"], "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
        assert_eq!(jwk["alg"], "EdDSA");
        assert_eq!(jwk["use"], "sig");
        assert!(jwk.get("d").is_none());
    }

    #[test]
    fn bad_raw_keys_are_refused() {
        assert!(SigningKey::from_raw(&[0u8; 32], SigningAlgorithm::Es256).is_none());
        assert!(SigningKey::from_raw(&[1u8; 31], SigningAlgorithm::EdDsa).is_none());
        assert!(SigningKey::from_raw(&[0xff; 32], SigningAlgorithm::Es256).is_none());
    }
}
