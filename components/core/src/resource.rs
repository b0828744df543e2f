//! Resource indicators (RFC 8707): which MCP server a token is for.
//!
//! Clients differ in case and trailing slashes (`https://MCP.example.com/mcp/` vs
//! `https://mcp.example.com/mcp`); both name one resource, so both normalise to one string,
//! which becomes the token's `aud`.

use crate::error::{ErrorCode, OAuthError};
use crate::settings::Settings;

/// The canonical form of a resource indicator: absolute URI, no fragment (RFC 8707 §2),
/// lower-case scheme and host, no default port, no trailing slash.
pub fn normalize(resource: &str) -> Result<String, String> {
    let url = url::Url::parse(resource.trim()).map_err(|_| "is not an absolute URI".to_string())?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user information".into());
    }
    let mut s = url.to_string();
    if url.query().is_none() {
        while s.ends_with('/') {
            s.pop();
        }
    }
    Ok(s)
}

/// Check a requested `resource` against the configured ones; `invalid_target` otherwise.
pub fn allowed(settings: &Settings, requested: &str) -> Result<String, OAuthError> {
    let normal = normalize(requested).map_err(|e| {
        OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource `{requested}` {e}"),
        )
    })?;
    let ok = if settings.resources.is_empty() {
        // Unconfigured: local development, where MCP servers run on loopback.
        url::Url::parse(&normal)
            .ok()
            .and_then(|u| u.host_str().map(is_loopback_host))
            .unwrap_or(false)
    } else {
        settings.resources.contains(&normal)
    };
    if ok {
        Ok(normal)
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource `{requested}` is not served by this authorization server"),
        ))
    }
}

/// `localhost`, `127.0.0.0/8` or `::1` (RFC 8252 §7.3 loopback).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MapConfig;

    #[test]
    fn case_port_and_trailing_slash_normalise() {
        assert_eq!(
            normalize("HTTPS://MCP.Example.com:443/mcp/").unwrap(),
            "https://mcp.example.com/mcp"
        );
        assert_eq!(
            normalize("https://mcp.example.com/").unwrap(),
            "https://mcp.example.com"
        );
        assert_eq!(
            normalize("https://mcp.example.com").unwrap(),
            "https://mcp.example.com"
        );
        assert!(normalize("https://mcp.example.com/#x").is_err());
        assert!(normalize("mcp.example.com").is_err());
        assert!(normalize("urn:x:y").is_err());
    }

    #[test]
    fn unconfigured_allows_only_loopback() {
        let s = Settings::from_config(&MapConfig::default()).unwrap();
        assert_eq!(
            allowed(&s, "http://localhost:8001/mcp/").unwrap(),
            "http://localhost:8001/mcp"
        );
        let err = allowed(&s, "https://evil.example/mcp").unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidTarget);
    }

    #[test]
    fn configured_resources_match_after_normalising() {
        let c = MapConfig::from([("mcp_server", "https://mcp.example.com/mcp")]);
        let s = Settings::from_config(&c).unwrap();
        assert!(allowed(&s, "https://MCP.example.com/mcp/").is_ok());
        assert!(allowed(&s, "https://mcp.example.com/other").is_err());
        assert!(allowed(&s, "http://localhost:8001").is_err());
    }
}
