//! Rough throughput of a backend, for the numbers in reports (not a test).
//!
//! `cargo run -p mcp-auth-kv --release --example kv_bench -- sqlite|redis URL|memory [N]`

use std::sync::Arc;
use std::time::Instant;

use mcp_auth_kv::embedded::SqliteFile;
use mcp_auth_kv::{memory::MemoryStore, redis::RedisStore, Error, Store};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::env::temp_dir().join(format!("kv-bench-{}", std::process::id()));
    let (store, n): (Arc<dyn Store>, usize) = match args.first().map(String::as_str) {
        Some("sqlite") => (
            Arc::new(SqliteFile::open(&dir.join("kv.db"))?.store("default")),
            count(args.get(1)),
        ),
        Some("redis") => {
            let url = args.get(1).ok_or(Error("redis needs a URL".into()))?;
            (Arc::new(RedisStore::open(url)?), count(args.get(2)))
        }
        Some("memory") => (Arc::new(MemoryStore::new()), count(args.get(1))),
        _ => return Err(Error("usage: kv_bench sqlite|redis URL|memory [N]".into())),
    };

    let value = vec![7u8; 300]; // about one JSON record
    let timed = |name: &str, start: Instant, ops: usize| {
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name:<28} {:>9.0} ops/s  {:>8.1} µs/op",
            ops as f64 / secs,
            secs * 1e6 / ops as f64
        );
    };

    let start = Instant::now();
    for i in 0..n {
        store.set(&format!("k/{i}"), &value).await?;
    }
    timed("set (sequential)", start, n);

    let start = Instant::now();
    for i in 0..n {
        store.get(&format!("k/{i}")).await?;
    }
    timed("get (sequential)", start, n);

    let start = Instant::now();
    for i in 0..n {
        store.increment(&format!("c/{i}"), 1).await?;
    }
    timed("increment (sequential)", start, n);

    for (name, write) in [("get (64 tasks)", false), ("increment (64 tasks)", true)] {
        let start = Instant::now();
        let tasks: Vec<_> = (0..64)
            .map(|t| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in (t..n).step_by(64) {
                        if write {
                            store.increment("shared", 1).await?;
                        } else {
                            store.get(&format!("k/{i}")).await?;
                        }
                    }
                    Ok::<_, Error>(())
                })
            })
            .collect();
        for task in tasks {
            task.await.map_err(|e| Error(e.to_string()))??;
        }
        timed(name, start, n);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn count(arg: Option<&String>) -> usize {
    arg.and_then(|n| n.parse().ok()).unwrap_or(2000)
}
