//! The device authorization endpoint (RFC 8628 §3.1–3.2) and the pace of the device's
//! polling (§3.5).
//!
//! A device authorization writes three records, all keyed by hashes: the
//! [`DeviceGrant`] under `device/<sha256(device_code)>` (decided on the `/device` page), the
//! user-code index `usercode/<CODE>` holding that key, and the polling state
//! `device/<sha256(device_code)>/poll`. The polling state is a record of its own so that a
//! poll never rewrites the grant (and cannot undo a decision written at the same moment); it
//! outlives the grant a little, so a late poll hears `expired_token` rather than
//! `invalid_grant`.

use serde::{Deserialize, Serialize};

use crate::client;
use crate::env::{Env, StoreError};
use crate::error::{ErrorCode, OAuthError};
use crate::grants::{self, DeviceGrant, DeviceStatus};
use crate::http::{Params, Request, Response};
use crate::records::{self, Claim};
use crate::secret::Secret;
use crate::token::{direct_grant, limit_client, post_form, DEVICE_CODE_GRANT};

/// RFC 8628 §6.1: 20 consonants (no vowels, so no words), case-insensitive.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LENGTH: usize = 8;
/// Fresh user codes tried before giving up (20^8 codes: a clash is already rare).
const USER_CODE_ATTEMPTS: usize = 5;
/// RFC 8628 §3.5: each `slow_down` adds five seconds to the interval.
const SLOW_DOWN_STEP: u64 = 5;
/// How long after expiry a poll still hears `expired_token`.
const EXPIRY_REMEMBERED: u64 = 600;

/// `POST /device/code`.
pub fn device_authorization(env: &Env, req: &Request) -> Response {
    post_form(env, req, serve)
}

fn serve(env: &Env, req: &Request, params: &Params) -> Result<Response, OAuthError> {
    let client = client::authenticate(env, req, params)?;
    limit_client(env, req, &client)?;
    if !client.allows_grant(DEVICE_CODE_GRANT) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client did not register the device_code grant",
        ));
    }
    let (scope, resource) = direct_grant(env, &client, params)?;

    let device_code = Secret::generate(env);
    let key = grants::device_key(device_code.expose());
    let user_code = claim_user_code(env)?;
    let lifetime = env.settings.device_code_lifetime;
    let expires_at = env.now() + lifetime;
    let grant = DeviceGrant {
        client_id: client.client_id,
        scope,
        resource,
        user_code: user_code.clone(),
        status: DeviceStatus::Pending,
    };
    records::put(env, &key, &grant, Some(expires_at))?;
    let polling = Polling {
        interval: env.settings.device_poll_interval,
        last_poll: None,
        expires_at,
    };
    records::put(
        env,
        &poll_key(&key),
        &polling,
        Some(expires_at + EXPIRY_REMEMBERED),
    )?;
    records::put(
        env,
        &grants::user_code_key(&user_code),
        &key,
        Some(expires_at),
    )?;
    records::maybe_sweep(env);

    let shown = display(&user_code);
    let verification_uri = env.settings.endpoint("/device");
    let complete = format!(
        "{verification_uri}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("user_code", &shown)
            .finish()
    );
    Ok(Response::json(
        200,
        &serde_json::json!({
            "device_code": device_code.expose(),
            "user_code": shown,
            "verification_uri": verification_uri,
            "verification_uri_complete": complete,
            "expires_in": lifetime,
            "interval": polling.interval,
        }),
    )
    .no_store())
}

/// How a device polls: its current interval and when it last asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Polling {
    pub interval: u64,
    pub last_poll: Option<u64>,
    /// When the device code expires (the record itself lives a little longer).
    pub expires_at: u64,
}

impl Polling {
    pub fn has_expired(&self, env: &Env) -> bool {
        env.now() >= self.expires_at
    }
}

/// The polling state of the device grant under `device_key`.
pub fn polling(env: &Env, device_key: &str) -> Result<Option<Polling>, StoreError> {
    records::get(env, &poll_key(device_key))
}

/// Note a poll of a pending grant: `slow_down` (and five more seconds of interval) when it
/// came sooner than the interval after the previous one (RFC 8628 §3.5).
pub fn pace(env: &Env, device_key: &str, mut polling: Polling) -> Result<(), OAuthError> {
    let now = env.now();
    let too_soon = polling
        .last_poll
        .is_some_and(|last| now < last + polling.interval);
    if too_soon {
        polling.interval += SLOW_DOWN_STEP;
    }
    polling.last_poll = Some(now);
    let expires_at = polling.expires_at + EXPIRY_REMEMBERED;
    records::update(env, &poll_key(device_key), &polling, Some(expires_at))?;
    if too_soon {
        return Err(OAuthError::new(
            ErrorCode::SlowDown,
            format!("poll at most every {} seconds", polling.interval),
        ));
    }
    Ok(())
}

fn poll_key(device_key: &str) -> String {
    format!("{device_key}/poll")
}

/// A fresh user code, reserved with a claim so that two devices never share one.
fn claim_user_code(env: &Env) -> Result<String, OAuthError> {
    for _ in 0..USER_CODE_ATTEMPTS {
        let code = random_user_code(env);
        if records::claim(env, &grants::user_code_key(&code), Claim::Redeem)? {
            return Ok(code);
        }
    }
    Err(OAuthError::new(
        ErrorCode::TemporarilyUnavailable,
        "no free user code was found; retry",
    ))
}

/// Eight letters of [`USER_CODE_ALPHABET`], uniformly: bytes of 240 and above are dropped
/// (240 = 12 × 20), so no letter is favoured.
fn random_user_code(env: &Env) -> String {
    let mut code = String::with_capacity(USER_CODE_LENGTH);
    while code.len() < USER_CODE_LENGTH {
        for b in env.random_bytes::<16>() {
            if b < 240 && code.len() < USER_CODE_LENGTH {
                code.push(USER_CODE_ALPHABET[usize::from(b % 20)] as char);
            }
        }
    }
    code
}

/// `BCDFGHJK` → `BCDF-GHJK`.
fn display(code: &str) -> String {
    let (a, b) = code.split_at(code.len() / 2);
    format!("{a}-{b}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    #[test]
    fn user_codes_use_the_alphabet_and_normalise_back() {
        let h = Harness::new();
        let env = h.env();
        for _ in 0..50 {
            let code = random_user_code(&env);
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            assert_eq!(grants::normalize_user_code(&display(&code)), code);
        }
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
    }
}
