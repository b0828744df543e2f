//! An in-process store for tests: a map behind a mutex, lost when the process exits.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::{counter, Error, Store};

/// A map in memory. Every operation holds the lock for its whole read-modify-write, which is
/// what makes `increment` and `compare_and_swap` atomic here.
#[derive(Debug, Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Vec<u8>>> {
        // No operation can panic half-way through a change, so a poisoned map is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.entries().get(key).cloned())
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.entries().insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.entries().remove(key);
        Ok(())
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        let entries = self.entries();
        Ok(keys.iter().map(|key| entries.get(key).cloned()).collect())
    }

    async fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> Result<(), Error> {
        let mut entries = self.entries();
        for (key, value) in pairs {
            entries.insert(key.clone(), value.clone());
        }
        Ok(())
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        let mut entries = self.entries();
        for key in keys {
            entries.remove(key);
        }
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        Ok(self.entries().contains_key(key))
    }

    async fn list_keys(&self) -> Result<Vec<String>, Error> {
        Ok(self.entries().keys().cloned().collect())
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        let mut entries = self.entries();
        let current = counter::decode(key, entries.get(key).map(Vec::as_slice))?;
        let new = counter::add(key, current, delta)?;
        entries.insert(key.to_owned(), counter::encode(new).to_vec());
        Ok(new)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error> {
        let mut entries = self.entries();
        if entries.get(key).map(Vec::as_slice) != current {
            return Ok(false);
        }
        entries.insert(key.to_owned(), new.to_vec());
        Ok(true)
    }
}
