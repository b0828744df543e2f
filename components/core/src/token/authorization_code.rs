//! `grant_type=authorization_code` (OAuth 2.1 §4.1.3, RFC 7636 §4.5–4.6).

use super::{check_resource, refresh_for, Exchange};
use crate::audit::{AuditEvent, AuditKind};
use crate::client::Client;
use crate::env::Env;
use crate::error::OAuthError;
use crate::grants::{self, AuthorizationCode};
use crate::http::Params;
use crate::pkce;
use crate::records::{self, Claim};
use crate::secret::hash;
use crate::tokens::{self, Grant};

/// Validate everything, then redeem the code exactly once: a request that fails a check
/// (a wrong verifier, say) leaves the code usable. A second redemption is a replay (RFC 6749
/// §4.1.2): it fails and revokes every token the first one produced.
pub(super) fn exchange(env: &Env, client: &Client, params: &Params) -> Exchange {
    let code = params.require("code")?;
    let verifier = params.require("code_verifier")?;
    let key = grants::code_key(code);
    let Some(stored) = records::get::<AuthorizationCode>(env, &key)? else {
        return Err(OAuthError::invalid_grant(
            "the authorization code is unknown or expired",
        ));
    };
    if stored.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    // RFC 6749 §4.1.3: compared when the authorization request carried one (an empty stored
    // value means it did not, and the client's only registered URI was used).
    if params
        .get("redirect_uri")
        .is_some_and(|uri| !stored.redirect_uri.is_empty() && uri != stored.redirect_uri)
    {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !pkce::verify(verifier, &stored.code_challenge) {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    check_resource(params, &stored.resource)?;

    // The family is named after the code, so a replay can find what the first use produced.
    let family = hash(code);
    if !records::claim(env, &key, Claim::Redeem)? {
        tokens::revoke_family(env, &family)?;
        env.audit(
            AuditEvent::new(AuditKind::CodeReplay, env.now())
                .client(&client.client_id)
                .sub(&stored.sub),
        );
        return Err(OAuthError::invalid_grant(
            "the authorization code was already used; the tokens issued for it are revoked",
        ));
    }
    let grant = Grant {
        client_id: stored.client_id,
        sub: stored.sub,
        scope: stored.scope,
        resource: stored.resource,
        auth_time: Some(stored.auth_time),
        family,
        username: stored.username,
    };
    Ok((grant, refresh_for(client)))
}
