//! [`Store`] over `wasi:keyvalue/store`, `atomics` and `batch` (`0.2.0-draft2`, the version
//! Spin 4 accepts).
//!
//! One bucket, the manifest's `default` store, opened at most once per request and only when
//! the core first touches the store. Keys are used exactly as the core names them (no
//! prefix), so Spin and our host see the same keys in a shared Redis.
//!
//! Counters go through `atomics.increment` only and are never read with `get`: Spin's SQLite
//! store keeps them as 8-byte little-endian integers and Redis as decimal text, so the core
//! reads one with `increment(key, 0)`. Compare-and-swap is not used at all (unusable under
//! Spin 4.0.2: an upsert on SQLite, always `cas-failed` on Redis).

use std::cell::OnceCell;

use mcp_auth_core::{Store, StoreError};

use crate::bindings::wasi::keyvalue::store::{self, Bucket};
use crate::bindings::wasi::keyvalue::{atomics, batch};

/// The store label every component opens (`key_value_stores = ["default"]` in spin.toml).
pub const BUCKET: &str = "default";

/// The `default` bucket, opened on first use.
#[derive(Default)]
pub struct KeyValue {
    bucket: OnceCell<Result<Bucket, StoreError>>,
}

impl KeyValue {
    fn bucket(&self) -> Result<&Bucket, StoreError> {
        self.bucket
            .get_or_init(|| store::open(BUCKET).map_err(|e| store_error("open", BUCKET, e)))
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl Store for KeyValue {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.bucket()?
            .get(key)
            .map_err(|e| store_error("get", key, e))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.bucket()?
            .set(key, value)
            .map_err(|e| store_error("set", key, e))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.bucket()?
            .delete(key)
            .map_err(|e| store_error("delete", key, e))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        atomics::increment(self.bucket()?, key, delta).map_err(|e| store_error("increment", key, e))
    }

    /// `get-many`, its entries matched by key: Spin's SQLite store leaves missing keys out
    /// (and need not keep the order), our host answers `none` for them.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: std::collections::HashMap<String, Option<Vec<u8>>> =
            batch::get_many(self.bucket()?, keys)
                .map_err(|e| store_error("get-many", &keys[0], e))?
                .into_iter()
                .collect();
        Ok(keys
            .iter()
            .map(|key| found.get_mut(key).and_then(Option::take))
            .collect())
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        match entries.first() {
            None => Ok(()),
            Some((first, _)) => batch::set_many(self.bucket()?, entries)
                .map_err(|e| store_error("set-many", first, e)),
        }
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        match keys.first() {
            None => Ok(()),
            Some(first) => batch::delete_many(self.bucket()?, keys)
                .map_err(|e| store_error("delete-many", first, e)),
        }
    }
}

fn store_error(op: &str, key: &str, err: store::Error) -> StoreError {
    let why = match err {
        store::Error::NoSuchStore => "no such store".to_string(),
        store::Error::AccessDenied => "access denied".to_string(),
        store::Error::Other(message) => message,
    };
    StoreError(format!("{op} `{key}`: {why}"))
}
