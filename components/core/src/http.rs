//! HTTP as plain data: the request a handler receives, the response it returns, and the
//! requests it asks the caller to send upstream. No sockets here.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{ErrorCode, OAuthError};

/// Largest request body the core accepts (forms and JSON are small).
pub const MAX_BODY: usize = 64 * 1024;
/// Longest path and query together (an authorization request is well under 4 KiB; anything
/// we accepted here could end up stored with a pending sign-in).
pub const MAX_URI: usize = 8 * 1024;
/// Most bytes of header names and values together.
pub const MAX_HEADERS: usize = 32 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Options,
    Other,
}

impl Method {
    pub fn parse(s: &str) -> Method {
        match s.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }
}

/// An incoming request, as the component received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path without the query, percent-encoded as received (`/register/abc`).
    pub path: String,
    /// The raw query string without `?` (may be empty).
    pub query: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The peer address as the host saw it, when known (for rate limits and audit).
    pub client_addr: Option<String>,
    /// `host[:port]` the client addressed, from `incoming-request.authority`: wasi:http
    /// never delivers a `host` header (it is forbidden), so this is the only place it is.
    pub authority: Option<String>,
}

impl Request {
    /// A request with no headers and no body; handy for tests and for the glue.
    pub fn new(method: Method, path_and_query: &str) -> Request {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p.to_string(), q.to_string()),
            None => (path_and_query.to_string(), String::new()),
        };
        Request {
            method,
            path,
            query,
            headers: Vec::new(),
            body: Vec::new(),
            client_addr: None,
            authority: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// The authority the client addressed (what the glue reads from wasi:http).
    pub fn with_authority(mut self, authority: &str) -> Request {
        self.authority = Some(authority.to_string());
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub fn form(path: &str, pairs: &[(&str, &str)]) -> Request {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        Request::new(Method::Post, path)
            .with_header("content-type", "application/x-www-form-urlencoded")
            .with_body(body)
    }

    /// What is wrong with the request's size, if anything: the status (413 body, 414 URI,
    /// 431 headers; RFC 9110 §15.5.14–15, RFC 6585 §5) and which part.
    pub fn oversized(&self) -> Option<(u16, &'static str)> {
        let header_bytes: usize = self.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        if self.body.len() > MAX_BODY {
            Some((413, "request body too large"))
        } else if self.path.len() + self.query.len() > MAX_URI {
            Some((414, "request URI too long"))
        } else if header_bytes > MAX_HEADERS {
            Some((431, "request header fields too large"))
        } else {
            None
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// How many times header `name` occurs.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// The value of cookie `name`, from the `Cookie` header(s).
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// The query string as parameters (RFC 6749 §3.1: repeated parameters are refused).
    pub fn query_params(&self) -> Result<Params, OAuthError> {
        Params::parse(self.query.as_bytes())
    }

    /// The body as form parameters. Requires `application/x-www-form-urlencoded`
    /// (RFC 6749 §3.2) and refuses repeated parameters.
    pub fn form_params(&self) -> Result<Params, OAuthError> {
        let media_type = self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        if media_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "the request body must be application/x-www-form-urlencoded",
            ));
        }
        Params::parse(&self.body)
    }

    /// The bearer token of an `Authorization: Bearer` header (RFC 6750 §2.1).
    pub fn bearer_token(&self) -> Option<&str> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = token.trim();
        (!token.is_empty()).then_some(token)
    }
}

/// Decoded `name=value` parameters with every name at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parse `application/x-www-form-urlencoded` bytes. A repeated name is an
    /// `invalid_request` (RFC 6749 §3.1, §3.2), a repeated `resource` an `invalid_target`
    /// (RFC 8707 §2: a token has one audience here); empty values count as absent.
    pub fn parse(bytes: &[u8]) -> Result<Params, OAuthError> {
        if std::str::from_utf8(bytes).is_err() {
            return Err(OAuthError::invalid_request("parameters must be UTF-8"));
        }
        let mut map = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if map.contains_key(name.as_ref()) {
                let code = if name == "resource" {
                    ErrorCode::InvalidTarget
                } else {
                    ErrorCode::InvalidRequest
                };
                return Err(OAuthError::new(
                    code,
                    format!("parameter `{name}` is repeated"),
                ));
            }
            map.insert(name.into_owned(), value.into_owned());
        }
        map.retain(|_, v| !v.is_empty());
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of a parameter that must be present.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("`{name}` is required")))
    }
}

/// `url` with `pairs` appended to its query (which it may already have), form-encoded;
/// `None` when `url` is not an absolute URL.
pub fn with_query(url: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(url).ok()?;
    url.query_pairs_mut().extend_pairs(pairs);
    Some(url.into())
}

/// The Content-Security-Policy of our pages: nothing but their own inline style, never in a
/// frame, forms sent only to `form_action`.
fn page_policy(form_action: &str) -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The CSP source expression (CSP Level 3 §2.3.1) naming `uri`'s origin: `scheme://host:port`
/// for the web, `scheme:` for a native app's private-use scheme (RFC 8252 §7.1). `None` when
/// `uri` is not an absolute URL.
fn csp_source(uri: &str) -> Option<String> {
    let url = url::Url::parse(uri).ok()?;
    let origin = url.origin();
    Some(if origin.is_tuple() {
        origin.ascii_serialization()
    } else {
        format!("{}:", url.scheme())
    })
}

/// A response the caller sends back as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(status: u16, value: &impl Serialize) -> Response {
        // Serialising our own plain structs cannot fail.
        let body = serde_json::to_vec(value).unwrap_or_default();
        Response::new(status)
            .with_header("content-type", "application/json")
            .with_body(body)
    }

    /// An HTML page. Pages never embed in frames and load nothing from elsewhere.
    pub fn html(status: u16, body: String) -> Response {
        Response::new(status)
            .with_header("content-type", "text/html; charset=utf-8")
            .with_header("content-security-policy", &page_policy("'self'"))
            .with_header("x-frame-options", "DENY")
            .with_header("referrer-policy", "no-referrer")
            .with_header("x-content-type-options", "nosniff")
            .with_header("cache-control", "no-store")
            .with_body(body)
    }

    /// This page's forms may end at `redirect_uri` (consent answers with a redirect to the
    /// client, RFC 6749 §4.1.2): browsers hold every redirect of a form submission to the
    /// page's CSP `form-action` (CSP Level 3 §6.4.1), so the client's origin is added to it.
    pub fn with_form_redirect_to(mut self, redirect_uri: &str) -> Response {
        let Some(source) = csp_source(redirect_uri) else {
            return self;
        };
        let policy = page_policy(&format!("'self' {source}"));
        for (name, value) in &mut self.headers {
            if name == "content-security-policy" {
                value.clone_from(&policy);
            }
        }
        self
    }

    /// `302 Found` to `location`.
    pub fn redirect(location: &str) -> Response {
        Response::new(302)
            .with_header("location", location)
            .with_header("cache-control", "no-store")
    }

    /// RFC 6749 §5.1: token responses must not be cached.
    pub fn no_store(self) -> Response {
        self.with_header("cache-control", "no-store")
            .with_header("pragma", "no-cache")
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (tests and glue use this).
    pub fn json_body(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// A request the core asks the caller to send (to the upstream provider or a CIMD host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    pub method: Method,
    /// Absolute `http(s)://` URL.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl OutgoingRequest {
    pub fn get(url: impl Into<String>) -> OutgoingRequest {
        OutgoingRequest {
            method: Method::Get,
            url: url.into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
        }
    }

    pub fn post_form(url: impl Into<String>, pairs: &[(&str, &str)]) -> OutgoingRequest {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        OutgoingRequest {
            method: Method::Post,
            url: url.into(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("accept".into(), "application/json".into()),
            ],
            body: body.into_bytes(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> OutgoingRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }
}

/// What came back from an [`OutgoingRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl UpstreamResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_redirects_may_reach_the_client_origin_only() {
        let csp = |uri: &str| {
            Response::html(200, String::new())
                .with_form_redirect_to(uri)
                .header("content-security-policy")
                .unwrap()
                .to_string()
        };
        assert!(csp("http://127.0.0.1:8080/cb?x=1")
            .contains("form-action 'self' http://127.0.0.1:8080; frame-ancestors 'none'"));
        assert!(csp("https://app.example/cb").contains("form-action 'self' https://app.example;"));
        assert!(csp("com.example.app:/oauth").contains("form-action 'self' com.example.app:;"));
        assert!(csp("not a url").contains("form-action 'self';"));
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let err = Params::parse(b"a=1&a=2").unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_request");
        let err = Params::parse(b"resource=https%3A%2F%2Fa.example&resource=x").unwrap_err();
        assert_eq!(err.code.as_str(), "invalid_target");
    }

    #[test]
    fn empty_values_count_as_absent() {
        let p = Params::parse(b"a=&b=x%20y").unwrap();
        assert_eq!(p.get("a"), None);
        assert_eq!(p.get("b"), Some("x y"));
    }

    #[test]
    fn non_utf8_is_refused() {
        assert!(Params::parse(&[b'a', b'=', 0xff]).is_err());
    }

    #[test]
    fn form_requires_the_form_media_type() {
        let req = Request::new(Method::Post, "/token")
            .with_header("content-type", "application/json")
            .with_body("a=1");
        assert!(req.form_params().is_err());
        let req = Request::new(Method::Post, "/token")
            .with_header(
                "Content-Type",
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .with_body("a=1");
        assert_eq!(req.form_params().unwrap().get("a"), Some("1"));
    }

    #[test]
    fn query_is_appended_to_an_existing_one() {
        assert_eq!(
            with_query(
                "https://a.example/cb?x=1",
                &[("code", "a b"), ("state", "&")]
            )
            .unwrap(),
            "https://a.example/cb?x=1&code=a+b&state=%26"
        );
        assert_eq!(with_query("not a url", &[("a", "b")]), None);
    }

    #[test]
    fn cookies_and_bearer() {
        let req = Request::new(Method::Get, "/")
            .with_header("cookie", "a=1; csrf=xyz")
            .with_header("authorization", "bearer abc");
        assert_eq!(req.cookie("csrf"), Some("xyz"));
        assert_eq!(req.bearer_token(), Some("abc"));
    }
}
