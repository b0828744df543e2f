//! `open_from_runtime_config` against real files and a real Redis.

use std::path::Path;

use mcp_auth_kv::open_from_runtime_config;
use rusqlite::Connection;

use crate::support::RedisServer;

fn labels_in(path: &Path) -> Vec<(String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut rows: Vec<(String, String)> = conn
        .prepare("SELECT store, key FROM spin_key_value")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

#[tokio::test]
async fn without_a_file_default_is_the_embedded_file() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let stores = open_from_runtime_config(None, &data_dir).unwrap();
    assert_eq!(stores.keys().collect::<Vec<_>>(), ["default"]);
    stores["default"].set("k", b"v").await.unwrap();
    assert_eq!(
        labels_in(&data_dir.join("sqlite_key_value.db")),
        [("default".to_owned(), "k".to_owned())]
    );
}

#[tokio::test]
async fn a_file_mixes_backends() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
            [key_value_store.shared]
            type = "redis"
            url = "{url}"
            [key_value_store.also_shared]
            type = "redis"
            url = "{url}"
            [key_value_store.cache]
            type = "spin"
            path = "stores/cache.db"
            [key_value_store.plain]
            type = "spin"
            [key_value_store.scratch]
            type = "memory"
            "#,
            url = redis.url()
        ),
    )
    .unwrap();
    let stores = open_from_runtime_config(Some(&config), &data_dir).unwrap();
    let mut labels: Vec<_> = stores.keys().map(String::as_str).collect();
    labels.sort_unstable();
    assert_eq!(
        labels,
        [
            "also_shared",
            "cache",
            "default",
            "plain",
            "scratch",
            "shared"
        ]
    );

    for (label, store) in &stores {
        store.set(&format!("from/{label}"), b"x").await.unwrap();
    }
    // Redis labels share one keyspace, as under Spin.
    assert!(stores["shared"].exists("from/also_shared").await.unwrap());
    // `cache` has its own file, relative to the config file; `plain` and `default` share the
    // default file under their own labels.
    assert_eq!(
        labels_in(&dir.path().join("stores/cache.db")),
        [("cache".to_owned(), "from/cache".to_owned())]
    );
    assert_eq!(
        labels_in(&data_dir.join("sqlite_key_value.db")),
        [
            ("default".to_owned(), "from/default".to_owned()),
            ("plain".to_owned(), "from/plain".to_owned())
        ]
    );
    assert!(!stores["scratch"].exists("from/plain").await.unwrap());
}

#[test]
fn an_unknown_type_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        "[key_value_store.default]\ntype = \"azure_cosmos\"\n",
    )
    .unwrap();
    let error = open_from_runtime_config(Some(&config), dir.path())
        .err()
        .expect("refused");
    assert!(error.0.contains("runtime-config.toml"), "{error}");
    assert!(error.0.contains("key_value_store.default"), "{error}");
    assert!(
        error.0.contains("unsupported type \"azure_cosmos\""),
        "{error}"
    );
}

#[test]
fn a_missing_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = open_from_runtime_config(Some(&dir.path().join("absent.toml")), dir.path())
        .err()
        .expect("refused");
    assert!(error.0.contains("absent.toml"), "{error}");
}
