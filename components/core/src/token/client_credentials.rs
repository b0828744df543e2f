//! `grant_type=client_credentials` (OAuth 2.1 §4.2): confidential clients acting for
//! themselves. No refresh token; `sub` is the client.

use super::{direct_grant, Exchange};
use crate::client::Client;
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::Params;
use crate::tokens::{self, Grant, Refresh};

pub(super) fn exchange(env: &Env, client: &Client, params: &Params) -> Exchange {
    if !client.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is only for confidential clients",
        ));
    }
    if !client.allows_grant("client_credentials") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client did not register the client_credentials grant",
        ));
    }
    let (scope, resource) = direct_grant(env, client, params)?;
    let grant = Grant {
        client_id: client.client_id.clone(),
        sub: client.client_id.clone(),
        scope,
        resource,
        auth_time: None,
        family: tokens::new_family(env),
    };
    Ok((grant, Refresh::None))
}
