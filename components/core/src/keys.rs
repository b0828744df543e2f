//! Signing keys for access tokens (RFC 9068) and the JWKS document that publishes them
//! (RFC 7517 §5).
//!
//! Keys come from `signing_keys`, comma separated; the first signs, all are published. Each is
//! base64url private key bytes, prefixed with its algorithm when it is not `jwt_algorithm`'s
//! (`ES256:…`, `EdDSA:…`, `RS256:…`), so that a set can change algorithm while it rotates:
//! - ES256: the 32-byte P-256 scalar; EdDSA: the 32-byte Ed25519 seed. Raw bytes load
//!   without any PEM/DER parsing.
//! - RS256 (RFC 9068 §4: every server MUST support it): an RSA key of 2048 to 4096 bits as
//!   DER, PKCS#8 or PKCS#1, such as `openssl genpkey -algorithm RSA -pkeyopt
//!   rsa_keygen_bits:2048 -outform DER | basenc --base64url -w0` prints (PKCS#1 with
//!   OpenSSL 3). Generated keys are stored as PKCS#8.
//!
//! Without configured keys one key of `jwt_algorithm` is generated from [`Env::rng`] on first
//! use and kept under [`STORED_KEY`] in the same encoding. A 2048-bit RSA key takes seconds to
//! generate in wasm: it happens once per deployment, never per request.
//!
//! The operator rotates a stored key with [`rotate`] (`mcp-auth admin keys rotate`): a new key
//! signs from then on, and the old one stays published in the JWKS, public part only, until
//! every token it signed has expired. Both live in the one record under [`STORED_KEY`], so
//! signing still costs one `get`; records written before rotation existed load unchanged, and
//! older components ignore the retiring keys (serde skips unknown fields).
//!
//! Generation is race-safe across hosts without compare-and-swap: a [`records::claim`] on a
//! per-minute generation key picks the single writer; the others re-read the stored key and,
//! if the winner has not written it yet, answer 503 `temporarily_unavailable` (the client
//! retries). Should a winner die between its claim and its write, the next minute's claim
//! lets another host try.

use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair, ES256PublicKey, Ed25519KeyPair,
    Ed25519PublicKey, EdDSAKeyPairLike, EdDSAPublicKeyLike, HeaderOptions, JWTClaims, RS256KeyPair,
    RS256PublicKey, RSAKeyPairLike, RSAPublicKeyLike, VerificationOptions,
};
use jwt_simple::JWTError;
use rsa::pkcs8::EncodePrivateKey;
use rsa::rand_core::{CryptoRng, RngCore};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Request, Response};
use crate::records::{self, Claim};
use crate::settings::{ConfigError, SigningAlgorithm};

/// Where a generated key is kept.
pub const STORED_KEY: &str = "keys/signing";
/// How often a host that lost the generation claim looks for the winner's key.
const RE_READS: usize = 3;
/// A generation attempt's window, seconds.
const GENERATION_WINDOW: u64 = 60;
/// The `typ` of access tokens (RFC 9068 §2.1).
const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// The size of generated RSA keys: the smallest that RFC 7518 §3.3 and jwt-simple accept.
const RSA_BITS: usize = 2048;
/// How long past `access_token_lifetime` a rotated-out key stays published, seconds: a request
/// that loaded it just before the rotation may still sign with it (its time limit), and
/// resource servers keep the JWKS for its `max-age`.
const RETIRE_SLACK: u64 = 300;

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
        Some(configured) => SigningKey::from_config(configured, env.settings.signing_algorithm)
            .map_err(misconfigured),
        None => stored_or_generated(env).map(|(key, _)| key),
    }
}

/// Every key a token of ours may be signed with: all configured keys, or the stored one and
/// the keys it replaced whose tokens may still be live.
pub fn published_keys(env: &Env) -> Result<Vec<PublicKey>, OAuthError> {
    if env.settings.signing_keys.is_empty() {
        let (key, retiring) = stored_or_generated(env)?;
        let now = env.now();
        let retiring = retiring.iter().filter(|r| r.until > now);
        return Ok(std::iter::once(key.public_key())
            .chain(retiring.filter_map(RetiringKey::load))
            .collect());
    }
    env.settings
        .signing_keys
        .iter()
        .map(|k| SigningKey::from_config(k, env.settings.signing_algorithm).map(|k| k.public_key()))
        .collect::<Result<_, _>>()
        .map_err(misconfigured)
}

/// A bad `signing_keys` entry is the operator's mistake: a 500 that names the variable and
/// what is wrong, never the value.
fn misconfigured(err: ConfigError) -> OAuthError {
    OAuthError::new(ErrorCode::ServerError, err.to_string())
}

/// A private key with its `kid` (the RFC 7638 JWK thumbprint of its public key). Cheap to
/// clone: the loaded pair is shared.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    pair: Arc<KeyPair>,
}

/// Keys loaded by this instance, by algorithm and private bytes, most recent last. Loading
/// derives the public point (and, for RSA, checks the CRT values): about a sixth of a refresh
/// grant's CPU when every request loads its key again. An instance that serves several
/// requests (our host's `--instance-reuse`) loads each key once; a fresh instance per request
/// (Spin) gains nothing and loses nothing. Only the server's own keys are kept, never anything
/// of a request; jwt-simple offers no way to build a pair from a stored public point, so a
/// fresh instance still derives it once.
static LOADED: Mutex<LoadedKeys> = Mutex::new(Vec::new());
/// Enough for a rotation's current and previous keys in each of the three algorithms.
const LOADED_KEYS: usize = 6;

type LoadedKeys = Vec<(SigningAlgorithm, Vec<u8>, SigningKey)>;

fn loaded_keys() -> std::sync::MutexGuard<'static, LoadedKeys> {
    // A panic while holding the lock leaves a list of whole keys: still usable.
    LOADED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The key for `raw`, loaded by `load` unless this instance already has it. Failures are not
/// kept.
fn load_once(
    raw: &[u8],
    algorithm: SigningAlgorithm,
    load: impl FnOnce() -> Result<SigningKey, KeyError>,
) -> Result<SigningKey, KeyError> {
    if let Some((_, _, key)) = loaded_keys()
        .iter()
        .find(|(alg, bytes, _)| *alg == algorithm && bytes.as_slice() == raw)
    {
        return Ok(key.clone());
    }
    let key = load()?;
    let mut keys = loaded_keys();
    if keys.len() >= LOADED_KEYS {
        keys.remove(0);
    }
    keys.push((algorithm, raw.to_vec(), key.clone()));
    Ok(key)
}

enum KeyPair {
    Es256(ES256KeyPair),
    EdDsa(Ed25519KeyPair),
    /// Boxed: an RSA key is twice the size of the others.
    Rs256(Box<RS256KeyPair>),
}

impl SigningKey {
    /// A key from its private bytes: a 32-byte P-256 scalar (ES256), a 32-byte Ed25519 seed
    /// (EdDSA), or an RSA key's PKCS#8 or PKCS#1 DER (RS256: 2048 to 4096 bits, exponent
    /// 65537, its CRT values checked).
    pub fn from_raw(raw: &[u8], algorithm: SigningAlgorithm) -> Result<SigningKey, KeyError> {
        load_once(raw, algorithm, || SigningKey::load(raw, algorithm))
    }

    fn load(raw: &[u8], algorithm: SigningAlgorithm) -> Result<SigningKey, KeyError> {
        let (kid, pair) = match algorithm {
            SigningAlgorithm::Es256 => {
                let pair = ES256KeyPair::from_bytes(raw).map_err(|_| KeyError::Malformed)?;
                let kid = pair.jwk_thumbprint();
                (kid.clone(), KeyPair::Es256(pair.with_key_id(&kid)))
            }
            SigningAlgorithm::EdDsa => {
                let der = ed25519_pkcs8(raw).ok_or(KeyError::Malformed)?;
                let pair = Ed25519KeyPair::from_der(&der).map_err(|_| KeyError::Malformed)?;
                let kid = pair.jwk_thumbprint();
                (kid.clone(), KeyPair::EdDsa(pair.with_key_id(&kid)))
            }
            SigningAlgorithm::Rs256 => {
                let pair = RS256KeyPair::from_der(raw).map_err(rsa_key_error)?;
                let kid = pair.jwk_thumbprint();
                (
                    kid.clone(),
                    KeyPair::Rs256(Box::new(pair.with_key_id(&kid))),
                )
            }
        };
        Ok(SigningKey {
            kid,
            pair: Arc::new(pair),
        })
    }

    /// One entry of `signing_keys`: `[ALG:]base64url`, of `default` when it names none.
    pub fn from_config(entry: &str, default: SigningAlgorithm) -> Result<SigningKey, ConfigError> {
        let (algorithm, encoded) = match entry.trim().split_once(':') {
            Some((name, encoded)) => (
                // Not echoed: whatever precedes the `:` is part of a secret.
                SigningAlgorithm::parse(name).ok_or_else(|| ConfigError {
                    variable: "signing_keys",
                    message: "holds an entry whose prefix before `:` is not ES256, EdDSA or \
                              RS256"
                        .into(),
                })?,
                encoded,
            ),
            None => (default, entry.trim()),
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded.trim_end_matches('='))
            .map_err(|_| KeyError::Malformed);
        bytes
            .and_then(|raw| SigningKey::from_raw(&raw, algorithm))
            .map_err(|e| ConfigError {
                variable: "signing_keys",
                message: e.describe(algorithm),
            })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        match *self.pair {
            KeyPair::Es256(_) => SigningAlgorithm::Es256,
            KeyPair::EdDsa(_) => SigningAlgorithm::EdDsa,
            KeyPair::Rs256(_) => SigningAlgorithm::Rs256,
        }
    }

    pub fn public_key(&self) -> PublicKey {
        let key = match &*self.pair {
            KeyPair::Es256(p) => PublicKeyKind::Es256(p.public_key().with_key_id(&self.kid)),
            KeyPair::EdDsa(p) => PublicKeyKind::EdDsa(p.public_key().with_key_id(&self.kid)),
            KeyPair::Rs256(p) => {
                PublicKeyKind::Rs256(Box::new(p.public_key().with_key_id(&self.kid)))
            }
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
        match &*self.pair {
            KeyPair::Es256(p) => p.sign_with_options(claims, &options),
            KeyPair::EdDsa(p) => p.sign_with_options(claims, &options),
            KeyPair::Rs256(p) => p.sign_with_options(claims, &options),
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
    Rs256(Box<RS256PublicKey>),
}

impl PublicKey {
    /// The public JWK: `kty`, `crv`, coordinates, `alg`, `use: sig`, `kid` — never `d`.
    pub fn to_jwk(&self) -> serde_json::Value {
        let text = match &self.key {
            PublicKeyKind::Es256(k) => k.to_jwk(),
            PublicKeyKind::EdDsa(k) => k.to_jwk(),
            PublicKeyKind::Rs256(k) => k.to_jwk(),
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
            PublicKeyKind::Rs256(k) => k.verify_token(token, Some(options)),
        }
    }
}

/// Why private key bytes make no key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    /// Not a key of the algorithm (wrong length, not DER, inconsistent values).
    Malformed,
    /// An RSA modulus shorter than 2048 bits (RFC 7518 §3.3).
    RsaTooSmall,
    /// An RSA modulus longer than 4096 bits, which jwt-simple refuses.
    RsaTooLarge,
}

impl KeyError {
    /// The problem, for an operator who configured such a key as `algorithm`.
    fn describe(self, algorithm: SigningAlgorithm) -> String {
        match (self, algorithm) {
            (KeyError::RsaTooSmall, _) => {
                "holds an RSA key shorter than 2048 bits, which RS256 forbids".into()
            }
            (KeyError::RsaTooLarge, _) => "holds an RSA key longer than 4096 bits".into(),
            (_, SigningAlgorithm::Es256) => {
                "holds a value that is not a base64url 32-byte ES256 (P-256) private key".into()
            }
            (_, SigningAlgorithm::EdDsa) => {
                "holds a value that is not a base64url 32-byte EdDSA (Ed25519) seed".into()
            }
            (_, SigningAlgorithm::Rs256) => {
                "holds a value that is not a base64url DER (PKCS#8 or PKCS#1) RS256 (RSA) \
                 private key"
                    .into()
            }
        }
    }
}

fn rsa_key_error(e: jwt_simple::Error) -> KeyError {
    match e.downcast_ref::<JWTError>() {
        Some(JWTError::WeakKey) => KeyError::RsaTooSmall,
        Some(JWTError::UnsupportedRSAModulus) => KeyError::RsaTooLarge,
        _ => KeyError::Malformed,
    }
}

/// The generated key as stored: algorithm and private bytes (as configured keys are
/// encoded), base64url, and the keys it replaced that are still published.
#[derive(Serialize, Deserialize)]
struct StoredKey {
    alg: String,
    d: String,
    /// Absent in records written before [`rotate`] existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    retiring: Vec<RetiringKey>,
}

/// A rotated-out key: only its public JWK (nobody can sign with it any more), published
/// until `until`, when every token it signed has expired.
#[derive(Clone, Serialize, Deserialize)]
struct RetiringKey {
    jwk: serde_json::Value,
    until: u64,
}

impl RetiringKey {
    /// The published key; `None` for a JWK that does not load (skipped, never fatal: the
    /// current key must keep being published).
    fn load(&self) -> Option<PublicKey> {
        let text = self.jwk.to_string();
        let key = match SigningAlgorithm::parse(self.jwk.get("alg")?.as_str()?)? {
            SigningAlgorithm::Es256 => PublicKeyKind::Es256(ES256PublicKey::from_jwk(&text).ok()?),
            SigningAlgorithm::EdDsa => {
                PublicKeyKind::EdDsa(Ed25519PublicKey::from_jwk(&text).ok()?)
            }
            SigningAlgorithm::Rs256 => {
                PublicKeyKind::Rs256(Box::new(RS256PublicKey::from_jwk(&text).ok()?))
            }
        };
        Some(PublicKey { key })
    }

    fn kid(&self) -> &str {
        self.jwk.get("kid").and_then(|k| k.as_str()).unwrap_or("")
    }

    fn alg(&self) -> &str {
        self.jwk.get("alg").and_then(|a| a.as_str()).unwrap_or("")
    }
}

impl StoredKey {
    fn load(&self) -> Option<SigningKey> {
        let algorithm = SigningAlgorithm::parse(&self.alg)?;
        SigningKey::from_raw(&URL_SAFE_NO_PAD.decode(&self.d).ok()?, algorithm).ok()
    }
}

/// The stored key and the keys it replaced, generating it once if there is none. A stored
/// key keeps its algorithm even if `jwt_algorithm` changes later (rotate, or configure
/// `signing_keys`, to switch).
fn stored_or_generated(env: &Env) -> Result<(SigningKey, Vec<RetiringKey>), OAuthError> {
    if let Some(loaded) = load_stored(env)? {
        return Ok(loaded);
    }
    let attempt = format!("keys/generation/{}", env.now() / GENERATION_WINDOW);
    if records::claim(env, &attempt, Claim::Redeem)? {
        // The attempt record only gives its claim counter a lifetime for the sweep.
        records::put(env, &attempt, &(), Some(env.now() + 2 * GENERATION_WINDOW))?;
        let key = store_new_key(env, Vec::new())?;
        return Ok((key, Vec::new()));
    }
    for _ in 0..RE_READS {
        if let Some(loaded) = load_stored(env)? {
            return Ok(loaded);
        }
    }
    Err(OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "the signing key is being generated; retry shortly",
    )
    .with_header("retry-after", "1"))
}

fn load_stored(env: &Env) -> Result<Option<(SigningKey, Vec<RetiringKey>)>, OAuthError> {
    let Some(stored) = records::get::<StoredKey>(env, STORED_KEY)? else {
        return Ok(None);
    };
    let key = stored.load().ok_or_else(|| {
        OAuthError::new(
            ErrorCode::ServerError,
            format!("the stored signing key `{STORED_KEY}` is unreadable"),
        )
    })?;
    Ok(Some((key, stored.retiring)))
}

/// Generate a key of `jwt_algorithm` and store it as the signing key, `retiring` beside it.
fn store_new_key(env: &Env, retiring: Vec<RetiringKey>) -> Result<SigningKey, OAuthError> {
    let (raw, key) = generate(env, env.settings.signing_algorithm)?;
    let stored = StoredKey {
        alg: key.algorithm().as_str().into(),
        d: URL_SAFE_NO_PAD.encode(raw),
        retiring,
    };
    records::put(env, STORED_KEY, &stored, None)?;
    Ok(key)
}

/// One key as the operator sees it (`mcp-auth admin keys list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    /// Retiring keys: published until then (seconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_until: Option<u64>,
    /// From the `signing_keys` variable rather than the store.
    pub configured: bool,
}

/// What a published key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Signs new access tokens.
    Signing,
    /// Published so that tokens it signed still verify; signs nothing new.
    Retiring,
}

/// Every published key, the signing one first. Unlike [`published_keys`] this never
/// generates a key: an empty list means none has been needed yet.
pub fn list(env: &Env) -> Result<Vec<KeyInfo>, OAuthError> {
    let info = |key: &SigningKey, state, configured| KeyInfo {
        kid: key.kid().to_string(),
        alg: key.algorithm().as_str().to_string(),
        state,
        published_until: None,
        configured,
    };
    if !env.settings.signing_keys.is_empty() {
        return env
            .settings
            .signing_keys
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let key = SigningKey::from_config(entry, env.settings.signing_algorithm)
                    .map_err(misconfigured)?;
                let state = if i == 0 {
                    KeyState::Signing
                } else {
                    KeyState::Retiring
                };
                Ok(info(&key, state, true))
            })
            .collect();
    }
    let Some((key, retiring)) = load_stored(env)? else {
        return Ok(Vec::new());
    };
    let now = env.now();
    let retiring = retiring.iter().filter(|r| r.until > now).map(|r| KeyInfo {
        kid: r.kid().to_string(),
        alg: r.alg().to_string(),
        state: KeyState::Retiring,
        published_until: Some(r.until),
        configured: false,
    });
    Ok(std::iter::once(info(&key, KeyState::Signing, false))
        .chain(retiring)
        .collect())
}

/// What [`rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The new signing key.
    pub kid: String,
    pub alg: String,
    /// The key it replaced (none when there was no key yet), and until when that one stays
    /// published.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_until: Option<u64>,
}

/// Replace the stored signing key with a new one of `jwt_algorithm` (which may differ from
/// the old key's: this is how a stored key changes algorithm). The old key keeps being
/// published until every token it signed has expired; keys whose time is up are dropped.
///
/// Refused when `signing_keys` is configured: those keys live in the variable, not here.
/// Two rotations of the same key race for one claim, so each key is replaced once and no
/// new key is lost to a concurrent rotation.
pub fn rotate(env: &Env) -> Result<Rotation, OAuthError> {
    if !env.settings.signing_keys.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the signing keys come from the `signing_keys` variable: put the new key first \
             there and keep the old one after it until its tokens expire",
        ));
    }
    let Some((old, retiring)) = load_stored(env)? else {
        let (key, _) = stored_or_generated(env)?;
        return Ok(Rotation {
            kid: key.kid().to_string(),
            alg: key.algorithm().as_str().to_string(),
            replaced: None,
            published_until: None,
        });
    };
    let now = env.now();
    let until = now + env.settings.access_token_lifetime + RETIRE_SLACK;
    let attempt = format!("keys/rotation/{}", old.kid());
    if !records::claim(env, &attempt, Claim::Redeem)? {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            format!(
                "key {} has already been rotated; see the current keys",
                old.kid()
            ),
        ));
    }
    // The attempt record only gives its claim counter a lifetime for the sweep.
    records::put(env, &attempt, &(), Some(until))?;
    let mut still_published: Vec<RetiringKey> =
        retiring.into_iter().filter(|r| r.until > now).collect();
    still_published.insert(
        0,
        RetiringKey {
            jwk: old.public_key().to_jwk(),
            until,
        },
    );
    let key = store_new_key(env, still_published)?;
    Ok(Rotation {
        kid: key.kid().to_string(),
        alg: key.algorithm().as_str().to_string(),
        replaced: Some(old.kid().to_string()),
        published_until: Some(until),
    })
}

/// A new key and its private bytes, from [`Env::rng`].
fn generate(env: &Env, algorithm: SigningAlgorithm) -> Result<(Vec<u8>, SigningKey), OAuthError> {
    if algorithm == SigningAlgorithm::Rs256 {
        return generate_rsa(env);
    }
    // Every Ed25519 seed is a key; a P-256 scalar must lie in `[1, n)`, which random bytes
    // miss with probability about 2^-32, so this loops at most a handful of times.
    loop {
        let raw = env.random_bytes::<32>();
        if let Ok(key) = SigningKey::from_raw(&raw, algorithm) {
            return Ok((raw.to_vec(), key));
        }
    }
}

/// A 2048-bit RSA key as PKCS#8 DER, its primes drawn from [`Env::rng`].
fn generate_rsa(env: &Env) -> Result<(Vec<u8>, SigningKey), OAuthError> {
    let failed = |what: &str| {
        OAuthError::new(
            ErrorCode::ServerError,
            format!("generating the RS256 signing key failed: {what}"),
        )
    };
    let private =
        rsa::RsaPrivateKey::new(&mut EnvRng(env), RSA_BITS).map_err(|e| failed(&e.to_string()))?;
    let der = private
        .to_pkcs8_der()
        .map_err(|e| failed(&e.to_string()))?
        .as_bytes()
        .to_vec();
    let key = SigningKey::from_raw(&der, SigningAlgorithm::Rs256)
        .map_err(|e| failed(&format!("{e:?}")))?;
    Ok((der, key))
}

/// [`Env::rng`] (a cryptographically secure source, [`crate::env::Rng`]) as the RNG the
/// `rsa` crate draws its primes from.
struct EnvRng<'a, 'e>(&'a Env<'e>);

impl RngCore for EnvRng<'_, '_> {
    fn next_u32(&mut self) -> u32 {
        u32::from_le_bytes(self.0.random_bytes())
    }

    fn next_u64(&mut self) -> u64 {
        u64::from_le_bytes(self.0.random_bytes())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.rng.fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoRng for EnvRng<'_, '_> {}

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

    /// A key is loaded (its public point derived) once per instance, not once per request;
    /// other bytes are another key.
    #[test]
    fn a_key_is_loaded_once() {
        let raw = [7u8; 32];
        let a = SigningKey::from_raw(&raw, SigningAlgorithm::Es256).unwrap();
        let b = SigningKey::from_raw(&raw, SigningAlgorithm::Es256).unwrap();
        assert!(Arc::ptr_eq(&a.pair, &b.pair));
        let c = SigningKey::from_raw(&[8u8; 32], SigningAlgorithm::Es256).unwrap();
        assert!(!Arc::ptr_eq(&a.pair, &c.pair));
        assert_ne!(a.kid(), c.kid());
        let d = SigningKey::from_raw(&raw, SigningAlgorithm::EdDsa).unwrap();
        assert_eq!(d.algorithm(), SigningAlgorithm::EdDsa);
    }

    #[test]
    fn bad_raw_keys_are_refused() {
        let malformed = Err(KeyError::Malformed);
        let check = |raw: &[u8], alg| SigningKey::from_raw(raw, alg).map(|k| k.kid);
        assert_eq!(check(&[0u8; 32], SigningAlgorithm::Es256), malformed);
        assert_eq!(check(&[1u8; 31], SigningAlgorithm::EdDsa), malformed);
        assert_eq!(check(&[0xff; 32], SigningAlgorithm::Es256), malformed);
        assert_eq!(check(&[0x30; 32], SigningAlgorithm::Rs256), malformed);
    }
}
