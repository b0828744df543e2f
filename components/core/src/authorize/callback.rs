//! `GET /oauth/callback`: the upstream provider sends the user back with `code` and our
//! `state` (RFC 6749 §4.1.2), or with an `error` (§4.1.2.1).

use super::consent::{not_kept, signed_in};
use super::pending::{Flow, Pending, Stage};
use super::{bad_request, either, method_not_allowed, unavailable};
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Request, Response};
use crate::pages;
use crate::settings::Provider;
use crate::upstream;
use crate::upstream_tokens;

pub fn callback(env: &Env, req: &Request) -> Response {
    if req.method != Method::Get {
        return method_not_allowed("GET");
    }
    if env.settings.provider == Provider::Local {
        return pages::error_page(404, "Not found", "No upstream provider is configured.");
    }
    either(complete(env, req))
}

fn complete(env: &Env, req: &Request) -> Result<Response, Response> {
    let params = req
        .query_params()
        .map_err(|err| bad_request(&err.description))?;
    let pending = Pending::find(env, req, params.get("state"))?;
    // Single use: a replayed or concurrent callback finds the sign-in taken.
    if pending.record.stage != Stage::SigningIn
        || !pending.claim_sign_in(env).map_err(unavailable)?
    {
        return Err(bad_request("This sign-in has already been completed."));
    }
    if let Some(error) = params.get("error") {
        return Err(pending.discard(env, refused_upstream(env, &pending, error)));
    }
    let Some(code) = params.get("code") else {
        return Err(pending.discard(env, bad_request("The identity provider sent no code.")));
    };
    let record = &pending.record;
    match upstream::identify(
        env,
        code,
        &record.upstream_verifier,
        record.nonce.as_deref(),
    ) {
        Ok(signed) => {
            // Kept for the resource servers that act for the user upstream (RFC 8693).
            if let Err(err) = upstream_tokens::hold(env, &pending.id, &signed.tokens) {
                return Err(pending.discard(env, not_kept(err)));
            }
            Ok(signed_in(env, pending, signed.identity))
        }
        Err(failure) => {
            let answer = super::pending::failed_upstream(env, &pending.record.flow, &failure);
            Err(pending.discard(env, answer))
        }
    }
}

/// The provider said no (the user cancelled, or it refused us): the client learns
/// `access_denied` when errors may go to it (a provider may answer with an error at once,
/// without the user doing anything: otherwise a way to redirect through us); else, and for a
/// device sign-in, a page.
fn refused_upstream(env: &Env, pending: &Pending, error: &str) -> Response {
    // The provider's code, cut short: it is echoed into the client's redirect.
    let error: String = error.chars().take(64).collect();
    let description = format!("sign-in at the identity provider failed ({error})");
    let err = OAuthError::new(ErrorCode::AccessDenied, description);
    let flow = &pending.record.flow;
    super::pending::sign_in_error(env, flow, &err, || {
        let outcome = match flow {
            Flow::Code(_) => "you are not sent back to the application",
            Flow::Device { .. } => "the device was not approved",
        };
        pages::error_page(
            403,
            "Sign-in cancelled",
            &format!("Signing in at the identity provider did not succeed, so {outcome}."),
        )
    })
}
