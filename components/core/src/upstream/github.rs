//! GitHub (OAuth apps) as the upstream provider. The user is their numeric `id` from
//! `GET /user`: logins are renamed, and a freed login is taken by someone else. The `login`
//! comes along as the user name to show.

use serde_json::Value;

use super::{Identity, UpstreamFailure};
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

pub fn parse_identity(body: &Value) -> Result<Identity, UpstreamFailure> {
    let id = body
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| UpstreamFailure::Malformed("GitHub's /user answer has no id".into()))?;
    Ok(Identity {
        sub: id.to_string(),
        username: body
            .get("login")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_numeric_id_is_the_user_and_the_login_its_name() {
        assert_eq!(
            parse_identity(&json!({"login": "octocat", "id": 583231})).unwrap(),
            Identity {
                sub: "583231".into(),
                username: Some("octocat".into())
            }
        );
        assert!(parse_identity(&json!({"login": "octocat"})).is_err());
        assert!(parse_identity(&json!({"login": "octocat", "id": "583231"})).is_err());
    }

    #[test]
    fn user_request_has_a_user_agent() {
        let r = identity_request("https://api.github.com", "t");
        assert_eq!(r.url, "https://api.github.com/user");
        assert!(r.headers.iter().any(|(n, _)| n == "user-agent"));
    }
}
