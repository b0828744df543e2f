//! OAuth errors as the RFCs name them (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8628 §3.5,
//! RFC 8707 §2, RFC 6750 §3.1), each with its HTTP status.

use serde::Serialize;

use crate::env::StoreError;
use crate::http::Response;

/// The `error` codes we emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    /// RFC 8707 §2
    InvalidTarget,
    /// RFC 7591 §3.2.2
    InvalidRedirectUri,
    InvalidClientMetadata,
    /// RFC 6750 §3.1
    InvalidToken,
    InsufficientScope,
    /// OpenID Connect Core §3.1.2.6: `prompt=none`, and we keep no sign-in sessions
    LoginRequired,
    /// RFC 8628 §3.5
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    /// RFC 7009 §2.2.1
    UnsupportedTokenType,
    /// Not an RFC code: a rate limit (sent with 429 and `Retry-After`).
    TooManyRequests,
    /// Not an RFC code: no such endpoint / resource.
    NotFound,
    MethodNotAllowed,
    PayloadTooLarge,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::TooManyRequests => "too_many_requests",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
        }
    }

    /// The status the RFCs give this error at the token/registration endpoints.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// The challenge of a 401 `invalid_client`: the client authenticates with HTTP Basic
/// (RFC 6749 §2.3.1).
pub const CLIENT_CHALLENGE: &str = "Basic realm=\"mcp-auth\"";

/// An error response: `{"error": …, "error_description": …}` with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub status: u16,
    /// Extra headers (`WWW-Authenticate`, `Retry-After`, `Allow`).
    pub headers: Vec<(String, String)>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    error_description: &'a str,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
            status: code.status(),
            headers: Vec::new(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, description)
    }

    pub fn not_found() -> OAuthError {
        OAuthError::new(ErrorCode::NotFound, "no such endpoint")
    }

    pub fn with_status(mut self, status: u16) -> OAuthError {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> OAuthError {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    /// The RFC 6749 §5.2 JSON response, never cached. A 401 `invalid_client` names the
    /// scheme to authenticate with (RFC 6749 §5.2, RFC 9110 §15.5.2: a 401 carries
    /// `WWW-Authenticate`), however the client failed.
    pub fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.as_str(),
            error_description: &self.description,
        };
        let mut response = Response::json(self.status, &body).no_store();
        let challenged = self.headers.iter().any(|(n, _)| n == "www-authenticate");
        if self.code == ErrorCode::InvalidClient && self.status == 401 && !challenged {
            response = response.with_header("www-authenticate", CLIENT_CHALLENGE);
        }
        response.headers.extend(self.headers);
        response
    }
}

impl From<StoreError> for OAuthError {
    /// A store outage is the server's trouble, but a transient one: 503 lets clients retry.
    /// The backend's own message stays out of the response (it may name hosts or keys); the
    /// host logs store errors where operators read them.
    fn from(_: StoreError) -> OAuthError {
        OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "storage is temporarily unavailable; try again",
        )
        .with_header("retry-after", "1")
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_outage_is_a_503_that_keeps_the_backend_message_private() {
        let res =
            OAuthError::from(StoreError("redis://10.0.0.7:6379 refused".into())).into_response();
        assert_eq!(res.status, 503);
        assert_eq!(res.header("retry-after"), Some("1"));
        let body = String::from_utf8(res.body).unwrap();
        assert!(body.contains("temporarily_unavailable"), "{body}");
        assert!(!body.contains("10.0.0.7"), "{body}");
    }

    #[test]
    fn every_401_invalid_client_carries_a_challenge() {
        let res = OAuthError::invalid_client("unknown client").into_response();
        assert_eq!(res.status, 401);
        assert_eq!(res.header("www-authenticate"), Some(CLIENT_CHALLENGE));
        let bearer = OAuthError::invalid_client("x")
            .with_header("www-authenticate", "Bearer")
            .into_response();
        assert_eq!(
            bearer
                .headers
                .iter()
                .filter(|(n, _)| n == "www-authenticate")
                .count(),
            1
        );
        let as_400 = OAuthError::invalid_client("x")
            .with_status(400)
            .into_response();
        assert_eq!(as_400.header("www-authenticate"), None);
    }
}
