//! Device authorization endpoint (RFC 8628 §3.1).

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Request, Response};

pub fn device_authorization(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}
