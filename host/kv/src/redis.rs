//! The Redis store: one Redis server (or a proxy in front of a cluster) shared by several hosts,
//! and by Spin: keys are written unprefixed and counters as decimal text (`INCRBY`), as Spin's
//! Redis store does, so both can serve one deployment.
//!
//! Labels pointing at the same URL share its keyspace, as under Spin.
//!
//! A batch is one command, `MGET`, `MSET` or `DEL` with every key: one round trip, and atomic
//! on the server as any single command is, so neither a pipeline (which saves the round trips
//! but lets other clients' commands run in between) nor `MULTI`/`EXEC` (atomic too, but three
//! commands more) is needed. Behind a cluster proxy that splits multi-key commands by slot,
//! the batch is still one round trip to the proxy and loses only its atomicity, which
//! `wasi:keyvalue/batch` does not promise anyway.
//!
//! The connection is a `redis` [`ConnectionManager`]: one multiplexed connection that reconnects
//! in the background after it breaks. While Redis is unreachable every call fails with an
//! [`Error`]; once Redis is back, calls succeed again. A call that fails after its command was
//! sent may or may not have been applied: callers treat an error as "unknown", never as "not
//! done" (an exactly-once step fails closed).

use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncCommands, Client, Script};
use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::{Error, Store};

/// Compare-and-swap in one server-side step. `ARGV[1]` is `1` when a current value is expected
/// (in `ARGV[2]`), `0` when the key must be absent; `ARGV[3]` is the new value.
/// Scripts run atomically (<https://redis.io/docs/latest/develop/interact/programmability/eval-intro/>).
static COMPARE_AND_SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local stored = redis.call('GET', KEYS[1])
        local matches
        if ARGV[1] == '1' then matches = (stored == ARGV[2]) else matches = (stored == false) end
        if not matches then return 0 end
        redis.call('SET', KEYS[1], ARGV[3])
        return 1
        ",
    )
});

/// Keys asked for per `SCAN` round trip.
const SCAN_BATCH: usize = 1000;

/// A store on one Redis server.
pub struct RedisStore {
    client: Client,
    connection: OnceCell<ConnectionManager>,
}

impl RedisStore {
    /// A store for `url` (`redis://host:port[/db]`, `rediss://…`, `redis+unix://…`). Only the
    /// URL is checked here; the connection opens on first use, so a host may start before
    /// Redis is up.
    pub fn open(url: &str) -> Result<Self, Error> {
        let client =
            Client::open(url).map_err(|e| Error(format!("invalid Redis URL `{url}`: {e}")))?;
        Ok(Self {
            client,
            connection: OnceCell::new(),
        })
    }

    async fn connection(&self) -> Result<ConnectionManager, Error> {
        let manager = self
            .connection
            .get_or_try_init(|| async {
                // Bounded waits, so a call fails rather than hangs while Redis is away; the
                // manager keeps reconnecting on later calls.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(Duration::from_secs(5)))
                    .set_number_of_retries(2)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            })
            .await
            .map_err(redis_error)?;
        Ok(manager.clone())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.connection().await?.get(key).await.map_err(redis_error)
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        self.connection()
            .await?
            .set(key, value)
            .await
            .map_err(redis_error)
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        self.connection().await?.del(key).await.map_err(redis_error)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, Error> {
        if keys.is_empty() {
            return Ok(Vec::new()); // MGET needs at least one key
        }
        ::redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut self.connection().await?)
            .await
            .map_err(redis_error)
    }

    async fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut mset = ::redis::cmd("MSET");
        for (key, value) in entries {
            mset.arg(key).arg(value);
        }
        mset.query_async(&mut self.connection().await?)
            .await
            .map_err(redis_error)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<(), Error> {
        if keys.is_empty() {
            return Ok(());
        }
        self.connection()
            .await?
            .del(keys)
            .await
            .map_err(redis_error)
    }

    async fn exists(&self, key: &str) -> Result<bool, Error> {
        self.connection()
            .await?
            .exists(key)
            .await
            .map_err(redis_error)
    }

    /// `SCAN` rather than `KEYS`, which blocks a shared server for the whole listing. `SCAN`
    /// may return a key twice, so the result is deduplicated; keys that are not UTF-8 (written
    /// by something else) cannot be named through this interface and are skipped.
    async fn list_keys(&self) -> Result<Vec<String>, Error> {
        let mut connection = self.connection().await?;
        let mut keys = std::collections::BTreeSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(&mut connection)
                .await
                .map_err(redis_error)?;
            keys.extend(batch.into_iter().filter_map(|k| String::from_utf8(k).ok()));
            if next == 0 {
                return Ok(keys.into_iter().collect());
            }
            cursor = next;
        }
    }

    /// `INCRBY`: atomic on the server; Redis refuses a value that is not a decimal integer
    /// and a result outside `i64`.
    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Error> {
        self.connection()
            .await?
            .incr(key, delta)
            .await
            .map_err(|e| Error(format!("cannot increment `{key}`: {}", redis_error(e))))
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, Error> {
        let mut connection = self.connection().await?;
        let mut invocation = COMPARE_AND_SWAP.key(key);
        match current {
            Some(current) => invocation.arg(1).arg(current),
            None => invocation.arg(0).arg(""),
        };
        // `invoke_async` sends EVALSHA and falls back to loading the script when the server
        // does not know it (after a restart, for instance).
        let swapped: i64 = invocation
            .arg(new)
            .invoke_async(&mut connection)
            .await
            .map_err(redis_error)?;
        Ok(swapped == 1)
    }
}

fn redis_error(e: ::redis::RedisError) -> Error {
    Error(format!("Redis: {e}"))
}
