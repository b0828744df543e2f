//! What the end-to-end tests share: the host process, Redis, the fake TaskManager, a
//! browser-like client, and the steps of an MCP client.

pub mod browser;
pub mod chromium;
pub mod host;
pub mod metadata_document;
pub mod python;
pub mod redis;
pub mod site;
pub mod taskmanager;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub use browser::{query_of, Browser, Page};
pub use host::{free_port, hash_password, Host, HostOptions};
pub use redis::Redis;

/// The MCP server tokens are for (RFC 8707 resource).
pub const RESOURCE: &str = "http://127.0.0.1:8001/mcp";
/// The client's redirect URI: nothing listens there; the browser stops at the redirect.
pub const REDIRECT: &str = "http://127.0.0.1:49152/callback";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// `rs:rs-secret`, the resource server's introspection credentials, in Basic.
const INTROSPECTION_AUTH: &str = "Basic cnM6cnMtc2VjcmV0";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 7636 §4.2 S256.
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Which key-value backend a host's `default` store uses.
#[derive(Debug, Clone, Copy)]
pub enum Store {
    /// The host's on-disk store in its data directory.
    Embedded,
    /// A `redis-server` of the test's own.
    Redis,
}

/// Runs `flow` against a fresh host on `store`, then stops everything.
pub fn with_host(store: Store, flow: impl FnOnce(&Host)) {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend = match store {
        Store::Embedded => Backend::Embedded,
        Store::Redis => Backend::Redis(Redis::start(dir.path())),
    };
    let host = Host::start(dir.path(), &backend.options());
    flow(&host);
}

/// Two `#[test]`s that run `flow` (a `fn(&Host)`) on each [`Store`].
macro_rules! on_each_store {
    ($flow:ident) => {
        #[test]
        fn on_the_embedded_store() {
            $crate::support::with_host($crate::support::Store::Embedded, $flow);
        }

        #[test]
        fn on_redis() {
            $crate::support::with_host($crate::support::Store::Redis, $flow);
        }
    };
}
pub(crate) use on_each_store;

/// A backend that is running: Redis lives as long as this.
pub enum Backend {
    Embedded,
    Redis(Redis),
}

impl Backend {
    pub fn options(&self) -> HostOptions {
        match self {
            Backend::Embedded => HostOptions::default(),
            Backend::Redis(redis) => HostOptions {
                runtime_config: Some(redis.runtime_config.clone()),
                ..HostOptions::default()
            },
        }
    }
}

/// RFC 7591 registration; returns the registration response (201 checked).
pub fn register(browser: &Browser, base: &str, metadata: Value) -> Value {
    let page = browser.post_json(&format!("{base}/register"), &metadata, &[]);
    assert_eq!(page.status, 201, "registration: {}", page.body);
    page.json()
}

/// RFC 7592 §2.1: the client's configuration, read with its registration access token;
/// `registered` is the registration response.
pub fn read_registration(browser: &Browser, registered: &Value) -> Page {
    browser.get_with(
        text(registered, "registration_client_uri"),
        &[(
            "authorization",
            &format!("Bearer {}", text(registered, "registration_access_token")),
        )],
    )
}

/// A public native client for the code flow; returns its id.
pub fn register_public_client(browser: &Browser, base: &str) -> String {
    let client = register(browser, base, public_client_metadata());
    client["client_id"].as_str().expect("client_id").to_string()
}

/// RFC 7591 metadata of a public native client for the code flow.
pub fn public_client_metadata() -> Value {
    json!({
        "client_name": "E2E Client",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}

/// The client's authorization request (RFC 6749 §4.1.1 with PKCE and RFC 8707 resource).
pub fn authorization_url(base: &str, client_id: &str, state: &str) -> String {
    authorization_url_for(base, client_id, state, RESOURCE)
}

/// [`authorization_url`] for another `resource`.
pub fn authorization_url_for(base: &str, client_id: &str, state: &str, resource: &str) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state)
        .append_pair("scope", "mcp:read mcp:write offline_access")
        .append_pair("resource", resource)
        .finish();
    format!("{base}/authorize?{query}")
}

/// The issuer mcp-auth publishes when `MCP_AUTH_SERVER_URL` is `base`, an origin as people type
/// it (`http://127.0.0.1:PORT`): its URL serialisation, which ends in `/` (WHATWG URL), the form
/// the MCP SDKs' URL types give it too.
pub fn issuer_of(base: &str) -> String {
    assert!(!base.ends_with('/'), "{base} is already an issuer");
    format!("{base}/")
}

/// /authorize → the built-in login (demo/demo) → consent → approve; returns the code the
/// redirect to the client carries, after checking `state` and `iss` (RFC 9207).
pub fn sign_in_locally(browser: &Browser, base: &str, issuer: &str, client_id: &str) -> String {
    sign_in_locally_as(browser, base, issuer, client_id, ("demo", "demo"))
}

/// [`sign_in_locally`] as the user `(name, password)` of `LOCAL_USERS`.
pub fn sign_in_locally_as(
    browser: &Browser,
    base: &str,
    issuer: &str,
    client_id: &str,
    user: (&str, &str),
) -> String {
    let url = authorization_url(base, client_id, "st-1");
    let back = approve_as(browser, &url, "E2E Client", user);
    client_redirect_code(&back, issuer)
}

/// The user's part of the authorization request at `url`: the built-in login (demo/demo), then
/// "approve" on the consent page, which must name `client_name`. Returns the redirect to the
/// client.
pub fn approve_as_demo(browser: &Browser, url: &str, client_name: &str) -> Page {
    approve_as(browser, url, client_name, ("demo", "demo"))
}

/// [`approve_as_demo`] as the user `(name, password)`.
pub fn approve_as(
    browser: &Browser,
    url: &str,
    client_name: &str,
    (name, password): (&str, &str),
) -> Page {
    let to_login = browser.get(url);
    let login = browser.follow(&to_login);
    assert_eq!(login.status, 200, "login page: {}", login.body);
    let consent = browser.submit(&login, &[("username", name), ("password", password)]);
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    assert!(consent.body.contains(client_name), "{}", consent.body);
    browser.submit(&consent, &[("decision", "approve")])
}

/// The code of the final redirect to the client.
pub fn client_redirect_code(back: &Page, issuer: &str) -> String {
    let target = back.location();
    assert!(target.starts_with(REDIRECT), "redirected to {target}");
    let params = query_of(&target);
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], issuer);
    params["code"].clone()
}

/// The error of the final redirect to the client (RFC 6749 §4.1.2.1): `error` and
/// `error_description`, `state` and `iss` checked.
pub fn client_redirect_error(back: &Page, issuer: &str) -> (String, String) {
    let target = back.location();
    assert!(target.starts_with(REDIRECT), "redirected to {target}");
    let params = query_of(&target);
    assert_eq!(params["state"], "st-1");
    assert_eq!(params["iss"], issuer);
    assert!(!params.contains_key("code"), "{target}");
    (
        params["error"].clone(),
        params.get("error_description").cloned().unwrap_or_default(),
    )
}

/// `grant_type=authorization_code` for a public client.
pub fn redeem(browser: &Browser, base: &str, client_id: &str, code: &str) -> Page {
    try_redeem(browser, base, client_id, code).unwrap_or_else(|e| panic!("POST {base}/token: {e}"))
}

/// [`redeem`], with a transport failure as an error instead of a panic.
pub fn try_redeem(
    browser: &Browser,
    base: &str,
    client_id: &str,
    code: &str,
) -> Result<Page, ureq::Error> {
    browser.try_post_form_with(
        &format!("{base}/token"),
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
            ("resource", RESOURCE),
        ],
        &[],
    )
}

/// RFC 7662 introspection as the resource server.
pub fn introspect(browser: &Browser, base: &str, token: &str) -> Value {
    let page = try_introspect(browser, base, token)
        .unwrap_or_else(|e| panic!("POST {base}/introspect: {e}"));
    assert_eq!(page.status, 200, "introspection: {}", page.body);
    page.json()
}

/// The answer to [`introspect`]'s request, whatever it is.
pub fn try_introspect(browser: &Browser, base: &str, token: &str) -> Result<Page, ureq::Error> {
    browser.try_post_form_with(
        &format!("{base}/introspect"),
        &[("token", token)],
        &[("authorization", INTROSPECTION_AUTH)],
    )
}

/// A 200 token response's JSON, with RFC 6749 §5.1's `no-store`.
pub fn tokens_of(page: &Page) -> Value {
    assert_eq!(page.status, 200, "token endpoint: {}", page.body);
    assert_eq!(page.header("cache-control"), Some("no-store"));
    page.json()
}

/// A string field of a JSON object.
pub fn text<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name} in {value}"))
}

/// An MCP `initialize` POST to the MCP server at `url`, with a bearer token or none.
pub fn initialize(browser: &Browser, url: &str, token: Option<&str>) -> Page {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("accept", "application/json, text/event-stream")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    let body = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "e2e", "version": "0"},
        },
    });
    browser.post_json(url, &body, &headers)
}
