//! `mcp-auth serve` as a child process: the built binary, the repository's `spin.toml` and the
//! built components, on an ephemeral loopback port, stopped when the guard drops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::browser::Browser;

/// How long a host may take to answer `/health` before the test gives up. Only a guard
/// against hanging forever: no assertion is made about speed.
const START_LIMIT: Duration = Duration::from_secs(120);

/// Variables every test host gets: resource servers introspect as `rs:rs-secret`, tokens are
/// for [`super::RESOURCE`].
const BASE_VARIABLES: &[(&str, &str)] = &[
    ("INTROSPECTION_CREDENTIALS", "rs:rs-secret"),
    ("MCP_SERVER", super::RESOURCE),
];

/// What to start a host with.
#[derive(Clone, Default)]
pub struct HostOptions {
    /// Variables (environment names, e.g. `UPSTREAM_PROVIDER`), on top of [`BASE_VARIABLES`].
    pub variables: Vec<(String, String)>,
    /// A Spin runtime-config file (e.g. Redis for the `default` store).
    pub runtime_config: Option<PathBuf>,
    /// The issuer, when it is not the host's own address (several hosts behind one name).
    pub issuer: Option<String>,
    /// Listen on this port (a restart on the same address); otherwise an ephemeral one.
    pub port: Option<u16>,
    /// More `mcp-auth serve` options (limits such as `--request-timeout`).
    pub args: Vec<String>,
}

impl HostOptions {
    pub fn variable(mut self, name: &str, value: &str) -> Self {
        self.variables.push((name.into(), value.into()));
        self
    }

    /// `mcp-auth serve --<name> <value>`.
    pub fn arg(mut self, name: &str, value: &str) -> Self {
        self.args.extend([format!("--{name}"), value.to_string()]);
        self
    }
}

/// A running `mcp-auth serve`. Dropping it kills the process (also when a test panics, after
/// printing the host's log).
pub struct Host {
    child: Child,
    /// `http://127.0.0.1:PORT`, where the host listens.
    pub base: String,
    pub port: u16,
    log: PathBuf,
}

impl Host {
    /// Starts a host keeping its embedded store in `data_dir`, and waits for `/health`.
    pub fn start(data_dir: &Path, options: &HostOptions) -> Host {
        let paths = paths();
        std::fs::create_dir_all(data_dir).expect("data dir");
        // Binding port 0 and passing the number on leaves a short window in which another
        // process may take the port: the host then exits at once, and a fresh port is tried.
        for attempt in 0.. {
            let port = options.port.unwrap_or_else(free_port);
            let base = format!("http://127.0.0.1:{port}");
            let log = data_dir.join(format!("host-{port}-{attempt}.log"));
            let child = spawn(paths, data_dir, options, &base, port, &log);
            let mut host = Host {
                child,
                base,
                port,
                log,
            };
            match host.wait_healthy() {
                Ok(()) => return host,
                Err(exited) => {
                    let text = host.log_text();
                    if exited
                        && text.contains("cannot listen")
                        && options.port.is_none()
                        && attempt < 5
                    {
                        continue;
                    }
                    panic!("mcp-auth did not become healthy at {}:\n{text}", host.base);
                }
            }
        }
        unreachable!("the loop returns or panics")
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the host now (SIGKILL: what was answered must already be durable).
    pub fn kill(mut self) {
        self.stop();
    }

    /// Whether the process is still alive (it did not crash).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The host's log (stderr and stdout), for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/health` until 200. `Err(true)` when the process exited first.
    fn wait_healthy(&mut self) -> Result<(), bool> {
        let browser = Browser::new();
        let started = Instant::now();
        let health = self.url("/health");
        while started.elapsed() < START_LIMIT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Err(true);
            }
            if browser.try_get(&health) == Some(200) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(false)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "--- log of mcp-auth at {} ---\n{}",
                self.base,
                self.log_text()
            );
        }
    }
}

fn spawn(
    paths: &Paths,
    data_dir: &Path,
    options: &HostOptions,
    base: &str,
    port: u16,
    log: &Path,
) -> Child {
    let out = std::fs::File::create(log).expect("host log file");
    let err = out.try_clone().expect("host log file");
    let mut command = Command::new(&paths.binary);
    command
        .arg("serve")
        .arg("--manifest")
        .arg(&paths.manifest)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--cache-dir")
        .arg(&paths.cache_dir)
        // No `.env` beside the manifest may leak into a test.
        .arg("--env-file")
        .arg(data_dir.join("absent.env"));
    if let Some(file) = &options.runtime_config {
        command.arg("--runtime-config").arg(file);
    }
    command.args(&options.args);
    // Only the variables given here: none of the caller's environment.
    command
        .env_clear()
        .env("RUST_LOG", "info,wasmtime=warn,cranelift=warn");
    // Except the host's instance reuse: `scripts/test` runs the suite again with reuse on.
    if let Ok(reuse) = std::env::var("MCP_AUTH_INSTANCE_REUSE") {
        command.env("MCP_AUTH_INSTANCE_REUSE", reuse);
    }
    command.env(
        "MCP_AUTH_SERVER_URL",
        options.issuer.as_deref().unwrap_or(base),
    );
    for (name, value) in BASE_VARIABLES {
        command.env(name, value);
    }
    for (name, value) in &options.variables {
        command.env(name, value);
    }
    command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", paths.binary.display()))
}

/// `mcp-auth hash-password`: the PHC string of `password`, for `LOCAL_USERS`.
pub fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(&paths().binary)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run mcp-auth hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("mcp-auth hash-password");
    assert!(output.status.success(), "mcp-auth hash-password failed");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_string()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// Where the binary, the manifest and the components are.
struct Paths {
    binary: PathBuf,
    manifest: PathBuf,
    cache_dir: PathBuf,
}

/// Builds the host binary once per test run (a no-op when it is fresh) and checks that the
/// components exist.
fn paths() -> &'static Paths {
    static PATHS: OnceLock<Paths> = OnceLock::new();
    PATHS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root")
            .to_path_buf();
        // This test binary is <target>/<profile>/deps/<name>: the host is built into the same
        // target directory and profile.
        let exe = std::env::current_exe().expect("current exe");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>/deps");
        let target = profile_dir.parent().expect("<target>");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        build_host(&root, target, release);
        let binary = profile_dir.join("mcp-auth");
        assert!(binary.exists(), "{} is missing", binary.display());
        let paths = Paths {
            binary,
            manifest: manifest(&root, target),
            cache_dir: target.join("mcp-auth-e2e-cache"),
        };
        warm_cache(&paths);
        paths
    })
}

/// Starts and stops one host, so that the components are compiled into the cache once,
/// instead of by every test's host at the same time.
fn warm_cache(paths: &Paths) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let log = dir.path().join("warm-up.log");
    let mut child = spawn(
        paths,
        dir.path(),
        &HostOptions::default(),
        &format!("http://127.0.0.1:{port}"),
        port,
        &log,
    );
    // Components are loaded (and compiled) before the host listens; its exit or its first
    // answer ends the wait. Failures show up in the tests' own hosts.
    let browser = Browser::new();
    let started = Instant::now();
    let health = format!("http://127.0.0.1:{port}/health");
    while started.elapsed() < START_LIMIT
        && matches!(child.try_wait(), Ok(None))
        && browser.try_get(&health).is_none()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Builds the host binary as `cargo test --workspace` does (scripts/test's command builds it,
/// since the host package has integration tests): `cargo test --workspace --no-run` with the
/// cargo running the tests. A narrower `cargo build -p mcp-auth-host` would unify dependency
/// features differently and rebuild all of wasmtime a second time.
fn build_host(root: &Path, target: &Path, release: bool) {
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(root)
        .args(["test", "--workspace", "--no-run", "--quiet"])
        .env("CARGO_TARGET_DIR", target);
    // Cargo gives this test process the package's own variables; build scripts that track one
    // (ring's tracks CARGO_MANIFEST_DIR) would rebuild half the host if they leaked in.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_package = [
            "CARGO_MANIFEST_",
            "CARGO_PKG_",
            "CARGO_CRATE_NAME",
            "CARGO_BIN_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ];
        if per_package.iter().any(|p| name.starts_with(p)) {
            command.env_remove(name.as_ref());
        }
    }
    if release {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build for the host");
    assert!(status.success(), "building the mcp-auth host failed");
}

/// The repository's `spin.toml`, or, when the target directory is not `<root>/target`, a copy
/// whose component sources point into the real one.
fn manifest(root: &Path, target: &Path) -> PathBuf {
    let original = root.join("spin.toml");
    let text = std::fs::read_to_string(&original).expect("read spin.toml");
    let wasm_dir = target.join("wasm32-wasip2").join("release");
    let mut missing = Vec::new();
    for line in text.lines() {
        if let Some(source) = line
            .trim()
            .strip_prefix("source = \"target/wasm32-wasip2/release/")
        {
            let name = source.trim_end_matches('"');
            if !wasm_dir.join(name).exists() {
                missing.push(name.to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "components not built: {} missing in {}. Build them first with \
         `cargo build --target wasm32-wasip2 --release` (scripts/test does).",
        missing.join(", "),
        wasm_dir.display()
    );
    let canonical = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    if canonical(target) == canonical(&root.join("target")) {
        return original;
    }
    let rewritten = text.replace(
        "source = \"target/",
        &format!("source = \"{}/", target.display()),
    );
    let dir = target.join("mcp-auth-e2e-manifest");
    std::fs::create_dir_all(&dir).expect("manifest dir");
    let path = dir.join(format!("spin-{}.toml", std::process::id()));
    std::fs::write(&path, rewritten).expect("write manifest copy");
    path
}
