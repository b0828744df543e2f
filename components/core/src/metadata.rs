//! Discovery documents: RFC 8414, OpenID discovery, RFC 9728.

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Request, Response};

pub fn authorization_server(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}

pub fn openid_configuration(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}

pub fn protected_resource(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}

pub fn health(_env: &Env, _req: &Request) -> Response {
    OAuthError::new(ErrorCode::ServerError, "not implemented yet").into_response()
}
