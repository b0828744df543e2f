//! GitHub (OAuth apps) as the upstream provider; the user is their `login` from `GET /user`.

use serde_json::Value;

use super::UpstreamFailure;
use crate::http::OutgoingRequest;

/// Enough to read the user's login.
pub const SCOPE: &str = "read:user";

pub fn authorize_endpoint(web_url: &str) -> String {
    format!("{web_url}/login/oauth/authorize")
}

/// GitHub answers in JSON because the token request sends `Accept: application/json`.
pub fn token_endpoint(web_url: &str) -> String {
    format!("{web_url}/login/oauth/access_token")
}

/// `GET /user`. GitHub's API refuses requests without a `User-Agent`.
pub fn identity_request(api_url: &str, access_token: &str) -> OutgoingRequest {
    OutgoingRequest::get(format!("{api_url}/user"))
        .with_header("authorization", &format!("Bearer {access_token}"))
        .with_header("user-agent", "mcp-auth")
}

pub fn parse_identity(body: &Value) -> Result<String, UpstreamFailure> {
    body.get("login")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| UpstreamFailure::Malformed("GitHub's /user answer has no login".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_login_is_the_user() {
        assert_eq!(
            parse_identity(&json!({"login": "octocat", "id": 1})).unwrap(),
            "octocat"
        );
        assert!(parse_identity(&json!({"id": 1})).is_err());
    }

    #[test]
    fn user_request_has_a_user_agent() {
        let r = identity_request("https://api.github.com", "t");
        assert_eq!(r.url, "https://api.github.com/user");
        assert!(r.headers.iter().any(|(n, _)| n == "user-agent"));
    }
}
