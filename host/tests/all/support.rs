//! Test support: the guest component (built on demand), an in-test key-value store, a running
//! host on an ephemeral 127.0.0.1 port, and a tiny HTTP client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use mcp_auth_host::{Options, Server};
use mcp_auth_kv::{Error, Store};

/// The test guest's `.wasm`, built once per test binary by `tests/build-guests.sh`.
pub fn guest_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/build-guests.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .output()
            .expect("run build-guests.sh");
        assert!(
            out.status.success(),
            "building the test guest failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(path.trim().lines().last().unwrap())
    })
}

/// The stores tests inject: `mcp-auth-kv`'s own memory backend.
pub type MapStore = mcp_auth_kv::memory::MemoryStore;

/// A store whose every operation fails.
pub struct BrokenStore;

#[async_trait]
impl Store for BrokenStore {
    async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, Error> {
        Err(Error("disk on fire".into()))
    }
    async fn set(&self, _: &str, _: &[u8]) -> Result<(), Error> {
        Err(Error("disk on fire".into()))
    }
    async fn delete(&self, _: &str) -> Result<(), Error> {
        Err(Error("disk on fire".into()))
    }
    async fn exists(&self, _: &str) -> Result<bool, Error> {
        Err(Error("disk on fire".into()))
    }
    async fn list_keys(&self) -> Result<Vec<String>, Error> {
        Err(Error("disk on fire".into()))
    }
    async fn increment(&self, _: &str, _: i64) -> Result<i64, Error> {
        Err(Error("disk on fire".into()))
    }
    async fn compare_and_swap(&self, _: &str, _: Option<&[u8]>, _: &[u8]) -> Result<bool, Error> {
        Err(Error("disk on fire".into()))
    }
}

/// The test guest variant whose `wizer-initialize` calls an import (built with the guest).
pub fn init_calls_import_wasm() -> PathBuf {
    guest_wasm().with_file_name("mcp_auth_test_guest_init_calls_import.wasm")
}

/// A manifest with one component, `guest`, on `/...`; `extra` is appended to its table.
pub fn single_component_manifest(extra: &str) -> String {
    manifest_with_source(guest_wasm(), extra)
}

/// [`single_component_manifest`] with another component as the guest.
pub fn manifest_with_source(wasm: &Path, extra: &str) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "test"

[[trigger.http]]
route = "/..."
component = "guest"

[component.guest]
source = "{wasm}"
key_value_stores = ["default"]
{extra}
"#,
        wasm = wasm.display()
    )
}

/// A host serving a manifest, stopped by [`TestHost::stop`].
pub struct TestHost {
    pub addr: SocketAddr,
    pub server: Arc<Server>,
    pub store: Arc<MapStore>,
    /// Kept so the app directory lives as long as the host.
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

/// Options every test host starts from: the in-test store, an empty environment, a shared
/// compile cache.
pub fn options(store: &Arc<MapStore>) -> Options {
    let mut options = Options::default();
    options.environment = Some(HashMap::new());
    options.stores = Some(HashMap::from([(
        "default".to_owned(),
        store.clone() as Arc<dyn Store>,
    )]));
    options.cache_dir =
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-guests/cache"));
    options
}

impl TestHost {
    /// Writes `manifest` (and `.env` when given) to a fresh directory and serves it.
    pub async fn start(
        manifest: &str,
        dotenv: Option<&str>,
        configure: impl FnOnce(&mut Options),
    ) -> TestHost {
        let store = Arc::new(MapStore::default());
        let mut opts = options(&store);
        configure(&mut opts);
        let dir = tempfile::tempdir().unwrap();
        let path = write_app(dir.path(), manifest, dotenv);
        let server = Arc::new(Server::new(&path, opts).expect("server starts"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = server.clone();
        let task = tokio::spawn(async move { s.serve(listener).await.unwrap() });
        TestHost {
            addr,
            server,
            store,
            _dir: dir,
            task,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        request(self.addr, "GET", path, Vec::new(), &[]).await
    }

    /// Stops the host and waits until `serve` has returned.
    pub async fn stop(self) {
        self.server.shutdown();
        self.task.await.unwrap();
    }
}

pub fn write_app(dir: &Path, manifest: &str, dotenv: Option<&str>) -> PathBuf {
    let path = dir.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    if let Some(text) = dotenv {
        std::fs::write(dir.join(".env"), text).unwrap();
    }
    path
}

/// An HTTP/1.1 client connection to `addr`.
pub async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// One HTTP/1.1 request on its own connection: status and body text.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Vec<u8>,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut sender = connect(addr).await;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let res = sender.send_request(req).await.unwrap();
    let status = res.status().as_u16();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
