//! What the authorize and upstream tests share: a registered client, a valid authorization
//! request, and following the redirects of a sign-in.
#![allow(dead_code)]

use std::collections::BTreeMap;

use mcp_auth_core::audit::AuditEvent;
use mcp_auth_core::client::{self, AuthMethod, Client, ClientMetadata, ClientSource};
use mcp_auth_core::grants::{self, AuthorizationCode};
use mcp_auth_core::records;
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{handle, Endpoint, Method, Request, Response};

pub const CLIENT: &str = "client-1";
pub const REDIRECT: &str = "https://app.example/cb";
pub const RESOURCE: &str = "https://mcp.example.com/mcp";
/// RFC 7636 Appendix B.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const ISSUER: &str = "http://127.0.0.1:3000";

/// A harness with one configured resource, consent off, and `extra` settings. Its client
/// [`CLIENT`] is operator-provisioned, so that consent off lets sign-ins go straight to the
/// client and errors are redirected to it: the tests of every other step need no consent
/// page. The rules for dynamically registered clients are tested with [`register`]ed ones.
pub fn harness(extra: &[(&str, &str)]) -> Harness {
    let mut config = MapConfig::from([("mcp_server", RESOURCE), ("consent", "false")]);
    for (k, v) in extra {
        config.set(k, v);
    }
    let h = Harness::with_config(config);
    register_as(
        &h,
        CLIENT,
        "Test Client",
        &[REDIRECT],
        ClientSource::Provisioned,
    );
    h
}

/// Put a dynamically registered public client straight into the store.
pub fn register(h: &Harness, id: &str, name: &str, redirect_uris: &[&str]) {
    register_as(h, id, name, redirect_uris, ClientSource::Registered);
}

/// Put a public client from `source` straight into the store.
pub fn register_as(
    h: &Harness,
    id: &str,
    name: &str,
    redirect_uris: &[&str],
    source: ClientSource,
) {
    let client = Client {
        client_id: id.into(),
        source,
        client_id_issued_at: 0,
        client_secret_hash: None,
        client_secret_expires_at: 0,
        registration_token_hash: None,
        metadata: ClientMetadata {
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            token_endpoint_auth_method: AuthMethod::None,
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            response_types: vec!["code".into()],
            application_type: "native".into(),
            client_name: Some(name.into()),
            ..ClientMetadata::default()
        },
    };
    records::put(&h.env(), &client::key(id), &client, None).unwrap();
}

/// Changes to a valid authorization request: a parameter's new value, `None` removes it.
pub type Changes<'a> = [(&'a str, Option<&'a str>)];

/// The query of a valid authorization request, with `changes` applied.
pub fn authorize_query(changes: &Changes) -> String {
    let mut params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (name, value) in changes {
        params.retain(|(k, _)| k != name);
        if let Some(v) = value {
            params.push((name.to_string(), v.to_string()));
        }
    }
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

pub fn get(h: &Harness, path_and_query: &str) -> Response {
    h.call(Request::new(Method::Get, path_and_query))
}

/// Serve `req` like [`Harness::call`], and also return the audit events it recorded.
pub fn call_audited(h: &Harness, req: Request) -> (Response, Vec<AuditEvent>) {
    let env = h.env();
    let res = handle(&env, &req, Endpoint::ALL);
    (res, env.take_audit())
}

pub fn authorize(h: &Harness, changes: &Changes) -> Response {
    get(h, &format!("/authorize?{}", authorize_query(changes)))
}

pub fn location(res: &Response) -> &str {
    assert_eq!(res.status, 302, "expected a redirect, got {}", body(res));
    res.header("location").expect("location")
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs().into_owned().collect()
}

pub fn body(res: &Response) -> String {
    String::from_utf8_lossy(&res.body).into_owned()
}

/// The value of hidden input `name` in a page.
pub fn hidden(page: &Response, name: &str) -> String {
    let html = body(page);
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].to_string()
}

/// The CSRF cookie a page sets, as a `Cookie` header value.
pub fn csrf_cookie(page: &Response) -> String {
    let set = page.header("set-cookie").expect("set-cookie");
    set.split(';').next().unwrap().to_string()
}

/// POST a form a page rendered: its `session` and `csrf`, its cookie, and `fields`.
pub fn post_form(h: &Harness, path: &str, page: &Response, fields: &[(&str, &str)]) -> Response {
    let session = hidden(page, "session");
    let csrf = hidden(page, "csrf");
    let mut pairs = vec![("session", session.as_str()), ("csrf", csrf.as_str())];
    pairs.extend_from_slice(fields);
    h.call(Request::form(path, &pairs).with_header("cookie", &csrf_cookie(page)))
}

/// The code record a redirect to the client carries.
pub fn code_record(h: &Harness, client_redirect: &str) -> AuthorizationCode {
    let code = query_of(client_redirect).remove("code").expect("code");
    records::get(&h.env(), &grants::code_key(&code))
        .unwrap()
        .expect("code record")
}
