//! Secrets never leave their holder: after every step of full flows, no audit line and no
//! stored key or value holds a code, token, client secret, registration access token,
//! password or device code in plain text. And signing keys rotate without downtime.

#[path = "authz_support/mod.rs"]
mod authz_support;

use std::cell::RefCell;

use argon2::password_hash::SaltString;
use argon2::{Algorithm, Argon2, Params, PasswordHasher, Version};
use authz_support::{form_of, hidden, location, query_of, Browser};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jwt_simple::prelude::*;
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{handle, Clock, Endpoint, Method, Request, Response, Store};
use serde_json::{json, Value};

/// The default `mcp_auth_server_url`, as typed, and the issuer it stands for.
const BASE: &str = "http://127.0.0.1:3000";
const ISSUER: &str = "http://127.0.0.1:3000/";
const RESOURCE: &str = "https://mcp.example.com/mcp";
const REDIRECT: &str = "http://127.0.0.1:9000/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const PASSWORD: &str = "correct-horse-battery-staple";
/// The operator's machine client (`machine_clients`), for client credentials.
const MACHINE: (&str, &str) = ("svc", "svc-secret-0123456789abcdef");

/// A server, with everything it ever wrote to its audit log and its store.
struct Observed {
    h: Harness,
    /// The browser every request comes from.
    browser: Browser,
    /// Every audit line, and every stored key and value seen after any request.
    seen: RefCell<String>,
    /// The secrets handed out so far.
    secrets: RefCell<Vec<String>>,
}

impl Observed {
    fn new(extra: &[(&str, &str)]) -> Observed {
        let params = Params::new(8, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &salt)
            .unwrap()
            .to_string();
        let users = format!("alice:{phc}");
        let machine = format!("{}:{}", MACHINE.0, MACHINE.1);
        let mut config = MapConfig::from([
            ("mcp_server", RESOURCE),
            ("local_users", users.as_str()),
            ("introspection_credentials", "rs:rs-secret"),
            ("machine_clients", machine.as_str()),
        ]);
        for (k, v) in extra {
            config.set(k, v);
        }
        Observed {
            h: Harness::with_config(config),
            browser: Browser::new(),
            seen: RefCell::new(String::new()),
            secrets: RefCell::new(vec![
                PASSWORD.to_string(),
                "rs-secret".to_string(),
                MACHINE.1.to_string(),
            ]),
        }
    }

    fn call(&self, req: Request) -> Response {
        let env = self.h.env();
        let res = handle(&env, &self.browser.prepare(req), Endpoint::ALL);
        self.browser.receive(&res);
        // Cookie values (the browser binding of a sign-in, CSRF tokens) are secrets too.
        for (_, set) in res.headers.iter().filter(|(n, _)| n == "set-cookie") {
            let value = set
                .split(';')
                .next()
                .and_then(|p| p.split_once('='))
                .unwrap()
                .1;
            if !value.is_empty() {
                self.secrets.borrow_mut().push(value.to_string());
            }
        }
        let mut seen = self.seen.borrow_mut();
        for event in env.take_audit() {
            seen.push_str(&event.to_line());
            seen.push('\n');
        }
        for key in self.h.store.keys() {
            seen.push_str(&key);
            seen.push('\n');
            if let Ok(Some(value)) = self.h.store.get(&key) {
                seen.push_str(&String::from_utf8_lossy(&value));
                seen.push('\n');
            }
        }
        res
    }

    /// Note a secret we were given, and return it.
    fn secret(&self, value: &Value) -> String {
        let s = value.as_str().expect("a secret string").to_string();
        assert!(s.len() >= 20, "{s}");
        self.secrets.borrow_mut().push(s.clone());
        s
    }

    fn json(&self, req: Request, status: u16) -> Value {
        let res = self.call(req);
        assert_eq!(res.status, status, "{}", String::from_utf8_lossy(&res.body));
        res.json_body().unwrap()
    }

    /// POST the form of `page` (its CSRF token and session) with `fields`.
    fn submit(&self, path: &str, page: &Response, fields: &[(&str, &str)]) -> Response {
        self.call(form_of(path, page, fields))
    }

    /// From a login URL: sign in as alice and approve; what consent answers.
    fn sign_in_and_approve(&self, login_url: &str) -> Response {
        let page = self.call(Request::new(
            Method::Get,
            login_url.strip_prefix(BASE).unwrap(),
        ));
        let consent = self.submit(
            "/login",
            &page,
            &[("username", "alice"), ("password", PASSWORD)],
        );
        assert_eq!(consent.status, 200);
        self.submit("/consent", &consent, &[("decision", "approve")])
    }

    /// No secret handed out so far appears anywhere we looked, whole or in part.
    fn assert_nothing_leaked(&self) {
        let seen = self.seen.borrow();
        assert!(!seen.is_empty());
        for secret in self.secrets.borrow().iter() {
            // The whole secret, and its last 16 characters (a JWT's signature, say).
            assert!(!seen.contains(secret.as_str()), "`{secret}` leaked");
            if let Some(tail) = secret.get(secret.len().saturating_sub(16)..) {
                assert!(!seen.contains(tail), "part of `{secret}` leaked");
            }
        }
    }
}

fn form(path: &str, pairs: &[(&str, &str)]) -> Request {
    Request::form(path, pairs)
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

#[test]
fn no_secret_is_ever_logged_or_stored_in_plain_text() {
    let o = Observed::new(&[]);

    // A confidential client registers, and reads its configuration.
    let info = o.json(
        Request::new(Method::Post, "/register")
            .with_header("content-type", "application/json")
            .with_body(
                json!({
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "client_secret_basic",
                    "grant_types": ["authorization_code", "refresh_token",
                        "urn:ietf:params:oauth:grant-type:device_code"],
                })
                .to_string(),
            ),
        201,
    );
    let id = info["client_id"].as_str().unwrap().to_string();
    let secret = o.secret(&info["client_secret"]);
    let registration = o.secret(&info["registration_access_token"]);
    o.json(
        Request::new(Method::Get, &format!("/register/{id}"))
            .with_header("authorization", &format!("Bearer {registration}")),
        200,
    );
    let auth = basic(&id, &secret);

    // Authorization code, with the password typed on the login page.
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", &id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "s"),
        ])
        .finish();
    let res = o.call(Request::new(Method::Get, &format!("/authorize?{query}")));
    let back = o.sign_in_and_approve(location(&res));
    let code = query_of(location(&back))["code"].clone();
    o.secrets.borrow_mut().push(code.clone());
    let tokens = o.json(
        form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
            ],
        )
        .with_header("authorization", &auth),
        200,
    );
    let access = o.secret(&tokens["access_token"]);
    let refresh = o.secret(&tokens["refresh_token"]);

    // Refresh, introspect, verify, revoke.
    let rotated = o.json(
        form(
            "/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .with_header("authorization", &auth),
        200,
    );
    o.secret(&rotated["access_token"]);
    let new_refresh = o.secret(&rotated["refresh_token"]);
    let info = o.json(
        form("/introspect", &[("token", &new_refresh)])
            .with_header("authorization", &basic("rs", "rs-secret")),
        200,
    );
    assert_eq!(info["active"], true);
    let verify = o.call(
        Request::new(Method::Get, "/verify")
            .with_header("authorization", &format!("Bearer {access}"))
            .with_header("x-forwarded-uri", "/mcp"),
    );
    assert!(verify.status < 500);
    // A replayed refresh token (reuse, past the grace period) is audited; the audit line
    // must not name it.
    o.h.clock.advance(60);
    o.call(
        form(
            "/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .with_header("authorization", &auth),
    );

    // Client credentials, for the operator's machine client.
    let cc = o.json(
        form("/token", &[("grant_type", "client_credentials")])
            .with_header("authorization", &basic(MACHINE.0, MACHINE.1)),
        200,
    );
    o.secret(&cc["access_token"]);

    // The device flow, approved on the device page, then polled.
    let device = o.json(
        form("/device/code", &[]).with_header("authorization", &auth),
        200,
    );
    let device_code = o.secret(&device["device_code"]);
    let entry = o.call(Request::new(Method::Get, "/device"));
    let res = o.call(form(
        "/device",
        &[
            ("csrf", &hidden(&entry, "csrf")),
            ("user_code", device["user_code"].as_str().unwrap()),
        ],
    ));
    assert_eq!(o.sign_in_and_approve(location(&res)).status, 200);
    let polled = o.json(
        form(
            "/token",
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", &device_code),
            ],
        )
        .with_header("authorization", &auth),
        200,
    );
    o.secret(&polled["access_token"]);
    o.secret(&polled["refresh_token"]);

    // Revocation, and the client deleting itself.
    o.call(form("/revoke", &[("token", &new_refresh)]).with_header("authorization", &auth));
    o.call(
        Request::new(Method::Delete, &format!("/register/{id}"))
            .with_header("authorization", &format!("Bearer {registration}")),
    );
    assert!(o.seen.borrow().contains("\"event\":\"refresh_reuse\""));
    o.assert_nothing_leaked();
}

#[test]
fn a_leak_would_be_found() {
    // The check above can fail: a secret written to the store is seen.
    let o = Observed::new(&[]);
    o.h.store.set("oops", b"hunter2-hunter2-hunter2").unwrap();
    o.secrets
        .borrow_mut()
        .push("hunter2-hunter2-hunter2".into());
    o.call(Request::new(Method::Get, "/health"));
    let leaked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| o.assert_nothing_leaked()));
    assert!(leaked.is_err());
}

// --- signing key rotation ---

fn key(byte: u8) -> String {
    URL_SAFE_NO_PAD.encode([byte; 32])
}

/// The public key of `kid` in the JWKS document.
fn jwks_key(o: &Observed, kid: &str) -> ES256PublicKey {
    let jwks = o.json(Request::new(Method::Get, "/jwks"), 200);
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("{kid} is not published: {jwks}"));
    let coordinate = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
    let mut point = vec![4u8];
    point.extend(coordinate("x"));
    point.extend(coordinate("y"));
    ES256PublicKey::from_bytes(&point).unwrap()
}

#[test]
fn tokens_signed_by_the_previous_key_stay_valid_after_rotation() {
    let (old, new) = (key(7), key(9));
    let mut o = Observed::new(&[("signing_keys", &old)]);
    let (id, secret) = MACHINE;
    let issue = |o: &Observed| {
        o.json(
            form(
                "/token",
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", id),
                    ("client_secret", secret),
                ],
            ),
            200,
        )["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let before = issue(&o);
    let old_kid = Token::decode_metadata(&before)
        .unwrap()
        .key_id()
        .unwrap()
        .to_string();

    // Rotate: the new key signs, the old one is still published.
    o.h.config.set("signing_keys", &format!("{new},{old}"));
    let after = issue(&o);
    let new_kid = Token::decode_metadata(&after)
        .unwrap()
        .key_id()
        .unwrap()
        .to_string();
    assert_ne!(new_kid, old_kid);
    for (token, kid) in [(&before, &old_kid), (&after, &new_kid)] {
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from_strings(&[ISSUER])),
            artificial_time: Some(UnixTimeStamp::from_secs(o.h.clock.now())),
            ..Default::default()
        };
        jwks_key(&o, kid)
            .verify_token::<NoCustomClaims>(token, Some(options))
            .unwrap_or_else(|e| panic!("{kid}: {e}"));
        let info = o.json(
            form("/introspect", &[("token", token)])
                .with_header("authorization", &basic("rs", "rs-secret")),
            200,
        );
        assert_eq!(info["active"], true, "{kid}");
    }
    // The old key no longer verifies what the new one signed.
    assert!(jwks_key(&o, &old_kid)
        .verify_token::<NoCustomClaims>(&after, None)
        .is_err());
}
