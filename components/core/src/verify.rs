//! ForwardAuth (`GET /verify`): a reverse proxy (Traefik `forwardAuth`, nginx
//! `auth_request`, Caddy `forward_auth`) asks whether a request may reach the MCP server.
//!
//! The bearer token is looked up by its hash (one `get`, no signature check). The forwarded
//! request (`X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri`, the host defaulting
//! to the request's authority) must lie within the token's audience (RFC 8707): same scheme,
//! host and port, and the resource's path or below.
//! A refusal is a 401 whose `WWW-Authenticate` points MCP clients at the protected resource
//! metadata (RFC 9728 §5.1), with `error="invalid_token"` when a token was sent (RFC 6750
//! §3.1).

use url::Url;

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Request, Response};
use crate::tokens;

/// `GET /verify`.
pub fn verify(env: &Env, req: &Request) -> Response {
    if !matches!(req.method, Method::Get | Method::Head) {
        return OAuthError::new(ErrorCode::MethodNotAllowed, "use GET")
            .with_header("allow", "GET, HEAD")
            .into_response();
    }
    let forwarded = forwarded_url(env, req);
    let Some(token) = req.bearer_token() else {
        return unauthorized(env, forwarded.as_ref(), false);
    };
    let record = match tokens::find_access(env, token) {
        Ok(record) => record,
        Err(err) => return OAuthError::from(err).into_response(),
    };
    let Some(record) = record.filter(|r| {
        forwarded
            .as_ref()
            .is_some_and(|url| within_resource(url, &r.aud))
    }) else {
        return unauthorized(env, forwarded.as_ref(), true);
    };
    Response::new(200)
        .with_header("x-auth-subject", &header_safe(&record.sub))
        .with_header("x-auth-client-id", &header_safe(&record.client_id))
        .with_header("x-auth-scope", &header_safe(&record.scope))
        .with_header("x-user-id", &header_safe(&record.sub))
        .no_store()
}

/// The request the proxy is asking about, from its `X-Forwarded-*` headers (the first value
/// of each, as the first proxy saw it). Without `X-Forwarded-Host`, the authority the proxy
/// addressed (a proxy that keeps the client's `Host`); without `X-Forwarded-Proto`, the
/// issuer's scheme. `None` when the host is unknown or the URL is bad.
///
/// These headers are read from any peer: they are the question asked, and the answer only
/// says whether the presented token covers that URL, which its holder may ask anyway.
fn forwarded_url(env: &Env, req: &Request) -> Option<Url> {
    let first = |name: &str| {
        req.header(name)
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let proto = first("x-forwarded-proto").unwrap_or(env.settings.issuer_scheme());
    if !proto.eq_ignore_ascii_case("https") && !proto.eq_ignore_ascii_case("http") {
        return None;
    }
    let host = first("x-forwarded-host").or(req.authority.as_deref())?;
    let uri = first("x-forwarded-uri").unwrap_or("/");
    if !uri.starts_with('/') || host.contains(['/', '?', '#', '@', '\\']) {
        return None;
    }
    Url::parse(&format!("{proto}://{host}{uri}")).ok()
}

/// Is `url` the resource `aud` or below it? Dot segments are resolved by the URL parser, so
/// `/mcp/../admin` is not below `/mcp`.
fn within_resource(url: &Url, aud: &str) -> bool {
    let Ok(aud) = Url::parse(aud) else {
        return false;
    };
    let base = aud.path().trim_end_matches('/');
    let path = url.path();
    url.scheme() == aud.scheme()
        && url.host_str() == aud.host_str()
        && url.port_or_known_default() == aud.port_or_known_default()
        && (base.is_empty()
            || path == base
            || path.strip_prefix(base).is_some_and(|r| r.starts_with('/')))
}

/// 401 with the RFC 9728 pointer: `<origin>/.well-known/oauth-protected-resource<path>` for
/// the configured resource that covers the forwarded request.
fn unauthorized(env: &Env, forwarded: Option<&Url>, token_sent: bool) -> Response {
    let mut challenge = String::from("Bearer realm=\"mcp-auth\"");
    if let Some(url) = forwarded {
        let path = env
            .settings
            .resources
            .iter()
            .find(|r| within_resource(url, r))
            .and_then(|r| Url::parse(r).ok())
            .map(|r| r.path().trim_end_matches('/').to_string())
            .unwrap_or_default();
        // The origin comes from a parsed URL: it holds no quote or control character.
        challenge.push_str(&format!(
            ", resource_metadata=\"{}/.well-known/oauth-protected-resource{path}\"",
            url.origin().ascii_serialization()
        ));
    }
    if token_sent {
        challenge.push_str(", error=\"invalid_token\"");
        return OAuthError::new(
            ErrorCode::InvalidToken,
            "the access token is invalid, expired, or not for this resource",
        )
        .with_header("www-authenticate", challenge)
        .into_response();
    }
    // RFC 6750 §3.1: no error code when the request carried no token.
    Response::new(401)
        .with_header("www-authenticate", &challenge)
        .no_store()
}

/// Header values must not carry control characters (a newline would split the header).
fn header_safe(value: &str) -> String {
    value.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn within_resource_checks_origin_and_path_prefix() {
        let aud = "https://mcp.example.com/mcp";
        assert!(within_resource(&url("https://mcp.example.com/mcp"), aud));
        assert!(within_resource(
            &url("https://MCP.example.com:443/mcp/x"),
            aud
        ));
        assert!(!within_resource(&url("https://mcp.example.com/mcpx"), aud));
        assert!(!within_resource(
            &url("https://mcp.example.com/mcp/../admin"),
            aud
        ));
        assert!(!within_resource(&url("http://mcp.example.com/mcp"), aud));
        assert!(!within_resource(
            &url("https://mcp.example.com:8443/mcp"),
            aud
        ));
        assert!(!within_resource(&url("https://other.example.com/mcp"), aud));
        assert!(within_resource(
            &url("https://mcp.example.com/anything"),
            "https://mcp.example.com"
        ));
    }
}
