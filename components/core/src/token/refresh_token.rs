//! `grant_type=refresh_token` (OAuth 2.1 §4.3): rotation on every use, with the grace window
//! and reuse detection of [`crate::tokens::rotate`]. The client is honoured as it is now, not
//! as it was at sign-in: one whose `refresh_token` grant was removed (RFC 7592 `PUT`) gets
//! `unauthorized_client`, one whose registered `scope` was narrowed gets that narrower scope,
//! and so does every later child of the token.

use super::{check_resource, Exchange};
use crate::client::Client;
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::Params;
use crate::registration::REFRESH_TOKEN;
use crate::scope;
use crate::tokens::{self, Grant, Refresh};

pub(super) fn exchange(env: &Env, client: &Client, params: &Params) -> Exchange {
    if !client.allows_grant(REFRESH_TOKEN) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client does not have the refresh_token grant",
        ));
    }
    let presented = params.require("refresh_token")?;
    let Some(record) = tokens::find_refresh(env, presented)? else {
        return Err(OAuthError::invalid_grant(
            "the refresh token is unknown, expired or revoked",
        ));
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let allowed = still_allowed(&record.scope, client)?;
    // RFC 6749 §6: the access token may be narrowed; the child keeps the full grant.
    let scope = scope::narrow(&allowed, params.get("scope"))?;
    check_resource(params, &record.resource)?;
    let child = tokens::rotate(env, presented, &record, &allowed)?;
    let grant = Grant {
        client_id: record.client_id,
        sub: record.sub,
        scope,
        resource: record.resource,
        auth_time: record.auth_time,
        family: record.family,
        username: record.username,
    };
    Ok((grant, Refresh::Child(Box::new(child))))
}

/// The part of the granted scope the client's registration still allows; `invalid_grant`
/// when nothing of a non-empty grant is left (the client must ask the user again).
fn still_allowed(granted: &str, client: &Client) -> Result<String, OAuthError> {
    let Some(registered) = client.metadata.scope.as_deref().map(scope::parse) else {
        return Ok(granted.to_string());
    };
    let granted = scope::parse(granted);
    let kept: Vec<String> = granted
        .iter()
        .filter(|s| registered.contains(s))
        .cloned()
        .collect();
    if kept.is_empty() && !granted.is_empty() {
        return Err(OAuthError::invalid_grant(
            "none of this grant's scopes is registered for the client any more",
        ));
    }
    Ok(scope::join(&kept))
}
