//! Token introspection (RFC 7662) for resource servers.
//!
//! Callers authenticate as a registered confidential client or with one of the
//! `introspection_credentials` pairs (Basic or form); public clients may not introspect
//! (§4: the endpoint must not become a token-scanning oracle). A token is looked up by its
//! hash, one `get` for an access token, so no signature is checked per request.

use serde::Serialize;

use crate::client;
use crate::env::Env;
use crate::error::OAuthError;
use crate::http::{Params, Request, Response};
use crate::secret::constant_time_eq;
use crate::token::post_form;
use crate::tokens::{self, AccessRecord, RefreshRecord};

/// `POST /introspect`.
pub fn introspect(env: &Env, req: &Request) -> Response {
    post_form(env, req, serve)
}

fn serve(env: &Env, req: &Request, params: &Params) -> Result<Response, OAuthError> {
    authenticate_caller(env, req, params)?;
    let token = params.require("token")?;
    // The hint only orders the look-ups (RFC 7662 §2.1).
    let lookups: [Lookup; 2] = if params.get("token_type_hint") == Some("refresh_token") {
        [refresh, access]
    } else {
        [access, refresh]
    };
    for lookup in lookups {
        if let Some(answer) = lookup(env, token)? {
            return Ok(Response::json(200, &answer).no_store());
        }
    }
    Ok(Response::json(200, &Introspection::default()).no_store())
}

/// RFC 7662 §2.2. An inactive token is `{"active": false}` and nothing else.
#[derive(Debug, Default, Serialize)]
struct Introspection {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
}

type Lookup = fn(&Env, &str) -> Result<Option<Introspection>, OAuthError>;

fn access(env: &Env, token: &str) -> Result<Option<Introspection>, OAuthError> {
    Ok(
        tokens::find_access(env, token)?.map(|r: AccessRecord| Introspection {
            active: true,
            scope: Some(r.scope),
            client_id: Some(r.client_id),
            token_type: Some("Bearer"),
            exp: Some(r.exp),
            iat: Some(r.iat),
            sub: Some(r.sub),
            aud: Some(r.aud),
            iss: Some(env.settings.issuer.clone()),
            jti: Some(r.jti),
        }),
    )
}

/// Only the current token of a refresh chain is active; a rotated one is not.
fn refresh(env: &Env, token: &str) -> Result<Option<Introspection>, OAuthError> {
    Ok(
        tokens::find_current_refresh(env, token)?.map(|r: RefreshRecord| Introspection {
            active: true,
            scope: Some(r.scope),
            client_id: Some(r.client_id),
            token_type: Some("refresh_token"),
            exp: Some(r.exp),
            iat: Some(r.iat),
            sub: Some(r.sub),
            aud: Some(r.resource),
            iss: Some(env.settings.issuer.clone()),
            jti: None,
        }),
    )
}

/// A configured resource server's credentials, else a confidential client's (RFC 7662 §2.1).
fn authenticate_caller(env: &Env, req: &Request, params: &Params) -> Result<(), OAuthError> {
    if let Some((id, secret)) = presented_credentials(req, params) {
        // Every pair is compared, so timing reveals neither which id matched nor where.
        let matched = env
            .settings
            .introspection_credentials
            .iter()
            .fold(false, |found, (i, s)| {
                found | (constant_time_eq(i, &id) & constant_time_eq(s, &secret))
            });
        if matched {
            return Ok(());
        }
    }
    let caller = client::authenticate(env, req, params)?;
    if !caller.is_confidential() {
        return Err(OAuthError::invalid_client(
            "only resource servers and confidential clients may introspect tokens",
        ));
    }
    Ok(())
}

fn presented_credentials(req: &Request, params: &Params) -> Option<(String, String)> {
    if let Some(h) = req.header("authorization") {
        if let Some(encoded) = h
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("basic "))
            .and(h.get(6..))
        {
            return client::parse_basic(encoded);
        }
    }
    Some((
        params.get("client_id")?.to_string(),
        params.get("client_secret")?.to_string(),
    ))
}
