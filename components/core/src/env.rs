//! The world as the core sees it: five small capabilities, supplied by the caller.
//!
//! The core never performs I/O itself. A WASI component implements these traits over
//! `wasi:keyvalue`, `wasi:http/outgoing-handler`, `wasi:config`, `wasi:clocks` and
//! `wasi:random`; native tests implement them in memory (see [`crate::testing`]).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::audit::AuditEvent;
use crate::http::{OutgoingRequest, UpstreamResponse};
use crate::settings::Settings;

/// A key-value store with one atomic primitive.
///
/// Keys are UTF-8 strings; values are opaque bytes. The interface mirrors
/// `wasi:keyvalue/store`, `wasi:keyvalue/atomics.increment` and `wasi:keyvalue/batch`. Each
/// call is one round trip to the store; the batch methods exist to make several keys one
/// round trip, and default to a call per key for stores that have no batches.
pub trait Store {
    /// The value under `key`, or `None`.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Write `value` under `key`, replacing what was there.
    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Remove `key`; removing a missing key is not an error.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Atomically add `delta` to the counter under `key` (a missing key counts as 0) and
    /// return the new value.
    ///
    /// Counter keys are only ever touched through `increment` and `delete`: Spin's SQLite
    /// store panics when asked to increment a key written with `set`, and backends encode
    /// counters differently (8-byte little-endian vs decimal text), so the core never reads a
    /// counter with `get`. `increment(key, 0)` reads one.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// The values under `keys`, one per key in the order asked (`None` when absent).
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|key| self.get(key)).collect()
    }
    /// Write every `(key, value)`. Not atomic: a failure may leave some written.
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        entries
            .iter()
            .try_for_each(|(key, value)| self.set(key, value))
    }
    /// Remove every key of `keys`. Not atomic: a failure may leave some removed.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        keys.iter().try_for_each(|key| self.delete(key))
    }
}

/// The store could not be reached or answered nonsense. Rendered as a 503, never a 500.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "store error: {}", self.0)
    }
}

/// One HTTP round trip to another server: the upstream identity provider, or the host of a
/// Client ID Metadata Document. Implementations follow no redirects and enforce their own
/// time and size limits.
pub trait Upstream {
    fn send(&self, request: &OutgoingRequest) -> Result<UpstreamResponse, UpstreamError>;
}

/// The round trip failed before a response arrived (refused, timed out, not allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError(pub String);

impl std::fmt::Display for UpstreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upstream error: {}", self.0)
    }
}

/// Wall-clock time in whole seconds since the Unix epoch.
pub trait Clock {
    fn now(&self) -> u64;
}

/// A cryptographically secure random source.
pub trait Rng {
    fn fill(&self, buf: &mut [u8]);
}

/// Named configuration values (Spin variables / `wasi:config/store`).
pub trait Config {
    fn get(&self, name: &str) -> Option<String>;
}

/// Everything a request handler may use. Built once per request by the caller.
///
/// Handlers reach the store through [`crate::records`], which goes through the request's
/// [`Env::read`], [`Env::write`], [`Env::remove`] and [`Env::increment`]: writes wait in the
/// request until its next read or increment that misses, or its end, and then go out in one
/// batch. Every operation still reaches the store in the request's order relative to the
/// others that other requests can observe (a read or an increment never overtakes an earlier
/// write), so the protocols built on that order (a family member listed before it is written,
/// the revocation mark read after) hold; only writes with no read between them are merged.
pub struct Env<'a> {
    /// The store itself; use it directly only for a probe that must reach it (`/health`).
    pub store: &'a dyn Store,
    pub upstream: &'a dyn Upstream,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Rng,
    pub settings: Settings,
    audit: RefCell<Vec<AuditEvent>>,
    /// Records written with an expiry, as (sweep bucket, key), not yet in the sweep index.
    unindexed: RefCell<Vec<(u64, String)>>,
    /// Writes not yet sent: `Some` to set, `None` to delete; the last one per key counts.
    pending: RefCell<BTreeMap<String, Option<Vec<u8>>>>,
    /// Values read ahead by [`Env::prefetch`], each served to one [`Env::read`] only.
    prefetched: RefCell<HashMap<String, Option<Vec<u8>>>>,
    /// The failure of a flush whose writes may not all have been applied. It stays: every
    /// later flush (the one before the response included) fails with it, so a request whose
    /// writes were lost can never be answered as a success, even when a caller ignored the
    /// first error (a best-effort sweep, say).
    lost_writes: RefCell<Option<StoreError>>,
}

impl<'a> Env<'a> {
    pub fn new(
        store: &'a dyn Store,
        upstream: &'a dyn Upstream,
        clock: &'a dyn Clock,
        rng: &'a dyn Rng,
        settings: Settings,
    ) -> Self {
        Env {
            store,
            upstream,
            clock,
            rng,
            settings,
            audit: RefCell::new(Vec::new()),
            unindexed: RefCell::new(Vec::new()),
            pending: RefCell::new(BTreeMap::new()),
            prefetched: RefCell::new(HashMap::new()),
            lost_writes: RefCell::new(None),
        }
    }

    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// `n` random bytes.
    pub fn random_bytes<const N: usize>(&self) -> [u8; N] {
        let mut buf = [0u8; N];
        self.rng.fill(&mut buf);
        buf
    }

    /// Record an audit event; the caller writes them out (one JSON line each) after the
    /// request with [`Env::take_audit`].
    pub fn audit(&self, event: AuditEvent) {
        self.audit.borrow_mut().push(event);
    }

    /// The audit events recorded so far, oldest first.
    pub fn take_audit(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut self.audit.borrow_mut())
    }

    /// Read `keys` in one round trip, for the [`Env::read`]s that follow. Only for keys whose
    /// read may come this early: each value is served once, as it was now, so a key the flow
    /// reads again later (to see another request's change) is read from the store then. Best
    /// effort: after a failure the reads simply go to the store.
    pub(crate) fn prefetch(&self, keys: &[String]) {
        let wanted: Vec<String> = {
            let (pending, prefetched) = (self.pending.borrow(), self.prefetched.borrow());
            keys.iter()
                .filter(|k| !pending.contains_key(*k) && !prefetched.contains_key(*k))
                .cloned()
                .collect()
        };
        if wanted.is_empty() || self.flush().is_err() {
            return;
        }
        if let Ok(values) = self.store.get_many(&wanted) {
            self.prefetched
                .borrow_mut()
                .extend(wanted.into_iter().zip(values));
        }
    }

    /// The value under `key` as this request sees it: its own pending write, else a
    /// prefetched value, else (after sending the pending writes) the store's.
    pub(crate) fn read(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(pending) = self.pending.borrow().get(key) {
            return Ok(pending.clone());
        }
        if let Some(value) = self.prefetched.borrow_mut().remove(key) {
            return Ok(value);
        }
        self.flush()?;
        self.store.get(key)
    }

    /// Set `key` to `value` with the request's next batch.
    pub(crate) fn write(&self, key: &str, value: Vec<u8>) {
        self.prefetched.borrow_mut().remove(key);
        self.pending
            .borrow_mut()
            .insert(key.to_owned(), Some(value));
    }

    /// Remove `key` with the request's next batch.
    pub(crate) fn remove(&self, key: &str) {
        self.prefetched.borrow_mut().remove(key);
        self.pending.borrow_mut().insert(key.to_owned(), None);
    }

    /// `Store::increment`, after sending the pending writes.
    pub(crate) fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.flush()?;
        self.store.increment(key, delta)
    }

    /// `Store::increment` with the pending writes left pending: only for a counter whose
    /// order relative to them does not matter (a slot taken before the writes that fill it).
    pub(crate) fn increment_ahead(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.store.increment(key, delta)
    }

    /// Send the pending writes: the records written with an expiry join the sweep index (one
    /// `increment` per sweep bucket), then every set in one `set-many` and every delete in one
    /// `delete-many`. The handler calls it before its response goes out ([`crate::handle`]),
    /// so nothing a client is told about is left unwritten; a failure is the store's 503.
    pub fn flush(&self) -> Result<(), StoreError> {
        if let Some(err) = &*self.lost_writes.borrow() {
            return Err(err.clone());
        }
        let sent = self.send_pending();
        if let Err(err) = &sent {
            *self.lost_writes.borrow_mut() = Some(err.clone());
        }
        sent
    }

    fn send_pending(&self) -> Result<(), StoreError> {
        crate::records::index_for_sweep(self)?;
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        let (mut sets, mut deletes) = (Vec::new(), Vec::new());
        for (key, value) in pending {
            match value {
                Some(value) => sets.push((key, value)),
                None => deletes.push(key),
            }
        }
        if !sets.is_empty() {
            self.store.set_many(&sets)?;
        }
        if !deletes.is_empty() {
            self.store.delete_many(&deletes)?;
        }
        Ok(())
    }

    /// Note that `key` must be swept from bucket `bucket` (see [`crate::records`]).
    pub(crate) fn index_later(&self, bucket: u64, key: &str) {
        self.unindexed.borrow_mut().push((bucket, key.to_owned()));
    }

    /// The records noted by [`Env::index_later`] since the last call.
    pub(crate) fn take_unindexed(&self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.unindexed.borrow_mut())
    }
}

/// The request is over: what it still holds goes out (normally [`crate::handle`] has sent it
/// already; this covers callers that use the core's functions directly).
impl Drop for Env<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::testing::{Harness, MemoryStore};

    /// The memory store, except that its first `set-many` fails (a store going down).
    struct FailsOnce {
        inner: MemoryStore,
        failed: Cell<bool>,
    }

    impl Store for FailsOnce {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
            self.inner.set(key, value)
        }
        fn delete(&self, key: &str) -> Result<(), StoreError> {
            self.inner.delete(key)
        }
        fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
            self.inner.increment(key, delta)
        }
        fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
            if !self.failed.replace(true) {
                return Err(StoreError("connection refused".into()));
            }
            self.inner.set_many(entries)
        }
    }

    #[test]
    fn writes_lost_by_a_failed_flush_fail_every_later_flush() {
        let h = Harness::new();
        let store = FailsOnce {
            inner: MemoryStore::default(),
            failed: Cell::new(false),
        };
        let env = Env::new(
            &store,
            &h.upstream,
            &h.clock,
            &h.rng,
            h.env().settings.clone(),
        );
        env.write("client/a", b"registered".to_vec());
        // A caller that ignores this error (a best-effort step) ...
        assert!(env.increment("counter", 1).is_err());
        // ... must not let the request be answered as if its write had been made.
        assert!(env.flush().is_err());
        assert!(env.flush().is_err());
        assert_eq!(store.inner.get("client/a").unwrap(), None);
    }
}
