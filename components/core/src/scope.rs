//! Scopes (RFC 6749 §3.3): what a client asks for, what it may have, what it gets.
//!
//! One rule for scopes outside `scopes_supported`, wherever they appear: they are refused,
//! never silently dropped (RFC 6749 §3.3 would allow ignoring them, but a client must not
//! believe it holds a scope it was not given): `invalid_scope` at `/authorize`, `/token` and
//! `/device/code`, `invalid_client_metadata` at registration and in metadata documents.

use crate::error::{ErrorCode, OAuthError};
use crate::settings::Settings;

/// The scopes to grant for a request's `scope` parameter: the configured defaults when the
/// client sends none (MCP clients often do), otherwise each requested scope, which must be
/// supported and, when the client registered a `scope`, among those.
pub fn requested(
    settings: &Settings,
    scope_param: Option<&str>,
    client_scope: Option<&str>,
) -> Result<Vec<String>, OAuthError> {
    let requested = match scope_param.map(parse) {
        Some(s) if !s.is_empty() => s,
        _ => {
            let defaults = settings.default_scopes.clone();
            return Ok(match client_scope.map(parse) {
                // A client registered with a narrower scope gets only that part of the defaults.
                Some(allowed) if !allowed.is_empty() => defaults
                    .into_iter()
                    .filter(|s| allowed.contains(s))
                    .collect(),
                _ => defaults,
            });
        }
    };
    for s in &requested {
        if !settings.scopes_supported.contains(s) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope `{s}` is not supported"),
            ));
        }
        if let Some(allowed) = client_scope.map(parse).filter(|a| !a.is_empty()) {
            if !allowed.contains(s) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!("scope `{s}` was not registered for this client"),
                ));
            }
        }
    }
    Ok(requested)
}

/// For a refresh (RFC 6749 §6): the requested scope must not exceed the original grant.
pub fn narrow(granted: &str, scope_param: Option<&str>) -> Result<String, OAuthError> {
    let Some(requested) = scope_param.map(parse).filter(|s| !s.is_empty()) else {
        return Ok(granted.to_string());
    };
    let granted = parse(granted);
    if let Some(extra) = requested.iter().find(|s| !granted.contains(s)) {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            format!("scope `{extra}` exceeds the original grant"),
        ));
    }
    Ok(join(&requested))
}

/// Split a space-delimited scope string, dropping duplicates and keeping order.
pub fn parse(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MapConfig;

    fn settings() -> Settings {
        Settings::from_config(&MapConfig::default()).unwrap()
    }

    #[test]
    fn defaults_when_none_requested() {
        assert_eq!(
            requested(&settings(), None, None).unwrap(),
            ["mcp:read", "mcp:write"]
        );
        assert_eq!(
            requested(&settings(), None, Some("mcp:read")).unwrap(),
            ["mcp:read"]
        );
    }

    #[test]
    fn unsupported_scope_is_invalid_scope() {
        let err = requested(&settings(), Some("mcp:read admin"), None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
        let err = requested(&settings(), Some("mcp:write"), Some("mcp:read")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidScope);
    }

    #[test]
    fn refresh_may_only_narrow() {
        assert_eq!(narrow("a b", None).unwrap(), "a b");
        assert_eq!(narrow("a b", Some("b")).unwrap(), "b");
        assert_eq!(
            narrow("a b", Some("b c")).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }
}
