//! The token endpoint (OAuth 2.1 §3.2, RFC 6749 §5): one file per grant type. Each grant
//! validates its request and says what to issue; issuing, audit and the response are here.

mod authorization_code;
mod client_credentials;
mod device_code;
mod refresh_token;
mod token_exchange;

pub use token_exchange::TOKEN_EXCHANGE_GRANT;

use serde::Serialize;

use crate::audit::{AuditEvent, AuditKind};
use crate::client::{self, Client};
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Params, Request, Response};
use crate::limits::{self, Limit};
use crate::records;
use crate::resource;
use crate::scope;
use crate::settings::Settings;
use crate::tokens::{self, Grant, Issued, Refresh};

/// RFC 8628 §3.4.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// `POST /token`. Every response, errors included, carries `Cache-Control: no-store`.
pub fn token(env: &Env, req: &Request) -> Response {
    post_form(env, req, serve)
}

/// The shape of the token-side endpoints: `POST` with a form body (RFC 6749 §3.2), errors
/// as RFC 6749 §5.2 JSON.
pub(crate) fn post_form(
    env: &Env,
    req: &Request,
    serve: fn(&Env, &Request, &Params) -> Result<Response, OAuthError>,
) -> Response {
    let result = if req.method == Method::Post {
        req.form_params()
            .and_then(|params| serve(env, req, &params))
    } else {
        Err(OAuthError::new(ErrorCode::MethodNotAllowed, "use POST").with_header("allow", "POST"))
    };
    result.unwrap_or_else(OAuthError::into_response)
}

fn serve(env: &Env, req: &Request, params: &Params) -> Result<Response, OAuthError> {
    let grant_type = params.require("grant_type")?;
    let exchange: fn(&Env, &Client, &Params) -> Exchange = match grant_type {
        "authorization_code" => authorization_code::exchange,
        "refresh_token" => refresh_token::exchange,
        DEVICE_CODE_GRANT => device_code::exchange,
        "client_credentials" => client_credentials::exchange,
        TOKEN_EXCHANGE_GRANT => return token_exchange::serve(env, req, params),
        other => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type `{other}` is not supported"),
            ))
        }
    };
    env.prefetch(&read_ahead(env, req, params));
    let client = client::authenticate(env, req, params)?;
    limit_client(env, req, &client)?;
    let (grant, refresh) = exchange(env, &client, params)?;
    let issued = tokens::issue(env, &grant, refresh)?;
    records::maybe_sweep(env);
    env.audit(
        AuditEvent::new(AuditKind::TokenIssued, env.now())
            .client(&grant.client_id)
            .sub(&grant.sub)
            .grant_type(grant_type)
            .ip(req.client_addr.as_deref()),
    );
    Ok(token_response(&issued))
}

/// The per-client rate limit of the token side, counted once the client is known and before
/// any grant is looked at. Keyed by client *and* address: every install of a public client
/// (a Client ID Metadata Document URL) shares one `client_id`, and anyone may send it.
pub(crate) fn limit_client(env: &Env, req: &Request, client: &Client) -> Result<(), OAuthError> {
    limit(env, req, &client.client_id)
}

/// The same limit for whoever authenticated as `id` (a client, or a resource server).
fn limit(env: &Env, req: &Request, id: &str) -> Result<(), OAuthError> {
    let subject = format!("{id}\n{}", req.client_addr.as_deref().unwrap_or_default());
    let _ = limits::count(env, Limit::TokenPerClient, &subject)?;
    Ok(())
}

/// The keys a token request reads before it writes, read in one batch: the client's record,
/// the code or refresh token with the client's tombstone, and the stored signing key. Reading
/// them early changes nothing: no write of this request comes before them.
fn read_ahead(env: &Env, req: &Request, params: &Params) -> Vec<String> {
    let Some(client_id) = client::stored_id(env, req, params) else {
        return Vec::new();
    };
    let mut keys = vec![client::key(&client_id)];
    if env.settings.signing_keys.is_empty() {
        keys.push(crate::keys::STORED_KEY.to_string());
    }
    match (
        params.get("grant_type"),
        params.get("code"),
        params.get("refresh_token"),
    ) {
        (Some("authorization_code"), Some(code), _) => keys.push(crate::grants::code_key(code)),
        (Some("refresh_token"), _, Some(token)) => {
            keys.push(tokens::refresh_key(token));
            keys.push(tokens::tombstone_key(&client_id));
        }
        _ => {}
    }
    keys
}

/// What a grant asks to issue once its request is valid.
type Exchange = Result<(Grant, Refresh), OAuthError>;

/// RFC 6749 §5.1.
fn token_response(issued: &Issued) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        access_token: &'a str,
        token_type: &'static str,
        expires_in: u64,
        scope: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        refresh_token: Option<&'a str>,
    }
    Response::json(
        200,
        &Body {
            access_token: &issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            scope: &issued.scope,
            refresh_token: issued.refresh_token.as_deref(),
        },
    )
    .no_store()
}

/// A refresh token comes with a user grant only when the client registered the
/// `refresh_token` grant type (RFC 7591 §2).
fn refresh_for(client: &Client) -> Refresh {
    if client.allows_grant("refresh_token") {
        Refresh::New
    } else {
        Refresh::None
    }
}

/// RFC 8707 §2: a `resource` sent to the token endpoint must name the resource granted.
fn check_resource(params: &Params, granted: &str) -> Result<(), OAuthError> {
    let Some(sent) = params.get("resource") else {
        return Ok(());
    };
    match resource::normalize(sent) {
        Ok(normal) if normal == granted => Ok(()),
        _ => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("resource `{sent}` is not the resource this grant is for"),
        )),
    }
}

/// The scope and resource of a request without an authorization step (client credentials,
/// device authorization): the scopes asked for or the defaults, and the `resource` sent, if
/// allowed, else the single configured resource (RFC 8707 §2 lets the server pick a default).
pub(crate) fn direct_grant(
    env: &Env,
    client: &Client,
    params: &Params,
) -> Result<(String, String), OAuthError> {
    let scope = scope::requested(
        &env.settings,
        params.get("scope"),
        client.metadata.scope.as_deref(),
    )?;
    let resource = match client.metadata.resource.as_deref() {
        Some(bound) => bound_resource(&env.settings, bound, params.get("resource"))?,
        None => default_resource(&env.settings, params.get("resource"))?,
    };
    Ok((scope::join(&scope), resource))
}

/// The resource of a client the operator bound to one: that one, if still served, whatever
/// else is asked for being `invalid_target`.
fn bound_resource(
    settings: &Settings,
    bound: &str,
    sent: Option<&str>,
) -> Result<String, OAuthError> {
    let bound = resource::allowed(settings, bound)?;
    match sent.map(resource::normalize) {
        None => Ok(bound),
        Some(Ok(normal)) if normal == bound => Ok(bound),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            format!("this client's tokens are only for `{bound}`"),
        )),
    }
}

fn default_resource(settings: &Settings, sent: Option<&str>) -> Result<String, OAuthError> {
    match (sent, settings.resources.as_slice()) {
        (Some(sent), _) => resource::allowed(settings, sent),
        (None, [only]) => Ok(only.clone()),
        (None, _) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "`resource` is required: this server serves more than one resource",
        )),
    }
}
