//! Key-value backends for the mcp-auth host, behind one narrow async trait.
//!
//! The host implements `wasi:keyvalue/store` and `wasi:keyvalue/atomics` (0.2.0-draft2) over
//! [`Store`]. Each backend passes the same conformance suite.

use async_trait::async_trait;

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
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error>;
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error>;
    async fn delete(&self, key: &str) -> Result<(), Error>;
    async fn exists(&self, key: &str) -> Result<bool, Error>;
    /// Every key (Spin ignores list cursors too).
    async fn list_keys(&self) -> Result<Vec<String>, Error>;
    /// Atomically add `delta` to the counter under `key` (missing = 0); the new value.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error>;
    /// Atomically replace the value under `key` with `new` if it is still `current`
    /// (`None` = the key is absent). `Ok(false)` when it changed in between.
    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error>;
}
