//! The pending authorization: one sign-in in progress, from `/authorize` (or the device
//! page) until a code is issued or a device grant decided.
//!
//! Stored under `pending/<sha256(id)>` for `session_timeout` seconds. The id itself is our
//! `state` at the upstream provider and the `session` of the login and consent forms; the
//! store never holds it. Steps that must happen once use claims on the record's key:
//! [`Claim::Redeem`] for finishing sign-in, [`Claim::Decide`] for the consent decision,
//! [`Claim::Attempt`] counts password tries.
//!
//! The id alone continues nothing: every step also needs the browser's cookie for this
//! sign-in (see [`super::binding`]), which [`Pending::find`] checks.

use serde::{Deserialize, Serialize};

use super::request::AuthorizationRequest;
use super::{bad_request, unavailable};
use super::{binding, redirect};
use crate::audit::{AuditEvent, AuditKind};
use crate::client;
use crate::env::{Env, StoreError};
use crate::error::OAuthError;
use crate::http::{Request, Response};
use crate::pkce;
use crate::records::{self, Claim};
use crate::secret::{hash, Secret};
use crate::upstream::{self, SignIn, UpstreamFailure};

/// What is stored while the user signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub flow: Flow,
    /// Our PKCE verifier for the upstream provider (RFC 7636 §4.1).
    pub upstream_verifier: String,
    /// OpenID Connect Core §3.1.2.1, for an OIDC upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The CSRF token of this sign-in's forms (see [`super::csrf`]).
    pub csrf: String,
    /// SHA-256 of the secret in the cookie of the browser that started the sign-in (see
    /// [`super::binding`]).
    pub browser: String,
    pub stage: Stage,
}

/// What the sign-in is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flow {
    /// An authorization request; ends with a code sent to the client.
    Code(AuthorizationRequest),
    /// A device authorization (RFC 8628); ends with the grant under `device_key` decided.
    Device {
        device_key: String,
        client_id: String,
    },
}

impl Flow {
    pub fn client_id(&self) -> &str {
        match self {
            Flow::Code(request) => &request.client_id,
            Flow::Device { client_id, .. } => client_id,
        }
    }

    /// The name the client goes by, for the pages that say who asks.
    pub fn client_name(&self, env: &Env) -> Result<String, Response> {
        match client::find(env, self.client_id()) {
            Ok(Some(client)) => Ok(client.display_name().to_string()),
            Ok(None) => Err(bad_request("The client is no longer registered.")),
            Err(err) => Err(crate::pages::error_page(
                err.status,
                "Invalid request",
                &err.description,
            )),
        }
    }
}

/// The host of a redirect URI, shown prominently where the user learns where they will be
/// sent (a client may pick a misleading name; its redirect host is what counts).
pub fn redirect_host(redirect_uri: &str) -> String {
    url::Url::parse(redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| redirect_uri.to_string())
}

/// Where the sign-in stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// The user is signing in (upstream or on the login page).
    SigningIn,
    /// Signed in as `sub` (with a display `username`, see [`crate::upstream::Identity`]);
    /// the consent page awaits the user's decision.
    AwaitingConsent {
        sub: String,
        auth_time: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
}

/// The store key of the pending authorization `id`.
pub fn key(id: &str) -> String {
    format!("pending/{}", hash(id))
}

/// Store a new pending authorization for `flow`, bind it to this browser and send the user
/// to sign in.
pub fn begin(env: &Env, flow: Flow) -> Response {
    let id = Secret::generate(env);
    let browser = Secret::generate(env);
    let verifier = Secret::generate(env);
    let nonce = upstream::uses_nonce(&env.settings.provider)
        .then(|| Secret::generate(env).expose().to_string());
    let challenge = pkce::challenge_of(verifier.expose());
    let sign_in = SignIn {
        state: id.expose(),
        code_challenge: &challenge,
        nonce: nonce.as_deref(),
    };
    // Find out where the user goes before storing anything: a failing provider leaves nothing.
    let location = match upstream::login_url(env, &sign_in) {
        Ok(location) => location,
        Err(failure) => return failed_upstream(env, &flow, &failure),
    };
    let record = PendingAuthorization {
        flow,
        upstream_verifier: verifier.expose().to_string(),
        nonce,
        csrf: Secret::generate(env).expose().to_string(),
        browser: browser.hash(),
        stage: Stage::SigningIn,
    };
    let expires_at = env.now() + env.settings.session_timeout;
    if let Err(err) = records::put(env, &key(id.expose()), &record, Some(expires_at)) {
        return unavailable(err);
    }
    records::maybe_sweep(env);
    binding::set_cookie(
        Response::redirect(&location),
        &env.settings,
        id.expose(),
        &browser,
    )
}

/// The provider failed this sign-in. The client learns it at its redirect URI (RFC 6749
/// §4.1.2.1), so it stops waiting, when errors may be sent there (see [`sign_in_error`]); a
/// device sign-in, with no client to send the user to, ends on a page. Only the audit log
/// says what the provider did.
pub fn failed_upstream(env: &Env, flow: &Flow, failure: &UpstreamFailure) -> Response {
    env.audit(
        AuditEvent::new(AuditKind::UpstreamFailed, env.now())
            .client(flow.client_id())
            .reason(&failure.message()),
    );
    sign_in_error(env, flow, &failure.for_client(), || failure.page())
}

/// An error that ends the sign-in of `flow`: for an authorization request, sent to the
/// client's redirect URI (validated before any sign-in began) when errors may go there (see
/// [`redirect::error_to_trusted_client`]); otherwise, and for a device sign-in, the `page`.
pub fn sign_in_error(
    env: &Env,
    flow: &Flow,
    err: &OAuthError,
    page: impl FnOnce() -> Response,
) -> Response {
    let Flow::Code(request) = flow else {
        return page();
    };
    match client::find(env, &request.client_id) {
        Ok(Some(client)) => redirect::error_to_trusted_client(
            env,
            &client,
            &request.redirect_uri,
            request.state.as_deref(),
            err,
            page,
        ),
        // Deleted meanwhile: nobody to send the user to.
        Ok(None) => page(),
        Err(err) if err.code == crate::error::ErrorCode::TemporarilyUnavailable => {
            unavailable(StoreError(err.description))
        }
        Err(_) => page(),
    }
}

/// A pending authorization read back from the store.
#[derive(Debug)]
pub struct Pending {
    /// The id the user presented.
    pub id: String,
    pub record: PendingAuthorization,
    key: String,
    expires_at: Option<u64>,
}

impl Pending {
    /// The live pending authorization that `id` (as sent by the user) names, when `req`
    /// comes from the browser that started it; otherwise the page to show. A refusal
    /// changes nothing: the sign-in stays usable for its browser.
    pub fn find(env: &Env, req: &Request, id: Option<&str>) -> Result<Pending, Response> {
        let gone = || {
            bad_request(
                "This sign-in is unknown or has expired. Please start again from your application.",
            )
        };
        let id = id.filter(|id| id.len() <= 128).ok_or_else(gone)?;
        let key = key(id);
        match records::get_with_expiry::<PendingAuthorization>(env, &key) {
            Ok(Some((record, _))) if !binding::holds(req, &env.settings, id, &record.browser) => {
                Err(binding::refused())
            }
            Ok(Some((record, expires_at))) => Ok(Pending {
                id: id.to_string(),
                record,
                key,
                expires_at,
            }),
            Ok(None) => Err(gone()),
            Err(err) => Err(unavailable(err)),
        }
    }

    /// Claim the end of sign-in: `true` once, for the first caller.
    pub fn claim_sign_in(&self, env: &Env) -> Result<bool, StoreError> {
        records::claim(env, &self.key, Claim::Redeem)
    }

    /// Claim the consent decision: `true` once, for the first caller.
    pub fn claim_decision(&self, env: &Env) -> Result<bool, StoreError> {
        records::claim(env, &self.key, Claim::Decide)
    }

    /// Count one more password attempt; the total so far.
    pub fn count_attempt(&self, env: &Env) -> Result<i64, StoreError> {
        records::count(env, &self.key, Claim::Attempt)
    }

    /// Move to `stage`, keeping the expiry.
    pub fn advance(&mut self, env: &Env, stage: Stage) -> Result<(), StoreError> {
        self.record.stage = stage;
        records::update(env, &self.key, &self.record, self.expires_at)
    }

    /// Forget the sign-in (done, refused or failed), and clear its cookie with `response`,
    /// the last page of the sign-in. Best effort: every path that discards has first claimed
    /// the record or used up its attempts, so a record a store error leaves behind is
    /// unusable anyway.
    pub fn discard(&self, env: &Env, response: Response) -> Response {
        let _ = records::delete(env, &self.key);
        binding::clear_cookie(response, &env.settings, &self.id)
    }
}
