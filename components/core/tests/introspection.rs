//! `POST /introspect` (RFC 7662), `POST /revoke` (RFC 7009) and ForwardAuth `GET /verify`.

mod token_support;

use mcp_auth_core::audit::AuditKind;
use mcp_auth_core::testing::Harness;
use mcp_auth_core::tokens::{self, Grant, Refresh};
use mcp_auth_core::{Method, Request, Response};
use serde_json::json;
use token_support::*;

/// A public client `c1` with tokens from a code: (access, refresh).
fn tokens(h: &Harness) -> (String, String) {
    let body = signed_in(h, "c1");
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
    )
}

fn introspect_as(h: &Harness, auth: Option<String>, pairs: &[(&str, &str)]) -> Response {
    let req = Request::form("/introspect", pairs);
    h.call(match auth {
        Some(a) => req.with_header("authorization", &a),
        None => req,
    })
}

#[test]
fn who_may_introspect() {
    let h = harness();
    let (access, _) = tokens(&h);
    add_client(&h, "conf", Some("s3cret"), &["client_credentials"]);
    let t = ("token", access.as_str());
    let allowed = [
        introspect_as(&h, Some(basic("rs", "rs-secret")), &[t]),
        introspect_as(
            &h,
            None,
            &[t, ("client_id", "rs"), ("client_secret", "rs-secret")],
        ),
    ];
    for res in allowed {
        assert_eq!(ok_json(&res)["active"], true);
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
    // RFC 7662 §4: anyone may register a confidential client, so by default one may not
    // introspect (it could scan for tokens); nor may anyone else but the resource servers.
    let refused = [
        introspect_as(&h, Some(basic("conf", "s3cret")), &[t]),
        introspect_as(
            &h,
            None,
            &[t, ("client_id", "conf"), ("client_secret", "s3cret")],
        ),
        introspect_as(&h, None, &[t]),
        introspect_as(&h, None, &[t, ("client_id", "c1")]),
        introspect_as(&h, Some(basic("rs", "wrong")), &[t]),
        introspect_as(&h, Some(basic("conf", "wrong")), &[t]),
        introspect_as(
            &h,
            None,
            &[t, ("client_id", "rs"), ("client_secret", "nope")],
        ),
    ];
    for res in refused {
        assert_eq!(res.status, 401);
        assert_eq!(error_of(&res), "invalid_client");
    }
    let missing = introspect_as(&h, Some(basic("rs", "rs-secret")), &[]);
    assert_eq!(error_of(&missing), "invalid_request");
}

/// Tokens for `resource` issued to `client_id` (alice's): (access, refresh).
fn tokens_for(h: &Harness, client_id: &str, resource: &str) -> (String, String) {
    let grant = Grant {
        client_id: client_id.into(),
        sub: "alice".into(),
        scope: "mcp:read".into(),
        resource: resource.into(),
        auth_time: None,
        family: tokens::new_family(&h.env()),
        username: None,
    };
    let issued = tokens::issue(&h.env(), &grant, Refresh::New).unwrap();
    (issued.access_token, issued.refresh_token.unwrap())
}

const OTHER: &str = "https://other.example.com/mcp";

#[test]
fn each_resource_server_sees_only_tokens_of_its_audiences() {
    let h = harness_with(&[
        ("mcp_server", &format!("{RESOURCE}, {OTHER}")),
        (
            "introspection_credentials",
            &format!("rs:rs-secret {RESOURCE}, other:o-secret {OTHER}, all:a-secret"),
        ),
    ]);
    let (mine, mine_refresh) = tokens_for(&h, "c1", RESOURCE);
    let (theirs, theirs_refresh) = tokens_for(&h, "c1", OTHER);
    let seen = |who: &str, secret: &str, token: &str| {
        ok_json(&introspect_as(
            &h,
            Some(basic(who, secret)),
            &[("token", token)],
        ))
    };
    for token in [&mine, &mine_refresh] {
        assert_eq!(seen("rs", "rs-secret", token)["aud"], RESOURCE);
        assert_eq!(seen("other", "o-secret", token), json!({"active": false}));
    }
    for token in [&theirs, &theirs_refresh] {
        assert_eq!(seen("rs", "rs-secret", token), json!({"active": false}));
        assert_eq!(seen("other", "o-secret", token)["aud"], OTHER);
    }
    // An entry without audiences serves every configured resource.
    for token in [&mine, &theirs] {
        assert_eq!(seen("all", "a-secret", token)["active"], true);
    }
}

#[test]
fn clients_introspect_only_their_own_tokens_and_only_when_allowed() {
    let h = harness_with(&[("introspection_allow_clients", "true")]);
    add_client(
        &h,
        "conf",
        Some("s3cret"),
        &["authorization_code", "refresh_token"],
    );
    add_client(&h, "conf2", Some("s3cret2"), &["authorization_code"]);
    public_client(&h, "pub");
    let (access, refresh_token) = tokens_for(&h, "conf", RESOURCE);
    for token in [&access, &refresh_token] {
        let own = introspect_as(&h, Some(basic("conf", "s3cret")), &[("token", token)]);
        assert_eq!(ok_json(&own)["client_id"], "conf");
        let other = introspect_as(&h, Some(basic("conf2", "s3cret2")), &[("token", token)]);
        assert_eq!(ok_json(&other), json!({"active": false}));
    }
    // A public client proves nothing about itself: never.
    let public = introspect_as(&h, None, &[("token", &access), ("client_id", "pub")]);
    assert_eq!(error_of(&public), "invalid_client");
}

#[test]
fn active_tokens_are_described_and_others_are_only_inactive() {
    let h = harness();
    let (access, refresh_token) = tokens(&h);
    let seen = introspect(&h, &access);
    assert_eq!(seen["active"], true);
    assert_eq!(seen["client_id"], "c1");
    assert_eq!(seen["sub"], "alice");
    assert_eq!(seen["aud"], RESOURCE);
    assert_eq!(seen["iss"], "http://127.0.0.1:3000/");
    assert_eq!(seen["scope"], "mcp:read mcp:write");
    assert_eq!(seen["token_type"], "Bearer");
    assert_eq!(
        seen["exp"].as_u64().unwrap() - seen["iat"].as_u64().unwrap(),
        3600
    );
    assert!(seen["jti"].is_string());

    let seen = introspect(&h, &refresh_token);
    assert_eq!(seen["active"], true);
    assert_eq!(seen["token_type"], "refresh_token");
    let hinted = introspect_as(
        &h,
        Some(basic("rs", "rs-secret")),
        &[
            ("token", &refresh_token),
            ("token_type_hint", "refresh_token"),
        ],
    );
    assert_eq!(ok_json(&hinted), seen);

    assert_eq!(introspect(&h, "unknown"), json!({"active": false}));
    // A rotated refresh token is no longer active.
    ok_json(&refresh(&h, "c1", &refresh_token));
    assert_eq!(introspect(&h, &refresh_token), json!({"active": false}));
    h.clock.advance(3600);
    assert_eq!(introspect(&h, &access), json!({"active": false}));
}

#[test]
fn revoking_a_refresh_token_revokes_its_family() {
    let h = harness();
    let (access, refresh_token) = tokens(&h);
    let (res, audit) = call_audited(
        &h,
        Request::form(
            "/revoke",
            &[
                ("client_id", "c1"),
                ("token", &refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
        ),
    );
    assert_eq!(res.status, 200);
    assert_eq!(audit[0].event, AuditKind::TokenRevoked);
    assert!(!is_active(&h, &access));
    assert_eq!(
        error_of(&refresh(&h, "c1", &refresh_token)),
        "invalid_grant"
    );
}

#[test]
fn revoking_an_access_token_leaves_the_refresh_token() {
    let h = harness();
    let (access, refresh_token) = tokens(&h);
    let res = h.call(Request::form(
        "/revoke",
        &[("client_id", "c1"), ("token", &access)],
    ));
    assert_eq!(res.status, 200);
    assert!(!is_active(&h, &access));
    assert!(is_active(&h, &refresh_token));
}

#[test]
fn unknown_tokens_and_other_clients_tokens_change_nothing() {
    let h = harness();
    let (access, refresh_token) = tokens(&h);
    public_client(&h, "c2");
    let before = h.store.snapshot();
    for token in [access.as_str(), refresh_token.as_str(), "unknown"] {
        let res = h.call(Request::form(
            "/revoke",
            &[("client_id", "c2"), ("token", token)],
        ));
        assert_eq!(res.status, 200);
    }
    assert_eq!(h.store.snapshot(), before);
    let unauthenticated = h.call(Request::form("/revoke", &[("token", &access)]));
    assert_eq!(error_of(&unauthenticated), "invalid_client");
    let no_token = h.call(Request::form("/revoke", &[("client_id", "c1")]));
    assert_eq!(error_of(&no_token), "invalid_request");
    assert_eq!(h.store.snapshot(), before);
    assert!(is_active(&h, &access));
}

fn verify(h: &Harness, token: Option<&str>, proto: &str, host: &str, uri: &str) -> Response {
    let mut req = Request::new(Method::Get, "/verify")
        .with_header("x-forwarded-proto", proto)
        .with_header("x-forwarded-host", host)
        .with_header("x-forwarded-uri", uri);
    if let Some(t) = token {
        req = req.with_header("authorization", &format!("Bearer {t}"));
    }
    h.call(req)
}

#[test]
fn verify_admits_requests_within_the_tokens_audience() {
    let h = harness();
    let (access, _) = tokens(&h);
    for uri in ["/mcp", "/mcp/", "/mcp/tools?x=1"] {
        let res = verify(&h, Some(&access), "https", "mcp.example.com", uri);
        assert_eq!(res.status, 200, "{uri}");
        assert_eq!(res.header("x-auth-subject"), Some("alice"));
        assert_eq!(res.header("x-user-id"), Some("alice"));
        assert_eq!(res.header("x-auth-client-id"), Some("c1"));
        assert_eq!(res.header("x-auth-scope"), Some("mcp:read mcp:write"));
    }
    let res = verify(&h, Some(&access), "HTTPS", "MCP.example.com:443", "/mcp");
    assert_eq!(res.status, 200);
}

/// A proxy that keeps the client's `Host` and sends no `X-Forwarded-Host`: under wasi:http
/// the host arrives only as the request's authority, never as a `host` header.
#[test]
fn verify_takes_the_host_from_the_authority_when_none_is_forwarded() {
    let h = harness();
    let (access, _) = tokens(&h);
    let ask = |authority: &str| {
        h.call(
            Request::new(Method::Get, "/verify")
                .with_authority(authority)
                .with_header("x-forwarded-proto", "https")
                .with_header("x-forwarded-uri", "/mcp/tools")
                .with_header("authorization", &format!("Bearer {access}")),
        )
    };
    let res = ask("mcp.example.com");
    assert_eq!(res.status, 200, "{:?}", res.json_body());
    assert_eq!(res.header("x-auth-subject"), Some("alice"));
    let res = ask("other.example.com");
    assert_eq!(res.status, 401);
    assert!(res.header("www-authenticate").unwrap().contains(
        "resource_metadata=\"https://other.example.com/.well-known/oauth-protected-resource\""
    ));
}

#[test]
fn verify_refuses_other_audiences_and_bad_tokens_with_a_challenge() {
    let h = harness();
    let (access, refresh_token) = tokens(&h);
    let metadata =
        "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\"";
    let refused = [
        verify(&h, Some(&access), "https", "mcp.example.com", "/mcpx"),
        verify(
            &h,
            Some(&access),
            "https",
            "mcp.example.com",
            "/mcp/../admin",
        ),
        verify(&h, Some(&access), "http", "mcp.example.com", "/mcp"),
        verify(&h, Some(&access), "https", "other.example.com", "/mcp"),
        verify(
            &h,
            Some(&access),
            "https",
            "other.example.com@mcp.example.com",
            "/mcp",
        ),
        verify(&h, Some(&refresh_token), "https", "mcp.example.com", "/mcp"),
        verify(&h, Some("garbage"), "https", "mcp.example.com", "/mcp"),
    ];
    for res in &refused {
        assert_eq!(res.status, 401);
        let challenge = res.header("www-authenticate").unwrap();
        assert!(
            challenge.starts_with("Bearer realm=\"mcp-auth\""),
            "{challenge}"
        );
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
    assert!(refused[5]
        .header("www-authenticate")
        .unwrap()
        .contains(metadata));
    let anonymous = verify(&h, None, "https", "mcp.example.com", "/mcp/x");
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some(format!("Bearer realm=\"mcp-auth\", {metadata}").as_str())
    );
    let post = h.call(Request::new(Method::Post, "/verify"));
    assert_eq!(post.status, 405);
}
