//! Hostile input at every endpoint: malformed JSON and forms, repeated parameters, huge
//! bodies and URLs, control characters and odd Unicode in every string field, dangerous
//! redirect URIs, Client ID Metadata Document URLs at private addresses, and a store that is
//! down. Each gets a standard 4xx error (JSON from the API endpoints, a page from the browser
//! ones), never a 5xx but the store outage's 503, and nothing stored changes.

#[path = "token_support/mod.rs"]
mod token_support;

use mcp_auth_core::grants::{self, DeviceGrant, DeviceStatus};
use mcp_auth_core::http::MAX_BODY;
use mcp_auth_core::testing::Harness;
use mcp_auth_core::{
    handle, records, Endpoint, Env, Method, Request, Response, Settings, Store, StoreError,
};
use serde_json::{json, Value};
use token_support::{
    add_client, basic, code_for, harness_with, signed_in, CHALLENGE, DEVICE_GRANT, REDIRECT,
    RESOURCE, VERIFIER,
};

/// Strings no field should accept: control characters, invisible and direction-changing
/// characters, separators, non-characters, and a few that break naive parsers.
const HOSTILE: &[&str] = &[
    "a\u{0}b",
    "a\nb",
    "a\r\nSet-Cookie: x=1",
    "a\u{7f}b",
    "a\u{85}b",
    "a\u{1b}[31mred",
    "evil\u{202e}moc.elppa",
    "a\u{200b}b",
    "a\u{2066}b",
    "\u{feff}a",
    "a\u{2028}b",
    "a\u{ffff}",
];

/// Everything the hostile requests run against: clients, tokens and grants that exist, so
/// that a request can get far into an endpoint before its hostile part is met.
struct World {
    h: Harness,
    /// A client registered through `/register`, with its registration access token.
    registered_id: String,
    registration_token: String,
    /// A public client with a live code and live tokens.
    access_token: String,
    refresh_token: String,
    code: String,
}

fn world() -> World {
    let h = harness_with(&[
        ("rate_limit_register_per_ip", "0"),
        ("rate_limit_token_per_client", "0"),
        ("rate_limit_device_failures_per_session", "0"),
        ("rate_limit_device_failures_global", "0"),
        // The operator's machine client, for client credentials.
        ("machine_clients", "conf:conf-secret"),
    ]);
    let res = h.call(json_post(
        "/register",
        &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
    ));
    assert_eq!(res.status, 201);
    let info = res.json_body().unwrap();
    add_client(&h, "tv", None, &[DEVICE_GRANT]);
    let tokens = signed_in(&h, "c1");
    let code = code_for(&h, "c1");
    let env = h.env();
    let key = grants::device_key("device-code");
    let grant = DeviceGrant {
        client_id: "tv".into(),
        scope: "mcp:read".into(),
        resource: RESOURCE.into(),
        user_code: "WDJBMJHT".into(),
        status: DeviceStatus::Pending,
    };
    let exp = Some(env.now() + 600);
    records::put(&env, &key, &grant, exp).unwrap();
    records::put(&env, &grants::user_code_key("WDJBMJHT"), &key, exp).unwrap();
    drop(env);
    World {
        registered_id: info["client_id"].as_str().unwrap().into(),
        registration_token: info["registration_access_token"].as_str().unwrap().into(),
        access_token: tokens["access_token"].as_str().unwrap().into(),
        refresh_token: tokens["refresh_token"].as_str().unwrap().into(),
        code,
        h,
    }
}

/// An endpoint's path, a valid form for it, and its `Authorization` header if any.
type FormCase = (&'static str, Vec<(&'static str, String)>, Option<String>);

/// Who reads an endpoint's errors.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reader {
    /// A program: RFC 6749 §5.2 JSON.
    Client,
    /// A person: an HTML page (a JSON error only for a wrong method).
    Person,
}

fn reader(path: &str) -> Reader {
    match path.split('?').next().unwrap() {
        "/authorize" | "/login" | "/consent" | "/oauth/callback" | "/device" => Reader::Person,
        _ => Reader::Client,
    }
}

impl World {
    /// Send `req`; it must be refused with a standard 4xx and leave the store as it was.
    fn refused(&self, label: &str, req: Request) -> Response {
        let before = self.h.store.state();
        let sent_before = self.h.upstream.sent.lock().unwrap().len();
        let path = req.path.clone();
        let res = self.h.call(req);
        let body = String::from_utf8_lossy(&res.body).into_owned();
        assert!(
            (400..500).contains(&res.status),
            "{label}: {path} answered {}: {body}",
            res.status
        );
        let content_type = res.header("content-type").unwrap_or_default();
        let json_error = content_type == "application/json"
            && res
                .json_body()
                .is_some_and(|v| v["error"].as_str().is_some_and(|e| !e.is_empty()));
        match reader(&path) {
            Reader::Client => assert!(json_error, "{label}: {path}: not an RFC error: {body}"),
            Reader::Person => assert!(
                json_error || content_type.starts_with("text/html"),
                "{label}: {path}: neither a page nor an error: {body}"
            ),
        }
        assert_eq!(
            self.h.store.state(),
            before,
            "{label}: {path} changed the store"
        );
        assert_eq!(
            self.h.upstream.sent.lock().unwrap().len(),
            sent_before,
            "{label}: {path} reached out"
        );
        res
    }

    /// Send `req`; whatever it answers, it must not be a 5xx nor change the store.
    fn harmless(&self, label: &str, req: Request) {
        let before = self.h.store.state();
        let res = self.h.call(req);
        assert!(res.status < 500, "{label}: {}", res.status);
        assert_eq!(self.h.store.state(), before, "{label} changed the store");
    }

    /// A valid form for each form endpoint, so that one field at a time can be spoiled.
    fn forms(&self) -> Vec<FormCase> {
        let s = |v: &str| v.to_string();
        let rs = Some(basic("rs", "rs-secret"));
        vec![
            (
                "/token",
                vec![
                    ("grant_type", s("authorization_code")),
                    ("client_id", s("c1")),
                    ("code", self.code.clone()),
                    ("code_verifier", s(VERIFIER)),
                    ("redirect_uri", s(REDIRECT)),
                    ("resource", s(RESOURCE)),
                ],
                None,
            ),
            (
                "/token",
                vec![
                    ("grant_type", s("refresh_token")),
                    ("client_id", s("c1")),
                    ("refresh_token", self.refresh_token.clone()),
                    ("scope", s("mcp:read")),
                ],
                None,
            ),
            (
                "/token",
                vec![
                    ("grant_type", s("client_credentials")),
                    ("client_id", s("conf")),
                    ("client_secret", s("conf-secret")),
                    ("scope", s("mcp:read")),
                ],
                None,
            ),
            (
                "/device/code",
                vec![("client_id", s("tv")), ("scope", s("mcp:read"))],
                None,
            ),
            (
                "/revoke",
                vec![
                    ("client_id", s("c1")),
                    ("token", self.refresh_token.clone()),
                    ("token_type_hint", s("refresh_token")),
                ],
                None,
            ),
            (
                "/introspect",
                vec![
                    ("token", self.access_token.clone()),
                    ("token_type_hint", s("access_token")),
                ],
                rs,
            ),
        ]
    }
}

fn form_request(path: &str, pairs: &[(&str, String)], auth: &Option<String>) -> Request {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let req = Request::form(path, &pairs);
    match auth {
        Some(a) => req.with_header("authorization", a),
        None => req,
    }
}

fn json_post(path: &str, body: &Value) -> Request {
    Request::new(Method::Post, path)
        .with_header("content-type", "application/json")
        .with_body(body.to_string())
}

/// Every path we serve, with the method each one takes.
fn every_endpoint(w: &World) -> Vec<(Method, String)> {
    vec![
        (
            Method::Get,
            "/.well-known/oauth-authorization-server".into(),
        ),
        (Method::Get, "/.well-known/oauth-protected-resource".into()),
        (Method::Get, "/jwks".into()),
        (Method::Get, "/health".into()),
        (Method::Post, "/register".into()),
        (Method::Put, format!("/register/{}", w.registered_id)),
        (Method::Get, "/authorize".into()),
        (Method::Post, "/login".into()),
        (Method::Post, "/consent".into()),
        (Method::Get, "/oauth/callback".into()),
        (Method::Post, "/device".into()),
        (Method::Post, "/token".into()),
        (Method::Post, "/device/code".into()),
        (Method::Post, "/revoke".into()),
        (Method::Post, "/introspect".into()),
        (Method::Get, "/verify".into()),
    ]
}

#[test]
fn bodies_over_the_limit_are_413_everywhere() {
    let w = world();
    for (method, path) in every_endpoint(&w) {
        let req = Request::new(method, &path)
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(vec![b'a'; MAX_BODY + 1]);
        let res = w.refused("huge body", req);
        assert_eq!(res.status, 413, "{path}");
    }
    // A browser client on another origin can read the refusal of the endpoints it calls.
    for path in ["/register", "/token", "/revoke"] {
        let req = Request::new(Method::Post, path).with_body(vec![b'a'; MAX_BODY + 1]);
        let res = w.refused("huge body", req);
        assert_eq!(
            res.header("access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
    }
}

#[test]
fn huge_urls_and_headers_are_refused_everywhere() {
    let w = world();
    let long = "A".repeat(64 * 1024);
    for (method, path) in every_endpoint(&w) {
        let req = Request::new(method, &format!("{path}?state={long}"));
        assert_eq!(w.refused("huge query", req).status, 414, "{path}");
        let req = Request::new(method, &path).with_header("x-filler", &long);
        assert_eq!(w.refused("huge header", req).status, 431, "{path}");
    }
    // Even a valid authorization request: its state would be kept with the sign-in.
    let query = format!(
        "response_type=code&client_id=c1&redirect_uri={REDIRECT}&code_challenge={CHALLENGE}&code_challenge_method=S256&state={long}"
    );
    w.refused(
        "huge state",
        Request::new(Method::Get, &format!("/authorize?{query}")),
    );
}

#[test]
fn malformed_forms_are_refused() {
    let w = world();
    let raw: &[&[u8]] = &[
        b"%zz=%zz",
        b"grant_type=authorization_code&&&==&=",
        b"\xff\xfe=\xfd",
        b"client_id=c1%00&grant_type=refresh_token",
        b"grant_type",
    ];
    for (path, pairs, auth) in w.forms() {
        for body in raw {
            let mut req = form_request(path, &[], &auth).with_body(body.to_vec());
            if path != "/introspect" {
                req = req.with_header("authorization", "Basic %%%");
            }
            w.refused(&format!("{:?}", String::from_utf8_lossy(body)), req);
        }
        // The right body under the wrong media type, or none.
        let good = form_request(path, &pairs, &auth);
        let mut as_json = good.clone();
        as_json.headers.retain(|(n, _)| n != "content-type");
        w.refused("no content type", as_json.clone());
        w.refused(
            "json content type",
            as_json.with_header("content-type", "application/json"),
        );
        // Each parameter repeated, with the same value or another (RFC 6749 §3.1).
        for (name, value) in &pairs {
            for second in [value.clone(), "other".to_string()] {
                let mut twice = pairs.clone();
                twice.push((name, second));
                w.refused(
                    &format!("repeated {name}"),
                    form_request(path, &twice, &auth),
                );
            }
        }
        // Each parameter with hostile characters. RFC 7009 §2.2 and RFC 7662 §2.2 answer
        // an unknown token with 200 (and a hint is only a hint, RFC 7009 §2.1), so there
        // the token must only change nothing.
        for (i, (name, value)) in pairs.iter().enumerate() {
            let answers_200 = matches!(path, "/revoke" | "/introspect");
            if answers_200 && *name == "token_type_hint" {
                continue;
            }
            for bad in HOSTILE {
                let mut spoiled = pairs.clone();
                spoiled[i].1 = format!("{value}{bad}");
                let label = format!("{name} with {bad:?}");
                let req = form_request(path, &spoiled, &auth);
                if answers_200 && *name == "token" {
                    w.harmless(&label, req);
                } else {
                    w.refused(&label, req);
                }
            }
        }
    }
}

#[test]
fn malformed_json_is_refused_at_registration_and_update() {
    let w = world();
    let nested = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[1,".to_vec(),
        b"null".to_vec(),
        b"\"text\"".to_vec(),
        b"42".to_vec(),
        b"".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"{\"client_name\": \"\xff\"}".to_vec(),
        br#"{"client_name": "\ud800"}"#.to_vec(),
        br#"{"redirect_uris": ["http://127.0.0.1/cb"], "redirect_uris": ["https://evil.example/cb"]}"#.to_vec(),
        br#"{"redirect_uris": "http://127.0.0.1/cb"}"#.to_vec(),
        br#"{"redirect_uris": [1e999]}"#.to_vec(),
        nested.into_bytes(),
    ];
    let update = format!("/register/{}", w.registered_id);
    for body in &bodies {
        let label = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let req = |method, path: &str| {
            Request::new(method, path)
                .with_header("content-type", "application/json")
                .with_header("authorization", &format!("Bearer {}", w.registration_token))
                .with_body(body.clone())
        };
        w.refused(&label, req(Method::Post, "/register"));
        w.refused(&label, req(Method::Put, &update));
    }
}

#[test]
fn every_registration_field_refuses_hostile_text() {
    let w = world();
    let valid = json!({
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "application_type": "native",
        "client_name": "Good Client",
        "client_uri": "https://client.example/",
        "logo_uri": "https://client.example/logo.png",
        "scope": "mcp:read",
        "contacts": ["ops@client.example"],
        "tos_uri": "https://client.example/tos",
        "policy_uri": "https://client.example/policy",
        "software_id": "good-client",
        "software_version": "1.0.0",
    });
    let update = format!("/register/{}", w.registered_id);
    for (field, value) in valid.as_object().unwrap() {
        for bad in HOSTILE {
            let spoil = |v: &Value| match v {
                Value::Array(items) => json!([format!("{}{bad}", items[0].as_str().unwrap())]),
                Value::String(s) => json!(format!("{s}{bad}")),
                other => other.clone(),
            };
            let mut body = valid.clone();
            body[field] = spoil(value);
            let label = format!("{field} with {bad:?}");
            w.refused(&label, json_post("/register", &body));
            body["client_id"] = json!(w.registered_id);
            w.refused(
                &label,
                json_post(&update, &body)
                    .with_header("authorization", &format!("Bearer {}", w.registration_token)),
            );
        }
    }
}

/// Redirect URIs no registration may hold.
/// (`""` only at registration: an empty query parameter counts as absent.)
const BAD_REDIRECTS: &[&str] = &[
    "https://user:pass@client.example/cb",
    "https://user@client.example/cb",
    "https://client.example/cb#fragment",
    "https://client.example/cb#",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "http://client.example/cb",
    "http://127.0.0.1.evil.example/cb",
    "https://аpple.com/cb",
    "https://xn--pple-43d.com\u{202e}/cb",
    "https://ｃlient.example/cb",
    "//client.example/cb",
    "/cb",
    "https://client.example/c b",
    "",
];

#[test]
fn dangerous_redirect_uris_are_refused() {
    let w = world();
    for uri in BAD_REDIRECTS {
        let body = json!({"redirect_uris": [uri], "token_endpoint_auth_method": "none"});
        let res = w.refused(uri, json_post("/register", &body));
        let error = res.json_body().unwrap()["error"].clone();
        assert!(
            error == "invalid_redirect_uri" || error == "invalid_client_metadata",
            "{uri}: {error}"
        );
    }
    for uri in BAD_REDIRECTS.iter().filter(|u| !u.is_empty()) {
        // At /authorize, an unregistered redirect URI is a page, never a redirect.
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", "c1")
            .append_pair("redirect_uri", uri)
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .finish();
        let res = w.refused(
            uri,
            Request::new(Method::Get, &format!("/authorize?{query}")),
        );
        assert!(res.header("location").is_none(), "{uri}");
    }
}

#[test]
fn metadata_document_urls_at_private_addresses_are_never_fetched() {
    let w = world();
    let urls = [
        "https://127.0.0.1/client.json",
        "https://127.1/client.json",
        "https://2130706433/client.json",
        "https://0x7f000001/client.json",
        "https://10.0.0.8/client.json",
        "https://172.16.0.1/client.json",
        "https://192.168.1.1/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/client.json",
        "https://0.0.0.0/client.json",
        "https://[::1]/client.json",
        "https://[::ffff:127.0.0.1]/client.json",
        "https://[fd00::1]/client.json",
        "https://[fe80::1]/client.json",
        "https://localhost/client.json",
        "https://localhost./client.json",
        "https://app.localhost/client.json",
        "http://client.example/client.json",
        "https://user@client.example/client.json",
        "https://client.example/client.json#x",
        "https://client.example/a/../client.json",
        "https://client.example",
    ];
    for url in urls {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", url)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("code_challenge", CHALLENGE)
            .append_pair("code_challenge_method", "S256")
            .finish();
        w.refused(
            url,
            Request::new(Method::Get, &format!("/authorize?{query}")),
        );
        w.refused(
            url,
            form_request(
                "/token",
                &[
                    ("grant_type", "authorization_code".into()),
                    ("client_id", url.into()),
                    ("code", w.code.clone()),
                    ("code_verifier", VERIFIER.into()),
                ],
                &None,
            ),
        );
    }
}

#[test]
fn browser_endpoints_refuse_hostile_queries_and_forms_with_pages() {
    let w = world();
    let mut queries = vec![
        "%zz".to_string(),
        "client_id=c1&client_id=c1".to_string(),
        "state=a&state=b".to_string(),
        "code=x&state=y".to_string(),
        "error=access_denied&state=nope".to_string(),
    ];
    for bad in HOSTILE {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &format!("c1{bad}"))
            .append_pair("state", bad)
            .append_pair("code", bad)
            .finish();
        queries.push(q);
    }
    for q in &queries {
        for path in ["/authorize", "/oauth/callback"] {
            w.refused(q, Request::new(Method::Get, &format!("{path}?{q}")));
        }
    }
    // A repeated parameter from a client whose redirect URI is unambiguous, but that no user
    // has approved, is a page too (RFC 9700 §4.11.2), still storing nothing.
    let before = w.h.store.state();
    let res = w.h.call(Request::new(
        Method::Get,
        "/authorize?client_id=c1&state=a&state=b",
    ));
    assert_eq!(res.status, 400);
    assert!(res.header("location").is_none());
    assert_eq!(w.h.store.state(), before);
    // Forms without the CSRF pair, with a forged one, or with hostile values.
    for path in ["/login", "/consent", "/device"] {
        let fields = [
            vec![("user_code", "WDJBMJHT".to_string())],
            vec![("csrf", "forged".into()), ("session", "nope".into())],
            vec![
                ("csrf", "x\u{0}".into()),
                ("session", "\u{202e}".into()),
                ("username", "demo\r\n".into()),
                ("password", "demo".into()),
                ("decision", "approve".into()),
            ],
        ];
        for pairs in fields {
            let req = form_request(path, &pairs, &None).with_header("cookie", "mcp_auth_csrf=x");
            w.refused(&format!("{pairs:?}"), req);
        }
    }
    // A wrong user code, with hostile characters, from a session with a valid CSRF pair.
    for bad in HOSTILE {
        let req = form_request(
            "/device",
            &[
                ("csrf", "tok".into()),
                ("user_code", format!("WDJB{bad}MJHT")),
            ],
            &None,
        )
        .with_header("cookie", "mcp_auth_csrf=tok");
        let res = w.refused(bad, req);
        assert_eq!(res.status, 400);
    }
}

#[test]
fn hostile_bearer_and_basic_credentials_are_refused() {
    let w = world();
    let headers = [
        "Bearer",
        "Bearer ",
        "Bearer \u{0}",
        "Bearer a b c",
        "Basic",
        "Basic !!!",
        "Basic Og==",
        "Basic OjpBOg==",
        "Basic w7/Dvg==",
        "Digest x",
        "Bearer\u{202e} token",
    ];
    for value in headers {
        w.refused(
            value,
            Request::new(Method::Get, &format!("/register/{}", w.registered_id))
                .with_header("authorization", value),
        );
        w.refused(
            value,
            form_request("/introspect", &[("token", w.access_token.clone())], &None)
                .with_header("authorization", value),
        );
        w.refused(
            value,
            form_request(
                "/token",
                &[("grant_type", "client_credentials".into())],
                &None,
            )
            .with_header("authorization", value),
        );
        let res =
            w.h.call(Request::new(Method::Get, "/verify").with_header("authorization", value));
        assert_eq!(res.status, 401, "{value}");
    }
}

/// A store that is down: every call fails.
struct DownStore;

impl Store for DownStore {
    fn get(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Err(StoreError("connection refused".into()))
    }
    fn set(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError("connection refused".into()))
    }
    fn delete(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError("connection refused".into()))
    }
    fn increment(&self, _: &str, _: i64) -> Result<i64, StoreError> {
        Err(StoreError("connection refused".into()))
    }
}

#[test]
fn a_store_outage_is_503_temporarily_unavailable_everywhere() {
    let w = world();
    let settings = Settings::from_config(&w.h.config).unwrap();
    let env = Env::new(&DownStore, &w.h.upstream, &w.h.clock, &w.h.rng, settings);
    let requests = [
        json_post(
            "/register",
            &json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
        ),
        Request::new(Method::Get, &format!("/register/{}", w.registered_id))
            .with_header("authorization", &format!("Bearer {}", w.registration_token)),
        Request::new(
            Method::Get,
            &format!(
                "/authorize?response_type=code&client_id=c1&redirect_uri={REDIRECT}&code_challenge={CHALLENGE}&code_challenge_method=S256"
            ),
        ),
        form_request(
            "/token",
            &[
                ("grant_type", "authorization_code".into()),
                ("client_id", "c1".into()),
                ("code", w.code.clone()),
                ("code_verifier", VERIFIER.into()),
            ],
            &None,
        ),
        form_request("/device/code", &[("client_id", "tv".into())], &None),
        form_request(
            "/revoke",
            &[("client_id", "c1".into()), ("token", w.refresh_token.clone())],
            &None,
        ),
        form_request("/introspect", &[("token", w.access_token.clone())], &Some(basic("rs", "rs-secret"))),
        Request::new(Method::Get, "/verify")
            .with_header("authorization", &format!("Bearer {}", w.access_token))
            .with_header("x-forwarded-uri", "/mcp"),
        Request::new(Method::Get, "/jwks"),
        form_request("/device", &[("csrf", "t".into()), ("user_code", "WDJBMJHT".into())], &None)
            .with_header("cookie", "mcp_auth_csrf=t"),
        Request::new(Method::Get, "/login?session=abc"),
    ];
    for req in requests {
        let path = req.path.clone();
        let res = handle(&env, &req, Endpoint::ALL);
        let body = String::from_utf8_lossy(&res.body).into_owned();
        assert_eq!(res.status, 503, "{path}: {body}");
        // RFC 9110 §10.2.3: when to try again, for people and programs alike.
        assert_eq!(res.header("retry-after"), Some("1"), "{path}");
        match reader(&path) {
            Reader::Client => assert_eq!(
                res.json_body().unwrap()["error"],
                "temporarily_unavailable",
                "{path}"
            ),
            Reader::Person => assert!(body.contains("Temporarily unavailable"), "{path}"),
        }
    }
}
