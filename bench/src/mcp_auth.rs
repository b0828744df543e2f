//! mcp-auth's side: the variables its host runs with, the state the scenarios need (a
//! confidential client, an access token, one refresh-token chain per connection, obtained
//! through the real endpoints), and the scenarios themselves.

use std::net::SocketAddr;

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::load::{self, expect_status, Fixed, Script};

/// The MCP server tokens are for (RFC 8707 resource).
pub const RESOURCE: &str = "http://127.0.0.1:8001/mcp";
/// The client's redirect URI; nothing listens there, the sign-in stops at the redirect.
const REDIRECT: &str = "http://127.0.0.1:49152/callback";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The resource server's introspection credentials.
const RESOURCE_SERVER: (&str, &str) = ("rs", "rs-secret");
/// The operator's machine client (`MACHINE_CLIENTS`), for the client-credentials token:
/// registration does not grant that grant.
const MACHINE: (&str, &str) = ("bench-machine", "bench-machine-secret");
/// High enough that no scenario is refused, yet every request still counts its use as in
/// production (a limit of 0 would skip the counting).
const RATE_LIMIT: &str = "1000000000";

/// The variables (environment names) of a benchmarked host serving at `issuer`.
pub fn variables(issuer: &str, jwt_algorithm: &str) -> Vec<(String, String)> {
    let mut vars = vec![
        ("MCP_AUTH_SERVER_URL".to_owned(), issuer.to_owned()),
        ("JWT_ALGORITHM".to_owned(), jwt_algorithm.to_owned()),
        ("MCP_SERVER".to_owned(), RESOURCE.to_owned()),
        (
            "INTROSPECTION_CREDENTIALS".to_owned(),
            format!("{}:{}", RESOURCE_SERVER.0, RESOURCE_SERVER.1),
        ),
        (
            "MACHINE_CLIENTS".to_owned(),
            format!("{}:{}", MACHINE.0, MACHINE.1),
        ),
    ];
    for limit in [
        "RATE_LIMIT_REGISTER_PER_IP",
        "RATE_LIMIT_REGISTER_GLOBAL",
        "RATE_LIMIT_TOKEN_PER_CLIENT",
        // The set-up's concurrent sign-ins count against the login limits: every try counts
        // until it proves right.
        "RATE_LIMIT_LOGIN_FAILURES_PER_USER",
        "RATE_LIMIT_LOGIN_FAILURES_PER_IP",
    ] {
        vars.push((limit.to_owned(), RATE_LIMIT.to_owned()));
    }
    vars
}

/// What the scenarios start from.
pub struct State {
    pub client_id: String,
    pub client_secret: String,
    /// A client-credentials access token for [`RESOURCE`].
    pub access_token: String,
    /// One refresh token per connection, each the start of its own chain.
    pub refresh_tokens: Vec<String>,
}

/// Registers a confidential client, obtains an access token as the machine client, and
/// `chains` refresh tokens (each through the built-in login, demo/demo, and a code exchange).
pub async fn set_up(addr: SocketAddr, chains: usize) -> Result<State, String> {
    let (client_id, client_secret) =
        register_confidential(addr, "mcp:read mcp:write offline_access").await?;
    let issued = json_answer(
        addr,
        post_form(
            "/token",
            &[("grant_type", "client_credentials"), ("resource", RESOURCE)],
            Some(&basic(MACHINE.0, MACHINE.1)),
        ),
        StatusCode::OK,
    )
    .await?;
    let access_token = text(&issued, "access_token")?;
    let basic = basic(&client_id, &client_secret);
    let sign_ins = (0..chains).map(|_| {
        let (client_id, basic) = (client_id.clone(), basic.clone());
        async move { refresh_token(addr, &client_id, &basic).await }
    });
    let refresh_tokens = futures_join_all(sign_ins).await?;
    Ok(State {
        client_id,
        client_secret,
        access_token,
        refresh_tokens,
    })
}

/// `GET /.well-known/oauth-authorization-server`.
pub fn discovery() -> Fixed {
    Fixed {
        request: get("/.well-known/oauth-authorization-server", &[]),
        expect: StatusCode::OK,
        contains: None,
    }
}

/// `POST /register`: a public native client, as MCP clients register.
pub fn registration() -> Fixed {
    registration_at("/register")
}

/// A registration of a public native client at `path`: the same body for every server
/// measured, so that they do the same work.
pub fn registration_at(path: &str) -> Fixed {
    Fixed {
        request: post_json(
            path,
            &json!({
                "client_name": "Bench Client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            }),
        ),
        expect: StatusCode::CREATED,
        contains: None,
    }
}

/// `POST /introspect` of a valid access token, as the resource server.
pub fn introspection(state: &State) -> Fixed {
    Fixed {
        request: post_form(
            "/introspect",
            &[("token", &state.access_token)],
            Some(&basic(RESOURCE_SERVER.0, RESOURCE_SERVER.1)),
        ),
        expect: StatusCode::OK,
        contains: Some("\"active\":true"),
    }
}

/// `GET /verify` (ForwardAuth) of a valid access token for a request to the resource.
pub fn verify(state: &State) -> Fixed {
    let url = url_of(RESOURCE);
    Fixed {
        request: get(
            "/verify",
            &[
                ("authorization", &format!("Bearer {}", state.access_token)),
                ("x-forwarded-proto", "http"),
                ("x-forwarded-host", &url.authority),
                ("x-forwarded-uri", &url.path),
            ],
        ),
        expect: StatusCode::OK,
        contains: None,
    }
}

/// `POST /token` with `grant_type=refresh_token`, rotating: each answer's refresh token is
/// the next request's, so every request also runs reuse detection on a live chain.
pub struct Refresh {
    pub path: &'static str,
    pub basic: String,
    pub token: String,
}

impl Refresh {
    pub fn new(state: &State, connection: usize) -> Refresh {
        Refresh {
            path: "/token",
            basic: basic(&state.client_id, &state.client_secret),
            token: state.refresh_tokens[connection].clone(),
        }
    }
}

impl Script for Refresh {
    fn request(&mut self) -> Request<Full<Bytes>> {
        let fields = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.token.as_str()),
        ];
        post_form(self.path, &fields, Some(&self.basic))
    }

    fn answer(&mut self, status: StatusCode, body: &Bytes) -> Result<(), String> {
        expect_status(StatusCode::OK, status, body)?;
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("token answer is not JSON: {e}"))?;
        self.token = text(&value, "refresh_token")?;
        Ok(())
    }
}

/// Authorization request → login → consent → code → token; the refresh token.
async fn refresh_token(addr: SocketAddr, client_id: &str, basic: &str) -> Result<String, String> {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "bench")
        .append_pair("scope", "mcp:read mcp:write offline_access")
        .append_pair("resource", RESOURCE)
        .finish();
    let mut browser = Browser::default();
    let login = browser
        .follow(addr, get(&format!("/authorize?{query}"), &[]))
        .await?;
    let consent = browser
        .submit(addr, &login, &[("username", "demo"), ("password", "demo")])
        .await?;
    let back = browser
        .submit(addr, &consent, &[("decision", "approve")])
        .await?;
    let code = url_of(&back)
        .query
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .ok_or_else(|| format!("no code in the redirect {back}"))?
        .to_owned();
    let tokens = json_answer(
        addr,
        post_form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", REDIRECT),
                ("resource", RESOURCE),
            ],
            Some(basic),
        ),
        StatusCode::OK,
    )
    .await?;
    text(&tokens, "refresh_token")
}

/// Just enough of a browser for the sign-in: a cookie jar, redirects followed within the
/// host, and forms submitted with their hidden fields.
#[derive(Default)]
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    /// Sends `request` and follows redirects within the host; the final page's body, or the
    /// `Location` of a redirect that leaves the host.
    async fn follow(
        &mut self,
        addr: SocketAddr,
        mut request: Request<Full<Bytes>>,
    ) -> Result<String, String> {
        for _ in 0..5 {
            if !self.cookies.is_empty() {
                let cookie = self
                    .cookies
                    .iter()
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                request
                    .headers_mut()
                    .insert(http::header::COOKIE, cookie.parse().map_err(|_| "cookie")?);
            }
            let (status, headers, body) = load::once(addr, request).await?;
            for set in headers.get_all(http::header::SET_COOKIE) {
                let pair = set.to_str().unwrap_or("").split(';').next().unwrap_or("");
                if let Some((name, value)) = pair.split_once('=') {
                    self.cookies.retain(|(n, _)| n != name);
                    self.cookies.push((name.to_owned(), value.to_owned()));
                }
            }
            if !status.is_redirection() {
                if status != StatusCode::OK {
                    return Err(format!(
                        "sign-in step answered {status}: {}",
                        String::from_utf8_lossy(&body)
                    ));
                }
                return Ok(String::from_utf8_lossy(&body).into_owned());
            }
            let location = headers
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or("a redirect without Location")?;
            let target = url_of(location);
            if !target.authority.is_empty() && target.authority != addr.to_string() {
                return Ok(location.to_owned());
            }
            request = get(&target.path_and_query(), &[]);
        }
        Err("too many redirects".into())
    }

    /// Submits the page's form with its hidden fields and `fields`.
    async fn submit(
        &mut self,
        addr: SocketAddr,
        page: &str,
        fields: &[(&str, &str)],
    ) -> Result<String, String> {
        let start = page.find("<form").ok_or("no form on the page")?;
        let html = &page[start..];
        let html = &html[..html.find("</form>").unwrap_or(html.len())];
        let action = attribute(&html[..html.find('>').unwrap_or(0)], "action")
            .ok_or("a form without action")?;
        let mut all: Vec<(String, String)> = html
            .split("<input")
            .skip(1)
            .filter(|tag| attribute(tag, "type").as_deref() == Some("hidden"))
            .filter_map(|tag| Some((attribute(tag, "name")?, attribute(tag, "value")?)))
            .collect();
        all.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let request = post_form(&url_of(&action).path_and_query(), &pairs, None);
        self.follow(addr, request).await
    }
}

/// The value of attribute `name` in the start of an HTML tag (values we emit carry no
/// entities but `&amp;`).
fn attribute(tag: &str, name: &str) -> Option<String> {
    let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(tag[start..start + len].replace("&amp;", "&"))
}

/// The parts of an absolute or origin-relative URL the benchmark needs.
pub struct UrlParts {
    pub authority: String,
    pub path: String,
    pub query: String,
}

impl UrlParts {
    fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

pub fn url_of(url: &str) -> UrlParts {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (authority, rest) = if url.contains("://") {
        rest.find('/')
            .map_or((rest, "/"), |i| (&rest[..i], &rest[i..]))
    } else {
        ("", rest)
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    UrlParts {
        authority: authority.to_owned(),
        path: path.to_owned(),
        query: query.to_owned(),
    }
}

pub fn get(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = Request::builder().method(Method::GET).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

pub fn post_json(path: &str, body: &Value) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid request")
}

pub fn post_form(path: &str, fields: &[(&str, &str)], basic: Option<&str>) -> Request<Full<Bytes>> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let mut request = Request::builder().method(Method::POST).uri(path).header(
        http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded",
    );
    if let Some(basic) = basic {
        request = request.header(http::header::AUTHORIZATION, basic);
    }
    request
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request")
}

/// RFC 6749 §2.3.1 Basic credentials (form-urlencoded, then base64).
pub fn basic(id: &str, secret: &str) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", encode(id), encode(secret));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Sends `request` and parses the answer as JSON, which must come with `expect`.
pub async fn json_answer(
    addr: SocketAddr,
    request: Request<Full<Bytes>>,
    expect: StatusCode,
) -> Result<Value, String> {
    let path = request.uri().path().to_owned();
    let (status, _, body) = load::once(addr, request).await?;
    expect_status(expect, status, &body).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("{path}: not JSON: {e}"))
}

/// A string field of a JSON object.
/// Registers a confidential client for the code and refresh grants (RFC 7591, as every system
/// of the bench serves it): its `(client_id, client_secret)`.
pub async fn register_confidential(
    addr: SocketAddr,
    scope: &str,
) -> Result<(String, String), String> {
    let registered = json_answer(
        addr,
        post_json(
            "/register",
            &json!({
                "client_name": "Bench Client",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "client_secret_basic",
                "scope": scope,
            }),
        ),
        StatusCode::CREATED,
    )
    .await?;
    Ok((
        text(&registered, "client_id")?,
        text(&registered, "client_secret")?,
    ))
}

/// The `refresh_tokens` a peer's bench-only seeding route (`POST /bench/refresh-tokens`)
/// answered.
pub fn seeded_refresh_tokens(seeded: &Value) -> Result<Vec<String>, String> {
    seeded["refresh_tokens"]
        .as_array()
        .ok_or("no refresh_tokens seeded")?
        .iter()
        .map(|t| t.as_str().map(str::to_owned).ok_or("not a string".into()))
        .collect()
}

pub fn text(value: &Value, name: &str) -> Result<String, String> {
    value[name]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no `{name}` in {value}"))
}

/// Runs the futures concurrently; their results in order, or the first error.
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Result<Vec<String>, String>
where
    F: std::future::Future<Output = Result<String, String>> + Send + 'static,
{
    let tasks: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(
            task.await
                .map_err(|e| format!("a sign-in task failed: {e}"))??,
        );
    }
    Ok(out)
}
