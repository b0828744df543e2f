//! The user's tokens at the upstream provider, kept with their grant family so that a
//! resource server can act for the user upstream (RFC 8693, [`crate::token`]'s
//! token-exchange grant).
//!
//! - At sign-in the callback [`hold`]s them under `upstream-sign-in/<sha256(pending id)>`:
//!   the family does not exist yet (it is named after the authorization code or device code,
//!   which the user's decision creates). When the decision mints the code or approves the
//!   device, [`attach`] moves them to `upstream/<family>`, so redeeming the code needs no
//!   change. A sign-in that is denied or abandoned leaves its held tokens to expire with it.
//! - Always sealed ([`crate::sealing`]) with the record's own key as associated data: the
//!   store never holds them in clear, and a record copied under another family does not open.
//! - Deleted with the family ([`crate::tokens::revoke_family`]: code replay, refresh reuse,
//!   revocation, an operator revoking a user's tokens) and with the client
//!   ([`crate::tokens::retire_client`]), through a per-client list of the families holding
//!   upstream tokens (`upstream-client/<client_id>`, slots as [`records::next_slot`] hands
//!   them out).
//! - A refresh at the provider ([`current`]) happens once per `generation` of the record,
//!   even under concurrent exchanges: see [`current`].

use serde::{Deserialize, Serialize};

use crate::env::{Env, StoreError};
use crate::error::{ErrorCode, OAuthError};
use crate::records::{self, Claim};
use crate::sealing::{self, Sealed};
use crate::secret::hash;
use crate::upstream::{self, UpstreamFailure};

/// Refresh an upstream access token this long before it expires, seconds, or a quarter of its
/// lifetime when that is shorter: the resource server must have time to use it.
pub const REFRESH_MARGIN: u64 = 60;
/// How often an exchange that lost the refresh claim looks for the winner's tokens.
const RE_READS: usize = 3;
/// A refresh attempt's window, seconds: a winner that dies between its claim and its write
/// blocks refreshes of that generation until the next window.
const REFRESH_WINDOW: u64 = 30;

/// What we keep of the provider's token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamTokens {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Seconds since the epoch; `None`: the provider said nothing (GitHub's tokens do not
    /// expire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Which upstream: the token endpoint that issued them, where they are refreshed.
    pub token_endpoint: String,
    /// When the provider issued them, seconds since the epoch.
    pub issued_at: u64,
}

impl UpstreamTokens {
    /// Usable for longer than the refresh margin ([`REFRESH_MARGIN`]).
    pub fn is_fresh(&self, now: u64) -> bool {
        self.expires_at.is_none_or(|exp| {
            let margin = REFRESH_MARGIN.min(exp.saturating_sub(self.issued_at) / 4);
            now.saturating_add(margin) < exp
        })
    }
}

/// The record under [`key`]: sealed tokens, and how many times they were refreshed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    generation: u64,
    sealed: Sealed,
}

pub fn key(family: &str) -> String {
    format!("upstream/{family}")
}

fn held_key(sign_in: &str) -> String {
    format!("upstream-sign-in/{}", hash(sign_in))
}

fn client_key(client_id: &str) -> String {
    format!("upstream-client/{client_id}")
}

/// Keep `tokens` for the sign-in `sign_in` (the pending authorization's id) until its
/// outcome is decided.
pub fn hold(env: &Env, sign_in: &str, tokens: &UpstreamTokens) -> Result<(), OAuthError> {
    let key = held_key(sign_in);
    let expires_at = env.now() + env.settings.session_timeout;
    write(env, &key, 0, tokens, expires_at)
}

/// The sign-in `sign_in` produced the grant `family` for `client_id`: move its held tokens
/// there. Nothing held (the built-in login) is nothing to do.
pub fn attach(env: &Env, sign_in: &str, family: &str, client_id: &str) -> Result<(), OAuthError> {
    let held = held_key(sign_in);
    let Some((_, tokens)) = read(env, &held)? else {
        return Ok(());
    };
    let expires_at = family_expiry(env);
    let index = client_key(client_id);
    let slot = records::next_slot(env, &index)?;
    records::put(env, &index, &(), Some(expires_at))?;
    records::put(env, &format!("{index}/{slot}"), &family, Some(expires_at))?;
    write(env, &key(family), 0, &tokens, expires_at)?;
    records::delete(env, &held)?;
    Ok(())
}

/// The user's live upstream tokens for `family`, refreshed at the provider first when they
/// have expired or are about to.
///
/// Concurrent exchanges refresh once: a [`records::claim`] on (family, generation, window)
/// picks the refresher, which writes the next generation. The others re-read a few times and
/// then answer 503 `temporarily_unavailable` with `Retry-After: 1`, rather than wait: the
/// core has no timer to sleep on, and a provider's refresh takes longer than a busy loop
/// should hold an instance; a retry a second later finds the new generation. A second
/// refresh with the same refresh token would fail at providers that rotate them.
pub fn current(env: &Env, family: &str) -> Result<UpstreamTokens, OAuthError> {
    let key = key(family);
    let Some((generation, tokens)) = read(env, &key)? else {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "no upstream token is held for the subject_token's sign-in",
        ));
    };
    if tokens.is_fresh(env.now()) {
        return Ok(tokens);
    }
    let attempt = format!(
        "upstream-refresh/{family}/{generation}/{}",
        env.now() / REFRESH_WINDOW
    );
    if !records::claim(env, &attempt, Claim::Redeem)? {
        for _ in 0..RE_READS {
            if let Some((g, tokens)) = read(env, &key)? {
                if g > generation {
                    return Ok(tokens);
                }
            }
        }
        return Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "the upstream token is being refreshed; retry shortly",
        )
        .with_header("retry-after", "1"));
    }
    // The attempt record only gives its claim counter a lifetime for the sweep.
    records::put(env, &attempt, &(), Some(env.now() + 2 * REFRESH_WINDOW))?;
    match upstream::refresh(env, &tokens) {
        Ok(refreshed) => {
            // The family lives on while its refresh tokens rotate: so do its upstream tokens.
            write(env, &key, generation + 1, &refreshed, family_expiry(env))?;
            Ok(refreshed)
        }
        Err(failure @ UpstreamFailure::Rejected(_)) => {
            // The provider refused the refresh token: the user must sign in again.
            forget(env, family)?;
            Err(OAuthError::invalid_grant(format!(
                "the upstream token could not be refreshed: {}; the user must sign in again",
                failure.message()
            )))
        }
        Err(failure) => Err(unavailable(&failure)),
    }
}

/// Why the provider cannot refresh now: 503 when trying later may work, 500 for our own
/// misconfiguration.
fn unavailable(failure: &UpstreamFailure) -> OAuthError {
    let err = OAuthError::new(
        failure.code(),
        format!(
            "the upstream token could not be refreshed: {}",
            failure.message()
        ),
    );
    match failure.code() {
        ErrorCode::TemporarilyUnavailable => err.with_status(503).with_header("retry-after", "5"),
        _ => err,
    }
}

/// Delete the upstream tokens of `family` (revoked).
pub fn forget(env: &Env, family: &str) -> Result<(), StoreError> {
    records::delete(env, &key(family))
}

/// Delete the upstream tokens of every family of `client_id` (deleted).
pub fn forget_client(env: &Env, client_id: &str) -> Result<(), StoreError> {
    let index = client_key(client_id);
    for slot in 1..=records::slot_count(env, &index)? {
        let slot_key = format!("{index}/{slot}");
        if let Some(family) = records::get::<String>(env, &slot_key)? {
            forget(env, &family)?;
        }
        records::delete(env, &slot_key)?;
    }
    records::delete(env, &index)
}

/// As long as any token of a family issued now can live.
fn family_expiry(env: &Env) -> u64 {
    let s = &env.settings;
    env.now() + s.access_token_lifetime.max(s.refresh_token_lifetime)
}

fn write(
    env: &Env,
    key: &str,
    generation: u64,
    tokens: &UpstreamTokens,
    expires_at: u64,
) -> Result<(), OAuthError> {
    let plaintext = serde_json::to_vec(tokens)
        .map_err(|e| OAuthError::new(ErrorCode::ServerError, format!("encoding: {e}")))?;
    let sealed = sealing::key(env)?.seal(env, key, &plaintext)?;
    let stored = Stored { generation, sealed };
    records::put(env, key, &stored, Some(expires_at))?;
    Ok(())
}

/// The record under `key`: generation and tokens. One that does not open (sealed with
/// another key, or moved from another family) is as good as absent.
fn read(env: &Env, key: &str) -> Result<Option<(u64, UpstreamTokens)>, OAuthError> {
    let Some(stored) = records::get::<Stored>(env, key)? else {
        return Ok(None);
    };
    let tokens = sealing::key(env)?
        .open(key, &stored.sealed)
        .and_then(|plain| serde_json::from_slice::<UpstreamTokens>(&plain).ok());
    Ok(tokens.map(|t| (stored.generation, t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lasting(issued_at: u64, expires_at: Option<u64>) -> UpstreamTokens {
        UpstreamTokens {
            access_token: "a".into(),
            refresh_token: None,
            expires_at,
            token_endpoint: "http://tm.example/api/oauth/token".into(),
            issued_at,
        }
    }

    #[test]
    fn refreshed_a_minute_early_or_a_quarter_of_a_short_lifetime() {
        let hour = lasting(0, Some(3600));
        assert!(hour.is_fresh(3539));
        assert!(!hour.is_fresh(3540));
        let short = lasting(0, Some(8));
        assert!(short.is_fresh(5));
        assert!(!short.is_fresh(6));
        assert!(lasting(0, None).is_fresh(u64::MAX));
    }
}
