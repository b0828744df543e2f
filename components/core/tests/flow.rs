//! The whole authorization-code flow as an MCP client and a user meet it, through the public
//! HTTP surface only: discovery, dynamic registration, /authorize, the built-in login page,
//! consent, /token, introspection, ForwardAuth, refresh and revocation.

#[path = "authz_support/mod.rs"]
mod authz_support;

use authz_support::{hidden, location, post_form, query_of, Server};
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{Method, Request, Response};
use serde_json::{json, Value};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const RESOURCE: &str = "http://127.0.0.1:8001/mcp";
const REDIRECT: &str = "http://127.0.0.1/callback";

fn json_of(res: &Response) -> Value {
    res.json_body()
        .unwrap_or_else(|| panic!("{}: {}", res.status, String::from_utf8_lossy(&res.body)))
}

fn form(path: &str, pairs: &[(&str, &str)]) -> Request {
    Request::form(path, pairs)
}

/// Discovery → registration → sign-in → code, as a public native client would do it.
/// Returns the client id and the code.
fn sign_in(h: &Server, omit_redirect_uri: bool) -> (String, String) {
    let meta = json_of(&h.call(Request::new(
        Method::Get,
        "/.well-known/oauth-authorization-server",
    )));
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));

    let registration = Request::new(Method::Post, "/register")
        .with_header("content-type", "application/json")
        .with_body(
            json!({
                "client_name": "Flow Test",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            })
            .to_string(),
        );
    let res = h.call(registration);
    assert_eq!(res.status, 201);
    let client = json_of(&res);
    let client_id = client["client_id"].as_str().unwrap().to_string();
    assert_eq!(
        client["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );

    // The client's loopback listener got a port of its own (RFC 8252 §7.3).
    let redirect = "http://127.0.0.1:49152/callback";
    let mut query = form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "xyz")
        .append_pair("resource", RESOURCE);
    if !omit_redirect_uri {
        query.append_pair("redirect_uri", redirect);
    }
    let res = h.call(Request::new(
        Method::Get,
        &format!("/authorize?{}", query.finish()),
    ));
    assert_eq!(res.status, 302);
    let login_url = location(&res).to_string();
    let login_path = login_url.trim_start_matches("http://127.0.0.1:3000");
    let login_page = h.call(Request::new(Method::Get, login_path));
    assert_eq!(login_page.status, 200);

    let consent = post_form(
        h,
        "/login",
        &login_page,
        &[("username", "demo"), ("password", "demo")],
    );
    assert_eq!(
        consent.status,
        200,
        "{}",
        String::from_utf8_lossy(&consent.body)
    );
    assert!(String::from_utf8_lossy(&consent.body).contains("Flow Test"));
    assert!(!hidden(&consent, "session").is_empty());

    let back = post_form(h, "/consent", &consent, &[("decision", "approve")]);
    assert_eq!(back.status, 302);
    let params = query_of(location(&back));
    assert_eq!(params["state"], "xyz");
    assert_eq!(params["iss"], "http://127.0.0.1:3000/");
    if !omit_redirect_uri {
        assert!(location(&back).starts_with(redirect));
    }
    (client_id, params["code"].clone())
}

fn redeem(h: &Server, client_id: &str, code: &str, redirect_uri: &str) -> Response {
    h.call(form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", redirect_uri),
            ("resource", RESOURCE),
        ],
    ))
}

fn introspect(h: &Server, token: &str) -> Value {
    json_of(
        &h.call(
            form("/introspect", &[("token", token)])
                .with_header("authorization", "Basic cnM6cnMtc2VjcmV0"),
        ),
    )
}

fn harness() -> Server {
    // Resource servers introspect with rs:rs-secret ("cnM6cnMtc2VjcmV0" in Basic).
    Server::new(Harness::with_config(MapConfig::from([(
        "introspection_credentials",
        "rs:rs-secret",
    )])))
}

#[test]
fn a_public_client_signs_in_and_uses_its_tokens() {
    let h = harness();
    let (client_id, code) = sign_in(&h, false);

    let res = redeem(&h, &client_id, &code, "http://127.0.0.1:49152/callback");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let tokens = json_of(&res);
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let info = introspect(&h, access);
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "demo");
    assert_eq!(info["aud"], RESOURCE);
    assert_eq!(info["client_id"], client_id.as_str());

    let verify = Request::new(Method::Get, "/verify")
        .with_header("authorization", &format!("Bearer {access}"))
        .with_header("x-forwarded-proto", "http")
        .with_header("x-forwarded-host", "127.0.0.1:8001")
        .with_header("x-forwarded-uri", "/mcp");
    let res = h.call(verify);
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-auth-subject"), Some("demo"));

    // The code is single use.
    let replay = redeem(&h, &client_id, &code, "http://127.0.0.1:49152/callback");
    assert_eq!(replay.status, 400);
    assert_eq!(
        introspect(&h, access)["active"],
        false,
        "a replay revokes the family"
    );
    assert_eq!(introspect(&h, refresh)["active"], false);
}

#[test]
fn refresh_rotates_and_revocation_ends_the_family() {
    let h = harness();
    let (client_id, code) = sign_in(&h, false);
    let tokens = json_of(&redeem(
        &h,
        &client_id,
        &code,
        "http://127.0.0.1:49152/callback",
    ));
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let res = h.call(form(
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", refresh),
        ],
    ));
    let rotated = json_of(&res);
    let new_refresh = rotated["refresh_token"].as_str().unwrap();
    assert_ne!(new_refresh, refresh);
    assert_eq!(
        introspect(&h, rotated["access_token"].as_str().unwrap())["active"],
        true
    );

    let res = h.call(form(
        "/revoke",
        &[("client_id", &client_id), ("token", new_refresh)],
    ));
    assert_eq!(res.status, 200);
    assert_eq!(introspect(&h, new_refresh)["active"], false);
    assert_eq!(
        introspect(&h, rotated["access_token"].as_str().unwrap())["active"],
        false
    );
}

#[test]
fn a_client_that_omitted_redirect_uri_may_still_send_it_at_the_token_endpoint() {
    let h = harness();
    let (client_id, code) = sign_in(&h, true);
    let res = redeem(&h, &client_id, &code, REDIRECT);
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
}
