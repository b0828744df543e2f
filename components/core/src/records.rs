//! Stored records: JSON values that carry their own expiry, exactly-once claims, and the
//! sweep that deletes expired records.
//!
//! The store interface has no TTL, so every record written with an expiry is also listed in
//! a per-minute *sweep bucket*: `sweep/<minute>/n` counts the bucket's slots and
//! `sweep/<minute>/<i>` names record keys, one per line. A request lists its records when it
//! sends its writes ([`Env::flush`]), all those of one bucket in one slot, written in the same
//! batch as the records: one `increment` per bucket instead of two operations per record (a
//! refresh grant writes five such records). A request that dies before then writes nothing. Requests that write records call
//! [`maybe_sweep`], which hands out a few slots of the oldest expired bucket at a time
//! through `increment`, so several hosts (or Spin instances) sweep in parallel without ever
//! doing the same slot twice, and no request does more than a bounded amount of work. This
//! runs identically under Spin and under our host and needs neither `list-keys` (Spin ignores
//! its cursor) nor a timer.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::env::{Env, StoreError};

/// Width of a sweep bucket, seconds.
const BUCKET_SECONDS: u64 = 60;
/// Slots a sweeping request takes on.
const SWEEP_CHUNK: i64 = 32;
/// One request in this many helps sweep.
const SWEEP_ONE_IN: u8 = 8;

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    /// Expiry, seconds since the epoch; absent = never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    v: T,
}

/// Write `value` under `key`, valid until `expires_at` (seconds since the epoch) if given.
pub fn put<T: Serialize>(
    env: &Env,
    key: &str,
    value: &T,
    expires_at: Option<u64>,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&Envelope {
        exp: expires_at,
        v: value,
    })
    .map_err(|e| StoreError(format!("encoding {key}: {e}")))?;
    env.write(key, bytes);
    if let Some(exp) = expires_at {
        env.index_later(exp / BUCKET_SECONDS, key);
    }
    Ok(())
}

/// Overwrite a record without indexing it again: only for an expiry that does not move
/// later than the one it was [`put`] with (use [`put`] to extend a record's life).
pub fn update<T: Serialize>(
    env: &Env,
    key: &str,
    value: &T,
    expires_at: Option<u64>,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&Envelope {
        exp: expires_at,
        v: value,
    })
    .map_err(|e| StoreError(format!("encoding {key}: {e}")))?;
    env.write(key, bytes);
    Ok(())
}

/// The live record under `key`: `None` when missing, expired, or not decodable as `T`
/// (a record of another shape is as good as absent).
pub fn get<T: DeserializeOwned>(env: &Env, key: &str) -> Result<Option<T>, StoreError> {
    Ok(get_with_expiry(env, key)?.map(|(v, _)| v))
}

/// Like [`get`], with the record's expiry.
pub fn get_with_expiry<T: DeserializeOwned>(
    env: &Env,
    key: &str,
) -> Result<Option<(T, Option<u64>)>, StoreError> {
    let Some(bytes) = env.read(key)? else {
        return Ok(None);
    };
    let Ok(envelope) = serde_json::from_slice::<Envelope<T>>(&bytes) else {
        return Ok(None);
    };
    if envelope.exp.is_some_and(|exp| exp <= env.now()) {
        return Ok(None);
    }
    Ok(Some((envelope.v, envelope.exp)))
}

/// Delete the record and its claim counters.
pub fn delete(env: &Env, key: &str) -> Result<(), StoreError> {
    env.remove(key);
    delete_claims(env, key);
    Ok(())
}

/// What a claim on a record is for. Each purpose has its own counter, `<key>#<purpose>`,
/// deleted with the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Redeeming a code, a refresh token, a device grant, a pending authorization.
    Redeem,
    /// Deciding (approve/deny) a device grant or a consent.
    Decide,
    /// Counting attempts (a login form's password tries); see [`count`].
    Attempt,
    /// Revoking a token family: any count above 0 means revoked.
    Revoke,
}

impl Claim {
    const ALL: [Claim; 4] = [Claim::Redeem, Claim::Decide, Claim::Attempt, Claim::Revoke];

    fn counter_key(self, key: &str) -> String {
        match self {
            Claim::Redeem => format!("{key}#claim"),
            Claim::Decide => format!("{key}#decide"),
            Claim::Attempt => format!("{key}#attempts"),
            Claim::Revoke => format!("{key}#revoke"),
        }
    }
}

/// Claim `key` for `purpose` exactly once: `true` for the first caller ever, `false` for
/// every later one, across hosts. Built on `increment` of a dedicated counter (never
/// compare-and-swap, which Spin's backends do not implement usably).
pub fn claim(env: &Env, key: &str, purpose: Claim) -> Result<bool, StoreError> {
    Ok(count(env, key, purpose)? == 1)
}

/// Count one more use of `key` for `purpose` and return the total so far (1 for the first),
/// atomically across hosts.
pub fn count(env: &Env, key: &str, purpose: Claim) -> Result<i64, StoreError> {
    count_by(env, key, purpose, 1)
}

/// Add `delta` (which may be negative, to take a use back) to the count of `key` for
/// `purpose` and return the new total.
pub fn count_by(env: &Env, key: &str, purpose: Claim, delta: i64) -> Result<i64, StoreError> {
    env.increment(&purpose.counter_key(key), delta)
}

/// How many times `key` has been claimed for `purpose` (0 = never), without claiming it.
pub fn claims(env: &Env, key: &str, purpose: Claim) -> Result<i64, StoreError> {
    env.increment(&purpose.counter_key(key), 0)
}

/// Take the next slot (1, 2, …) of a list kept beside the record `key`, such as the members
/// of a token family; the caller writes slot `i`'s entry under a key of its own. Like the sweep
/// index, concurrent writers never share a slot. The counter is deleted with the record.
pub fn next_slot(env: &Env, key: &str) -> Result<i64, StoreError> {
    Ok(*take_slots(env, key, 1)?.start())
}

/// Take the next `n` slots at once (one `increment`): as many as `n` calls of [`next_slot`].
///
/// The request's pending writes may go out after it: a slot is only ever filled by a write
/// that follows, and a reader that finds a slot taken but empty is in the race that
/// `tokens::issue` already settles (it reads the revocation mark after filling its slots).
pub fn take_slots(
    env: &Env,
    key: &str,
    n: i64,
) -> Result<std::ops::RangeInclusive<i64>, StoreError> {
    let last = env.increment_ahead(&slots_key(key), n)?;
    Ok(last - n + 1..=last)
}

/// How many slots of `key`'s list have been taken.
pub fn slot_count(env: &Env, key: &str) -> Result<i64, StoreError> {
    env.increment(&slots_key(key), 0)
}

fn slots_key(key: &str) -> String {
    format!("{key}#slots")
}

fn delete_claims(env: &Env, key: &str) {
    for purpose in Claim::ALL {
        env.remove(&purpose.counter_key(key));
    }
    env.remove(&slots_key(key));
}

/// List the records `env` wrote with an expiry in their sweep buckets, one slot per bucket;
/// the slots join the writes [`Env::flush`] is about to send.
pub(crate) fn index_for_sweep(env: &Env) -> Result<(), StoreError> {
    let mut by_bucket = std::collections::BTreeMap::<u64, String>::new();
    for (bucket, key) in env.take_unindexed() {
        let keys = by_bucket.entry(bucket).or_default();
        if !keys.is_empty() {
            keys.push('\n');
        }
        keys.push_str(&key);
    }
    for (bucket, keys) in by_bucket {
        // Straight to the store: this runs inside the flush, which sends the slot's list.
        let slot = env.store.increment(&format!("sweep/{bucket}/n"), 1)?;
        env.write(&format!("sweep/{bucket}/{slot}"), keys.into_bytes());
    }
    Ok(())
}

/// Help sweep expired records, now and then. Errors are ignored: sweeping is best effort
/// and must never fail the request that happened to do it.
pub fn maybe_sweep(env: &Env) {
    if env.random_bytes::<1>()[0].is_multiple_of(SWEEP_ONE_IN) {
        let _ = sweep_some(env);
    }
}

/// Delete up to [`SWEEP_CHUNK`] expired records from the oldest unswept bucket. Returns
/// how many slots this call handled.
pub fn sweep_some(env: &Env) -> Result<usize, StoreError> {
    let current = env.now() / BUCKET_SECONDS;
    let cursor_key = "sweep/cursor";
    let mut bucket = match get::<u64>(env, cursor_key)? {
        Some(b) => b,
        None => {
            // First sweep ever: nothing older than an hour before now is assumed unindexed.
            let start = current.saturating_sub(60);
            update(env, cursor_key, &start, None)?;
            start
        }
    };
    // A bucket is swept once the whole minute it covers lies in the past.
    while bucket < current {
        let n_key = format!("sweep/{bucket}/n");
        let taken_key = format!("sweep/{bucket}/taken");
        let slots = env.increment(&n_key, 0)?;
        if slots > 0 {
            let end = env.increment(&taken_key, SWEEP_CHUNK)?;
            let start = end - SWEEP_CHUNK + 1;
            if start <= slots {
                let last = end.min(slots);
                // Three batches for the chunk: its slots, the records they list, the deletes.
                let slot_keys: Vec<String> = (start..=last)
                    .map(|i| format!("sweep/{bucket}/{i}"))
                    .collect();
                env.prefetch(&slot_keys);
                let mut listed = Vec::new();
                for slot_key in &slot_keys {
                    if let Some(keys) = env.read(slot_key)? {
                        listed.extend(String::from_utf8_lossy(&keys).lines().map(str::to_owned));
                    }
                }
                env.prefetch(&listed);
                for slot_key in &slot_keys {
                    env.remove(slot_key);
                }
                for key in &listed {
                    sweep_record(env, key)?;
                }
                return Ok((last - start + 1) as usize);
            }
        }
        // This bucket is done: drop its counters and move on.
        env.remove(&n_key);
        env.remove(&taken_key);
        bucket += 1;
        update(env, cursor_key, &bucket, None)?;
    }
    Ok(0)
}

/// Delete `key` if it has expired (a record rewritten with a later expiry stays).
fn sweep_record(env: &Env, key: &str) -> Result<(), StoreError> {
    let Some(bytes) = env.read(key)? else {
        delete_claims(env, key);
        return Ok(());
    };
    #[derive(Deserialize)]
    struct ExpiryOnly {
        exp: Option<u64>,
    }
    match serde_json::from_slice::<ExpiryOnly>(&bytes) {
        Ok(ExpiryOnly { exp: Some(exp) }) if exp > env.now() => Ok(()),
        _ => delete(env, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    #[test]
    fn expired_records_are_refused_on_read() {
        let h = Harness::new();
        let env = h.env();
        put(&env, "code/x", &"v", Some(env.now() + 10)).unwrap();
        assert_eq!(get::<String>(&env, "code/x").unwrap().as_deref(), Some("v"));
        h.clock.advance(10);
        let env = h.env();
        assert_eq!(get::<String>(&env, "code/x").unwrap(), None);
    }

    #[test]
    fn claim_is_exactly_once() {
        let h = Harness::new();
        let env = h.env();
        assert_eq!(claims(&env, "k", Claim::Redeem).unwrap(), 0);
        assert!(claim(&env, "k", Claim::Redeem).unwrap());
        assert!(!claim(&env, "k", Claim::Redeem).unwrap());
        assert_eq!(claims(&env, "k", Claim::Redeem).unwrap(), 2);
        assert!(claim(&env, "k", Claim::Decide).unwrap());
    }

    #[test]
    fn a_request_indexes_its_records_once_per_bucket_when_it_ends() {
        let h = Harness::new();
        let env = h.env();
        let now = env.now();
        put(&env, "a", &1, Some(now + 5)).unwrap();
        put(&env, "b", &2, Some(now + 5)).unwrap();
        put(&env, "c", &3, Some(now + 10 * BUCKET_SECONDS)).unwrap();
        put(&env, "d", &4, None).unwrap();
        let slots = |h: &Harness| -> Vec<String> {
            let mut slots: Vec<String> = h
                .store
                .snapshot()
                .into_iter()
                .filter(|(k, _)| k.starts_with("sweep/") && !k.ends_with("/n"))
                .map(|(_, v)| String::from_utf8(v).unwrap())
                .collect();
            slots.sort();
            slots
        };
        assert!(slots(&h).is_empty(), "indexed before the request ended");
        drop(env);
        assert_eq!(slots(&h), ["a\nb", "c"]);
        h.clock.advance(11 * BUCKET_SECONDS);
        while sweep_some(&h.env()).unwrap() > 0 {}
        assert_eq!(h.store.keys(), ["d", "sweep/cursor"]);
    }

    #[test]
    fn sweep_deletes_expired_records_and_its_own_index() {
        let h = Harness::new();
        let env = h.env();
        for i in 0..100 {
            put(&env, &format!("code/{i}"), &i, Some(env.now() + 5)).unwrap();
            claim(&env, &format!("code/{i}"), Claim::Redeem).unwrap();
        }
        put(&env, "client/keep", &"forever", None).unwrap();
        h.clock.advance(3 * BUCKET_SECONDS);
        drop(env); // the request ends: its records join the sweep index
        let env = h.env();
        while sweep_some(&env).unwrap() > 0 {}
        drop(env); // the request ends: its deletes go out
                   // The cursor is left behind; everything else is gone but the record without expiry.
        let left: Vec<String> = h.store.keys();
        assert_eq!(
            left,
            vec!["client/keep".to_string(), "sweep/cursor".to_string()]
        );
    }

    #[test]
    fn sweep_keeps_records_whose_expiry_was_extended() {
        let h = Harness::new();
        let env = h.env();
        put(&env, "r", &1, Some(env.now() + 5)).unwrap();
        put(&env, "r", &2, Some(env.now() + 10_000)).unwrap();
        h.clock.advance(3 * BUCKET_SECONDS);
        drop(env); // the request ends: its records join the sweep index
        let env = h.env();
        while sweep_some(&env).unwrap() > 0 {}
        assert_eq!(get::<i32>(&env, "r").unwrap(), Some(2));
    }
}
