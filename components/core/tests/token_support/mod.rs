//! Helpers shared by the token-side integration tests (token, device, introspection, keys).
#![allow(dead_code)]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mcp_auth_core::audit::AuditEvent;
use mcp_auth_core::client::{self, AuthMethod, Client, ClientMetadata, ClientSource};
use mcp_auth_core::grants::{self, AuthorizationCode};
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{records, Clock, Endpoint, Method, Request, Response};
use serde_json::Value;

pub const RESOURCE: &str = "https://mcp.example.com/mcp";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "http://127.0.0.1:9000/callback";
pub const RS_BASIC: (&str, &str) = ("rs", "rs-secret");
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One configured resource and one resource-server credential pair.
pub fn harness() -> Harness {
    harness_with(&[])
}

pub fn harness_with(extra: &[(&str, &str)]) -> Harness {
    let mut config = MapConfig::from([
        ("mcp_server", RESOURCE),
        ("introspection_credentials", "rs:rs-secret"),
    ]);
    for (k, v) in extra {
        config.set(k, v);
    }
    Harness::with_config(config)
}

/// Store a client; confidential when `secret` is given.
pub fn add_client(h: &Harness, id: &str, secret: Option<&str>, grant_types: &[&str]) {
    let c = Client {
        client_id: id.into(),
        source: ClientSource::Registered,
        client_id_issued_at: 0,
        client_secret_hash: secret.map(mcp_auth_core::secret::hash),
        client_secret_expires_at: 0,
        registration_token_hash: None,
        metadata: ClientMetadata {
            redirect_uris: vec![REDIRECT.into()],
            token_endpoint_auth_method: if secret.is_some() {
                AuthMethod::ClientSecretBasic
            } else {
                AuthMethod::None
            },
            grant_types: grant_types.iter().map(|g| g.to_string()).collect(),
            response_types: vec!["code".into()],
            application_type: "native".into(),
            ..ClientMetadata::default()
        },
    };
    records::put(&h.env(), &client::key(id), &c, None).unwrap();
}

/// A public client with the code and refresh grants.
pub fn public_client(h: &Harness, id: &str) {
    add_client(h, id, None, &["authorization_code", "refresh_token"]);
}

/// A code for `client_id`, signed in as alice, with the Appendix B challenge.
pub fn code_for(h: &Harness, client_id: &str) -> String {
    let grant = AuthorizationCode {
        client_id: client_id.into(),
        redirect_uri: REDIRECT.into(),
        code_challenge: CHALLENGE.into(),
        resource: RESOURCE.into(),
        scope: "mcp:read mcp:write".into(),
        sub: "alice".into(),
        auth_time: h.clock.now() - 5,
        username: None,
    };
    grants::issue_code(&h.env(), &grant)
        .unwrap()
        .expose()
        .to_string()
}

pub fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// Serve `req` and return the audit events it left, too.
pub fn call_audited(h: &Harness, req: Request) -> (Response, Vec<AuditEvent>) {
    let env = h.env();
    let res = mcp_auth_core::handle(&env, &req, Endpoint::ALL);
    (res, env.take_audit())
}

/// `POST /token` for a public client.
pub fn token(h: &Harness, client_id: &str, pairs: &[(&str, &str)]) -> Response {
    let mut all = vec![("client_id", client_id)];
    all.extend_from_slice(pairs);
    h.call(Request::form("/token", &all))
}

pub fn redeem(h: &Harness, client_id: &str, code: &str) -> Response {
    h.call(redeem_request(client_id, code))
}

/// The token request that redeems `code` as a public client would.
pub fn redeem_request(client_id: &str, code: &str) -> Request {
    Request::form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ],
    )
}

pub fn refresh(h: &Harness, client_id: &str, refresh_token: &str) -> Response {
    token(
        h,
        client_id,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
}

/// A public client `client_id` and the token response to its first code: what a client
/// holds after signing in.
pub fn signed_in(h: &Harness, client_id: &str) -> Value {
    public_client(h, client_id);
    ok_json(&redeem(h, client_id, &code_for(h, client_id)))
}

/// The body of a 200, or a panic naming what came back.
pub fn ok_json(res: &Response) -> Value {
    assert_eq!(
        res.status,
        200,
        "body: {}",
        String::from_utf8_lossy(&res.body)
    );
    res.json_body().unwrap()
}

/// The `error` of an error response, after checking it is never cached.
pub fn error_of(res: &Response) -> String {
    assert_eq!(res.header("cache-control"), Some("no-store"));
    res.json_body().unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Introspect `token` as the configured resource server.
pub fn introspect(h: &Harness, token: &str) -> Value {
    let req = Request::form("/introspect", &[("token", token)])
        .with_header("authorization", &basic(RS_BASIC.0, RS_BASIC.1));
    ok_json(&h.call(req))
}

pub fn is_active(h: &Harness, token: &str) -> bool {
    introspect(h, token)["active"] == Value::Bool(true)
}

/// Register (RFC 7591) a public client for [`REDIRECT`] with `extra` metadata; the client
/// information response.
pub fn register_public(h: &Harness, extra: Value) -> Value {
    let mut body = serde_json::json!({
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let res = h.call(json_request(Method::Post, "/register", None, &body));
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    res.json_body().unwrap()
}

/// A client registered with `extra` metadata and the token response to its first code: its
/// registration response and those tokens.
pub fn registered_and_signed_in(h: &Harness, extra: Value) -> (Value, Value) {
    let info = register_public(h, extra);
    let id = info["client_id"].as_str().unwrap();
    let tokens = ok_json(&redeem(h, id, &code_for(h, id)));
    (info, tokens)
}

/// RFC 7592 `PUT` of `info` (a registration response) with its metadata changed by `changes`.
pub fn update_client(h: &Harness, info: &Value, changes: Value) -> Response {
    let mut body = serde_json::json!({
        "client_id": info["client_id"],
        "redirect_uris": info["redirect_uris"],
        "token_endpoint_auth_method": info["token_endpoint_auth_method"],
        "grant_types": info["grant_types"],
    });
    if let Some(scope) = info.get("scope") {
        body["scope"] = scope.clone();
    }
    for (k, v) in changes.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    h.call(json_request(
        Method::Put,
        &management_path(info),
        info["registration_access_token"].as_str(),
        &body,
    ))
}

/// RFC 7592 `DELETE` of the client `info` (a registration response) names.
pub fn delete_client(h: &Harness, info: &Value) -> Response {
    let token = info["registration_access_token"].as_str().unwrap();
    h.call(
        Request::new(Method::Delete, &management_path(info))
            .with_header("authorization", &format!("Bearer {token}")),
    )
}

fn management_path(info: &Value) -> String {
    format!("/register/{}", info["client_id"].as_str().unwrap())
}

fn json_request(method: Method, path: &str, bearer: Option<&str>, body: &Value) -> Request {
    let req = Request::new(method, path)
        .with_header("content-type", "application/json")
        .with_body(body.to_string());
    match bearer {
        Some(token) => req.with_header("authorization", &format!("Bearer {token}")),
        None => req,
    }
}

/// `GET /verify` for `token` as a reverse proxy in front of [`RESOURCE`] asks it.
pub fn verify(h: &Harness, token: &str) -> Response {
    h.call(
        Request::new(Method::Get, "/verify")
            .with_header("authorization", &format!("Bearer {token}"))
            .with_header("x-forwarded-proto", "https")
            .with_header("x-forwarded-host", "mcp.example.com")
            .with_header("x-forwarded-uri", "/mcp/tools"),
    )
}
