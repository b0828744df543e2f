//! Token revocation (RFC 7009).
//!
//! Revoking a refresh token revokes its whole family: every refresh and access token
//! descending from the same authorization (RFC 7009 §2.1 "SHOULD also invalidate all access
//! tokens based on the same authorization grant"). Revoking an access token deletes its
//! record. Unknown tokens and tokens of other clients get the same 200 and change nothing
//! (§2.2), so the endpoint tells no one which tokens exist.

use crate::audit::{AuditEvent, AuditKind};
use crate::client::{self, Client};
use crate::env::Env;
use crate::error::OAuthError;
use crate::http::{Params, Request, Response};
use crate::token::post_form;
use crate::tokens;

/// `POST /revoke`.
pub fn revoke(env: &Env, req: &Request) -> Response {
    post_form(env, req, serve)
}

fn serve(env: &Env, req: &Request, params: &Params) -> Result<Response, OAuthError> {
    let client = client::authenticate(env, req, params)?;
    let token = params.require("token")?;
    // §2.1: the hint only orders the look-ups (the first kind that matches ends them); an
    // unknown hint is ignored.
    let attempts: [Attempt; 2] = if params.get("token_type_hint") == Some("refresh_token") {
        [revoke_refresh, revoke_access]
    } else {
        [revoke_access, revoke_refresh]
    };
    for attempt in attempts {
        if attempt(env, &client, token)? {
            break;
        }
    }
    Ok(Response::new(200).no_store())
}

type Attempt = fn(&Env, &Client, &str) -> Result<bool, OAuthError>;

/// `true` if `token` is one of the client's access tokens (now revoked).
fn revoke_access(env: &Env, client: &Client, token: &str) -> Result<bool, OAuthError> {
    let Some(record) = tokens::find_access(env, token)? else {
        return Ok(false);
    };
    if record.client_id != client.client_id {
        return Ok(false);
    }
    tokens::revoke_access(env, token)?;
    audit(env, client, &record.sub, "access_token");
    Ok(true)
}

/// `true` if `token` is one of the client's refresh tokens (its family now revoked).
fn revoke_refresh(env: &Env, client: &Client, token: &str) -> Result<bool, OAuthError> {
    let Some(record) = tokens::find_refresh(env, token)? else {
        return Ok(false);
    };
    if record.client_id != client.client_id {
        return Ok(false);
    }
    tokens::revoke_family(env, &record.family)?;
    audit(env, client, &record.sub, "refresh_token");
    Ok(true)
}

fn audit(env: &Env, client: &Client, sub: &str, token_type: &str) {
    env.audit(
        AuditEvent::new(AuditKind::TokenRevoked, env.now())
            .client(&client.client_id)
            .sub(sub)
            .reason(token_type),
    );
}
