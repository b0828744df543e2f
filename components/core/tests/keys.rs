//! Signing keys and `GET /jwks`.

mod token_support;

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    Duration, ECDSAP256PublicKeyLike, ES256PublicKey, JWTClaims, RS256PublicKey, RSAPublicKeyLike,
    Token, VerificationOptions,
};
use mcp_auth_core::keys::{self, SigningKey};
use mcp_auth_core::records::{self, Claim};
use mcp_auth_core::settings::{Settings, SigningAlgorithm};
use mcp_auth_core::testing::Harness;
use mcp_auth_core::{Clock, Env, Method, Request, Rng};
use sha2::{Digest, Sha256};
use token_support::*;

/// Another host's RNG: different bytes from the Harness's.
struct HostRng(u64, AtomicU64);

impl Rng for HostRng {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            let n = self.1.fetch_add(1, Ordering::SeqCst);
            let block = Sha256::digest([self.0.to_le_bytes(), n.to_le_bytes()].concat());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

fn host_env<'a>(h: &'a Harness, rng: &'a HostRng) -> Env<'a> {
    let settings = Settings::from_config(&h.config).unwrap();
    Env::new(&h.store, &h.upstream, &h.clock, rng, settings)
}

/// RSA keys as `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:N -outform DER |
/// basenc --base64url -w0` prints them (PKCS#1), then converted with `openssl pkcs8 -topk8`.
const RSA_2048_PKCS8: &str = include_str!("data/rsa-2048.pkcs8.b64u");
const RSA_2048_PKCS1: &str = include_str!("data/rsa-2048.pkcs1.b64u");
const RSA_2048_SECOND: &str = include_str!("data/rsa-2048-second.pkcs8.b64u");
const RSA_1024_PKCS8: &str = include_str!("data/rsa-1024.pkcs8.b64u");

fn jwks(h: &Harness) -> Vec<serde_json::Value> {
    let res = h.call(Request::new(Method::Get, "/jwks"));
    assert_eq!(res.header("cache-control"), Some("public, max-age=300"));
    ok_json(&res)["keys"].as_array().unwrap().clone()
}

#[test]
fn the_generated_key_is_published_without_its_private_part() {
    let h = harness();
    let keys = jwks(&h);
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "EC");
    assert_eq!(k["crv"], "P-256");
    assert_eq!(k["alg"], "ES256");
    assert_eq!(k["use"], "sig");
    assert!(k.get("d").is_none());
    assert_eq!(k["kid"], keys::signing_key(&h.env()).unwrap().kid());
    assert_eq!(jwks(&h), keys, "generated once, then reused");
    assert_eq!(h.call(Request::new(Method::Post, "/jwks")).status, 405);
}

#[test]
fn eddsa_keys_are_okp() {
    let h = harness_with(&[("jwt_algorithm", "EdDSA")]);
    let k = &jwks(&h)[0];
    assert_eq!(k["kty"], "OKP");
    assert_eq!(k["crv"], "Ed25519");
    assert_eq!(k["alg"], "EdDSA");
}

#[test]
fn configured_keys_are_all_published_and_the_first_signs() {
    let first = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let second = URL_SAFE_NO_PAD.encode([9u8; 32]);
    let h = harness_with(&[("signing_keys", &format!("{first},{second}"))]);
    let keys = jwks(&h);
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);
    assert!(
        records::get::<serde_json::Value>(&h.env(), keys::STORED_KEY)
            .unwrap()
            .is_none()
    );

    public_client(&h, "c1");
    let body = ok_json(&redeem(&h, "c1", &code_for(&h, "c1")));
    let meta = Token::decode_metadata(body["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(meta.key_id(), keys[0]["kid"].as_str());
}

#[test]
fn a_bad_configured_key_is_a_server_error_naming_the_variable() {
    let h = harness_with(&[("signing_keys", "not-a-key")]);
    let res = h.call(Request::new(Method::Get, "/jwks"));
    assert_eq!(res.status, 500);
    assert!(String::from_utf8_lossy(&res.body).contains("signing_keys"));
}

#[test]
fn two_hosts_on_one_store_end_with_one_key() {
    let h = harness();
    let (a, b) = (HostRng(1, AtomicU64::new(0)), HostRng(2, AtomicU64::new(0)));
    let kid_a = keys::signing_key(&host_env(&h, &a))
        .unwrap()
        .kid()
        .to_string();
    let kid_b = keys::signing_key(&host_env(&h, &b))
        .unwrap()
        .kid()
        .to_string();
    assert_eq!(kid_a, kid_b);

    hosts_racing_end_with_one_key(&harness(), 16);
}

/// `hosts` hosts with their own RNGs race for the signing key of `h`'s fresh store: every
/// host that gets a key gets the same one, and only it is published.
fn hosts_racing_end_with_one_key(h: &Harness, hosts: u64) {
    let kids: Vec<Option<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..hosts)
            .map(|i| {
                s.spawn(move || {
                    let rng = HostRng(i, AtomicU64::new(0));
                    let env = host_env(h, &rng);
                    keys::signing_key(&env).ok().map(|k| k.kid().to_string())
                })
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let stored = keys::signing_key(&h.env()).unwrap().kid().to_string();
    assert!(kids.iter().flatten().all(|k| *k == stored), "{kids:?}");
    assert_eq!(jwks(h).len(), 1);
}

#[test]
fn a_host_that_lost_the_generation_race_waits_for_the_winner() {
    let h = harness();
    // Another host has claimed this minute's generation but not written its key yet.
    let attempt = format!("keys/generation/{}", h.clock.now() / 60);
    assert!(records::claim(&h.env(), &attempt, Claim::Redeem).unwrap());
    let res = h.call(Request::new(Method::Get, "/jwks"));
    assert_eq!(res.status, 503);
    assert_eq!(error_of(&res), "temporarily_unavailable");
    // Should the winner never write, the next minute's attempt generates a key.
    h.clock.advance(60);
    assert_eq!(jwks(&h).len(), 1);
}

/// The RFC 7638 §3 thumbprint of an RSA JWK: SHA-256 of its required members in order.
fn rsa_thumbprint(jwk: &serde_json::Value) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().unwrap(),
        jwk["n"].as_str().unwrap()
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical))
}

/// The access token of a fresh sign-in, verified with the JWKS key its `kid` names.
fn token_verified_by_the_jwks(h: &Harness) -> (String, serde_json::Value) {
    let token = signed_in(h, "c1")["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let meta = Token::decode_metadata(&token).unwrap();
    let jwk = jwks(h)
        .into_iter()
        .find(|k| k["kid"].as_str() == meta.key_id())
        .expect("the token's kid is published");
    assert_eq!(meta.algorithm(), jwk["alg"]);
    let options = VerificationOptions {
        artificial_time: Some(Duration::from_secs(h.clock.now())),
        ..Default::default()
    };
    let text = jwk.to_string();
    let claims: JWTClaims<serde_json::Value> = match meta.algorithm() {
        "RS256" => RS256PublicKey::from_jwk(&text)
            .unwrap()
            .verify_token(&token, Some(options)),
        _ => ES256PublicKey::from_jwk(&text)
            .unwrap()
            .verify_token(&token, Some(options)),
    }
    .unwrap();
    assert_eq!(claims.subject.as_deref(), Some("alice"));
    (token, jwk)
}

#[test]
fn a_generated_rs256_key_is_a_2048_bit_rsa_jwk_kept_once() {
    let h = harness_with(&[("jwt_algorithm", "RS256")]);
    let keys = jwks(&h);
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    assert_eq!(k["e"], "AQAB");
    let n = URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap();
    assert_eq!((n.len(), n[0] >= 0x80), (256, true), "a 2048-bit modulus");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(k.get(private).is_none(), "{private} published");
    }
    assert_eq!(k["kid"], rsa_thumbprint(k));
    let stored = records::get::<serde_json::Value>(&h.env(), keys::STORED_KEY)
        .unwrap()
        .unwrap();
    assert_eq!(stored["alg"], "RS256");
    assert_eq!(jwks(&h), keys, "generated once, then reused");

    // Tokens verify against it, and our own endpoints know them.
    let (token, jwk) = token_verified_by_the_jwks(&h);
    assert_eq!(jwk, keys[0]);
    assert!(is_active(&h, &token));
    assert_eq!(verify(&h, &token).status, 200);
}

/// RSA keys take long to generate, so the losers of the claim wait longest for the winner.
#[test]
fn two_hosts_generating_rs256_keys_end_with_one() {
    hosts_racing_end_with_one_key(&harness_with(&[("jwt_algorithm", "RS256")]), 4);
}

#[test]
fn configured_rs256_keys_load_from_pkcs8_or_pkcs1_der() {
    let pkcs8 = SigningKey::from_config(RSA_2048_PKCS8, SigningAlgorithm::Rs256).unwrap();
    let pkcs1 = SigningKey::from_config(RSA_2048_PKCS1, SigningAlgorithm::Rs256).unwrap();
    assert_eq!(pkcs8.kid(), pkcs1.kid());
    assert_eq!(pkcs8.algorithm(), SigningAlgorithm::Rs256);
    let jwk = pkcs8.public_key().to_jwk();
    assert_eq!(jwk["kid"], rsa_thumbprint(&jwk));

    let h = harness_with(&[("jwt_algorithm", "RS256"), ("signing_keys", RSA_2048_PKCS8)]);
    let (_, published) = token_verified_by_the_jwks(&h);
    assert_eq!(published, jwk);
    assert!(
        records::get::<serde_json::Value>(&h.env(), keys::STORED_KEY)
            .unwrap()
            .is_none()
    );
}

#[test]
fn bad_rs256_keys_are_configuration_errors_that_say_why() {
    let error = |entry: &str| {
        SigningKey::from_config(entry, SigningAlgorithm::Rs256)
            .err()
            .expect("refused")
    };
    let small = error(RSA_1024_PKCS8);
    assert_eq!(small.variable, "signing_keys");
    assert!(small.message.contains("shorter than 2048 bits"), "{small}");
    // A P-256 scalar where an RSA key belongs, DER cut short, not base64url at all.
    let short = &RSA_2048_PKCS8[..RSA_2048_PKCS8.len() / 2];
    let ec = URL_SAFE_NO_PAD.encode([7u8; 32]);
    for bad in [ec.as_str(), short, "not a key!"] {
        assert!(error(bad).message.contains("DER"), "{}", error(bad));
    }
    let unknown = error(&format!("HS256:{ec}"));
    assert!(unknown.message.contains("prefix before `:`"), "{unknown}");
    assert!(
        !unknown.message.contains("HS256"),
        "echoes the value: {unknown}"
    );

    // At a request, the error is the server's, and names the variable.
    let h = harness_with(&[("jwt_algorithm", "RS256"), ("signing_keys", RSA_1024_PKCS8)]);
    let res = h.call(Request::new(Method::Get, "/jwks"));
    assert_eq!(res.status, 500);
    let body = String::from_utf8_lossy(&res.body);
    assert!(
        body.contains("signing_keys") && body.contains("2048"),
        "{body}"
    );
}

/// Rotating from ES256 to RS256: the new RSA key signs, the old P-256 key stays published
/// for the tokens it signed; each entry names its algorithm when it is not `jwt_algorithm`'s.
#[test]
fn a_key_set_may_mix_algorithms_while_it_rotates() {
    let p256 = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let old = harness_with(&[("signing_keys", &p256)]);
    let (old_token, old_key) = token_verified_by_the_jwks(&old);
    assert_eq!(old_key["alg"], "ES256");

    for (algorithm, keys) in [
        ("ES256", format!("RS256:{RSA_2048_PKCS8},{p256}")),
        ("RS256", format!("{RSA_2048_PKCS8},ES256:{p256}")),
    ] {
        let h = harness_with(&[("jwt_algorithm", algorithm), ("signing_keys", &keys)]);
        let published = jwks(&h);
        let algs: Vec<_> = published.iter().map(|k| k["alg"].clone()).collect();
        assert_eq!(algs, ["RS256", "ES256"], "with jwt_algorithm {algorithm}");
        assert_eq!(published[1], old_key, "the old key is published unchanged");
        let (_, signer) = token_verified_by_the_jwks(&h);
        assert_eq!(signer, published[0], "the first key signs");
        // The old token still verifies against the new set.
        let meta = Token::decode_metadata(&old_token).unwrap();
        assert_eq!(meta.key_id(), published[1]["kid"].as_str());
    }

    // Two RSA keys: a second RS256 key rotates in the same way.
    let both = format!("{RSA_2048_SECOND},{RSA_2048_PKCS8}");
    let h = harness_with(&[("jwt_algorithm", "RS256"), ("signing_keys", &both)]);
    let published = jwks(&h);
    assert_eq!(published.len(), 2);
    assert_ne!(published[0]["kid"], published[1]["kid"]);
    assert_eq!(token_verified_by_the_jwks(&h).1, published[0]);
}

/// `mcp-auth admin keys rotate`: the new stored key signs at once, the old one stays in the
/// JWKS (public part only) for as long as a token it signed can live, then leaves it.
#[test]
fn a_rotated_stored_key_stays_published_until_its_tokens_expire() {
    let h = harness();
    let (old_token, old_key) = token_verified_by_the_jwks(&h);
    let rotation = keys::rotate(&h.env()).unwrap();
    assert_eq!(rotation.replaced.as_deref(), old_key["kid"].as_str());
    let published = jwks(&h);
    assert_eq!(published.len(), 2);
    assert_eq!(published[0]["kid"].as_str(), Some(rotation.kid.as_str()));
    assert_eq!(published[1], old_key, "the old key is published unchanged");
    let (_, signer) = token_verified_by_the_jwks(&h);
    assert_eq!(signer, published[0], "the new key signs");
    let options = VerificationOptions {
        artificial_time: Some(Duration::from_secs(h.clock.now())),
        ..Default::default()
    };
    let old_public = ES256PublicKey::from_jwk(&published[1].to_string()).unwrap();
    assert!(old_public
        .verify_token::<serde_json::Value>(&old_token, Some(options))
        .is_ok());
    // The private part of the old key is gone from the store.
    let stored = String::from_utf8(h.store.snapshot()["keys/signing"].clone()).unwrap();
    assert_eq!(stored.matches("\"d\"").count(), 1, "{stored}");

    let listed = keys::list(&h.env()).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].state, keys::KeyState::Signing);
    assert_eq!(listed[1].state, keys::KeyState::Retiring);
    let until = rotation.published_until.unwrap();
    assert_eq!(listed[1].published_until, Some(until));
    assert_eq!(until, h.clock.now() + 3600 + 300);

    h.clock.advance(until - h.clock.now());
    let published = jwks(&h);
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["kid"].as_str(), Some(rotation.kid.as_str()));
}

/// A rotation switches a stored key's algorithm to `jwt_algorithm`'s, and each key is replaced
/// once: a second rotation of the same key (a concurrent operator) is refused.
#[test]
fn rotation_follows_jwt_algorithm_and_replaces_a_key_once() {
    let h = harness();
    let (_, old_key) = token_verified_by_the_jwks(&h);
    let rs256 = harness_with(&[("jwt_algorithm", "RS256")]);
    let env = Env::new(
        &h.store,
        &h.upstream,
        &h.clock,
        &h.rng,
        Settings::from_config(&rs256.config).unwrap(),
    );
    let old_kid = old_key["kid"].as_str().unwrap();
    records::claim(&env, &format!("keys/rotation/{old_kid}"), Claim::Redeem).unwrap();
    let err = keys::rotate(&env).unwrap_err();
    assert!(err.description.contains("already been rotated"), "{err:?}");
    // Both attempts counted: take them back, as if neither had happened.
    records::count_by(&env, &format!("keys/rotation/{old_kid}"), Claim::Redeem, -2).unwrap();
    let rotation = keys::rotate(&env).unwrap();
    assert_eq!(rotation.alg, "RS256");
    drop(env);
    let algs: Vec<_> = jwks(&h).iter().map(|k| k["alg"].clone()).collect();
    assert_eq!(algs, ["RS256", "ES256"]);
}

/// A record written before rotation existed (`alg` and `d` only) still loads, and a
/// rotation keeps it published.
#[test]
fn a_key_record_of_the_earlier_format_loads_and_rotates() {
    let h = harness();
    let d = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let record = serde_json::json!({ "v": { "alg": "ES256", "d": d } });
    mcp_auth_core::Store::set(&h.store, keys::STORED_KEY, record.to_string().as_bytes()).unwrap();
    let expected = SigningKey::from_raw(&[7u8; 32], SigningAlgorithm::Es256).unwrap();
    let published = jwks(&h);
    assert_eq!(published.len(), 1);
    assert_eq!(published[0]["kid"].as_str(), Some(expected.kid()));
    let rotation = keys::rotate(&h.env()).unwrap();
    assert_eq!(rotation.replaced.as_deref(), Some(expected.kid()));
    assert_eq!(jwks(&h)[1]["kid"].as_str(), Some(expected.kid()));
}

/// Configured keys live in `signing_keys`: rotation is refused and says where to go, and the
/// list shows them as configured.
#[test]
fn configured_keys_are_listed_and_not_rotated_here() {
    let p256 = URL_SAFE_NO_PAD.encode([7u8; 32]);
    let h = harness_with(&[("signing_keys", &p256)]);
    let err = keys::rotate(&h.env()).unwrap_err();
    assert!(err.description.contains("`signing_keys`"), "{err:?}");
    let listed = keys::list(&h.env()).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].configured);
    assert!(!h.store.keys().iter().any(|k| k.starts_with("keys/")));
    // Without configured keys and before any key was needed, the list is empty: listing
    // never generates one.
    let h = harness();
    assert!(keys::list(&h.env()).unwrap().is_empty());
    assert!(h.store.keys().is_empty());
}
