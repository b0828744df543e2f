//! The embedded store beyond the conformance suite: durability, and Spin's file layout.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use mcp_auth_kv::embedded::SqliteFile;
use mcp_auth_kv::Store;
use rusqlite::Connection;

#[tokio::test]
async fn values_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    {
        let file = SqliteFile::open(&path).unwrap();
        let store = file.store("default");
        store.set("client/1", b"{\"name\":\"x\"}").await.unwrap();
        store.increment("used/code", 1).await.unwrap();
        assert!(store.compare_and_swap("key", None, b"k1").await.unwrap());
    }
    let store = SqliteFile::open(&path).unwrap().store("default");
    assert_eq!(
        store.get("client/1").await.unwrap().as_deref(),
        Some(&b"{\"name\":\"x\"}"[..])
    );
    assert_eq!(store.increment("used/code", 1).await.unwrap(), 2);
    assert_eq!(store.get("key").await.unwrap().as_deref(), Some(&b"k1"[..]));
}

#[tokio::test]
async fn file_has_spins_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sqlite_key_value.db");
    let file = SqliteFile::open(&path).unwrap();
    file.store("default")
        .set("greeting", b"hello")
        .await
        .unwrap();
    file.store("other").increment("counter", 5).await.unwrap();
    file.store("other").increment("negative", -2).await.unwrap();
    drop(file);

    let conn = Connection::open(&path).unwrap();
    let columns: Vec<(String, String, bool, i64)> = conn
        .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info('spin_key_value') ORDER BY cid")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [
        ("store", "TEXT", true, 1),
        ("key", "TEXT", true, 2),
        ("value", "BLOB", true, 0),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|&(n, t, nn, pk)| (n.to_owned(), t.to_owned(), nn, pk))
        .collect();
    assert_eq!(
        columns, expected,
        "columns, types and primary key (store, key) as Spin's"
    );

    let value = |store: &str, key: &str| -> Vec<u8> {
        conn.query_row(
            "SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2",
            (store, key),
            |row| row.get(0),
        )
        .unwrap()
    };
    assert_eq!(value("default", "greeting"), b"hello");
    assert_eq!(
        value("other", "counter"),
        5i64.to_le_bytes(),
        "counters are 8-byte LE"
    );
    assert_eq!(value("other", "negative"), (-2i64).to_le_bytes());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

/// A file as Spin leaves it (its table, a counter it incremented) is ours to continue.
#[tokio::test]
async fn reads_a_file_spin_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sqlite_key_value.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE spin_key_value (store TEXT NOT NULL, key TEXT NOT NULL, \
             value BLOB NOT NULL, PRIMARY KEY (store, key));",
        )
        .unwrap();
        let insert = "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)";
        conn.execute(insert, ("default", "used/abc", 41i64.to_le_bytes()))
            .unwrap();
        conn.execute(insert, ("default", "client/1", b"{}".to_vec()))
            .unwrap();
    }
    let store = SqliteFile::open(&path).unwrap().store("default");
    assert_eq!(store.increment("used/abc", 1).await.unwrap(), 42);
    assert_eq!(
        store.get("client/1").await.unwrap().as_deref(),
        Some(&b"{}"[..])
    );
    let mut keys = store.list_keys().await.unwrap();
    keys.sort();
    assert_eq!(keys, ["client/1", "used/abc"]);
}

const CHILD_DB: &str = "MCP_AUTH_KV_TEST_SIGKILL_DB";
const ACK: &str = "ACK ";

/// A child process writes keys and prints each acknowledgement; it is killed with SIGKILL
/// mid-way. Every key it acknowledged must be in the file afterwards, so no write is
/// acknowledged before SQLite has it. The child is this test binary again, running this test
/// with `CHILD_DB` set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    if let Ok(path) = std::env::var(CHILD_DB) {
        write_until_killed(Path::new(&path)).await;
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "embedded::acknowledged_writes_survive_sigkill",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CHILD_DB, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 300 {
        let line = lines.next().expect("child stopped early").unwrap();
        if let Some(n) = line.strip_prefix(ACK) {
            acknowledged.push(n.parse::<u64>().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, not finished");
    // Acknowledgements printed before the kill but not yet read count too.
    acknowledged.extend(
        lines
            .map_while(Result::ok)
            .filter_map(|line| line.strip_prefix(ACK).and_then(|n| n.parse::<u64>().ok())),
    );

    let store = SqliteFile::open(&path).unwrap().store("default");
    for n in &acknowledged {
        let value = store.get(&format!("key/{n}")).await.unwrap();
        assert_eq!(
            value,
            Some(n.to_le_bytes().to_vec()),
            "acknowledged key/{n} lost"
        );
    }
    let increments = acknowledged.iter().filter(|&&n| n % 10 == 0).count() as i64;
    assert!(
        store.increment("writes", 0).await.unwrap() >= increments,
        "every acknowledged increment is there"
    );
}

async fn write_until_killed(path: &Path) {
    let store = SqliteFile::open(path).unwrap().store("default");
    for n in 0u64.. {
        // Every tenth key also bumps a counter; its acknowledgement is the key's.
        if n % 10 == 0 {
            store.increment("writes", 1).await.unwrap();
        }
        store
            .set(&format!("key/{n}"), &n.to_le_bytes())
            .await
            .unwrap();
        println!("{ACK}{n}");
    }
}

#[tokio::test]
async fn labels_share_a_file_but_not_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = SqliteFile::open(&dir.path().join("kv.db")).unwrap();
    let (a, b) = (file.store("a"), file.store("b"));
    a.set("k", b"from a").await.unwrap();
    b.set("k", b"from b").await.unwrap();
    assert_eq!(a.increment("n", 1).await.unwrap(), 1);
    assert_eq!(b.increment("n", 1).await.unwrap(), 1);
    assert_eq!(a.get("k").await.unwrap().as_deref(), Some(&b"from a"[..]));
    b.delete("k").await.unwrap();
    assert!(a.exists("k").await.unwrap());
}
