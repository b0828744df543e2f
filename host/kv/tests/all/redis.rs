//! The Redis store beyond the conformance suite: Spin's encoding, and surviving a restart.

use std::time::Duration;

use mcp_auth_kv::redis::RedisStore;
use mcp_auth_kv::Store;

use crate::support::RedisServer;

async fn raw_get(url: &str, key: &str) -> Option<Vec<u8>> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::AsyncCommands::get(&mut conn, key).await.unwrap()
}

/// Keys unprefixed and counters as decimal text, as Spin's Redis store writes them.
#[tokio::test]
async fn writes_what_spin_writes() {
    let server = RedisServer::start();
    let store = RedisStore::open(&server.url()).unwrap();
    store.set("client/1", b"{}").await.unwrap();
    store.increment("used/code", 41).await.unwrap();
    assert_eq!(
        raw_get(&server.url(), "client/1").await.as_deref(),
        Some(&b"{}"[..])
    );
    assert_eq!(
        raw_get(&server.url(), "used/code").await.as_deref(),
        Some(&b"41"[..])
    );
}

/// While Redis is down every call is an error (no panic, no hang); after it comes back on the
/// same port, calls succeed again without reopening the store, scripts included (the restarted
/// server has lost its script cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_after_redis_restarts() {
    let server = RedisServer::start();
    let port = server.port();
    let store = RedisStore::open(&server.url()).unwrap();
    store.set("before", b"1").await.unwrap();
    assert!(store.compare_and_swap("cas", None, b"a").await.unwrap());
    drop(server);

    for _ in 0..3 {
        assert!(store.get("before").await.is_err(), "get while down");
        assert!(store.set("during", b"x").await.is_err(), "set while down");
        assert!(
            store.increment("n", 1).await.is_err(),
            "increment while down"
        );
        assert!(
            store
                .compare_and_swap("cas", Some(b"a"), b"b")
                .await
                .is_err(),
            "cas while down"
        );
    }

    let _server = RedisServer::start_on(port);
    let mut recovered = false;
    for _ in 0..200 {
        if store.set("after", b"2").await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "the store never reconnected");
    assert_eq!(
        store.get("after").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        store.get("before").await.unwrap(),
        None,
        "a fresh server (no persistence)"
    );
    assert_eq!(store.increment("n", 1).await.unwrap(), 1);
    assert!(store.compare_and_swap("cas", None, b"c").await.unwrap());
    assert!(store
        .compare_and_swap("cas", Some(b"c"), b"d")
        .await
        .unwrap());
}

/// A URL the client cannot parse is refused when the store is opened, not at the first call.
#[test]
fn refuses_a_bad_url() {
    let error = RedisStore::open("http://not-redis").err().expect("refused");
    assert!(error.0.contains("invalid Redis URL"), "{error}");
}
