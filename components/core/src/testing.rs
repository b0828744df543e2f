//! Test doubles for the capabilities in [`crate::env`]: an in-memory store that is as strict
//! as Spin's backends, a settable clock, a deterministic RNG, a map of variables, and an
//! upstream that answers with a closure. Used by this crate's tests and by benchmarks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::env::{Clock, Config, Env, Rng, Store, StoreError, Upstream, UpstreamError};
use crate::http::{OutgoingRequest, Request, Response, UpstreamResponse};
use crate::settings::Settings;
use crate::Endpoint;

/// A thread-safe in-memory store. Like Spin's SQLite store it keeps counters and values apart
/// and refuses to `increment` a key written with `set` (Spin panics there) or to `set` a
/// counter, so tests catch the mistake.
///
/// It also counts its round trips (every call: `get`, `set`, `delete`, `increment` and each
/// batch count one), so tests can hold a flow to its budget.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<MemoryInner>,
    round_trips: AtomicU64,
}

#[derive(Default)]
struct MemoryInner {
    values: BTreeMap<String, Vec<u8>>,
    counters: BTreeMap<String, i64>,
}

impl MemoryStore {
    /// Every key, values and counters, sorted.
    pub fn keys(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        let mut keys: Vec<String> = inner
            .values
            .keys()
            .chain(inner.counters.keys())
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// Round trips made so far (see [`MemoryStore`]).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::SeqCst)
    }

    fn trip(&self) {
        self.round_trips.fetch_add(1, Ordering::SeqCst);
    }

    /// A copy of every value (not counters), for "nothing changed" assertions.
    pub fn snapshot(&self) -> BTreeMap<String, Vec<u8>> {
        self.inner.lock().unwrap().values.clone()
    }

    /// [`MemoryStore::snapshot`] without the bookkeeping that refused requests may write too:
    /// the windows of the rate limits (`limit/…`, see [`crate::limits`]) and the sweep index
    /// (`sweep/…`). Any other record a request writes still shows.
    pub fn state(&self) -> BTreeMap<String, Vec<u8>> {
        let mut values = self.snapshot();
        values.retain(|k, _| !k.starts_with("limit/") && !k.starts_with("sweep/"));
        values
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.trip();
        self.inner.lock().unwrap().get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.trip();
        self.inner.lock().unwrap().set(key, value)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.trip();
        self.inner.lock().unwrap().delete(key);
        Ok(())
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.trip();
        let inner = self.inner.lock().unwrap();
        keys.iter().map(|key| inner.get(key)).collect()
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.trip();
        let mut inner = self.inner.lock().unwrap();
        entries
            .iter()
            .try_for_each(|(key, value)| inner.set(key, value))
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.trip();
        let mut inner = self.inner.lock().unwrap();
        keys.iter().for_each(|key| inner.delete(key));
        Ok(())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.trip();
        let mut inner = self.inner.lock().unwrap();
        if inner.values.contains_key(key) {
            return Err(StoreError(format!(
                "`{key}` was written with set; incrementing it breaks Spin's store"
            )));
        }
        let counter = inner.counters.entry(key.to_string()).or_insert(0);
        *counter += delta;
        Ok(*counter)
    }
}

impl MemoryInner {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if self.counters.contains_key(key) {
            return Err(StoreError(format!(
                "`{key}` is a counter; read it with increment"
            )));
        }
        Ok(self.values.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        if self.counters.contains_key(key) {
            return Err(StoreError(format!("`{key}` is a counter")));
        }
        self.values.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &str) {
        self.values.remove(key);
        self.counters.remove(key);
    }
}

/// A clock that stands still until told to move.
pub struct TestClock(AtomicU64);

impl TestClock {
    pub fn new(now: u64) -> TestClock {
        TestClock(AtomicU64::new(now))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Deterministic, never-repeating bytes (SHA-256 of a counter). Not secure; tests only.
#[derive(Default)]
pub struct TestRng(AtomicU64);

impl Rng for TestRng {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            let block = Sha256::digest(n.to_le_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}

/// Variables from a map.
#[derive(Default, Clone)]
pub struct MapConfig(pub BTreeMap<String, String>);

impl<const N: usize> From<[(&str, &str); N]> for MapConfig {
    fn from(pairs: [(&str, &str); N]) -> MapConfig {
        MapConfig(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }
}

impl MapConfig {
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(name.to_string(), value.to_string());
    }
}

impl Config for MapConfig {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

type Handler = dyn Fn(&OutgoingRequest) -> Result<UpstreamResponse, UpstreamError> + Send + Sync;

/// An upstream that answers with a closure and remembers every request.
pub struct FakeUpstream {
    handler: Mutex<Arc<Handler>>,
    pub sent: Mutex<Vec<OutgoingRequest>>,
}

impl Default for FakeUpstream {
    fn default() -> FakeUpstream {
        FakeUpstream {
            handler: Mutex::new(Arc::new(|r: &OutgoingRequest| {
                Err(UpstreamError(format!("no fake answer for {}", r.url)))
            })),
            sent: Mutex::new(Vec::new()),
        }
    }
}

impl FakeUpstream {
    /// Answer every later request with `handler`.
    pub fn answer(
        &self,
        handler: impl Fn(&OutgoingRequest) -> Result<UpstreamResponse, UpstreamError>
            + Send
            + Sync
            + 'static,
    ) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    /// A JSON response.
    pub fn json(status: u16, value: serde_json::Value) -> UpstreamResponse {
        UpstreamResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&value).unwrap(),
        }
    }
}

impl Upstream for FakeUpstream {
    fn send(&self, request: &OutgoingRequest) -> Result<UpstreamResponse, UpstreamError> {
        self.sent.lock().unwrap().push(request.clone());
        let handler = self.handler.lock().unwrap().clone();
        handler(request)
    }
}

/// Everything a test needs to call the core: the doubles above and a configuration.
pub struct Harness {
    pub store: MemoryStore,
    pub upstream: FakeUpstream,
    pub clock: TestClock,
    pub rng: TestRng,
    pub config: MapConfig,
}

/// 2026-11-23T00:00:00Z: tests start at a fixed, realistic time.
pub const TEST_EPOCH: u64 = 1_795_392_000;

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_config(MapConfig::default())
    }

    pub fn with_config(config: MapConfig) -> Harness {
        Harness {
            store: MemoryStore::default(),
            upstream: FakeUpstream::default(),
            clock: TestClock::new(TEST_EPOCH),
            rng: TestRng::default(),
            config,
        }
    }

    /// A fresh `Env`, as a component builds one per request.
    pub fn env(&self) -> Env<'_> {
        let settings = Settings::from_config(&self.config).expect("test configuration");
        Env::new(
            &self.store,
            &self.upstream,
            &self.clock,
            &self.rng,
            settings,
        )
    }

    /// Serve `request` as the whole server would (every endpoint).
    pub fn call(&self, request: Request) -> Response {
        crate::handle(&self.env(), &request, Endpoint::ALL)
    }
}
