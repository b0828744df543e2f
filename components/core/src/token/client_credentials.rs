//! `grant_type=client_credentials` (OAuth 2.1 §4.2): the operator's confidential machine
//! clients acting for themselves. No refresh token; `sub` is the client.

use super::{direct_grant, Exchange};
use crate::client::Client;
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::Params;
use crate::tokens::{self, Grant, Refresh};

pub(super) fn exchange(env: &Env, client: &Client, params: &Params) -> Exchange {
    // Only the operator's `machine_clients`: a registered client stored with this grant (before
    // registration stopped granting it) gets nothing.
    if !client.is_provisioned() || !client.allows_grant("client_credentials") {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials is only for clients the operator provisions",
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
        username: None,
    };
    Ok((grant, Refresh::None))
}
