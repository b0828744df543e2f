//! What the authorize and upstream tests share: a registered client, a valid authorization
//! request, and following the redirects of a sign-in.
#![allow(dead_code)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Deref;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use mcp_auth_core::audit::AuditEvent;
use mcp_auth_core::client::{self, AuthMethod, Client, ClientMetadata, ClientSource};
use mcp_auth_core::grants::{self, AuthorizationCode, DeviceGrant, DeviceStatus};
use mcp_auth_core::records;
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{handle, Endpoint, Method, Request, Response};

pub const CLIENT: &str = "client-1";
pub const REDIRECT: &str = "https://app.example/cb";
pub const RESOURCE: &str = "https://mcp.example.com/mcp";
/// RFC 7636 Appendix B.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Where the harness's endpoints are: the default `mcp_auth_server_url`, as people type it.
pub const BASE: &str = "http://127.0.0.1:3000";
/// The issuer it publishes: the canonical form of [`BASE`].
pub const ISSUER: &str = "http://127.0.0.1:3000/";

/// A harness with one configured resource, consent off, and `extra` settings. Its client
/// [`CLIENT`] is operator-provisioned, so that consent off lets sign-ins go straight to the
/// client and errors are redirected to it: the tests of every other step need no consent
/// page. The rules for dynamically registered clients are tested with [`register`]ed ones.
pub fn harness(extra: &[(&str, &str)]) -> Server {
    let mut config = MapConfig::from([("mcp_server", RESOURCE), ("consent", "false")]);
    for (k, v) in extra {
        config.set(k, v);
    }
    let h = Server::new(Harness::with_config(config));
    register_as(
        &h,
        CLIENT,
        "Test Client",
        &[REDIRECT],
        ClientSource::Provisioned,
    );
    h
}

/// A browser: it keeps the cookies the server sets and sends them back, from its address.
pub struct Browser {
    jar: RefCell<BTreeMap<String, String>>,
    addr: Option<String>,
}

impl Browser {
    /// A browser on the server's machine (127.0.0.1).
    pub fn new() -> Browser {
        Browser::at(Some("127.0.0.1"))
    }

    /// A browser at `addr` (`None`: the host gave no address).
    pub fn at(addr: Option<&str>) -> Browser {
        Browser {
            jar: RefCell::default(),
            addr: addr.map(str::to_string),
        }
    }

    /// Serve `req` from this browser: its cookies (after any the test set) and its address.
    pub fn call(&self, h: &Harness, req: Request) -> Response {
        let res = h.call(self.prepare(req));
        self.receive(&res);
        res
    }

    pub fn get(&self, h: &Harness, path_and_query: &str) -> Response {
        self.call(h, Request::new(Method::Get, path_and_query))
    }

    /// `req` as this browser sends it.
    pub fn prepare(&self, mut req: Request) -> Request {
        if req.client_addr.is_none() {
            req.client_addr = self.addr.clone();
        }
        let jar = self.jar.borrow();
        if jar.is_empty() {
            return req;
        }
        let cookies: Vec<String> = jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        req.with_header("cookie", &cookies.join("; "))
    }

    /// Keep the cookies `res` sets (and forget those it clears).
    pub fn receive(&self, res: &Response) {
        let mut jar = self.jar.borrow_mut();
        for (_, set) in res.headers.iter().filter(|(n, _)| n == "set-cookie") {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attributes.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// The names of the cookies this browser holds.
    pub fn cookie_names(&self) -> Vec<String> {
        self.jar.borrow().keys().cloned().collect()
    }
}

/// A harness and the browser (on 127.0.0.1) that its `call` goes through.
pub struct Server {
    pub harness: Harness,
    pub browser: Browser,
}

impl Server {
    pub fn new(harness: Harness) -> Server {
        Server {
            harness,
            browser: Browser::new(),
        }
    }

    /// Serve `req` from the default browser.
    pub fn call(&self, req: Request) -> Response {
        self.browser.call(&self.harness, req)
    }
}

impl Deref for Server {
    type Target = Harness;

    fn deref(&self) -> &Harness {
        &self.harness
    }
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

pub fn get(h: &Server, path_and_query: &str) -> Response {
    h.call(Request::new(Method::Get, path_and_query))
}

/// Serve `req` like [`Server::call`], and also return the audit events it recorded.
pub fn call_audited(h: &Server, req: Request) -> (Response, Vec<AuditEvent>) {
    let env = h.env();
    let res = handle(&env, &h.browser.prepare(req), Endpoint::ALL);
    h.browser.receive(&res);
    (res, env.take_audit())
}

pub fn authorize(h: &Server, changes: &Changes) -> Response {
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

/// POST a form a page rendered (its `session` and `csrf`, and `fields`) from the default
/// browser, which holds the page's cookies.
pub fn post_form(h: &Server, path: &str, page: &Response, fields: &[(&str, &str)]) -> Response {
    h.call(form_of(path, page, fields))
}

/// The POST of a form a page rendered: its `session` and `csrf`, and `fields`.
pub fn form_of(path: &str, page: &Response, fields: &[(&str, &str)]) -> Request {
    let session = hidden(page, "session");
    let csrf = hidden(page, "csrf");
    let mut pairs = vec![("session", session.as_str()), ("csrf", csrf.as_str())];
    pairs.extend_from_slice(fields);
    Request::form(path, &pairs)
}

/// The code record a redirect to the client carries.
pub fn code_record(h: &Harness, client_redirect: &str) -> AuthorizationCode {
    let code = query_of(client_redirect).remove("code").expect("code");
    records::get(&h.env(), &grants::code_key(&code))
        .unwrap()
        .expect("code record")
}

/// The PHC string of `password` under argon2 parameters cheap enough for tests.
pub fn cheap_hash(password: &str) -> String {
    let params = Params::new(8, 1, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

pub const USER_CODE: &str = "WDJBMJHT";

/// A pending device grant as `/device/code` would have stored it; its key.
pub fn device_grant(h: &Harness) -> String {
    let env = h.env();
    let key = grants::device_key("device-code-1");
    let grant = DeviceGrant {
        client_id: CLIENT.into(),
        scope: "mcp:read".into(),
        resource: RESOURCE.into(),
        user_code: USER_CODE.into(),
        status: DeviceStatus::Pending,
    };
    let exp = Some(env.now() + 600);
    records::put(&env, &key, &grant, exp).unwrap();
    records::put(&env, &grants::user_code_key(USER_CODE), &key, exp).unwrap();
    key
}
