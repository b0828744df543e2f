//! Dynamic client registration (RFC 7591) and management (RFC 7592).

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Request, Response};

pub fn register(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}

pub fn manage(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}
