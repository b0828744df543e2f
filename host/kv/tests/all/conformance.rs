//! The behaviour every backend owes the host, written once and run against each
//! (`conformance_suite!` at the bottom instantiates it per backend).

use std::collections::BTreeSet;
use std::sync::Arc;

use mcp_auth_kv::Store;

pub async fn crud(store: Arc<dyn Store>) {
    store.set("a", b"one").await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert!(store.exists("a").await.unwrap());
    store.set("a", b"two").await.unwrap();
    assert_eq!(store.get("a").await.unwrap().as_deref(), Some(&b"two"[..]));
    store.delete("a").await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
    assert!(!store.exists("a").await.unwrap());
}

pub async fn missing_keys(store: Arc<dyn Store>) {
    assert_eq!(store.get("nothing").await.unwrap(), None);
    assert!(!store.exists("nothing").await.unwrap());
    store.delete("nothing").await.unwrap();
    assert!(store.list_keys().await.unwrap().is_empty());
}

pub async fn binary_values(store: Arc<dyn Store>) {
    let every_byte: Vec<u8> = (0..=255).collect();
    let large = vec![0xA5; 1 << 20];
    let unicode_key = "client/é🔑 with spaces";
    store.set("bytes", &every_byte).await.unwrap();
    store.set("empty", b"").await.unwrap();
    store.set("large", &large).await.unwrap();
    store.set(unicode_key, b"\0").await.unwrap();
    assert_eq!(store.get("bytes").await.unwrap(), Some(every_byte));
    assert_eq!(store.get("empty").await.unwrap(), Some(Vec::new()));
    assert!(store.exists("empty").await.unwrap());
    assert_eq!(store.get("large").await.unwrap(), Some(large));
    assert_eq!(store.get(unicode_key).await.unwrap(), Some(vec![0]));
}

pub async fn list_keys(store: Arc<dyn Store>) {
    let expected: BTreeSet<String> = (0..2500).map(|i| format!("code/{i}")).collect();
    for key in &expected {
        store.set(key, b"x").await.unwrap();
    }
    store.increment("counter", 1).await.unwrap();
    store.set("gone", b"x").await.unwrap();
    store.delete("gone").await.unwrap();

    let listed = store.list_keys().await.unwrap();
    assert_eq!(
        listed.len(),
        expected.len() + 1,
        "no duplicates, nothing deleted"
    );
    let mut listed: BTreeSet<String> = listed.into_iter().collect();
    assert!(listed.remove("counter"));
    assert_eq!(listed, expected);
}

pub async fn increment_semantics(store: Arc<dyn Store>) {
    assert_eq!(
        store.increment("c", 0).await.unwrap(),
        0,
        "missing counts as 0"
    );
    assert_eq!(store.increment("d", 5).await.unwrap(), 5);
    assert_eq!(store.increment("d", 1).await.unwrap(), 6);
    assert_eq!(store.increment("d", -10).await.unwrap(), -4);
    assert_eq!(
        store.increment("e", -3).await.unwrap(),
        -3,
        "missing counts as 0"
    );
    assert!(store.exists("d").await.unwrap());
    store.delete("d").await.unwrap();
    assert_eq!(
        store.increment("d", 1).await.unwrap(),
        1,
        "deleted counts as 0"
    );

    assert_eq!(store.increment("max", i64::MAX).await.unwrap(), i64::MAX);
    let overflow = store.increment("max", 1).await;
    assert!(overflow.is_err(), "overflow must be an error: {overflow:?}");
    assert_eq!(
        store.increment("max", 0).await.unwrap(),
        i64::MAX,
        "unchanged"
    );
}

pub async fn increment_on_non_counter_is_an_error(store: Arc<dyn Store>) {
    store.set("text", b"not a counter").await.unwrap();
    let error = store.increment("text", 1).await.unwrap_err();
    assert!(error.0.contains("text"), "the error names the key: {error}");
    assert_eq!(
        store.get("text").await.unwrap().as_deref(),
        Some(&b"not a counter"[..]),
        "a refused increment leaves the value alone"
    );
    // The store still works afterwards (Spin's SQLite store does not).
    assert_eq!(store.increment("other", 2).await.unwrap(), 2);
}

pub async fn compare_and_swap_semantics(store: Arc<dyn Store>) {
    assert!(
        store.compare_and_swap("k", None, b"v1").await.unwrap(),
        "absent → set"
    );
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(
        !store.compare_and_swap("k", None, b"v2").await.unwrap(),
        "expecting absent fails once the key exists"
    );
    assert!(
        !store
            .compare_and_swap("k", Some(b"stale"), b"v2")
            .await
            .unwrap(),
        "stale current fails"
    );
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v1"[..]));
    assert!(store
        .compare_and_swap("k", Some(b"v1"), b"v2")
        .await
        .unwrap());
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert!(
        !store
            .compare_and_swap("missing", Some(b"v1"), b"v2")
            .await
            .unwrap(),
        "expecting a value fails on an absent key"
    );
    assert!(!store.exists("missing").await.unwrap());
    assert!(
        !store.compare_and_swap("k", Some(b""), b"v3").await.unwrap(),
        "an empty expected value is not the same as absent"
    );
    store.set("empty", b"").await.unwrap();
    assert!(!store.compare_and_swap("empty", None, b"x").await.unwrap());
    assert!(store
        .compare_and_swap("empty", Some(b""), b"x")
        .await
        .unwrap());
}

const TASKS: i64 = 100;

pub async fn increment_exactly_once_under_concurrency(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.increment("redeemed", 1).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    assert_eq!(
        seen.iter().filter(|&&n| n == 1).count(),
        1,
        "exactly one first"
    );
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=TASKS).collect::<Vec<_>>(),
        "no increment lost or doubled"
    );
    assert_eq!(store.increment("redeemed", 0).await.unwrap(), TASKS);
}

pub async fn compare_and_swap_exactly_once_under_concurrency(store: Arc<dyn Store>) {
    for start in [None, Some(&b"v-start"[..])] {
        let key = format!("cas-{}", start.is_some());
        if let Some(start) = start {
            store.set(&key, start).await.unwrap();
        }
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move {
                    let new = format!("v{i}");
                    let won = store
                        .compare_and_swap(&key, start, new.as_bytes())
                        .await
                        .unwrap();
                    won.then_some(new)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(
            winners.len(),
            1,
            "exactly one swap from {start:?} wins: {winners:?}"
        );
        assert_eq!(
            store.get(&key).await.unwrap(),
            Some(winners[0].clone().into_bytes()),
            "the winner's value is what remains"
        );
    }
}

/// Refused writes racing with good ones (on the embedded store they share a commit) undo
/// nothing but themselves.
pub async fn refused_writes_do_not_disturb_others(store: Arc<dyn Store>) {
    store.set("text", b"not a counter").await.unwrap();
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    assert!(store.increment("text", 1).await.is_err());
                } else {
                    store.increment("counter", 1).await.unwrap();
                    store.set(&format!("key/{i}"), b"v").await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(store.increment("counter", 0).await.unwrap(), TASKS / 2);
    assert_eq!(store.list_keys().await.unwrap().len() as i64, TASKS / 2 + 2);
    assert_eq!(
        store.get("text").await.unwrap().as_deref(),
        Some(&b"not a counter"[..])
    );
}

/// `get_many` answers one entry per key, in the order asked, `None` for missing keys;
/// `set_many` and `delete_many` do what `set` and `delete` do to each key.
pub async fn batch_semantics(store: Arc<dyn Store>) {
    assert_eq!(
        store.get_many(&[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    store.set_many(&[]).await.unwrap();
    store.delete_many(&[]).await.unwrap();

    store.set("kept", b"old").await.unwrap();
    let entries = vec![
        ("a".to_string(), b"one".to_vec()),
        ("kept".to_string(), b"new".to_vec()),
        ("empty".to_string(), Vec::new()),
        ("a".to_string(), b"last".to_vec()),
    ];
    store.set_many(&entries).await.unwrap();
    store.increment("counter", 7).await.unwrap();
    let keys = ["missing", "kept", "a", "empty", "a", "counter"].map(String::from);
    assert_eq!(
        store.get_many(&keys).await.unwrap(),
        vec![
            None,
            Some(b"new".to_vec()),
            Some(b"last".to_vec()),
            Some(Vec::new()),
            Some(b"last".to_vec()),
            store.get("counter").await.unwrap(),
        ],
        "one entry per key asked, in order; a repeated key in set_many ends with its last value"
    );
    assert_eq!(
        store.increment("counter", 0).await.unwrap(),
        7,
        "a counter read by get_many is untouched"
    );

    store
        .delete_many(&["a", "missing", "counter"].map(String::from))
        .await
        .unwrap();
    assert_eq!(store.get("a").await.unwrap(), None);
    assert_eq!(store.increment("counter", 0).await.unwrap(), 0);
    let mut left = store.list_keys().await.unwrap();
    left.sort();
    assert_eq!(left, ["counter", "empty", "kept"]);
}

/// A batch write is seen whole or not at all by a batch read that races it (one SQLite
/// transaction, one Redis command, one lock).
pub async fn batches_are_not_seen_half_done(store: Arc<dyn Store>) {
    let keys: Vec<String> = (0..20).map(|i| format!("pair/{i}")).collect();
    let writer = {
        let (store, keys) = (store.clone(), keys.clone());
        tokio::spawn(async move {
            for round in 0..200u32 {
                let value = round.to_le_bytes().to_vec();
                let entries: Vec<_> = keys.iter().map(|k| (k.clone(), value.clone())).collect();
                store.set_many(&entries).await.unwrap();
            }
        })
    };
    while !writer.is_finished() {
        let values = store.get_many(&keys).await.unwrap();
        assert!(
            values.windows(2).all(|w| w[0] == w[1]),
            "a batch read saw part of a batch write: {values:?}"
        );
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
}

/// One `#[tokio::test]` per case for a backend. `$open` is an async expression giving
/// `(Arc<dyn Store>, guard)`, a fresh, empty store and whatever must live as long as it.
macro_rules! conformance_suite {
    ($backend:ident, $open:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            conformance_suite!(@cases $open;
                crud, missing_keys, binary_values, list_keys, increment_semantics,
                increment_on_non_counter_is_an_error, compare_and_swap_semantics,
                increment_exactly_once_under_concurrency,
                compare_and_swap_exactly_once_under_concurrency,
                refused_writes_do_not_disturb_others, batch_semantics,
                batches_are_not_seen_half_done);
        }
    };
    (@cases $open:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (store, _guard) = $open.await;
                $crate::conformance::$case(store).await;
            }
        )*
    };
}

conformance_suite!(memory, async {
    let store: Arc<dyn Store> = Arc::new(mcp_auth_kv::memory::MemoryStore::new());
    (store, ())
});

conformance_suite!(embedded, async {
    let dir = tempfile::tempdir().unwrap();
    let file = mcp_auth_kv::embedded::SqliteFile::open(&dir.path().join("kv.db")).unwrap();
    // Another label in the same file must not show through.
    let neighbour = file.store("neighbour");
    neighbour.set("code/1", b"neighbour's").await.unwrap();
    neighbour.set("text", b"neighbour's").await.unwrap();
    let store: Arc<dyn Store> = Arc::new(file.store("default"));
    (store, dir)
});

conformance_suite!(redis, async {
    let server = crate::support::RedisServer::start();
    let store: Arc<dyn Store> =
        Arc::new(mcp_auth_kv::redis::RedisStore::open(&server.url()).unwrap());
    (store, server)
});
