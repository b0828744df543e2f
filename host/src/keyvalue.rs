//! `wasi:keyvalue/store`, `atomics` and `batch` at `0.2.0-draft2`, the version Spin 4
//! accepts (wasmtime-wasi-keyvalue implements another pre-release that does not link; see
//! DESIGN.md §5), over [`mcp_auth_kv::Store`] backends chosen by label.
//!
//! The access check lives here in the dispatcher, not in the backends (as in Spin's
//! `factor-key-value`): a component opens only the labels of its `key_value_stores`; another
//! label is `access-denied` when the host has a backend for it and `no-such-store` when it has
//! none. Backend failures become `other(..)` and are counted in the metrics.

use std::collections::HashSet;
use std::sync::Arc;

use mcp_auth_kv::Store;
use wasmtime::component::Resource;

use crate::state::HostState;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:keyvalue/imports@0.2.0-draft2",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
    });
}

pub use generated::wasi::keyvalue::{atomics, batch, store};

use atomics::CasError;
use store::{Error as KvError, KeyResponse};

/// An open bucket: one label's backend.
pub struct Bucket {
    label: Arc<str>,
    store: Arc<dyn Store>,
}

/// A compare-and-swap in progress: the value seen when the handle was made.
pub struct Cas {
    label: Arc<str>,
    store: Arc<dyn Store>,
    key: String,
    current: Option<Vec<u8>>,
}

/// What one component may reach: its allowed labels, resolved to backends at start-up.
#[derive(Clone, Default)]
pub struct KeyValueAccess {
    /// The component's `key_value_stores`, with their backends.
    pub(crate) allowed: Vec<AllowedStore>,
    /// Every label the host has a backend for.
    pub(crate) known: Arc<HashSet<String>>,
}

/// One label a component may open.
#[derive(Clone)]
pub(crate) struct AllowedStore {
    pub(crate) label: Arc<str>,
    pub(crate) store: Arc<dyn Store>,
}

/// Registers the three interfaces on `linker`.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime::component::HasSelf;
    store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    atomics::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    batch::add_to_linker::<HostState, HasSelf<HostState>>(linker, |s| s)?;
    Ok(())
}

impl HostState {
    fn bucket(&self, b: &Resource<Bucket>) -> wasmtime::Result<(Arc<str>, Arc<dyn Store>)> {
        let bucket = self.table.get(b)?;
        Ok((bucket.label.clone(), bucket.store.clone()))
    }

    /// Maps a backend failure to `other(..)`, counting it; the message is the backend's, which
    /// never holds values.
    fn store_error(&self, label: &str, e: mcp_auth_kv::Error) -> KvError {
        self.metrics.store_error(label);
        tracing::warn!(component = %self.component, store = label, error = %e, "key-value backend error");
        KvError::Other(e.to_string())
    }
}

impl store::Host for HostState {
    async fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, KvError>> {
        let found = self
            .kv
            .allowed
            .iter()
            .find(|a| *a.label == *identifier)
            .cloned();
        let Some(AllowedStore { label, store }) = found else {
            let error = if self.kv.known.contains(&identifier) {
                KvError::AccessDenied
            } else {
                KvError::NoSuchStore
            };
            return Ok(Err(error));
        };
        Ok(Ok(self.table.push(Bucket { label, store })?))
    }
}

impl store::HostBucket for HostState {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .get(&key)
            .await
            .map_err(|e| self.store_error(&label, e)))
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .set(&key, &value)
            .await
            .map_err(|e| self.store_error(&label, e)))
    }

    async fn delete(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .delete(&key)
            .await
            .map_err(|e| self.store_error(&label, e)))
    }

    async fn exists(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .exists(&key)
            .await
            .map_err(|e| self.store_error(&label, e)))
    }

    /// Every key in one page: cursors are ignored, as Spin does.
    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<KeyResponse, KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .list_keys()
            .await
            .map(|keys| KeyResponse { keys, cursor: None })
            .map_err(|e| self.store_error(&label, e)))
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .increment(&key, delta)
            .await
            .map_err(|e| self.store_error(&label, e)))
    }

    /// Writes `value` only if the key still holds what `cas.new` saw; otherwise `cas-failed`
    /// with a fresh handle on the latest value, so the guest can retry.
    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), CasError>> {
        let cas = self.table.delete(cas)?;
        match cas
            .store
            .compare_and_swap(&cas.key, cas.current.as_deref(), &value)
            .await
        {
            Ok(true) => Ok(Ok(())),
            Ok(false) => match cas.store.get(&cas.key).await {
                Ok(current) => {
                    let fresh = self.table.push(Cas { current, ..cas })?;
                    Ok(Err(CasError::CasFailed(fresh)))
                }
                Err(e) => Ok(Err(CasError::StoreError(self.store_error(&cas.label, e)))),
            },
            Err(e) => Ok(Err(CasError::StoreError(self.store_error(&cas.label, e)))),
        }
    }
}

/// Each call is one backend round trip ([`Store::get_many`] and friends). `get-many` answers
/// one entry per key asked, in order, `none` for a missing key: the type's plain meaning.
/// (Spin's SQLite store leaves missing keys out; guests match entries by key and work with
/// both.)
impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(match store.get_many(&keys).await {
            Ok(values) => Ok(keys.into_iter().zip(values).collect()),
            Err(e) => Err(self.store_error(&label, e)),
        })
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .set_many(&key_values)
            .await
            .map_err(|e| self.store_error(&label, e)))
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        Ok(store
            .delete_many(&keys)
            .await
            .map_err(|e| self.store_error(&label, e)))
    }
}

impl atomics::HostCas for HostState {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, KvError>> {
        let (label, store) = self.bucket(&bucket)?;
        let current = match store.get(&key).await {
            Ok(v) => v,
            Err(e) => return Ok(Err(self.store_error(&label, e))),
        };
        let cas = Cas {
            label,
            store,
            key,
            current,
        };
        Ok(Ok(self.table.push(cas)?))
    }

    async fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, KvError>> {
        Ok(Ok(self.table.get(&cas)?.current.clone()))
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}
