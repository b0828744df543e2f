//! Property tests: arbitrary input never panics the core and never earns a 500.
//!
//! Each property runs 256 cases by default (the whole file takes a few seconds in debug).
//! For a longer run, raise the count: `PROPTEST_CASES=100000 cargo test --release -p
//! mcp-auth-core --test properties`.

use mcp_auth_core::client::parse_basic;
use mcp_auth_core::http::Params;
use mcp_auth_core::registration::validate_redirect_uri;
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{handle, pkce, resource, Endpoint, Method, Request};
use proptest::prelude::*;

/// Paths from the route table, some with a tail, and anything at all.
fn path() -> impl Strategy<Value = String> {
    let known = prop::sample::select(vec![
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
        "/jwks",
        "/health",
        "/register",
        "/register/c1",
        "/authorize",
        "/login",
        "/consent",
        "/oauth/callback",
        "/device",
        "/token",
        "/device/code",
        "/revoke",
        "/introspect",
        "/verify",
    ]);
    prop_oneof![
        4 => known.prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// Parameter names the endpoints read, and a few they do not.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "grant_type", "client_id", "client_secret", "code", "code_verifier",
            "redirect_uri", "refresh_token", "device_code", "scope", "resource", "token",
            "token_type_hint", "response_type", "code_challenge", "code_challenge_method",
            "state", "session", "csrf", "username", "password", "decision", "user_code",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// Values: plausible ones and anything at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "c1",
            "code",
            "S256",
            "http://127.0.0.1:9000/callback",
            "https://mcp.example.com/mcp",
            "mcp:read",
            "approve",
            "deny",
            "demo",
            "WDJB-MJHT",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "https://10.0.0.1/client.json",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

fn pairs() -> impl Strategy<Value = String> {
    prop::collection::vec((name(), value()), 0..8).prop_map(|pairs| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        pairs().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..512),
        (prop::collection::vec((name(), value()), 0..6)).prop_map(|fields| {
            let object: serde_json::Map<String, serde_json::Value> = fields
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
            serde_json::Value::Object(object).to_string().into_bytes()
        }),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    let names = prop::sample::select(vec![
        "content-type",
        "authorization",
        "cookie",
        "x-forwarded-uri",
        "x-forwarded-host",
        "x-forwarded-proto",
        "accept",
    ]);
    let values = prop_oneof![
        prop::sample::select(vec![
            "application/x-www-form-urlencoded",
            "application/json",
            "Basic YzE6",
            "Bearer x.y.z",
            "mcp_auth_csrf=t",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ];
    (names.prop_map(str::to_string), values)
}

fn method() -> impl Strategy<Value = Method> {
    prop::sample::select(vec![
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Delete,
        Method::Options,
        Method::Other,
    ])
}

fn harness() -> Harness {
    Harness::with_config(MapConfig::from([
        ("mcp_server", "https://mcp.example.com/mcp"),
        ("introspection_credentials", "rs:rs-secret"),
    ]))
}

proptest! {
    #[test]
    fn any_request_is_answered_without_panic_or_500(
        method in method(),
        path in path(),
        query in prop_oneof![pairs(), any::<String>()],
        headers in prop::collection::vec(header(), 0..5),
        body in body(),
        addr in prop::option::of("[0-9.:a-f]{1,20}"),
    ) {
        let h = harness();
        let mut req = Request::new(method, &path);
        req.query = query;
        req.headers = headers;
        req.body = body;
        req.client_addr = addr;
        let res = handle(&h.env(), &req, Endpoint::ALL);
        prop_assert!((200..600).contains(&res.status));
        prop_assert!(res.status != 500, "{:?} {} → 500: {}", req.method, req.path,
            String::from_utf8_lossy(&res.body));
    }

    #[test]
    fn params_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(params) = Params::parse(&bytes) {
            // What parses holds no empty value (empty counts as absent).
            prop_assert!(params.get("").is_none_or(|v| !v.is_empty()));
        }
    }

    #[test]
    fn resource_normalize_is_idempotent(s in any::<String>()) {
        if let Ok(normal) = resource::normalize(&s) {
            prop_assert_eq!(resource::normalize(&normal), Ok(normal.clone()));
        }
    }

    #[test]
    fn pkce_never_panics(verifier in any::<String>(), challenge in any::<String>()) {
        let _ = pkce::is_valid_challenge(&challenge);
        if pkce::verify(&verifier, &challenge) {
            prop_assert!(pkce::is_valid_verifier(&verifier));
            prop_assert_eq!(pkce::challenge_of(&verifier), challenge);
        }
    }

    #[test]
    fn parse_basic_never_panics(s in any::<String>(), raw in "[A-Za-z0-9+/=]{0,64}") {
        let _ = parse_basic(&s);
        if let Some((id, _)) = parse_basic(&raw) {
            prop_assert!(!id.is_empty());
        }
    }

    #[test]
    fn accepted_redirect_uris_are_safe(
        uri in prop_oneof![
            any::<String>(),
            "(https?|javascript|data|cursor|com\\.example\\.app)://[a-zа-я0-9@:.#/\\[\\]%-]{0,40}",
        ],
    ) {
        if validate_redirect_uri(&uri).is_ok() {
            let url = url::Url::parse(&uri).unwrap();
            prop_assert!(uri.is_ascii());
            prop_assert!(url.fragment().is_none() && !uri.contains('#'));
            prop_assert!(url.username().is_empty() && url.password().is_none());
            prop_assert!(!["javascript", "data", "file", "vbscript"].contains(&url.scheme()));
        }
    }
}
