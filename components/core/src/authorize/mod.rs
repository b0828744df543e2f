//! The authorization endpoint (RFC 6749 §4.1, OAuth 2.1 §4.1) and every step between it and
//! the outcome: the upstream callback, the local login (in [`crate::upstream::local`]),
//! consent, and the device verification page (RFC 8628 §3.3).
//!
//! One sign-in moves through explicit stages, kept in one [`pending::PendingAuthorization`]
//! record: `/authorize` or `/device` validates and stores it → the user signs in upstream
//! (`/oauth/callback`) or on our login page (`/login`) → consent (`/consent`) → a code sent
//! to the client, or a device grant decided.

mod approval;
mod binding;
mod callback;
pub(crate) mod consent;
pub(crate) mod csrf;
mod device;
pub mod pending;
pub mod redirect;
mod request;

pub use callback::callback;
pub use consent::consent;
pub use device::device_verification;
pub use request::{authorize, AuthorizationRequest};

use crate::env::{Env, StoreError};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Request, Response};
use crate::pages;

/// `GET|POST /login`: the built-in login page.
pub fn login(env: &Env, req: &Request) -> Response {
    crate::upstream::local::login(env, req)
}

/// 405 with the methods the endpoint does take (RFC 9110 §15.5.6).
pub(crate) fn method_not_allowed(allow: &str) -> Response {
    OAuthError::new(ErrorCode::MethodNotAllowed, "method not allowed")
        .with_header("allow", allow)
        .into_response()
}

/// A store outage, shown to a person: the status and `Retry-After` (RFC 9110 §10.2.3) of the
/// API endpoints' answer, on a page.
pub(crate) fn unavailable(err: StoreError) -> Response {
    let answer = OAuthError::from(err);
    let mut page = pages::error_page(
        answer.status,
        "Temporarily unavailable",
        "The server cannot reach its storage right now. Please try again in a moment.",
    );
    page.headers.extend(answer.headers);
    page
}

/// A page for a bad request.
pub(crate) fn bad_request(message: &str) -> Response {
    pages::error_page(400, "Invalid request", message)
}

/// Steps written as `Result<Response, Response>` (the error is the page to show) end here.
pub(crate) fn either(result: Result<Response, Response>) -> Response {
    match result {
        Ok(response) | Err(response) => response,
    }
}
