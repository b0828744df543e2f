//! TaskManager as the upstream provider: `/api/oauth/authorize`, `/api/oauth/token`, and
//! `/api/oauth/verify`, which names the user of an upstream access token (its token
//! responses carry no identity and it has no userinfo endpoint).

use serde_json::Value;

use super::{string_or_number, UpstreamFailure};
use crate::http::OutgoingRequest;

pub fn authorize_endpoint(base_url: &str) -> String {
    format!("{base_url}/api/oauth/authorize")
}

pub fn token_endpoint(base_url: &str) -> String {
    format!("{base_url}/api/oauth/token")
}

/// `GET /api/oauth/verify` with the upstream access token as a Bearer token.
pub fn identity_request(base_url: &str, access_token: &str) -> OutgoingRequest {
    OutgoingRequest::get(format!("{base_url}/api/oauth/verify"))
        .with_header("authorization", &format!("Bearer {access_token}"))
}

/// `{valid, client_id, user_id, scopes, expires_in, token_type}` → `user_id` (a string or a
/// number). `scopes` (sometimes a JSON-encoded string) is not needed and not looked at.
pub fn parse_identity(body: &Value) -> Result<String, UpstreamFailure> {
    if body.get("valid").and_then(Value::as_bool) == Some(false) {
        return Err(UpstreamFailure::Rejected(
            "the upstream token is not valid".into(),
        ));
    }
    string_or_number(body.get("user_id"))
        .ok_or_else(|| UpstreamFailure::Malformed("the verify answer has no user_id".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn user_id_may_be_a_string_or_a_number() {
        let body = json!({"valid": true, "user_id": 42, "scopes": "[\"read\"]"});
        assert_eq!(parse_identity(&body).unwrap(), "42");
        let body = json!({"valid": true, "user_id": "u-7", "scopes": ["read"]});
        assert_eq!(parse_identity(&body).unwrap(), "u-7");
    }

    #[test]
    fn invalid_or_anonymous_tokens_are_refused() {
        assert!(matches!(
            parse_identity(&json!({"valid": false, "user_id": 1})),
            Err(UpstreamFailure::Rejected(_))
        ));
        assert!(matches!(
            parse_identity(&json!({"valid": true})),
            Err(UpstreamFailure::Malformed(_))
        ));
    }

    #[test]
    fn verify_sends_the_upstream_token() {
        let r = identity_request("http://tm", "tok");
        assert_eq!(r.url, "http://tm/api/oauth/verify");
        assert!(r
            .headers
            .contains(&("authorization".into(), "Bearer tok".into())));
    }
}
