//! Signing keys and `GET /jwks`.

mod token_support;

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::Token;
use mcp_auth_core::keys;
use mcp_auth_core::records::{self, Claim};
use mcp_auth_core::settings::Settings;
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

    // Racing: every host that gets a key gets the same one.
    let h = harness();
    let kids: Vec<Option<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16u64)
            .map(|i| {
                let h = &h;
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
    assert_eq!(jwks(&h).len(), 1);
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
