//! `GET /authorize`: the authorization request (RFC 6749 §4.1.1), checked in an order that
//! never redirects to an address not yet verified (§4.1.2.1): first the client and its
//! redirect URI (errors are pages), then everything else (errors go back to the client).

use serde::{Deserialize, Serialize};

use super::pending::{self, Flow};
use super::{method_not_allowed, redirect};
use crate::client::Client;
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Params, Request, Response};
use crate::pages;
use crate::settings::Settings;
use crate::{pkce, resource, scope};

/// `GET /authorize`: validate, remember the request, send the user to sign in.
pub fn authorize(env: &Env, req: &Request) -> Response {
    if req.method != Method::Get {
        return method_not_allowed("GET");
    }
    match validate(env, req) {
        Ok(request) => pending::begin(env, Flow::Code(request)),
        Err(response) => response,
    }
}

/// A validated authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// Whether the consent page may be skipped: only with `consent = false`, only for a
    /// client the operator provisioned, and never when the client sent `prompt=consent`.
    /// Dynamically registered and metadata-document clients always get the page (MCP
    /// security best practices: consent per dynamically registered client).
    #[serde(default)]
    pub skip_consent: bool,
    pub client_id: String,
    /// Where the user goes back to: the URI sent, or the client's only registered one.
    pub redirect_uri: String,
    /// Whether `redirect_uri` was sent; RFC 6749 §4.1.3 then requires the same value at the
    /// token endpoint.
    pub redirect_uri_sent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// S256 (RFC 7636 §4.2).
    pub code_challenge: String,
    /// Normalised (RFC 8707).
    pub resource: String,
    /// Space-separated scopes to grant.
    pub scope: String,
}

fn validate(env: &Env, req: &Request) -> Result<AuthorizationRequest, Response> {
    let params = req
        .query_params()
        .map_err(|err| repeated_parameter(env, req, &err))?;
    let sent_redirect = params.get("redirect_uri");
    let (client, redirect_uri) = redirect::resolve(env, params.get("client_id"), sent_redirect)?;
    let state = params.get("state");
    let checked = check(&env.settings, &params, &client)
        .map_err(|err| refuse(env, &client, &redirect_uri, state, &err))?;
    Ok(AuthorizationRequest {
        skip_consent: !env.settings.consent && client.is_provisioned() && !checked.prompt_consent,
        client_id: client.client_id,
        redirect_uri_sent: sent_redirect.is_some(),
        redirect_uri,
        state: state.map(str::to_string),
        code_challenge: checked.code_challenge,
        resource: checked.resource,
        scope: checked.scope,
    })
}

/// An error in a request whose client and redirect URI check out: sent back to the client
/// (RFC 6749 §4.1.2.1) when it is trusted with redirects, else shown on a page.
fn refuse(
    env: &Env,
    client: &Client,
    redirect_uri: &str,
    state: Option<&str>,
    err: &OAuthError,
) -> Response {
    redirect::error_to_trusted_client(env, client, redirect_uri, state, err, || {
        pages::error_page(
            400,
            "Invalid request",
            &format!(
                "{} ({}). No one has approved this application here yet, so you are not sent back to it.",
                err.description,
                err.code.as_str()
            ),
        )
    })
}

/// What the checks after the redirect URI produce.
struct Checked {
    code_challenge: String,
    resource: String,
    scope: String,
    /// `prompt=consent`: ask even where consent could be skipped.
    prompt_consent: bool,
}

/// The checks whose failures are sent back to the client, in the order of RFC 6749 §4.1.1,
/// RFC 7636 §4.4.1 and RFC 8707 §2.
fn check(settings: &Settings, params: &Params, client: &Client) -> Result<Checked, OAuthError> {
    match params.require("response_type")? {
        "code" => {}
        other => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                format!("response_type `{other}` is not supported; use `code`"),
            ))
        }
    }
    if !client.allows_grant("authorization_code") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization_code grant",
        ));
    }
    // OAuth 2.0 Multiple Response Type Encoding Practices §2.1: only `query` (what metadata
    // advertises); a fragment or form post is not what the client will read.
    if params
        .get("response_mode")
        .is_some_and(|mode| mode != "query")
    {
        return Err(OAuthError::invalid_request(
            "response_mode must be query (or absent)",
        ));
    }
    let prompt_consent = prompt(params)?;
    // OAuth 2.1 §4.1.1: PKCE is required, and only S256 (plain is refused, as is absence,
    // which RFC 7636 §4.3 would read as plain).
    let code_challenge = params.require("code_challenge")?;
    if params.get("code_challenge_method") != Some("S256") {
        return Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        ));
    }
    if !pkce::is_valid_challenge(code_challenge) {
        return Err(OAuthError::invalid_request(
            "code_challenge is not a S256 challenge",
        ));
    }
    let resource = match (params.get("resource"), settings.resources.as_slice()) {
        (Some(requested), _) => resource::allowed(settings, requested)?,
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource is required",
            ))
        }
    };
    let scopes = scope::requested(
        settings,
        params.get("scope"),
        client.metadata.scope.as_deref(),
    )?;
    Ok(Checked {
        code_challenge: code_challenge.to_string(),
        resource,
        scope: scope::join(&scopes),
        prompt_consent,
    })
}

/// `prompt` (OpenID Connect Core §3.1.2.1), which OAuth clients send too: whether consent
/// must be asked for. We keep no sign-in sessions, so every authorization signs the user in:
/// `prompt=none` can never be satisfied and is `login_required` (§3.1.2.6), and `login` is
/// what happens anyway. Unknown values are ignored.
fn prompt(params: &Params) -> Result<bool, OAuthError> {
    let values: Vec<&str> = params
        .get("prompt")
        .unwrap_or_default()
        .split(' ')
        .filter(|v| !v.is_empty())
        .collect();
    if values.contains(&"none") {
        if values.len() > 1 {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other values",
            ));
        }
        return Err(OAuthError::new(
            ErrorCode::LoginRequired,
            "the user must sign in: this server keeps no sign-in sessions",
        ));
    }
    Ok(values.contains(&"consent"))
}

/// A repeated parameter (RFC 6749 §3.1). The client can only be told when its `client_id`
/// and `redirect_uri` are each unambiguous and check out; otherwise a page.
fn repeated_parameter(env: &Env, req: &Request, err: &OAuthError) -> Response {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let single = |name: &str| {
        let mut values = pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (first, None) => Ok(first),
            _ => Err(()),
        }
    };
    let (Ok(client_id), Ok(redirect_uri)) = (single("client_id"), single("redirect_uri")) else {
        return pages::error_page(400, "Invalid request", &err.description);
    };
    match redirect::resolve(env, client_id, redirect_uri) {
        Ok((client, uri)) => refuse(env, &client, &uri, single("state").ok().flatten(), err),
        Err(page) => page,
    }
}
