//! The factory that opens the key-value backends, one per store label.
//!
//! TEMPORARY SHIM: the real backends (embedded SQLite in Spin's layout, Redis, memory) and the
//! runtime-config parser live in `mcp-auth-kv`, which is being written alongside this crate. It
//! will export `mcp_auth_kv::open_from_runtime_config` with exactly the signature below; once it
//! does, [`open`] calls it and this module shrinks to that one call. Until then every label is
//! served from memory (nothing survives a restart) and Redis is refused, loudly.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mcp_auth_kv::{Error, Store};

/// The backends by label, from Spin's runtime-config format
/// (`[key_value_store.<label>] type = "spin" | "redis"`); `default` is always present.
pub fn open(
    runtime_config: Option<&Path>,
    data_dir: &Path,
) -> Result<HashMap<String, Arc<dyn Store>>, Error> {
    open_from_runtime_config(runtime_config, data_dir)
}

/// Same contract as the coming `mcp_auth_kv::open_from_runtime_config`.
fn open_from_runtime_config(
    path: Option<&Path>,
    _data_dir: &Path,
) -> Result<HashMap<String, Arc<dyn Store>>, Error> {
    let mut stores: HashMap<String, Arc<dyn Store>> = HashMap::new();
    if let Some(path) = path {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        let config: toml::Table =
            toml::from_str(&text).map_err(|e| Error(format!("{}: {e}", path.display())))?;
        let tables = config
            .get("key_value_store")
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default();
        for (label, table) in tables {
            let kind = table
                .get("type")
                .and_then(toml::Value::as_str)
                .unwrap_or("");
            match kind {
                "spin" | "memory" => {
                    stores.insert(label, Arc::new(MemoryStore::default()));
                }
                "redis" => {
                    return Err(Error(format!(
                        "store `{label}`: the Redis backend is not in this build yet"
                    )))
                }
                other => {
                    return Err(Error(format!(
                        "store `{label}`: unknown type {other:?} (expected spin or redis)"
                    )))
                }
            }
        }
    }
    if !stores.contains_key("default") {
        stores.insert("default".into(), Arc::new(MemoryStore::default()));
    }
    tracing::warn!("key-value stores are in memory in this build: nothing survives a restart");
    Ok(stores)
}

/// A store in process memory; one lock makes every operation atomic.
#[derive(Default)]
struct MemoryStore {
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<u8>>> {
        // Every operation leaves the map consistent, so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.map().get(key).cloned())
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.map().insert(key.to_owned(), value.to_vec());
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.map().remove(key);
        Ok(())
    }
    async fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.map().contains_key(key))
    }
    async fn list_keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.map().keys().cloned().collect())
    }
    /// Counters are decimal text, as in Redis.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let mut map = self.map();
        let current = match map.get(key) {
            None => 0,
            Some(v) => std::str::from_utf8(v)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .ok_or_else(|| Error(format!("value under {key:?} is not a counter")))?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| Error("counter overflow".into()))?;
        map.insert(key.to_owned(), next.to_string().into_bytes());
        Ok(next)
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error> {
        let mut map = self.map();
        if map.get(key).map(Vec::as_slice) != current {
            return Ok(false);
        }
        map.insert(key.to_owned(), new.to_vec());
        Ok(true)
    }
}
