//! Abuse limits: fixed-window counters kept in the key-value store, so that they hold across
//! hosts and under Spin.
//!
//! A limit counts the uses of one subject (a client IP address, a client, a device-page
//! session, or everyone) per fixed window. The count is the [`Claim::Attempt`] counter of the
//! record `limit/<name>/<sha256(subject)>/<window number>`; the first use of a window also
//! writes that record (exactly once, through a [`Claim::Redeem`] claim: counters cannot be
//! written with `set`) with the window's end as its expiry, which lists it in the sweep of
//! [`crate::records`]: the sweep deletes the record and its counters once the window is over.
//! A use over the limit is refused with `429 Too Many Requests` and `Retry-After`, the
//! seconds left in the window (RFC 6585 §4). Counting writes nothing but these keys, and
//! callers count before any expensive work.
//!
//! # Guessing device user codes
//!
//! A user code is 8 letters of a 20-letter alphabet: 20^8 = 2.56 × 10^10 codes. Only wrong
//! codes count (a right one is forgiven, see [`forgive`]), and with the defaults at most 30
//! wrong codes a minute are tried by everyone together. A device code lives 10 minutes,
//! which overlaps at most 11 one-minute windows, so at most 11 × 30 = 330 guesses are made
//! while it lives: each code is found with probability at most 330 / 2.56 × 10^10 ≈
//! 1.3 × 10^-8, and any of N codes live at once with at most N × 1.3 × 10^-8. The price is
//! that someone who keeps spending the global budget makes the page answer 429 for everyone
//! until the minute ends; the per-session limit keeps one person's typos from doing so.
//!
//! # Guessing passwords on the built-in login
//!
//! A sign-in allows 5 tries, but sign-ins cost nothing to start, and every try costs an
//! argon2 hash (tens of milliseconds of CPU and megabytes of memory at the usual parameters):
//! unlimited, it is both a guessing attack and a denial of service. So failed logins are also
//! counted per user name and per client address, over all sign-ins, in 15-minute windows;
//! like device codes, every try counts until it proves right and is forgiven, and the
//! counting happens before argon2.
//! The address is counted first, so an address over its limit is refused before it touches
//! the budget of the names it tries.
//!
//! - Per user name (default 10 per 15 minutes): at most 960 guesses a day at one account,
//!   whatever the number of addresses; a password outside the ~10^6 most common ones holds
//!   for years. The price: anyone can keep one account locked out by spending its budget
//!   every window (its owner sees a 429 with `Retry-After`, at most 15 minutes at a time);
//!   an operator who prefers availability raises the limit, or sets 0 to switch it off.
//! - Per client address (default 30 per 15 minutes): one address makes at most 30 argon2
//!   hashes of failures per window, and spraying many user names from it goes no faster.
//!   Behind a proxy that is not trusted all users share the proxy's address; the default
//!   leaves room for an office of people mistyping.

use crate::env::{Env, StoreError};
use crate::error::{ErrorCode, OAuthError};
use crate::records::{self, Claim};
use crate::secret::hash;
use crate::settings::RateLimits;

/// The subject of a limit that everyone shares.
pub const EVERYONE: &str = "*";

/// The limits we keep; how many uses each lets through is in [`RateLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `POST /register` per client IP address, per hour.
    RegisterPerIp,
    /// `POST /register` from everyone, per hour.
    RegisterGlobal,
    /// Token-side requests per authenticated client and IP address, per minute.
    TokenPerClient,
    /// Wrong user codes per device-page session, per 10 minutes.
    DeviceFailuresPerSession,
    /// Wrong user codes from everyone, per minute.
    DeviceFailuresGlobal,
    /// Failed logins per user name, per 15 minutes.
    LoginFailuresPerUser,
    /// Failed logins per client IP address, per 15 minutes.
    LoginFailuresPerIp,
}

impl Limit {
    fn name(self) -> &'static str {
        match self {
            Limit::RegisterPerIp => "register-ip",
            Limit::RegisterGlobal => "register",
            Limit::TokenPerClient => "token-client",
            Limit::DeviceFailuresPerSession => "device-session",
            Limit::DeviceFailuresGlobal => "device",
            Limit::LoginFailuresPerUser => "login-user",
            Limit::LoginFailuresPerIp => "login-ip",
        }
    }

    /// The window, seconds.
    fn window(self) -> u64 {
        match self {
            Limit::RegisterPerIp | Limit::RegisterGlobal => 3600,
            Limit::TokenPerClient | Limit::DeviceFailuresGlobal => 60,
            Limit::DeviceFailuresPerSession => 600,
            Limit::LoginFailuresPerUser | Limit::LoginFailuresPerIp => 900,
        }
    }

    /// Uses per window; 0 = no limit.
    fn max(self, limits: &RateLimits) -> u64 {
        match self {
            Limit::RegisterPerIp => limits.register_per_ip,
            Limit::RegisterGlobal => limits.register_global,
            Limit::TokenPerClient => limits.token_per_client,
            Limit::DeviceFailuresPerSession => limits.device_failures_per_session,
            Limit::DeviceFailuresGlobal => limits.device_failures_global,
            Limit::LoginFailuresPerUser => limits.login_failures_per_user,
            Limit::LoginFailuresPerIp => limits.login_failures_per_ip,
        }
    }
}

/// Why a use was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Over the limit until the window ends, `retry_after` seconds from now.
    TooMany {
        retry_after: u64,
    },
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(err: StoreError) -> Refused {
        Refused::Store(err)
    }
}

impl From<Refused> for OAuthError {
    /// `429` with `Retry-After` (RFC 6585 §4), or the store's 503.
    fn from(refused: Refused) -> OAuthError {
        match refused {
            Refused::TooMany { retry_after } => OAuthError::new(
                ErrorCode::TooManyRequests,
                "too many requests; retry after the time in Retry-After",
            )
            .with_header("retry-after", retry_after.to_string()),
            Refused::Store(err) => err.into(),
        }
    }
}

/// A counted use, which [`forgive`] can take back.
#[derive(Debug)]
#[must_use]
pub struct Counted {
    /// The counter this use went to; `None` when the limit is off.
    counter_of: Option<String>,
}

/// Count one use by each `(limit, subject)` in turn; the first limit exceeded refuses.
pub fn enforce(env: &Env, uses: &[(Limit, &str)]) -> Result<Vec<Counted>, Refused> {
    uses.iter()
        .map(|&(limit, subject)| count(env, limit, subject))
        .collect()
}

/// Count one use of `limit` by `subject`.
pub fn count(env: &Env, limit: Limit, subject: &str) -> Result<Counted, Refused> {
    let max = limit.max(&env.settings.rate_limits);
    if max == 0 {
        return Ok(Counted { counter_of: None });
    }
    let now = env.now();
    let window = now / limit.window();
    let window_end = (window + 1) * limit.window();
    let key = format!("limit/{}/{}/{window}", limit.name(), hash(subject));
    let used = records::count(env, &key, Claim::Attempt)?;
    if used == 1 && records::claim(env, &key, Claim::Redeem)? {
        // The window's first use: list the counters for the sweep once the window is over.
        records::put(env, &key, &(), Some(window_end))?;
    }
    if u64::try_from(used).unwrap_or(0) > max {
        return Err(Refused::TooMany {
            retry_after: (window_end - now).max(1),
        });
    }
    Ok(Counted {
        counter_of: Some(key),
    })
}

/// Take back a counted use (a device code or a password that turned out right). Best effort: a store
/// error here leaves one use too many counted until the window ends, which is harmless.
pub fn forgive(env: &Env, counted: Counted) {
    if let Some(key) = counted.counter_of {
        let _ = records::count_by(env, &key, Claim::Attempt, -1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Clock;
    use crate::testing::{Harness, MapConfig};

    fn harness(limit: &str) -> Harness {
        Harness::with_config(MapConfig::from([("rate_limit_register_per_ip", limit)]))
    }

    #[test]
    fn refuses_past_the_limit_until_the_window_ends() {
        let h = harness("3");
        // Start 100 s into an hour window.
        let start = h.clock.now() % 3600;
        h.clock.advance(3600 - start + 100);
        for _ in 0..3 {
            let _ = count(&h.env(), Limit::RegisterPerIp, "192.0.2.1").unwrap();
        }
        let refused = count(&h.env(), Limit::RegisterPerIp, "192.0.2.1").unwrap_err();
        assert_eq!(refused, Refused::TooMany { retry_after: 3500 });
        // Another subject has its own bucket.
        let _ = count(&h.env(), Limit::RegisterPerIp, "192.0.2.2").unwrap();
        h.clock.advance(3500);
        let _ = count(&h.env(), Limit::RegisterPerIp, "192.0.2.1").unwrap();
    }

    #[test]
    fn forgiven_uses_do_not_count() {
        let h = harness("1");
        for _ in 0..5 {
            let counted = count(&h.env(), Limit::RegisterPerIp, "a").unwrap();
            forgive(&h.env(), counted);
        }
        let _ = count(&h.env(), Limit::RegisterPerIp, "a").unwrap();
        assert!(count(&h.env(), Limit::RegisterPerIp, "a").is_err());
    }

    #[test]
    fn zero_switches_a_limit_off_and_writes_nothing() {
        let h = harness("0");
        for _ in 0..50 {
            let _ = count(&h.env(), Limit::RegisterPerIp, "a").unwrap();
        }
        assert!(h.store.keys().is_empty());
    }

    #[test]
    fn the_window_record_is_written_once_and_swept_with_its_counters() {
        let h = harness("100");
        for _ in 0..10 {
            let _ = count(&h.env(), Limit::RegisterPerIp, "a").unwrap();
        }
        let records: Vec<_> = h
            .store
            .snapshot()
            .into_keys()
            .filter(|k| k.starts_with("limit/"))
            .collect();
        assert_eq!(records.len(), 1);
        let sweep_slots = h
            .store
            .keys()
            .into_iter()
            .filter(|k| k.starts_with("sweep/") && !k.ends_with("/n"))
            .count();
        assert_eq!(sweep_slots, 1);
        h.clock.advance(2 * 3600);
        while records::sweep_some(&h.env()).unwrap() > 0 {}
        assert_eq!(h.store.keys(), vec!["sweep/cursor".to_string()]);
    }
}
