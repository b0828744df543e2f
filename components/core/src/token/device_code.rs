//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5): the
//! device's polling.

use super::{refresh_for, Exchange};
use crate::client::Client;
use crate::device;
use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::grants::{self, DeviceGrant, DeviceStatus};
use crate::http::Params;
use crate::records::{self, Claim};
use crate::secret::hash;
use crate::tokens::Grant;

/// `authorization_pending` (or `slow_down` when polled too fast) until the user decides;
/// `access_denied` after a denial; `expired_token` once the code has expired; tokens exactly
/// once after an approval, then `invalid_grant`.
pub(super) fn exchange(env: &Env, client: &Client, params: &Params) -> Exchange {
    let device_code = params.require("device_code")?;
    let key = grants::device_key(device_code);
    let Some(polling) = device::polling(env, &key)? else {
        return Err(OAuthError::invalid_grant("the device_code is unknown"));
    };
    let expired = || OAuthError::new(ErrorCode::ExpiredToken, "the device_code has expired");
    if polling.has_expired(env) {
        return Err(expired());
    }
    let Some(grant) = records::get::<DeviceGrant>(env, &key)? else {
        return Err(expired());
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the device_code was issued to another client",
        ));
    }
    match grant.status {
        DeviceStatus::Pending => {
            device::pace(env, &key, polling)?;
            Err(OAuthError::new(
                ErrorCode::AuthorizationPending,
                "the user has not decided yet",
            ))
        }
        // RFC 8628 §3.5 errors are token endpoint errors: 400, not 403.
        DeviceStatus::Denied => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the user denied the request",
        )
        .with_status(400)),
        DeviceStatus::Approved {
            sub,
            auth_time,
            username,
        } => {
            if !records::claim(env, &key, Claim::Redeem)? {
                return Err(OAuthError::invalid_grant(
                    "the device_code has already been used",
                ));
            }
            let grant = Grant {
                client_id: grant.client_id,
                sub,
                scope: grant.scope,
                resource: grant.resource,
                auth_time: Some(auth_time),
                family: hash(device_code),
                username,
            };
            Ok((grant, refresh_for(client)))
        }
    }
}
