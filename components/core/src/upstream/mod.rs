//! Upstream identity providers: who is signing in, as the configured provider names them.
//!
//! Every provider speaks the same RFC 6749 §4.1 code flow with PKCE (RFC 7636), so the
//! authorize URL and the token request are built here once; a provider module only says
//! where its endpoints are and how it tells who the user is. Each step is "build the request
//! (pure) → send it through [`Env::upstream`] → parse the answer (pure)". The local provider
//! has no upstream: its login page is [`local`].

pub mod github;
pub mod local;
pub mod oidc;
pub mod taskmanager;

use serde::Deserialize;
use serde_json::Value;

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{with_query, OutgoingRequest, Response, UpstreamResponse};
use crate::pages;
use crate::settings::{ConfigError, Provider, Settings};
use crate::upstream_tokens::UpstreamTokens;

/// Our side of one sign-in, sent in the authorization request to the provider.
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    /// Our `state`: the id of the pending authorization.
    pub state: &'a str,
    /// Our own PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: &'a str,
    /// OpenID Connect Core §3.1.2.1 `nonce` (OIDC only).
    pub nonce: Option<&'a str>,
}

/// Who signed in, as the provider tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The stable identifier our grants carry as `sub`: TaskManager's `user_id`, GitHub's
    /// numeric `id`, an OIDC `sub`, a local user name.
    pub sub: String,
    /// The name people know the user by, when it is not the `sub`: GitHub's `login`. For
    /// display only (the `preferred_username` claim, `username` at introspection): GitHub
    /// logins are renamed and then reused by someone else, so they never identify anyone.
    pub username: Option<String>,
}

impl Identity {
    /// A user whose name is their identifier (the local login, TaskManager, OIDC).
    pub fn named(sub: impl Into<String>) -> Identity {
        Identity {
            sub: sub.into(),
            username: None,
        }
    }
}

/// Why signing in with the provider failed.
///
/// Once the client and its redirect URI are known, the client learns of it at its redirect
/// URI (RFC 6749 §4.1.2.1) rather than waiting for its own timeout: [`Self::code`] says which
/// error, and only a generic description goes there, since the details (the provider's
/// addresses and answers) are the operator's business; they go to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// mcp-auth lacks what it needs to talk to the provider (its client secret).
    Misconfigured(ConfigError),
    /// No answer: refused, timed out, or not allowed by the host.
    Unreachable(String),
    /// The provider is failing: a 5xx or 429 answer, or its own `server_error` or
    /// `temporarily_unavailable`.
    Failing(String),
    /// The provider answered with an error; its message.
    Rejected(String),
    /// The answer made no sense.
    Malformed(String),
}

impl UpstreamFailure {
    pub fn message(&self) -> String {
        match self {
            UpstreamFailure::Misconfigured(e) => format!("mcp-auth is misconfigured: {e}"),
            UpstreamFailure::Unreachable(m) => {
                format!("the identity provider is unreachable ({m})")
            }
            UpstreamFailure::Failing(m) => format!("the identity provider is failing ({m})"),
            UpstreamFailure::Rejected(m) => format!("the identity provider refused: {m}"),
            UpstreamFailure::Malformed(m) => {
                format!("the identity provider gave an unusable answer ({m})")
            }
        }
    }

    /// The error the client gets: a provider that is down, failing or talking nonsense is
    /// `temporarily_unavailable` (trying again later may work); a refusal of our own request
    /// or our own misconfiguration is `server_error`.
    pub fn code(&self) -> ErrorCode {
        match self {
            UpstreamFailure::Unreachable(_)
            | UpstreamFailure::Failing(_)
            | UpstreamFailure::Malformed(_) => ErrorCode::TemporarilyUnavailable,
            UpstreamFailure::Misconfigured(_) | UpstreamFailure::Rejected(_) => {
                ErrorCode::ServerError
            }
        }
    }

    /// What the client is told: the [`Self::code`] and a description without details.
    pub fn for_client(&self) -> OAuthError {
        let description = match self.code() {
            ErrorCode::TemporarilyUnavailable => {
                "the identity provider is unavailable; try again later"
            }
            _ => "signing in at the identity provider failed",
        };
        OAuthError::new(self.code(), description)
    }

    /// The page shown when the user cannot be sent back to the client: 502, the provider
    /// failed us (500: we are misconfigured). As generic as [`Self::for_client`]: whoever
    /// drives the browser may be anyone; the operator finds the details in the audit log.
    pub fn page(&self) -> Response {
        let status = match self {
            UpstreamFailure::Misconfigured(_) => 500,
            _ => 502,
        };
        let message = format!(
            "Sorry, {}. The server's log says why.",
            self.for_client().description
        );
        pages::error_page(status, "Sign-in failed", &message)
    }
}

/// Our client secret at the provider; none for the local login.
fn client_secret(provider: &Provider) -> Result<&str, UpstreamFailure> {
    let secret = match provider {
        Provider::Local => return Ok(""),
        Provider::TaskManager { client_secret, .. }
        | Provider::GitHub { client_secret, .. }
        | Provider::Oidc { client_secret, .. } => client_secret,
    };
    secret.get().map_err(UpstreamFailure::Misconfigured)
}

/// Does the provider take an OIDC `nonce`?
pub fn uses_nonce(provider: &Provider) -> bool {
    matches!(provider, Provider::Oidc { .. })
}

/// Where the provider sends the user back to us (the `redirect_uri` we registered there).
pub fn callback_uri(settings: &Settings) -> String {
    settings.endpoint("/oauth/callback")
}

/// Does the `allowed_users` entry `entry` name `user`? Identifiers are compared exactly (OIDC
/// Core §2: `sub` is case sensitive). For GitHub an entry of digits is the numeric `id`,
/// which never changes hands; any other entry is a login, compared ignoring case with the
/// login the user has at sign-in (a login that was renamed and taken by someone else then
/// names the new owner: list ids to rule that out).
pub fn same_user(provider: &Provider, entry: &str, user: &Identity) -> bool {
    match provider {
        Provider::GitHub { .. } if !entry.bytes().all(|b| b.is_ascii_digit()) => user
            .username
            .as_deref()
            .is_some_and(|login| login.eq_ignore_ascii_case(entry)),
        _ => entry == user.sub,
    }
}

/// Where to send the user to sign in: the provider's authorization endpoint (RFC 6749
/// §4.1.1, with our PKCE) or, for the local provider, our login page.
pub fn login_url(env: &Env, sign_in: &SignIn) -> Result<String, UpstreamFailure> {
    let settings = &env.settings;
    // Without our secret the provider's code could not be redeemed: say so before the user
    // signs in there for nothing.
    client_secret(&settings.provider)?;
    let (endpoint, client_id, scope) = match &settings.provider {
        Provider::Local => return Ok(local::login_url(settings, sign_in.state)),
        Provider::TaskManager {
            base_url,
            client_id,
            scope,
            ..
        } => (
            taskmanager::authorize_endpoint(base_url),
            client_id,
            scope.as_str(),
        ),
        Provider::GitHub {
            web_url, client_id, ..
        } => (
            github::authorize_endpoint(web_url),
            client_id,
            github::SCOPE,
        ),
        Provider::Oidc {
            client_id, scope, ..
        } => (
            oidc::discovery(env)?.authorization_endpoint,
            client_id,
            scope.as_str(),
        ),
    };
    let callback = callback_uri(settings);
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", callback.as_str()),
        ("scope", scope),
        ("state", sign_in.state),
        ("code_challenge", sign_in.code_challenge),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend(sign_in.nonce.map(|nonce| ("nonce", nonce)));
    with_query(&endpoint, &pairs)
        .ok_or_else(|| UpstreamFailure::Malformed(format!("`{endpoint}` is not a URL")))
}

/// Exchange the provider's `code` (with our PKCE `verifier`) and learn who signed in.
pub fn identify(
    env: &Env,
    code: &str,
    verifier: &str,
    nonce: Option<&str>,
) -> Result<SignedIn, UpstreamFailure> {
    let client_secret = client_secret(&env.settings.provider)?;
    let exchange = |endpoint: String, client_id: &str| {
        // RFC 6749 §4.1.3, client_secret_post (§2.3.1): every provider accepts it.
        let request = OutgoingRequest::post_form(
            endpoint.clone(),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", &callback_uri(&env.settings)),
                ("code_verifier", verifier),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ],
        );
        let token = parse_token(&send_json(env, &request)?)?;
        Ok::<_, UpstreamFailure>((token.kept(env, endpoint), token))
    };
    let (tokens, identity) = match &env.settings.provider {
        Provider::Local => Err(UpstreamFailure::Rejected(
            "no upstream provider is configured".into(),
        )),
        Provider::TaskManager {
            base_url,
            client_id,
            ..
        } => {
            let (tokens, token) = exchange(taskmanager::token_endpoint(base_url), client_id)?;
            let request = taskmanager::identity_request(base_url, &token.access_token);
            let identity = taskmanager::parse_identity(&send_json(env, &request)?)?;
            Ok((tokens, Identity::named(identity)))
        }
        Provider::GitHub {
            web_url,
            api_url,
            client_id,
            ..
        } => {
            let (tokens, token) = exchange(github::token_endpoint(web_url), client_id)?;
            let request = github::identity_request(api_url, &token.access_token);
            Ok((tokens, github::parse_identity(&send_json(env, &request)?)?))
        }
        Provider::Oidc { client_id, .. } => {
            let discovery = oidc::discovery(env)?;
            let (tokens, token) = exchange(discovery.token_endpoint.clone(), client_id)?;
            let sub = oidc::identify(env, &discovery, client_id, &token, nonce)?;
            Ok((tokens, Identity::named(sub)))
        }
    }?;
    Ok(SignedIn {
        identity: usable(identity)?,
        tokens,
    })
}

/// A sign-in at the provider: who, and the tokens it gave us to act for them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub identity: Identity,
    pub tokens: UpstreamTokens,
}

/// Refresh the user's upstream tokens at the provider's token endpoint (RFC 6749 §6), where
/// they were issued: the new access token, and the refresh token to keep (the provider's
/// new one if it rotates them, else the one used).
pub fn refresh(env: &Env, tokens: &UpstreamTokens) -> Result<UpstreamTokens, UpstreamFailure> {
    let Some(refresh_token) = tokens.refresh_token.as_deref() else {
        return Err(UpstreamFailure::Rejected(
            "the provider gave no refresh token".into(),
        ));
    };
    let client_id = match &env.settings.provider {
        Provider::Local => {
            return Err(UpstreamFailure::Rejected(
                "no upstream provider is configured".into(),
            ))
        }
        Provider::TaskManager { client_id, .. }
        | Provider::GitHub { client_id, .. }
        | Provider::Oidc { client_id, .. } => client_id,
    };
    let request = OutgoingRequest::post_form(
        tokens.token_endpoint.clone(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("client_secret", client_secret(&env.settings.provider)?),
        ],
    );
    let token = parse_token(&send_json(env, &request)?)?;
    let mut refreshed = token.kept(env, tokens.token_endpoint.clone());
    if refreshed.refresh_token.is_none() {
        refreshed.refresh_token = tokens.refresh_token.clone();
    }
    Ok(refreshed)
}

/// The part of an RFC 6749 §5.1 token response we use.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// Seconds; absent for tokens that do not expire (GitHub OAuth apps).
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// OpenID Connect Core §3.1.3.3.
    #[serde(default)]
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// What we keep of it, issued by `token_endpoint` just now.
    fn kept(&self, env: &Env, token_endpoint: String) -> UpstreamTokens {
        UpstreamTokens {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone().filter(|t| !t.is_empty()),
            expires_at: self.expires_in.map(|s| env.now().saturating_add(s)),
            token_endpoint,
            issued_at: env.now(),
        }
    }
}

/// Parse a successful token response.
pub fn parse_token(body: &Value) -> Result<TokenResponse, UpstreamFailure> {
    serde_json::from_value::<TokenResponse>(body.clone())
        .ok()
        .filter(|t| !t.access_token.is_empty())
        .ok_or_else(|| UpstreamFailure::Malformed("the token response has no access_token".into()))
}

/// Send `request` and parse the JSON object that comes back.
pub(crate) fn send_json(env: &Env, request: &OutgoingRequest) -> Result<Value, UpstreamFailure> {
    let response = env
        .upstream
        .send(request)
        .map_err(|e| UpstreamFailure::Unreachable(e.0))?;
    parse_json(&response)
}

/// A provider's answer as a JSON object; an error in either shape the providers use
/// ([`error_message`]) or a non-2xx status is [`UpstreamFailure::Rejected`].
pub fn parse_json(response: &UpstreamResponse) -> Result<Value, UpstreamFailure> {
    let body = serde_json::from_slice::<Value>(&response.body).ok();
    let failing = response.status >= 500
        || response.status == 429
        || body.as_ref().and_then(|b| b.get("error")).is_some_and(|e| {
            e.as_str()
                .is_some_and(|e| e == "server_error" || e == "temporarily_unavailable")
        });
    if let Some(message) = body.as_ref().and_then(error_message) {
        return Err(if failing {
            UpstreamFailure::Failing(message)
        } else {
            UpstreamFailure::Rejected(message)
        });
    }
    if !(200..300).contains(&response.status) {
        let message = format!("HTTP status {}", response.status);
        return Err(if failing {
            UpstreamFailure::Failing(message)
        } else {
            UpstreamFailure::Rejected(message)
        });
    }
    body.filter(Value::is_object)
        .ok_or_else(|| UpstreamFailure::Malformed("the answer is not a JSON object".into()))
}

/// The message of an error answer: RFC 6749 §5.2 `{"error", "error_description"}`, or
/// TaskManager's `{"detail": {"code": "OAUTH_00N", "message": …}}` (or a plain `detail`
/// string). Cut to a length a page can show.
pub fn error_message(body: &Value) -> Option<String> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let message = if let Some(error) = text(body.get("error")) {
        match text(body.get("error_description")) {
            Some(description) => format!("{description} ({error})"),
            None => error,
        }
    } else {
        let detail = body.get("detail")?;
        match (text(detail.get("message")), text(detail.get("code"))) {
            (Some(message), Some(code)) => format!("{message} ({code})"),
            (Some(message), None) => message,
            (None, _) => text(Some(detail))?,
        }
    };
    Some(message.chars().take(300).collect())
}

/// A user identifier we can put in a grant: present, short, printable.
/// An identity we can carry in tokens and show: the `sub` must be usable, a user name that
/// is not is dropped (it is only for display).
fn usable(identity: Identity) -> Result<Identity, UpstreamFailure> {
    let fit = |s: &str| !s.is_empty() && s.len() <= 255 && !s.chars().any(char::is_control);
    if !fit(&identity.sub) {
        return Err(UpstreamFailure::Malformed(
            "the user identifier is empty or unusable".into(),
        ));
    }
    Ok(Identity {
        username: identity.username.filter(|name| fit(name)),
        ..identity
    })
}

/// A JSON string, or a number written as one (TaskManager's `user_id` is either).
pub(crate) fn string_or_number(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn response(status: u16, body: &str) -> UpstreamResponse {
        UpstreamResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn both_error_shapes_give_their_message() {
        let rfc = json!({"error": "invalid_grant", "error_description": "code expired"});
        assert_eq!(error_message(&rfc).unwrap(), "code expired (invalid_grant)");
        let tm = json!({"detail": {"code": "OAUTH_003", "message": "Invalid code"}});
        assert_eq!(error_message(&tm).unwrap(), "Invalid code (OAUTH_003)");
        assert_eq!(
            error_message(&json!({"detail": "Not Found"})).unwrap(),
            "Not Found"
        );
        assert_eq!(error_message(&json!({"access_token": "x"})), None);
    }

    #[test]
    fn errors_win_even_with_status_200() {
        // GitHub answers a bad code with 200 and an RFC error body.
        let err = parse_json(&response(200, r#"{"error":"bad_verification_code"}"#)).unwrap_err();
        assert_eq!(
            err,
            UpstreamFailure::Rejected("bad_verification_code".into())
        );
    }

    #[test]
    fn garbage_and_bare_statuses() {
        assert!(matches!(
            parse_json(&response(200, "<html>")).unwrap_err(),
            UpstreamFailure::Malformed(_)
        ));
        assert_eq!(
            parse_json(&response(503, "<html>")).unwrap_err(),
            UpstreamFailure::Failing("HTTP status 503".into())
        );
        assert_eq!(
            parse_json(&response(404, "<html>")).unwrap_err(),
            UpstreamFailure::Rejected("HTTP status 404".into())
        );
        let overloaded = r#"{"error":"temporarily_unavailable"}"#;
        assert!(matches!(
            parse_json(&response(400, overloaded)).unwrap_err(),
            UpstreamFailure::Failing(_)
        ));
        let busy = r#"{"detail":"busy"}"#;
        assert_eq!(
            parse_json(&response(429, busy)).unwrap_err(),
            UpstreamFailure::Failing("busy".into())
        );
        assert!(parse_json(&response(200, r#"{"a":1}"#)).is_ok());
    }

    #[test]
    fn token_needs_an_access_token() {
        assert!(parse_token(&json!({"token_type": "bearer"})).is_err());
        assert!(parse_token(&json!({"access_token": ""})).is_err());
        let t = parse_token(&json!({"access_token": "a", "id_token": "b"})).unwrap();
        assert_eq!(t.id_token.as_deref(), Some("b"));
    }

    #[test]
    fn subjects_must_be_usable() {
        assert!(usable(Identity::named("")).is_err());
        assert!(usable(Identity::named("a\nb")).is_err());
        assert!(usable(Identity::named("x".repeat(256))).is_err());
        assert_eq!(usable(Identity::named("alice")).unwrap().sub, "alice");
        let odd_name = Identity {
            sub: "1".into(),
            username: Some("a\u{7}b".into()),
        };
        assert_eq!(usable(odd_name).unwrap().username, None);
    }

    #[test]
    fn github_allow_list_entries_are_ids_or_logins() {
        let config = crate::testing::MapConfig::from([
            ("upstream_provider", "github"),
            ("github_client_id", "gh"),
        ]);
        let github = Settings::from_config(&config).unwrap().provider;
        let octocat = Identity {
            sub: "583231".into(),
            username: Some("octocat".into()),
        };
        assert!(same_user(&github, "583231", &octocat));
        assert!(same_user(&github, "OctoCat", &octocat));
        assert!(!same_user(&github, "583232", &octocat));
        assert!(!same_user(&github, "octodog", &octocat));
        // Another provider's identifiers are compared exactly, whatever they look like.
        assert!(same_user(
            &Provider::Local,
            "alice",
            &Identity::named("alice")
        ));
        assert!(!same_user(
            &Provider::Local,
            "Alice",
            &Identity::named("alice")
        ));
    }
}
