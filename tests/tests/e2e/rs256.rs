//! RS256, which RFC 9068 §4 makes every authorization server support, end to end: `mcp-auth
//! serve` with `JWT_ALGORITHM=RS256` generates its RSA key once and publishes it, and the
//! official Python SDK's resource server (`tests/python/mcp_server.py`: PyJWT with
//! `cryptography`) verifies the access tokens, first and refreshed, against the JWKS.

use serde_json::{json, Value};

use crate::support::python::{McpServer, Verify};
use crate::support::*;

#[test]
fn the_python_sdk_resource_server_verifies_rs256_tokens_by_the_jwks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = McpServer::start(dir.path(), Verify::Jwks);
    let options = HostOptions::default()
        .variable("MCP_SERVER", &server.url)
        .variable("JWT_ALGORITHM", "RS256");
    let host = Host::start(&dir.path().join("host"), &options);
    server.trust(&host.base);
    let browser = Browser::new();

    let keys = rsa_keys(&browser, &host);
    let client_id = register_public_client(&browser, &host.base);
    let tokens = sign_in_for(&browser, &host, &client_id, &server.url);
    let access = text(&tokens, "access_token");
    assert_eq!(header_of(access)["alg"], "RS256");
    assert_eq!(initialize(&browser, &server.url, Some(access)).status, 200);

    let refreshed = tokens_of(&browser.post_form(
        &host.url("/token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", text(&tokens, "refresh_token")),
        ],
    ));
    let access = text(&refreshed, "access_token");
    assert_eq!(header_of(access)["kid"], keys[0]["kid"]);
    assert_eq!(initialize(&browser, &server.url, Some(access)).status, 200);
    let log = server.log_text();
    assert!(!log.contains("refused a token"), "{log}");
    assert_eq!(rsa_keys(&browser, &host), keys, "generated once");
}

/// The host's JWKS, checked to hold one public RSA key for RS256.
fn rsa_keys(browser: &Browser, host: &Host) -> Vec<Value> {
    let jwks = browser.get(&host.url("/jwks")).json();
    let keys = jwks["keys"].as_array().expect("keys").clone();
    assert_eq!(keys.len(), 1, "{jwks}");
    assert_eq!(
        (&keys[0]["kty"], &keys[0]["alg"], &keys[0]["use"]),
        (&json!("RSA"), &json!("RS256"), &json!("sig")),
        "{jwks}"
    );
    assert!(keys[0].get("d").is_none(), "{jwks}");
    keys
}

/// The built-in login and consent, then the code's redemption, for `resource`.
fn sign_in_for(browser: &Browser, host: &Host, client_id: &str, resource: &str) -> Value {
    let url = authorization_url_for(&host.base, client_id, "st-1", resource);
    let back = approve_as_demo(browser, &url, "E2E Client");
    let code = client_redirect_code(&back, &issuer_of(&host.base));
    tokens_of(&browser.post_form(
        &host.url("/token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("resource", resource),
        ],
    ))
}

/// A JWT's protected header.
fn header_of(jwt: &str) -> Value {
    use base64::Engine as _;
    let header = jwt.split('.').next().expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON header")
}
