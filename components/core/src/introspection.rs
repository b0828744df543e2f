//! Token introspection (RFC 7662) for resource servers.
//!
//! §4: the endpoint must not become a token-scanning oracle, so who may ask decides what it
//! may see. By default only the resource servers of `introspection_credentials` (Basic or
//! form) may introspect, each seeing only tokens whose audience it serves; any other token is
//! `{"active": false}`, exactly as an unknown one. With `introspection_allow_clients`, a
//! confidential client may introspect too, and sees only tokens issued to itself. Public
//! clients never may.
//!
//! Refresh tokens fall under the same rules, their audience being the resource of their
//! grant. A resource server never receives one, so it has no use for them; but one of its
//! audience tells it no more than that grant's access tokens do, and operators' checks that
//! a rotated or revoked refresh token is inactive keep working.
//!
//! A token is looked up by its hash, one `get` for an access token, so no signature is
//! checked per request.

use serde::Serialize;

use crate::client;
use crate::env::Env;
use crate::error::OAuthError;
use crate::http::{Params, Request, Response};
use crate::secret::constant_time_eq;
use crate::settings::{IntrospectionCredential, Settings};
use crate::token::post_form;
use crate::tokens::{self, AccessRecord, RefreshRecord};

/// `POST /introspect`.
pub fn introspect(env: &Env, req: &Request) -> Response {
    post_form(env, req, serve)
}

fn serve(env: &Env, req: &Request, params: &Params) -> Result<Response, OAuthError> {
    let caller = authenticate_caller(env, req, params)?;
    let token = params.require("token")?;
    // The hint only orders the look-ups (RFC 7662 §2.1).
    let lookups: [Lookup; 2] = if params.get("token_type_hint") == Some("refresh_token") {
        [refresh, access]
    } else {
        [access, refresh]
    };
    for lookup in lookups {
        if let Some(answer) = lookup(env, token)?.filter(|a| caller.may_see(&env.settings, a)) {
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
    /// RFC 7662 §2.2: a human-readable name, for display only.
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
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
            username: r.username,
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
            username: r.username,
            aud: Some(r.resource),
            iss: Some(env.settings.issuer.clone()),
            jti: None,
        }),
    )
}

/// Who asked, which decides the tokens it may see (RFC 7662 §4).
enum Caller<'a> {
    /// A resource server of `introspection_credentials`: tokens of its audiences.
    ResourceServer(&'a IntrospectionCredential),
    /// A confidential client, under `introspection_allow_clients`: its own tokens.
    Client(String),
}

impl Caller<'_> {
    /// `answer` is an active token's description, with its `aud` and `client_id`.
    fn may_see(&self, settings: &Settings, answer: &Introspection) -> bool {
        match self {
            Caller::ResourceServer(credential) => answer
                .aud
                .as_ref()
                .is_some_and(|aud| serves(settings, credential, aud)),
            Caller::Client(id) => answer.client_id.as_ref() == Some(id),
        }
    }
}

/// A configured resource server's credentials, else (when allowed) a confidential client's
/// (RFC 7662 §2.1).
fn authenticate_caller<'s>(
    env: &'s Env,
    req: &Request,
    params: &Params,
) -> Result<Caller<'s>, OAuthError> {
    if let Some(credential) = resource_server(env, req, params) {
        return Ok(Caller::ResourceServer(credential));
    }
    if !env.settings.introspection_allow_clients {
        return Err(OAuthError::invalid_client(
            "only the resource servers of introspection_credentials may introspect tokens",
        ));
    }
    let caller = client::authenticate(env, req, params)?;
    if !caller.is_confidential() {
        return Err(OAuthError::invalid_client(
            "only resource servers and confidential clients may introspect tokens",
        ));
    }
    Ok(Caller::Client(caller.client_id))
}

/// The `introspection_credentials` entry whose id and secret the request presents (Basic or
/// form, RFC 6749 §2.3.1), if any.
pub(crate) fn resource_server<'s>(
    env: &'s Env,
    req: &Request,
    params: &Params,
) -> Option<&'s IntrospectionCredential> {
    let (id, secret) = presented_credentials(req, params)?;
    // Every entry is compared, so timing reveals neither which id matched nor where.
    env.settings
        .introspection_credentials
        .iter()
        .fold(None, |found, credential| {
            let same = constant_time_eq(&credential.id, &id)
                & constant_time_eq(credential.secret.expose(), &secret);
            found.or(same.then_some(credential))
        })
}

/// Does the resource server of `credential` serve audience `aud`? Its own audiences, else
/// every configured resource.
pub(crate) fn serves(settings: &Settings, credential: &IntrospectionCredential, aud: &str) -> bool {
    let audiences = match credential.audiences.as_slice() {
        [] => &settings.resources,
        some => some,
    };
    // No audience and no configured resource: local development, where tokens may be for
    // any loopback resource.
    audiences.is_empty() || audiences.iter().any(|a| a == aud)
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
