//! Nothing is acknowledged before the writes it may rest on are durable: the host flushes the
//! component's stores (`Store::sync`) before it sends a response.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_auth_kv::{Error, Store};

use crate::support::{single_component_manifest, MapStore, TestHost};

/// A store that applies writes but cannot make them durable (a disk that fails its fsync).
struct Unflushable(MapStore);

#[async_trait]
impl Store for Unflushable {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.0.set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.0.delete(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool, Error> {
        self.0.exists(key).await
    }
    async fn list_keys(&self) -> Result<Vec<String>, Error> {
        self.0.list_keys().await
    }
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.0.increment(key, delta).await
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error> {
        self.0.compare_and_swap(key, current, new).await
    }
    async fn sync(&self) -> Result<(), Error> {
        Err(Error("fsync failed".into()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_waits_for_its_writes_to_be_durable() {
    let host = TestHost::start(&single_component_manifest(""), None, |o| {
        if let Some(stores) = o.stores.as_mut() {
            stores.insert("default".into(), Arc::new(Unflushable(MapStore::new())));
        }
    })
    .await;
    // The guest wrote and answered 200, but the write cannot be made durable: the client
    // must not be told it succeeded.
    let (status, body) = host.get("/kv/set?key=k&value=v").await;
    assert_eq!((status, body.as_str()), (503, "Service Unavailable"));
    let metrics = host.server.metrics();
    assert!(
        metrics.contains("mcp_auth_store_errors_total{store=\"default\"} 1"),
        "{metrics}"
    );
    host.stop().await;
}
