//! The grants that pass between the authorize side and the token side: authorization codes
//! (written by `/authorize`'s flow, redeemed at `/token`) and device grants (created at
//! `/device/code`, decided on the `/device` page, redeemed at `/token`).

use serde::{Deserialize, Serialize};

use crate::env::{Env, StoreError};
use crate::records::{self, Claim};
use crate::secret::{hash, Secret};

/// An authorization code's record, under `code/<sha256(code)>`. Single use: redemption is
/// [`records::claim`] with [`Claim::Redeem`] on the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub client_id: String,
    /// Exactly as sent in the authorization request (RFC 6749 §4.1.3 compares it).
    pub redirect_uri: String,
    /// S256 challenge.
    pub code_challenge: String,
    /// Normalised resource (RFC 8707): the `aud` of the tokens.
    pub resource: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// The signed-in user, as the upstream provider names them.
    pub sub: String,
    /// When the user signed in (seconds since the epoch).
    pub auth_time: u64,
    /// The user's display name, when it is not the `sub` (see [`crate::upstream::Identity`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

pub fn code_key(code: &str) -> String {
    format!("code/{}", hash(code))
}

/// Mint a code for `grant`, valid for the configured code lifetime.
pub fn issue_code(env: &Env, grant: &AuthorizationCode) -> Result<Secret, StoreError> {
    let code = Secret::generate(env);
    let expires_at = env.now() + env.settings.code_lifetime;
    records::put(env, &code_key(code.expose()), grant, Some(expires_at))?;
    Ok(code)
}

/// Where a device authorization stands (RFC 8628 §3.4–3.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DeviceStatus {
    Pending,
    Approved {
        sub: String,
        auth_time: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
    },
    Denied,
}

/// A device authorization, under `device/<sha256(device_code)>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGrant {
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    /// Normalised user code (upper case, no dash), for display.
    pub user_code: String,
    pub status: DeviceStatus,
}

pub fn device_key(device_code: &str) -> String {
    format!("device/{}", hash(device_code))
}

/// The token family of the device grant under `device_key`: like the key, named after the
/// device code (see `token/device_code.rs`).
pub fn device_family(device_key: &str) -> &str {
    device_key.strip_prefix("device/").unwrap_or(device_key)
}

/// The key of the user-code index record, which holds the device key.
pub fn user_code_key(user_code: &str) -> String {
    format!("usercode/{}", normalize_user_code(user_code))
}

/// Users type codes in any case, with or without the dash or spaces.
pub fn normalize_user_code(user_code: &str) -> String {
    user_code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The device grant a user code names: `(device_key, grant)` if it is live.
pub fn find_by_user_code(
    env: &Env,
    user_code: &str,
) -> Result<Option<(String, DeviceGrant)>, StoreError> {
    let Some(device_key) = records::get::<String>(env, &user_code_key(user_code))? else {
        return Ok(None);
    };
    Ok(records::get::<DeviceGrant>(env, &device_key)?.map(|g| (device_key, g)))
}

/// Record the user's decision on a pending device grant. Exactly once: a second decision
/// (another tab, a replayed form) returns `Ok(false)` and changes nothing.
pub fn decide(env: &Env, device_key: &str, decision: DeviceStatus) -> Result<bool, StoreError> {
    let Some((mut grant, expires_at)) = records::get_with_expiry::<DeviceGrant>(env, device_key)?
    else {
        return Ok(false);
    };
    if grant.status != DeviceStatus::Pending || !records::claim(env, device_key, Claim::Decide)? {
        return Ok(false);
    }
    grant.status = decision;
    records::update(env, device_key, &grant, expires_at)?;
    // The user code has done its job; a second entry of it finds nothing.
    records::delete(env, &user_code_key(&grant.user_code))?;
    Ok(true)
}
