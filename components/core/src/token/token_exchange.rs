//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693): a resource
//! server acts for the user upstream. It authenticates with its `introspection_credentials`
//! (client_secret_basic or _post), presents the user's access token of ours whose audience it
//! serves (`subject_token`), and names the upstream provider as `audience` (or `resource`);
//! it gets the user's access token at that provider, refreshed there first when it has
//! expired or is about to ([`upstream_tokens::current`]).
//!
//! Everything is checked before anything is written, so a refused request changes no stored
//! state (beyond the rate limit's count). Every exchange after authentication, granted or
//! refused, is an audit event.

use serde::Serialize;

use super::limit;
use crate::audit::{AuditEvent, AuditKind};
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Params, Request, Response};
use crate::introspection;
use crate::settings::{IntrospectionCredential, Provider};
use crate::tokens::{self, AccessRecord};
use crate::upstream_tokens::{self, UpstreamTokens};

/// RFC 8693 §2.1.
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3: the only token type we take and give.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// `POST /token` with the token-exchange grant.
pub(super) fn serve(env: &Env, req: &Request, params: &Params) -> Result<Response, OAuthError> {
    let Some(credential) = introspection::resource_server(env, req, params) else {
        return Err(OAuthError::invalid_client(
            "only the resource servers of introspection_credentials may exchange tokens",
        ));
    };
    limit(env, req, &credential.id)?;
    let mut subject = None;
    let outcome = exchange(env, credential, params, &mut subject);
    let event = match &outcome {
        Ok(_) => AuditEvent::new(AuditKind::TokenExchanged, env.now())
            .reason(&format!("resource server `{}`", credential.id)),
        Err(err) => AuditEvent::new(AuditKind::TokenExchangeRefused, env.now()).reason(&format!(
            "resource server `{}`: {}",
            credential.id, err.description
        )),
    };
    let event = match &subject {
        Some(record) => event.client(&record.client_id).sub(&record.sub),
        None => event,
    };
    env.audit(
        event
            .grant_type(TOKEN_EXCHANGE_GRANT)
            .ip(req.client_addr.as_deref()),
    );
    outcome.map(|tokens| response(env, &tokens))
}

/// The checks in the order RFC 8693 §2.2.2 names its errors, then the upstream token.
/// `subject` learns whose token was presented, for the audit event.
fn exchange(
    env: &Env,
    credential: &IntrospectionCredential,
    params: &Params,
    subject: &mut Option<AccessRecord>,
) -> Result<UpstreamTokens, OAuthError> {
    let subject_token = params.require("subject_token")?;
    let subject_type = params.require("subject_token_type")?;
    if subject_type != ACCESS_TOKEN_TYPE {
        return Err(OAuthError::new(
            ErrorCode::UnsupportedTokenType,
            format!("subject_token_type must be {ACCESS_TOKEN_TYPE}"),
        ));
    }
    if params
        .get("requested_token_type")
        .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            format!("requested_token_type must be {ACCESS_TOKEN_TYPE}"),
        ));
    }
    if params.get("actor_token").is_some() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "actor_token is not supported: the resource server acts for the user",
        ));
    }
    check_target(env, params)?;
    // §2.2.2: an unusable subject_token is `invalid_request`. Unknown, expired, revoked, of a
    // deleted client, or for an audience this resource server does not serve: one answer, so
    // it learns nothing about tokens that are not its own.
    let record = tokens::find_access(env, subject_token)?
        .filter(|r| introspection::serves(&env.settings, credential, &r.aud))
        .ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidRequest,
                "the subject_token is not an active access token for this resource server",
            )
        })?;
    let family = record.family.clone();
    *subject = Some(record);
    upstream_tokens::current(env, &family)
}

/// `audience` or `resource` (RFC 8693 §2.1, either or both) must name the configured
/// upstream provider: its kind (`taskmanager`, `github`, `oidc`) or its address (the
/// TaskManager host, GitHub's web or API URL, the OIDC issuer).
fn check_target(env: &Env, params: &Params) -> Result<(), OAuthError> {
    let names = upstream_names(&env.settings.provider);
    if names.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "this server signs users in itself: there is no upstream token to exchange for",
        ));
    }
    let targets: Vec<&str> = [params.get("audience"), params.get("resource")]
        .into_iter()
        .flatten()
        .collect();
    if targets.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "audience (or resource) must name the upstream provider",
        ));
    }
    let known = |target: &str| {
        let target = target.trim_end_matches('/');
        names
            .iter()
            .any(|name| name.trim_end_matches('/') == target)
    };
    match targets.iter().find(|t| !known(t)) {
        Some(unknown) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("`{unknown}` is not the upstream provider ({})", names[0]),
        )),
        None => Ok(()),
    }
}

/// The names a resource server may give the upstream provider.
fn upstream_names(provider: &Provider) -> Vec<&str> {
    match provider {
        Provider::Local => Vec::new(),
        Provider::TaskManager { base_url, .. } => vec!["taskmanager", base_url],
        Provider::GitHub {
            web_url, api_url, ..
        } => vec!["github", web_url, api_url],
        Provider::Oidc { issuer, .. } => vec!["oidc", issuer],
    }
}

/// RFC 8693 §2.2.1. The token is the provider's: a Bearer token for it, which we do not
/// know to be otherwise.
fn response(env: &Env, tokens: &UpstreamTokens) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        access_token: &'a str,
        issued_token_type: &'static str,
        token_type: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_in: Option<u64>,
    }
    Response::json(
        200,
        &Body {
            access_token: &tokens.access_token,
            issued_token_type: ACCESS_TOKEN_TYPE,
            token_type: "Bearer",
            expires_in: tokens.expires_at.map(|exp| exp.saturating_sub(env.now())),
        },
    )
    .no_store()
}
