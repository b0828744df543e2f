//! Dynamic client registration (RFC 7591) and client configuration (RFC 7592).

use mcp_auth_core::audit::AuditKind;
use mcp_auth_core::client::{self, AuthMethod, Client};
use mcp_auth_core::http::Params;
use mcp_auth_core::records;
use mcp_auth_core::testing::{Harness, MapConfig, TEST_EPOCH};
use mcp_auth_core::{handle, Endpoint, Method, Request, Response};
use serde_json::{json, Value};

fn register_request(body: &Value) -> Request {
    Request::new(Method::Post, "/register")
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

fn register(h: &Harness, body: Value) -> Response {
    h.call(register_request(&body))
}

/// Register and return the response body.
fn registered(h: &Harness, body: Value) -> Value {
    let res = register(h, body);
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    res.json_body().unwrap()
}

fn public_client() -> Value {
    json!({
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "Example MCP Client",
    })
}

fn manage(method: Method, client_id: &str, token: Option<&str>) -> Request {
    let req = Request::new(method, &format!("/register/{client_id}"));
    match token {
        Some(t) => req.with_header("authorization", &format!("Bearer {t}")),
        None => req,
    }
}

fn put(h: &Harness, client_id: &str, token: &str, body: Value) -> Response {
    h.call(
        manage(Method::Put, client_id, Some(token))
            .with_header("content-type", "application/json")
            .with_body(body.to_string()),
    )
}

fn error_code(res: &Response) -> String {
    res.json_body().unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string()
}

fn stored(h: &Harness, client_id: &str) -> Option<Client> {
    records::get::<Client>(&h.env(), &client::key(client_id)).unwrap()
}

#[test]
fn public_native_client_registers() {
    let h = Harness::new();
    let mut body = public_client();
    body["application_type"] = json!("native");
    let env = h.env();
    let req = register_request(&body);
    let req = Request {
        client_addr: Some("203.0.113.9".into()),
        ..req
    };
    let res = handle(&env, &req, Endpoint::ALL);
    assert_eq!(res.status, 201);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let info = res.json_body().unwrap();
    let id = info["client_id"].as_str().unwrap();
    assert!(id.len() >= 22);
    assert!(id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert!(info.get("client_secret").is_none());
    assert_eq!(info["client_id_issued_at"], TEST_EPOCH);
    assert_eq!(info["client_secret_expires_at"], 0);
    assert_eq!(info["application_type"], "native");
    assert_eq!(info["token_endpoint_auth_method"], "none");
    assert_eq!(info["client_name"], "Example MCP Client");
    assert_eq!(
        info["redirect_uris"],
        json!(["http://127.0.0.1:33418/callback"])
    );
    assert_eq!(
        info["registration_client_uri"],
        format!("http://127.0.0.1:3000/register/{id}")
    );
    let token = info["registration_access_token"].as_str().unwrap();

    let client = stored(&h, id).unwrap();
    assert!(!client.is_confidential());
    assert_eq!(client.metadata.application_type, "native");
    // Only the hash of the registration token is kept.
    let raw: Vec<u8> = h.store.snapshot().values().flatten().copied().collect();
    assert!(!String::from_utf8_lossy(&raw).contains(token));

    let audit = env.take_audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event, AuditKind::ClientRegistered);
    assert_eq!(audit[0].client_id.as_deref(), Some(id));
    assert_eq!(audit[0].ip.as_deref(), Some("203.0.113.9"));
}

#[test]
fn client_secret_post_gets_a_working_secret() {
    let h = Harness::new();
    let mut body = public_client();
    body["token_endpoint_auth_method"] = json!("client_secret_post");
    let info = registered(&h, body);
    let id = info["client_id"].as_str().unwrap();
    let secret = info["client_secret"].as_str().unwrap();
    assert_eq!(info["client_secret_expires_at"], 0);
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_post");

    let raw: Vec<u8> = h.store.snapshot().values().flatten().copied().collect();
    assert!(!String::from_utf8_lossy(&raw).contains(secret));

    let env = h.env();
    let req = Request::new(Method::Post, "/token");
    let good = Params::parse(format!("client_id={id}&client_secret={secret}").as_bytes()).unwrap();
    assert_eq!(
        client::authenticate(&env, &req, &good).unwrap().client_id,
        id
    );
    let bad = Params::parse(format!("client_id={id}&client_secret=nope").as_bytes()).unwrap();
    assert!(client::authenticate(&env, &req, &bad).is_err());
}

#[test]
fn defaults_are_rfc_7591s_plus_refresh() {
    let h = Harness::new();
    let info = registered(
        &h,
        json!({"redirect_uris": ["https://app.example.com/cb"], "some_future_field": {"x": 1}}),
    );
    assert_eq!(info["token_endpoint_auth_method"], "client_secret_basic");
    assert!(info["client_secret"].is_string());
    assert_eq!(
        info["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(info["response_types"], json!(["code"]));
    assert_eq!(info["application_type"], "web");
    assert!(info.get("some_future_field").is_none());
}

#[test]
fn cursor_style_private_use_redirect_is_accepted() {
    let h = Harness::new();
    let info = registered(
        &h,
        json!({
            "application_type": "web",
            "redirect_uris": [
                "cursor://anysphere.cursor-mcp/oauth/callback",
                "com.example.app:/oauth2redirect",
                "http://localhost:8787/callback"
            ],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }),
    );
    assert_eq!(info["redirect_uris"].as_array().unwrap().len(), 3);
}

#[test]
fn client_lifetime_sets_expiry() {
    let h = Harness::with_config(MapConfig::from([("client_lifetime", "1000")]));
    let mut body = public_client();
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    let info = registered(&h, body);
    let id = info["client_id"].as_str().unwrap();
    assert_eq!(info["client_secret_expires_at"], TEST_EPOCH + 1000);
    h.clock.advance(999);
    assert!(stored(&h, id).is_some());
    h.clock.advance(1);
    assert!(stored(&h, id).is_none());
}

#[test]
fn scope_must_be_supported() {
    let h = Harness::new();
    let mut body = public_client();
    body["scope"] = json!("mcp:read  mcp:read offline_access");
    let info = registered(&h, body);
    assert_eq!(info["scope"], "mcp:read offline_access");

    let mut body = public_client();
    body["scope"] = json!("mcp:read admin");
    let before = h.store.snapshot();
    let res = register(&h, body);
    assert_eq!(res.status, 400);
    assert_eq!(error_code(&res), "invalid_client_metadata");
    assert_eq!(h.store.snapshot(), before);
}

/// Issue 16 item 1: a registration must not yield tokens with no user behind them.
#[test]
fn registration_never_grants_client_credentials() {
    let h = Harness::new();
    let before = h.store.state();
    for auth in ["client_secret_basic", "client_secret_post", "none"] {
        let res = register(
            &h,
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": auth}),
        );
        assert_eq!(res.status, 400, "{auth}");
        assert_eq!(error_code(&res), "invalid_client_metadata", "{auth}");
    }
    assert_eq!(h.store.state(), before);

    // Nor through RFC 7592, nor by claiming to be provisioned.
    let mut body = public_client();
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    body["source"] = json!("provisioned");
    let info = registered(&h, body.clone());
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    assert!(!stored(&h, id).unwrap().is_provisioned());
    body["client_id"] = json!(id);
    body["grant_types"] = json!(["authorization_code", "client_credentials"]);
    let res = put(&h, id, token, body);
    assert_eq!(error_code(&res), "invalid_client_metadata");
    assert!(!stored(&h, id).unwrap().allows_grant("client_credentials"));
}

/// RFC 7592 §2.2 update without `token_endpoint_auth_method`: the current method stays.
#[test]
fn an_update_without_an_auth_method_keeps_the_current_one() {
    let h = Harness::new();
    for method in ["none", "client_secret_post", "client_secret_basic"] {
        let mut body = public_client();
        body["token_endpoint_auth_method"] = json!(method);
        let info = registered(&h, body.clone());
        let id = info["client_id"].as_str().unwrap();
        let token = info["registration_access_token"].as_str().unwrap();
        body.as_object_mut()
            .unwrap()
            .remove("token_endpoint_auth_method");
        body["client_id"] = json!(id);
        body["client_name"] = json!("Renamed");
        let res = put(&h, id, token, body);
        assert_eq!(
            res.status,
            200,
            "{method}: {}",
            String::from_utf8_lossy(&res.body)
        );
        let info = res.json_body().unwrap();
        assert_eq!(info["token_endpoint_auth_method"], method);
        assert_eq!(info["client_name"], "Renamed");
        assert_eq!(
            stored(&h, id)
                .unwrap()
                .metadata
                .token_endpoint_auth_method
                .as_str(),
            method
        );
    }
}

#[test]
fn device_clients_need_no_redirect_uris() {
    let h = Harness::new();
    let info = registered(
        &h,
        json!({
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        }),
    );
    assert_eq!(info["redirect_uris"], json!([]));
    assert_eq!(info["response_types"], json!([]));
}

#[test]
fn bad_metadata_is_refused_and_changes_nothing() {
    // More bad registrations from one address than its hourly limit lets through.
    let h = Harness::with_config(MapConfig::from([("rate_limit_register_per_ip", "0")]));
    let base = public_client();
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let too_many: Vec<String> = (0..21)
        .map(|i| format!("https://app.example.com/{i}"))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (with("redirect_uris", json!([])), "invalid_redirect_uri"),
        (
            json!({"token_endpoint_auth_method": "none"}),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["http://app.example.com/cb"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["https://app.example.com/cb#x"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["https://me@app.example.com/cb"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["javascript:alert(1)//"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["data:text/html,x"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["file:///etc/passwd"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["vbscript:x"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(["/cb"])),
            "invalid_redirect_uri",
        ),
        (
            with("redirect_uris", json!(too_many)),
            "invalid_client_metadata",
        ),
        (
            with("redirect_uris", json!("https://app.example.com/cb")),
            "invalid_client_metadata",
        ),
        (
            with("application_type", json!("desktop")),
            "invalid_client_metadata",
        ),
        (
            with("application_type", json!(1)),
            "invalid_client_metadata",
        ),
        (
            with("token_endpoint_auth_method", json!("private_key_jwt")),
            "invalid_client_metadata",
        ),
        (
            with("grant_types", json!(["implicit"])),
            "invalid_client_metadata",
        ),
        (with("grant_types", json!([])), "invalid_client_metadata"),
        (
            with("response_types", json!(["token"])),
            "invalid_client_metadata",
        ),
        (with("response_types", json!([])), "invalid_client_metadata"),
        (
            with("grant_types", json!(["refresh_token"])),
            "invalid_client_metadata",
        ),
        (
            with("client_name", json!("evil\u{1b}[31mname")),
            "invalid_client_metadata",
        ),
        (
            with("client_name", json!("x".repeat(2049))),
            "invalid_client_metadata",
        ),
        (
            with("logo_uri", json!("javascript:alert(1)")),
            "invalid_client_metadata",
        ),
        (
            with("contacts", json!("a@example.com")),
            "invalid_client_metadata",
        ),
        (with("scope", json!("unknown")), "invalid_client_metadata"),
        (json!([1, 2, 3]), "invalid_client_metadata"),
    ];
    for (body, code) in cases {
        let before = h.store.state();
        let res = register(&h, body.clone());
        assert_eq!(res.status, 400, "{body}");
        assert_eq!(error_code(&res), code, "{body}");
        assert_eq!(h.store.state(), before, "{body}");
    }
    assert!(h.store.state().is_empty());
}

#[test]
fn only_json_posts_are_accepted() {
    let h = Harness::new();
    let form = Request::form("/register", &[("redirect_uris", "https://a.example/cb")]);
    let res = h.call(form);
    assert_eq!(res.status, 400);
    assert_eq!(error_code(&res), "invalid_request");
    let res = h.call(
        Request::new(Method::Post, "/register")
            .with_header("content-type", "application/json")
            .with_body("{\"redirect_uris\": ["),
    );
    assert_eq!(error_code(&res), "invalid_request");
    let res = h.call(Request::new(Method::Get, "/register"));
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("POST"));
    assert!(h.store.state().is_empty());
}

#[test]
fn registration_can_be_disabled() {
    let h = Harness::with_config(MapConfig::from([("registration_enabled", "false")]));
    let res = register(&h, public_client());
    assert_eq!(res.status, 403);
    assert_eq!(error_code(&res), "access_denied");
    assert!(h.store.keys().is_empty());
}

#[test]
fn read_configuration_with_the_right_token_only() {
    let h = Harness::new();
    let mut body = public_client();
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    let info = registered(&h, body);
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();

    let res = h.call(manage(Method::Get, id, Some(token)));
    assert_eq!(res.status, 200);
    let read = res.json_body().unwrap();
    assert!(read.get("client_secret").is_none());
    let mut expected = info.clone();
    expected.as_object_mut().unwrap().remove("client_secret");
    assert_eq!(read, expected);

    let other = registered(&h, public_client());
    let other_token = other["registration_access_token"].as_str().unwrap();
    let denied = [
        manage(Method::Get, id, None),
        manage(Method::Get, id, Some("wrong")),
        manage(Method::Get, id, Some(other_token)),
        manage(Method::Get, "no-such-client", Some(token)),
        manage(Method::Get, id, None).with_header("authorization", &format!("Basic {token}")),
    ];
    let mut bodies = Vec::new();
    for req in denied {
        let res = h.call(req);
        assert_eq!(res.status, 401);
        assert_eq!(error_code(&res), "invalid_token");
        assert!(res
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer"));
        bodies.push(res.body);
    }
    // Unknown client and wrong token look alike.
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn update_replaces_metadata_and_keeps_credentials() {
    let h = Harness::new();
    let mut body = public_client();
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    let info = registered(&h, body);
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let secret = info["client_secret"].as_str().unwrap();
    let before = stored(&h, id).unwrap();

    let update = json!({
        "client_id": id,
        "client_secret": secret,
        "redirect_uris": ["https://app.example.com/new"],
        "token_endpoint_auth_method": "client_secret_post",
        "client_name": "Renamed",
    });
    let res = put(&h, id, token, update);
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let read = res.json_body().unwrap();
    assert_eq!(read["client_name"], "Renamed");
    assert_eq!(
        read["redirect_uris"],
        json!(["https://app.example.com/new"])
    );
    assert_eq!(
        read["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert!(read.get("client_secret").is_none());

    let after = stored(&h, id).unwrap();
    assert_eq!(after.client_id, before.client_id);
    assert_eq!(after.client_id_issued_at, before.client_id_issued_at);
    assert_eq!(after.client_secret_hash, before.client_secret_hash);
    assert_eq!(
        after.registration_token_hash,
        before.registration_token_hash
    );
    assert_eq!(
        after.metadata.token_endpoint_auth_method,
        AuthMethod::ClientSecretPost
    );
    assert_eq!(h.call(manage(Method::Get, id, Some(token))).status, 200);
}

#[test]
fn bad_updates_change_nothing() {
    let h = Harness::new();
    let mut body = public_client();
    body["token_endpoint_auth_method"] = json!("client_secret_basic");
    let info = registered(&h, body);
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let good = json!({"client_id": id, "redirect_uris": ["https://app.example.com/cb"]});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let cases: Vec<(Value, &str, u16)> = vec![
        (
            json!({"redirect_uris": ["https://app.example.com/cb"]}),
            "invalid_request",
            400,
        ),
        (
            with("client_id", json!("someone-else")),
            "invalid_request",
            400,
        ),
        (
            with("client_secret", json!("wrong")),
            "invalid_request",
            400,
        ),
        (
            with("redirect_uris", json!(["javascript:x"])),
            "invalid_redirect_uri",
            400,
        ),
        (
            with("token_endpoint_auth_method", json!("none")),
            "invalid_client_metadata",
            400,
        ),
    ];
    for (body, code, status) in cases {
        let before = h.store.snapshot();
        let res = put(&h, id, token, body.clone());
        assert_eq!(res.status, status, "{body}");
        assert_eq!(error_code(&res), code, "{body}");
        assert_eq!(h.store.snapshot(), before, "{body}");
    }
    let before = h.store.snapshot();
    let res = put(&h, id, "wrong-token", good);
    assert_eq!(res.status, 401);
    assert_eq!(h.store.snapshot(), before);
}

#[test]
fn public_clients_cannot_become_confidential() {
    let h = Harness::new();
    let info = registered(&h, public_client());
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let mut body = public_client();
    body["client_id"] = json!(id);
    body["token_endpoint_auth_method"] = json!("client_secret_post");
    let res = put(&h, id, token, body);
    assert_eq!(error_code(&res), "invalid_client_metadata");
    let mut body = public_client();
    body["client_id"] = json!(id);
    body["client_secret"] = json!("anything");
    assert_eq!(error_code(&put(&h, id, token, body)), "invalid_request");
}

#[test]
fn delete_removes_the_client() {
    let h = Harness::new();
    let info = registered(&h, public_client());
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();

    let res = h.call(manage(Method::Delete, id, Some("wrong")));
    assert_eq!(res.status, 401);
    assert!(stored(&h, id).is_some());

    let env = h.env();
    let res = handle(
        &env,
        &manage(Method::Delete, id, Some(token)),
        Endpoint::ALL,
    );
    assert_eq!(res.status, 204);
    assert!(stored(&h, id).is_none());
    let audit = env.take_audit();
    assert_eq!(audit[0].event, AuditKind::ClientDeleted);
    assert_eq!(audit[0].client_id.as_deref(), Some(id));
    assert_eq!(h.call(manage(Method::Get, id, Some(token))).status, 401);
    // What is left: bookkeeping, and the tombstone that retires the client's tokens.
    let tombstone = mcp_auth_core::tokens::tombstone_key(id);
    assert!(h
        .store
        .keys()
        .iter()
        .all(|k| k.starts_with("sweep/") || k.starts_with("limit/") || *k == tombstone));
    assert!(h.store.keys().contains(&tombstone));
}

#[test]
fn other_methods_are_405() {
    let h = Harness::new();
    let info = registered(&h, public_client());
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    let res = h.call(manage(Method::Post, id, Some(token)));
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET, PUT, DELETE"));
}

#[test]
fn issuer_with_a_path() {
    let h = Harness::with_config(MapConfig::from([(
        "mcp_auth_server_url",
        "https://auth.example.com/auth/",
    )]));
    let res = h.call(
        Request::new(Method::Post, "/auth/register")
            .with_header("content-type", "application/json")
            .with_body(public_client().to_string()),
    );
    assert_eq!(res.status, 201);
    let info = res.json_body().unwrap();
    let id = info["client_id"].as_str().unwrap();
    let token = info["registration_access_token"].as_str().unwrap();
    assert_eq!(
        info["registration_client_uri"],
        format!("https://auth.example.com/auth/register/{id}")
    );
    let res = h.call(
        Request::new(Method::Get, &format!("/auth/register/{id}"))
            .with_header("authorization", &format!("Bearer {token}")),
    );
    assert_eq!(res.status, 200);
}
