//! `POST /token`: authorization codes, refresh rotation, client credentials.

mod token_support;

use jwt_simple::prelude::*;
use mcp_auth_core::audit::AuditKind;
use mcp_auth_core::testing::{Harness, TEST_EPOCH};
use mcp_auth_core::{Clock, Method, Request};
use token_support::*;

#[derive(Debug, Serialize, Deserialize)]
struct Custom {
    client_id: String,
    scope: String,
    auth_time: Option<u64>,
}

/// Verify `token` with the key the JWKS publishes under its `kid`.
fn verify_with_jwks(h: &Harness, token: &str) -> JWTClaims<Custom> {
    let meta = Token::decode_metadata(token).unwrap();
    assert_eq!(meta.signature_type(), Some("at+jwt"));
    let kid = meta.key_id().unwrap().to_string();
    let jwks = ok_json(&h.call(Request::new(Method::Get, "/jwks")));
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the token's kid is published")
        .to_string();
    let options = VerificationOptions {
        artificial_time: Some(Duration::from_secs(h.clock.now())),
        allowed_issuers: Some(HashSet::from_strings(&["http://127.0.0.1:3000/"])),
        allowed_audiences: Some(HashSet::from_strings(&[RESOURCE])),
        ..Default::default()
    };
    match meta.algorithm() {
        "ES256" => ES256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(token, Some(options)),
        "EdDSA" => Ed25519PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(token, Some(options)),
        "RS256" => RS256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(token, Some(options)),
        other => panic!("unexpected alg {other}"),
    }
    .unwrap()
}

#[test]
fn code_exchange_issues_a_jwt_that_the_jwks_verifies() {
    for alg in ["ES256", "EdDSA", "RS256"] {
        let h = harness_with(&[("jwt_algorithm", alg)]);
        public_client(&h, "c1");
        let code = code_for(&h, "c1");
        let (res, audit) = call_audited(
            &h,
            Request::form(
                "/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", "c1"),
                    ("code", &code),
                    ("code_verifier", VERIFIER),
                    ("redirect_uri", REDIRECT),
                    ("resource", "https://MCP.example.com/mcp/"),
                ],
            ),
        );
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let body = ok_json(&res);
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["expires_in"], 3600);
        assert_eq!(body["scope"], "mcp:read mcp:write");
        assert!(body["refresh_token"]
            .as_str()
            .is_some_and(|r| r.len() == 43));
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].event, AuditKind::TokenIssued);
        assert_eq!(audit[0].grant_type.as_deref(), Some("authorization_code"));

        let claims = verify_with_jwks(&h, body["access_token"].as_str().unwrap());
        assert_eq!(
            Token::decode_metadata(body["access_token"].as_str().unwrap())
                .unwrap()
                .algorithm(),
            alg
        );
        assert_eq!(claims.issuer.as_deref(), Some("http://127.0.0.1:3000/"));
        assert_eq!(claims.subject.as_deref(), Some("alice"));
        assert_eq!(claims.issued_at, Some(Duration::from_secs(TEST_EPOCH)));
        assert_eq!(
            claims.expires_at,
            Some(Duration::from_secs(TEST_EPOCH + 3600))
        );
        assert!(claims.jwt_id.is_some());
        assert_eq!(claims.custom.client_id, "c1");
        assert_eq!(claims.custom.scope, "mcp:read mcp:write");
        assert_eq!(claims.custom.auth_time, Some(TEST_EPOCH - 5));
    }
}

#[test]
fn a_wrong_verifier_does_not_burn_the_code() {
    let h = harness();
    public_client(&h, "c1");
    let code = code_for(&h, "c1");
    let before = h.store.state();
    let res = token(
        &h,
        "c1",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            ),
        ],
    );
    assert_eq!(error_of(&res), "invalid_grant");
    assert_eq!(h.store.state(), before);
    ok_json(&redeem(&h, "c1", &code));
}

#[test]
fn bad_requests_are_refused_without_changing_anything() {
    let h = harness();
    public_client(&h, "c1");
    public_client(&h, "c2");
    let code = code_for(&h, "c1");
    let before = h.store.state();
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut p = base.to_vec();
        p.push(extra);
        p
    };
    let cases = vec![
        (
            with(("redirect_uri", "http://127.0.0.1:9000/other")),
            "c1",
            "invalid_grant",
        ),
        (
            with(("resource", "https://mcp.example.com/other")),
            "c1",
            "invalid_target",
        ),
        (with(("resource", "not a uri")), "c1", "invalid_target"),
        (base.to_vec(), "c2", "invalid_grant"),
        (base[..2].to_vec(), "c1", "invalid_request"),
        (vec![("code", code.as_str())], "c1", "invalid_request"),
        (
            vec![("grant_type", "password")],
            "c1",
            "unsupported_grant_type",
        ),
        (base.to_vec(), "nobody", "invalid_client"),
    ];
    for (params, client, expected) in cases {
        assert_eq!(
            error_of(&token(&h, client, &params)),
            expected,
            "{params:?}"
        );
    }
    let json = Request::new(Method::Post, "/token")
        .with_header("content-type", "application/json")
        .with_body("{}");
    assert_eq!(error_of(&h.call(json)), "invalid_request");
    let get = h.call(Request::new(Method::Get, "/token"));
    assert_eq!(get.status, 405);
    assert_eq!(get.header("allow"), Some("POST"));
    assert_eq!(h.store.state(), before);
    ok_json(&redeem(&h, "c1", &code));
}

#[test]
fn a_replayed_code_revokes_what_the_first_redemption_produced() {
    let h = harness();
    public_client(&h, "c1");
    let code = code_for(&h, "c1");
    let first = ok_json(&redeem(&h, "c1", &code));
    let access = first["access_token"].as_str().unwrap();
    let refresh_token = first["refresh_token"].as_str().unwrap();
    assert!(is_active(&h, access));

    let (replay, audit) = call_audited(&h, redeem_request("c1", &code));
    assert_eq!(error_of(&replay), "invalid_grant");
    assert_eq!(audit[0].event, AuditKind::CodeReplay);
    assert!(!is_active(&h, access));
    assert_eq!(error_of(&refresh(&h, "c1", refresh_token)), "invalid_grant");
}

#[test]
fn clients_without_the_refresh_grant_get_no_refresh_token() {
    let h = harness();
    add_client(&h, "c1", None, &["authorization_code"]);
    let body = ok_json(&redeem(&h, "c1", &code_for(&h, "c1")));
    assert!(body.get("refresh_token").is_none());
}

#[test]
fn one_hundred_concurrent_redemptions_yield_exactly_one_token() {
    // More requests from one client than its per-minute limit lets through.
    let h = harness_with(&[("rate_limit_token_per_client", "0")]);
    public_client(&h, "c1");
    // The signing key exists already, as on any server that has issued a token.
    mcp_auth_core::keys::signing_key(&h.env()).unwrap();
    let code = code_for(&h, "c1");
    let responses: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..100)
            .map(|_| s.spawn(|| redeem(&h, "c1", &code)))
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let winners: Vec<_> = responses.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1);
    for loser in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(error_of(loser), "invalid_grant");
    }
    // Every loser was a replay, so the winner's tokens end revoked.
    let access = winners[0].json_body().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!is_active(&h, &access));
}

#[test]
fn refresh_rotates_and_a_retry_within_the_grace_window_gets_the_same_child() {
    let h = harness();
    let first = signed_in(&h, "c1");
    let r0 = first["refresh_token"].as_str().unwrap();

    let second = ok_json(&refresh(&h, "c1", r0));
    let r1 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r0, r1);
    assert_ne!(first["access_token"], second["access_token"]);

    h.clock.advance(10); // within the default 30 s
    let retry = ok_json(&refresh(&h, "c1", r0));
    assert_eq!(retry["refresh_token"].as_str(), Some(r1));
    assert_ne!(retry["access_token"], second["access_token"]);
    assert!(is_active(&h, first["access_token"].as_str().unwrap()));
    assert!(is_active(&h, retry["access_token"].as_str().unwrap()));

    // The family did not branch: the child rotates on as usual.
    let third = ok_json(&refresh(&h, "c1", r1));
    assert_ne!(third["refresh_token"].as_str(), Some(r1));
}

/// The request that won the rotation died between its claim and storing the child: the
/// client's retry within the grace window gets the child, and the child works.
#[test]
fn a_retry_stores_the_child_a_crashed_rotation_did_not() {
    let h = harness();
    let first = signed_in(&h, "c1");
    let r0 = first["refresh_token"].as_str().unwrap();
    let key = mcp_auth_core::tokens::refresh_key(r0);
    assert!(
        mcp_auth_core::records::claim(&h.env(), &key, mcp_auth_core::records::Claim::Redeem)
            .unwrap()
    );

    let retry = ok_json(&refresh(&h, "c1", r0));
    let r1 = retry["refresh_token"].as_str().unwrap();
    assert!(is_active(&h, r1), "the retry's child is stored");
    let next = ok_json(&refresh(&h, "c1", r1));
    assert!(is_active(&h, next["refresh_token"].as_str().unwrap()));
}

#[test]
fn reuse_after_the_grace_window_revokes_the_family() {
    let h = harness();
    let first = signed_in(&h, "c1");
    let r0 = first["refresh_token"].as_str().unwrap();
    let second = ok_json(&refresh(&h, "c1", r0));
    let r1 = second["refresh_token"].as_str().unwrap();
    let access = second["access_token"].as_str().unwrap();

    h.clock.advance(31);
    let (reuse, audit) = call_audited(
        &h,
        Request::form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "c1"),
                ("refresh_token", r0),
            ],
        ),
    );
    assert_eq!(error_of(&reuse), "invalid_grant");
    assert_eq!(audit[0].event, AuditKind::RefreshReuse);
    assert!(!is_active(&h, access));
    assert!(!is_active(&h, first["access_token"].as_str().unwrap()));
    assert_eq!(error_of(&refresh(&h, "c1", r1)), "invalid_grant");
}

#[test]
fn a_retry_after_the_child_was_used_is_reuse() {
    let h = harness();
    let first = signed_in(&h, "c1");
    let r0 = first["refresh_token"].as_str().unwrap();
    let r1 = ok_json(&refresh(&h, "c1", r0))["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r2 = ok_json(&refresh(&h, "c1", &r1))["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(error_of(&refresh(&h, "c1", r0)), "invalid_grant");
    assert_eq!(error_of(&refresh(&h, "c1", &r2)), "invalid_grant");
}

#[test]
fn refresh_may_narrow_the_scope_and_is_bound_to_its_client_and_resource() {
    let h = harness();
    public_client(&h, "c1");
    public_client(&h, "c2");
    let first = ok_json(&redeem(&h, "c1", &code_for(&h, "c1")));
    let r0 = first["refresh_token"].as_str().unwrap();
    let before = h.store.state();
    let refused = [
        (
            vec![("scope", "mcp:read offline_access")],
            "c1",
            "invalid_scope",
        ),
        (
            vec![("resource", "https://mcp.example.com/other")],
            "c1",
            "invalid_target",
        ),
        (vec![], "c2", "invalid_grant"),
    ];
    for (extra, client, expected) in refused {
        let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", r0)];
        params.extend(extra);
        assert_eq!(error_of(&token(&h, client, &params)), expected);
    }
    assert_eq!(h.store.state(), before);

    let narrowed = ok_json(&token(
        &h,
        "c1",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r0),
            ("scope", "mcp:read"),
            ("resource", RESOURCE),
        ],
    ));
    assert_eq!(narrowed["scope"], "mcp:read");
    assert_eq!(
        introspect(&h, narrowed["access_token"].as_str().unwrap())["scope"],
        "mcp:read"
    );
    // The child keeps the original grant's scope.
    let next = ok_json(&refresh(
        &h,
        "c1",
        narrowed["refresh_token"].as_str().unwrap(),
    ));
    assert_eq!(next["scope"], "mcp:read mcp:write");
}

/// The operator's machine clients (`machine_clients`): `svc` may get `mcp:read` only, `bot`
/// the default scopes.
const MACHINES: (&str, &str) = ("machine_clients", "svc:svc-secret mcp:read, bot:bot-secret");

fn client_credentials(h: &Harness, auth: &str, extra: &[(&str, &str)]) -> mcp_auth_core::Response {
    let mut pairs = vec![("grant_type", "client_credentials")];
    pairs.extend_from_slice(extra);
    h.call(Request::form("/token", &pairs).with_header("authorization", auth))
}

#[test]
fn client_credentials_is_only_for_the_operators_machine_clients() {
    let h = harness_with(&[MACHINES]);
    let body = ok_json(&client_credentials(&h, &basic("svc", "svc-secret"), &[]));
    assert!(body.get("refresh_token").is_none());
    let seen = introspect(&h, body["access_token"].as_str().unwrap());
    assert_eq!(seen["sub"], "svc");
    assert_eq!(seen["client_id"], "svc");
    assert_eq!(seen["aud"], RESOURCE);
    assert_eq!(seen["scope"], "mcp:read");
    let asked_too_much =
        client_credentials(&h, &basic("svc", "svc-secret"), &[("scope", "mcp:write")]);
    assert_eq!(error_of(&asked_too_much), "invalid_scope");
    let bot = ok_json(&client_credentials(&h, &basic("bot", "bot-secret"), &[]));
    assert_eq!(bot["scope"], "mcp:read mcp:write");
    let wrong = client_credentials(&h, &basic("svc", "bot-secret"), &[]);
    assert_eq!(error_of(&wrong), "invalid_client");

    // A registered client stored with the grant (registered before the upgrade) gets nothing,
    // and neither does one whose id is a machine client's: the machine client answers.
    add_client(&h, "old", Some("s3cret"), &["client_credentials"]);
    add_client(&h, "bot", Some("s3cret"), &["client_credentials"]);
    let before = h.store.state();
    assert_eq!(
        error_of(&client_credentials(&h, &basic("old", "s3cret"), &[])),
        "unauthorized_client"
    );
    assert_eq!(
        error_of(&client_credentials(&h, &basic("bot", "s3cret"), &[])),
        "invalid_client"
    );
    assert_eq!(h.store.state(), before);
    // Nor can a client registered now get it (see `registration.rs`), nor a public one.
    public_client(&h, "cli");
    let public = token(&h, "cli", &[("grant_type", "client_credentials")]);
    assert_eq!(error_of(&public), "unauthorized_client");
}

#[test]
fn client_credentials_needs_a_resource_when_several_are_served() {
    let h = harness_with(&[
        (
            "mcp_server",
            "https://a.example.com/mcp https://b.example.com/mcp",
        ),
        MACHINES,
    ]);
    let auth = basic("svc", "svc-secret");
    assert_eq!(
        error_of(&client_credentials(&h, &auth, &[])),
        "invalid_target"
    );
    let body = ok_json(&client_credentials(
        &h,
        &auth,
        &[("resource", "https://b.example.com/mcp/")],
    ));
    assert_eq!(
        introspect(&h, body["access_token"].as_str().unwrap())["aud"],
        "https://b.example.com/mcp"
    );
}

/// RFC 7592 §2.3: deleting a client invalidates its tokens at once, everywhere they are read.
#[test]
fn deleting_a_client_makes_its_tokens_inactive_at_once() {
    let h = harness();
    let (info, tokens) = registered_and_signed_in(&h, serde_json::json!({}));
    let id = info["client_id"].as_str().unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap();
    let other = signed_in(&h, "c2");
    assert!(is_active(&h, access) && is_active(&h, refresh_token));
    assert_eq!(verify(&h, access).status, 200);

    assert_eq!(delete_client(&h, &info).status, 204);
    assert!(!is_active(&h, access));
    assert!(!is_active(&h, refresh_token));
    assert_eq!(verify(&h, access).status, 401);
    // The client is gone, so is its refresh token (even were its id presented again).
    assert_eq!(error_of(&refresh(&h, id, refresh_token)), "invalid_client");
    let env = h.env();
    assert!(mcp_auth_core::tokens::find_refresh(&env, refresh_token)
        .unwrap()
        .is_none());
    // Another client's tokens are untouched.
    let other_access = other["access_token"].as_str().unwrap();
    assert!(is_active(&h, other_access));
    assert_eq!(verify(&h, other_access).status, 200);
}

/// RFC 7592 `PUT` takes effect at the next refresh: a narrowed scope narrows the token and
/// every later child.
#[test]
fn refresh_after_the_registered_scope_was_narrowed_is_narrowed() {
    let h = harness();
    let (info, first) =
        registered_and_signed_in(&h, serde_json::json!({"scope": "mcp:read mcp:write"}));
    let id = info["client_id"].as_str().unwrap();
    let r0 = first["refresh_token"].as_str().unwrap();

    let narrowed = update_client(&h, &info, serde_json::json!({"scope": "mcp:read"}));
    assert_eq!(narrowed.status, 200);
    let second = ok_json(&refresh(&h, id, r0));
    assert_eq!(second["scope"], "mcp:read");
    assert_eq!(
        introspect(&h, second["access_token"].as_str().unwrap())["scope"],
        "mcp:read"
    );
    // Widening the registration again does not widen the child back.
    let widened = update_client(
        &h,
        &info,
        serde_json::json!({"scope": "mcp:read mcp:write"}),
    );
    assert_eq!(widened.status, 200);
    let r1 = second["refresh_token"].as_str().unwrap();
    let asked = token(
        &h,
        id,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", r1),
            ("scope", "mcp:write"),
        ],
    );
    assert_eq!(error_of(&asked), "invalid_scope");
    let third = ok_json(&refresh(&h, id, r1));
    assert_eq!(third["scope"], "mcp:read");
    assert_eq!(
        introspect(&h, third["refresh_token"].as_str().unwrap())["scope"],
        "mcp:read"
    );
}

/// RFC 7592 `PUT` takes effect at the next refresh: without the `refresh_token` grant, no
/// refresh.
#[test]
fn refresh_after_the_refresh_grant_was_removed_is_unauthorized_client() {
    let h = harness();
    let (info, first) = registered_and_signed_in(&h, serde_json::json!({}));
    let id = info["client_id"].as_str().unwrap();
    let r0 = first["refresh_token"].as_str().unwrap();
    let no_refresh = update_client(
        &h,
        &info,
        serde_json::json!({"grant_types": ["authorization_code"]}),
    );
    assert_eq!(no_refresh.status, 200);
    let before = h.store.state();
    assert_eq!(error_of(&refresh(&h, id, r0)), "unauthorized_client");
    assert_eq!(h.store.state(), before);
}

/// RFC 9700 §4.14.2: with no grace period, the rotated token is reuse at once.
#[test]
fn a_zero_grace_period_is_strict_rotation() {
    let h = harness_with(&[("refresh_grace_period", "0")]);
    let first = signed_in(&h, "c1");
    let r0 = first["refresh_token"].as_str().unwrap();
    let second = ok_json(&refresh(&h, "c1", r0));
    let r1 = second["refresh_token"].as_str().unwrap();
    // The same second: no retry window at all.
    let (reuse, audit) = call_audited(
        &h,
        Request::form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "c1"),
                ("refresh_token", r0),
            ],
        ),
    );
    assert_eq!(error_of(&reuse), "invalid_grant");
    assert_eq!(audit[0].event, AuditKind::RefreshReuse);
    assert!(!is_active(&h, second["access_token"].as_str().unwrap()));
    assert_eq!(error_of(&refresh(&h, "c1", r1)), "invalid_grant");
}

/// RFC 6749 §5.2: every 401 `invalid_client` says how to authenticate, whatever the method.
#[test]
fn every_invalid_client_401_carries_www_authenticate() {
    let h = harness();
    add_client(&h, "conf", Some("s3cret"), &["authorization_code"]);
    public_client(&h, "pub");
    let failures = [
        token(
            &h,
            "nobody",
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        ),
        token(
            &h,
            "conf",
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        ),
        h.call(Request::form(
            "/token",
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "conf"),
                ("client_secret", "no"),
            ],
        )),
        h.call(Request::form("/revoke", &[("token", "x")])),
        h.call(Request::form(
            "/introspect",
            &[("token", "x"), ("client_id", "pub")],
        )),
        h.call(
            Request::form("/token", &[("grant_type", "refresh_token")])
                .with_header("authorization", &basic("conf", "no")),
        ),
    ];
    for res in failures {
        assert_eq!(error_of(&res), "invalid_client");
        assert_eq!(res.status, 401);
        assert_eq!(
            res.header("www-authenticate"),
            Some("Basic realm=\"mcp-auth\"")
        );
    }
}

/// Several clients send a public client's id as Basic with an empty password.
#[test]
fn a_public_client_may_send_basic_with_an_empty_password() {
    let h = harness();
    public_client(&h, "c1");
    let res = h.call(
        redeem_request("c1", &code_for(&h, "c1")).with_header("authorization", &basic("c1", "")),
    );
    ok_json(&res);
    add_client(&h, "conf", Some("s3cret"), &["authorization_code"]);
    let res = h.call(
        Request::form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code_for(&h, "conf")),
                ("code_verifier", VERIFIER),
            ],
        )
        .with_header("authorization", &basic("conf", "")),
    );
    assert_eq!(error_of(&res), "invalid_client");
}

/// RFC 8707 §2: one token, one audience; several `resource` parameters are `invalid_target`.
#[test]
fn several_resources_at_the_token_endpoint_are_invalid_target() {
    let h = harness();
    public_client(&h, "c1");
    let code = code_for(&h, "c1");
    let before = h.store.state();
    let res = h.call(Request::form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", "c1"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("resource", RESOURCE),
            ("resource", "https://mcp.example.com/other"),
        ],
    ));
    assert_eq!(error_of(&res), "invalid_target");
    assert_eq!(res.status, 400);
    assert_eq!(h.store.state(), before);
}

/// `mcp-auth admin clients add` stores a machine client that gets `client_credentials` tokens
/// like a `machine_clients` entry, limited to its scopes; `clients delete` retires it and its
/// tokens at once, as RFC 7592 DELETE does.
#[test]
fn a_provisioned_client_gets_client_credentials_until_deleted() {
    use mcp_auth_core::registration;
    let h = harness();
    let (client, secret) =
        registration::provision(&h.env(), Some("nightly job".into()), Some("mcp:read"), None)
            .unwrap();
    let stored = h.store.snapshot();
    let record =
        String::from_utf8(stored[&format!("client/{}", client.client_id)].clone()).unwrap();
    assert!(!record.contains(secret.expose()), "only the hash is stored");
    let auth = basic(&client.client_id, secret.expose());
    let body = ok_json(&client_credentials(&h, &auth, &[]));
    assert_eq!(body["scope"], "mcp:read");
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&h, access)["client_id"],
        client.client_id.as_str()
    );
    let asked_too_much = client_credentials(&h, &auth, &[("scope", "mcp:write")]);
    assert_eq!(error_of(&asked_too_much), "invalid_scope");
    // Scopes outside `scopes_supported` and control characters in the name are refused.
    assert!(registration::provision(&h.env(), None, Some("admin:all"), None).is_err());
    assert!(registration::provision(&h.env(), Some("a\u{7}".into()), None, None).is_err());

    registration::delete(&h.env(), &client.client_id, None).unwrap();
    assert_eq!(introspect(&h, access)["active"], false);
    assert_eq!(
        error_of(&client_credentials(&h, &auth, &[])),
        "invalid_client"
    );
}

/// What `mcp-auth admin tokens revoke` scans: each live access or refresh record names its
/// holder and family, and revoking the family leaves no live record of it.
#[test]
fn token_records_name_their_holder_until_revoked() {
    use mcp_auth_core::tokens;
    let h = harness();
    let tokens_of_c1 = signed_in(&h, "c1");
    let keys: Vec<String> = h
        .store
        .keys()
        .into_iter()
        .filter(|k| tokens::is_token_key(k))
        .collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let env = h.env();
    let holders: Vec<tokens::Holder> = keys
        .iter()
        .map(|k| tokens::holder(&env, k).unwrap().unwrap())
        .collect();
    assert!(holders
        .iter()
        .all(|x| x.sub == "alice" && x.client_id == "c1"));
    assert_eq!(holders[0].family, holders[1].family);
    tokens::revoke_family(&env, &holders[0].family).unwrap();
    assert!(keys
        .iter()
        .all(|k| tokens::holder(&env, k).unwrap().is_none()));
    drop(env);
    let access = tokens_of_c1["access_token"].as_str().unwrap();
    assert_eq!(introspect(&h, access)["active"], false);
    assert!(!tokens::is_token_key("access/abc#claim"));
}

/// A provisioned client bound to one resource gets tokens for that one only, even where
/// several are served and others are asked for.
#[test]
fn a_provisioned_client_bound_to_a_resource_gets_tokens_for_it_only() {
    use mcp_auth_core::registration;
    let h = harness_with(&[(
        "mcp_server",
        "https://a.example.com/mcp https://b.example.com/mcp",
    )]);
    let env = h.env();
    let unserved = registration::provision(&env, None, None, Some("https://c.example.com/mcp"));
    assert_eq!(
        unserved.unwrap_err().code,
        mcp_auth_core::ErrorCode::InvalidTarget
    );
    let (client, secret) =
        registration::provision(&env, None, None, Some("HTTPS://B.example.com/mcp")).unwrap();
    drop(env);
    let auth = basic(&client.client_id, secret.expose());
    let body = ok_json(&client_credentials(&h, &auth, &[]));
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(introspect(&h, access)["aud"], "https://b.example.com/mcp");
    let same = client_credentials(&h, &auth, &[("resource", "https://b.example.com/mcp/")]);
    assert_eq!(same.status, 200);
    let other = client_credentials(&h, &auth, &[("resource", "https://a.example.com/mcp")]);
    assert_eq!(error_of(&other), "invalid_target");
}
