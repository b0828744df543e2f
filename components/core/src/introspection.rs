//! Token introspection (RFC 7662).

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Request, Response};

pub fn introspect(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}
