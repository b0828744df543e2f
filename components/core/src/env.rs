//! The world as the core sees it: five small capabilities, supplied by the caller.
//!
//! The core never performs I/O itself. A WASI component implements these traits over
//! `wasi:keyvalue`, `wasi:http/outgoing-handler`, `wasi:config`, `wasi:clocks` and
//! `wasi:random`; native tests implement them in memory (see [`crate::testing`]).

use std::cell::RefCell;

use crate::audit::AuditEvent;
use crate::http::{OutgoingRequest, UpstreamResponse};
use crate::settings::Settings;

/// A key-value store with one atomic primitive.
///
/// Keys are UTF-8 strings; values are opaque bytes. The interface mirrors
/// `wasi:keyvalue/store` and `wasi:keyvalue/atomics.increment`.
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
pub struct Env<'a> {
    pub store: &'a dyn Store,
    pub upstream: &'a dyn Upstream,
    pub clock: &'a dyn Clock,
    pub rng: &'a dyn Rng,
    pub settings: Settings,
    audit: RefCell<Vec<AuditEvent>>,
    /// Records written with an expiry, as (sweep bucket, key), not yet in the sweep index.
    unindexed: RefCell<Vec<(u64, String)>>,
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

    /// Note that `key` must be swept from bucket `bucket` (see [`crate::records`]).
    pub(crate) fn index_later(&self, bucket: u64, key: &str) {
        self.unindexed.borrow_mut().push((bucket, key.to_owned()));
    }

    /// The records noted by [`Env::index_later`] since the last call.
    pub(crate) fn take_unindexed(&self) -> Vec<(u64, String)> {
        std::mem::take(&mut self.unindexed.borrow_mut())
    }
}

/// The request is over: its records join the sweep index (see [`crate::records`]). A store
/// that fails now leaves them unswept, never wrong: an expired record reads as absent.
impl Drop for Env<'_> {
    fn drop(&mut self) {
        let _ = crate::records::index_for_sweep(self);
    }
}
