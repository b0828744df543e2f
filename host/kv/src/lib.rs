//! Key-value backends for the mcp-auth host, behind one narrow async trait.
//!
//! The host implements `wasi:keyvalue/store`, `atomics` and `batch` (0.2.0-draft2) over
//! [`Store`]. Each backend passes the same conformance suite (`tests/all/conformance.rs`):
//!
//! - [`embedded`]: the default, a SQLite file in Spin's layout, so a data directory moves between
//!   `spin up` and `mcp-auth serve`;
//! - [`redis`]: a Redis server shared by several hosts (and by Spin), keys unprefixed as Spin
//!   writes them;
//! - [`memory`]: a map in the process, for tests.
//!
//! Which label uses which backend comes from Spin's runtime-config file
//! ([`open_from_runtime_config`]).

#![deny(missing_docs)]

use async_trait::async_trait;

mod counter;
pub mod embedded;
pub mod memory;
pub mod redis;
mod runtime_config;

pub use runtime_config::{open_from_runtime_config, DEFAULT_LABEL, DEFAULT_SQLITE_FILE};

/// A backend failure (I/O, connection lost, corrupt data). The host maps it to
/// `wasi:keyvalue/store.error::other` and counts it in its metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// One key-value store (one label of `key_value_stores` in spin.toml).
///
/// Keys are UTF-8 (`wasi:keyvalue` keys are `string`); values are arbitrary bytes.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value under `key`, `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    /// Store `value` under `key`, replacing any previous value. Returns once the write is
    /// applied: every later operation sees it and it survives the host process being killed;
    /// [`Store::sync`] makes it survive a power loss too.
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error>;
    /// Remove `key`; removing an absent key is not an error (as in `wasi:keyvalue/store.delete`).
    async fn delete(&self, key: &str) -> Result<(), Error>;
    /// Whether `key` holds a value.
    async fn exists(&self, key: &str) -> Result<bool, Error>;
    /// Every key (Spin ignores list cursors too).
    async fn list_keys(&self) -> Result<Vec<String>, Error>;
    /// The values under `keys`, one per key in the order asked, `None` for an absent key.
    ///
    /// One round trip to the backend for the whole list, read at one point in time. The
    /// default asks key by key, for a backend with nothing better.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
    /// Store every `(key, value)`, as [`Store::set`] does each; a key given twice ends with its
    /// last value. One round trip, all or nothing (the default, key by key, is neither).
    async fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        for (key, value) in entries {
            self.set(key, value).await?;
        }
        Ok(())
    }
    /// Remove every key of `keys` (absent ones are skipped). One round trip, all or nothing
    /// (the default, key by key, is neither).
    async fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }
    /// Atomically add `delta` to the counter under `key` (missing = 0); the new value.
    ///
    /// A key holding something other than a counter, or a result outside `i64`, is an
    /// [`Error`]. The counter's byte encoding is the backend's (Spin's): 8-byte little-endian
    /// in SQLite and memory, decimal text in Redis; callers must not read it with `get`.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error>;
    /// Atomically replace the value under `key` with `new` if it is still `current`
    /// (`None` = the key is absent). `Ok(false)` when it changed in between.
    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error>;
    /// Make every write applied so far durable as far as the backend goes (on disk for the
    /// embedded store, through power loss). The host calls it before it sends a response, so
    /// nothing a client was told is ever lost, while the writes of one request and of
    /// concurrent ones share one flush. Backends whose writes are as durable as they get once
    /// applied (Redis, by its own persistence settings; memory) need not override it.
    async fn sync(&self) -> Result<(), Error> {
        Ok(())
    }
}
