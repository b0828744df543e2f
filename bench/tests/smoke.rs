//! Keeps the benchmark from rotting: its set-up (registration, sign-ins, code exchange) and its
//! load generator run for a moment against the real components in an embedded host, and
//! every request must succeed. No timing is asserted: speed is the benchmark's business.
//!
//! Needs the components built (`cargo build --target wasm32-wasip2 --release`, which
//! `scripts/test` does).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mcp_auth_bench::load::{self, Outcome};
use mcp_auth_bench::mcp_auth;
use mcp_auth_host::{Options, Server};

const CONNECTIONS: usize = 2;
const DURATION: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_run_against_the_real_components() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let mut options = Options::default();
    options.environment = Some(
        mcp_auth::variables(&format!("http://{addr}"), "ES256")
            .into_iter()
            .collect(),
    );
    options.data_dir = data.path().to_owned();
    options.cache_dir = Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-smoke-cache"));
    options.env_file = Some(data.path().join("absent.env"));
    let manifest = root.join("spin.toml");
    let server = tokio::task::spawn_blocking(move || Server::new(manifest, options))
        .await
        .expect("loading task")
        .unwrap_or_else(|e| {
            panic!("{e} (build the components first: cargo build --target wasm32-wasip2 --release)")
        });
    let server = Arc::new(server);
    let serving = tokio::spawn({
        let server = server.clone();
        async move { server.serve(listener).await }
    });

    let state = mcp_auth::set_up(addr, CONNECTIONS).await.expect("set-up");
    let check = |name: &str, outcome: Outcome| {
        assert!(outcome.ok > 0, "{name}: no request succeeded");
        assert_eq!(outcome.failed, 0, "{name}: {:?}", outcome.failures);
    };
    check(
        "refresh",
        load::run(addr, CONNECTIONS, DURATION, |i| {
            mcp_auth::Refresh::new(&state, i)
        })
        .await
        .expect("refresh run"),
    );
    check(
        "verify",
        load::run(addr, CONNECTIONS, DURATION, |_| mcp_auth::verify(&state))
            .await
            .expect("verify run"),
    );

    server.shutdown();
    serving.await.expect("serve task").expect("serve");
}
