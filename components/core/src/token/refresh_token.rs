//! `grant_type=refresh_token` (OAuth 2.1 §4.3): rotation on every use, with the grace window
//! and reuse detection of [`crate::tokens::rotate`].

use super::{check_resource, Exchange};
use crate::client::Client;
use crate::env::Env;
use crate::error::OAuthError;
use crate::http::Params;
use crate::scope;
use crate::tokens::{self, Grant, Refresh};

pub(super) fn exchange(env: &Env, client: &Client, params: &Params) -> Exchange {
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
    // RFC 6749 §6: the access token may be narrowed; the child keeps the full grant.
    let scope = scope::narrow(&record.scope, params.get("scope"))?;
    check_resource(params, &record.resource)?;
    let child = tokens::rotate(env, presented, &record)?;
    let grant = Grant {
        client_id: record.client_id,
        sub: record.sub,
        scope,
        resource: record.resource,
        auth_time: record.auth_time,
        family: record.family,
    };
    Ok((grant, Refresh::Child(child)))
}
