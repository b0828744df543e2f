//! The authorization-code flow with the built-in login (the default provider; `demo`/`demo`
//! exists because the issuer is on loopback): discovery, registration, /authorize, login,
//! consent, /token, introspection, ForwardAuth `/verify`, refresh rotation, revocation, and a
//! replayed code.

use serde_json::json;

use crate::support::*;

on_each_store!(flow);

fn flow(host: &Host) {
    let browser = Browser::new();
    let base = host.base.as_str();

    let metadata = browser
        .get(&host.url("/.well-known/oauth-authorization-server"))
        .json();
    assert_eq!(metadata["issuer"], base);
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(metadata["token_endpoint"], host.url("/token"));

    let client_id = register_public_client(&browser, base);
    let code = sign_in_locally(&browser, base, base, &client_id);
    let tokens = tokens_of(&redeem(&browser, base, &client_id, &code));
    let access = text(&tokens, "access_token");
    let refresh = text(&tokens, "refresh_token");

    let info = introspect(&browser, base, access);
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "demo");
    assert_eq!(info["aud"], RESOURCE);
    assert_eq!(info["client_id"], client_id.as_str());

    // ForwardAuth, as a reverse proxy in front of the MCP server asks.
    let forwarded = [
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "127.0.0.1:8001"),
        ("x-forwarded-uri", "/mcp"),
    ];
    let bearer = format!("Bearer {access}");
    let mut with_token = forwarded.to_vec();
    with_token.push(("authorization", bearer.as_str()));
    let verified = browser.get_with(&host.url("/verify"), &with_token);
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.header("x-auth-subject"), Some("demo"));
    let anonymous = browser.get_with(&host.url("/verify"), &forwarded);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").is_some());

    // Refresh rotates the refresh token (OAuth 2.1 §4.3.1).
    let rotated = tokens_of(&browser.post_form(
        &host.url("/token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", refresh),
        ],
    ));
    let new_refresh = text(&rotated, "refresh_token");
    let new_access = text(&rotated, "access_token");
    assert_ne!(new_refresh, refresh);
    assert_eq!(introspect(&browser, base, new_access)["active"], true);

    // Revoking the refresh token (RFC 7009) ends its family.
    let revoked = browser.post_form(
        &host.url("/revoke"),
        &[("client_id", &client_id), ("token", new_refresh)],
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(introspect(&browser, base, new_refresh)["active"], false);
    assert_eq!(introspect(&browser, base, new_access)["active"], false);

    // The code was single use.
    let replay = redeem(&browser, base, &client_id, &code);
    assert_eq!(replay.status, 400);
    assert_eq!(replay.error(), "invalid_grant");
}
