//! ForwardAuth: /verify for reverse proxies.

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Request, Response};

pub fn verify(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}
