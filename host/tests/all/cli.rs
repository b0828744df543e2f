//! The `mcp-auth` binary itself: `hash-password`, and `serve` with guest stderr forwarding,
//! request logs without query strings, the bound address in its `serving` line, and a clean
//! stop on SIGTERM, even one sent the moment it says it serves.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

use argon2::{PasswordHash, PasswordVerifier};

use crate::support;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-auth");

#[test]
fn hash_password_prints_a_verifiable_phc_string() {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let phc = String::from_utf8(out.stdout).unwrap();
    let phc = phc.trim();
    assert!(phc.starts_with("$argon2id$"), "{phc}");
    let parsed = PasswordHash::new(phc).unwrap();
    assert!(argon2::Argon2::default()
        .verify_password(b"correct horse", &parsed)
        .is_ok());
    assert!(argon2::Argon2::default()
        .verify_password(b"wrong", &parsed)
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_forwards_stderr_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    assert_eq!(
        support::request(
            serving.addr,
            "GET",
            "/stderr?token=do-not-log",
            Vec::new(),
            &[]
        )
        .await,
        (200, "ok".into())
    );
    let (status, stderr) = serving.terminate();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("[guest] guest line on stderr"), "{stderr}");
    assert!(stderr.contains("component=guest"), "{stderr}");
    assert!(stderr.contains("status=200"), "{stderr}");
    assert!(!stderr.contains("do-not-log"), "{stderr}");
}

/// `/metrics` is not public (issue 16 item 15): off by default, and with `--metrics-listen`
/// served on that address only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_only_on_the_metrics_listen_address() {
    let dir = tempfile::tempdir().unwrap();
    let serving = Serving::start(dir.path());
    let get = |addr, path| support::request(addr, "GET", path, Vec::new(), &[]);
    // The test guest answers every path (echoing Spin's headers): `/metrics` reaches it
    // like any other, and no metrics come back.
    let reaches_the_guest = |(status, body): (u16, String)| {
        status == 200
            && body.contains("spin-path-info: /metrics")
            && !body.contains("mcp_auth_requests_total")
    };
    assert!(reaches_the_guest(get(serving.addr, "/metrics").await));
    serving.terminate();

    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_addr = free.local_addr().unwrap();
    drop(free);
    let serving = Serving::start_with(dir.path(), &["--metrics-listen", &metrics_addr.to_string()]);
    get(serving.addr, "/ok").await;
    let (status, text) = get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("mcp_auth_requests_total{component=\"guest\""),
        "{text}"
    );
    assert!(reaches_the_guest(get(serving.addr, "/metrics").await));
    let (status, stderr) = serving.terminate();
    assert!(status.success(), "{stderr}");
}

/// The handlers must be in place before the `serving` line: registered afterwards, by a task
/// that had not run yet, a busy machine let SIGTERM kill the process outright.
#[test]
fn serve_stops_gracefully_on_a_sigterm_sent_as_soon_as_it_says_serving() {
    for _ in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let (status, stderr) = Serving::start(dir.path()).terminate();
        assert!(status.success(), "{status}: {stderr}");
        assert!(stderr.contains("shutting down"), "{stderr}");
    }
}

/// `mcp-auth serve` of the test guest on port 0, once it has said where it listens.
pub(crate) struct Serving {
    server: Stopped,
    /// Where the `serving` line says it listens.
    pub(crate) addr: SocketAddr,
    log: Vec<String>,
    lines: Receiver<String>,
    reader: JoinHandle<()>,
}

impl Serving {
    fn start(dir: &Path) -> Serving {
        Serving::start_with(dir, &[])
    }

    /// [`Serving::start`] with more `mcp-auth serve` arguments.
    fn start_with(dir: &Path, args: &[&str]) -> Serving {
        let manifest = support::single_component_manifest("");
        Serving::start_app(serve(dir, &manifest, args))
    }

    /// `command` (see [`serve`]), once it has said where it listens.
    pub(crate) fn start_app(mut command: Command) -> Serving {
        let mut server = Stopped(command.stderr(Stdio::piped()).spawn().unwrap());
        let stderr = server.0.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        let addr = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("no \"serving\" line ({e}): {}", log.join("\n")));
            let address = serving_address(&line);
            log.push(line);
            if let Some(address) = address {
                break address;
            }
        };
        assert_ne!(
            addr.port(),
            0,
            "the log names the requested port, not the bound one"
        );
        Serving {
            server,
            addr,
            log,
            lines,
            reader,
        }
    }

    /// SIGTERM, then the exit status and everything the process wrote to stderr.
    pub(crate) fn terminate(self) -> (ExitStatus, String) {
        let Serving {
            mut server,
            mut log,
            lines,
            reader,
            ..
        } = self;
        let killed = Command::new("kill")
            .args(["-TERM", &server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = server.0.wait().unwrap();
        reader.join().unwrap();
        log.extend(lines.try_iter());
        (status, log.join("\n"))
    }
}

/// `mcp-auth serve` of `manifest` (written to `dir`) on port 0, with more `args`.
pub(crate) fn serve(dir: &Path, manifest: &str, args: &[&str]) -> Command {
    let manifest = support::write_app(dir, manifest, None);
    let cache = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-guests/cache");
    let mut command = Command::new(BIN);
    // Port 0: the system picks the port, and the "serving" line must say which.
    command
        .arg("serve")
        .arg("--manifest")
        .arg(&manifest)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .env("RUST_LOG", "info");
    command
}

/// The address of the `serving` log line (`... serving address=127.0.0.1:PORT ...`).
fn serving_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("serving") {
        return None;
    }
    let address = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("address="))?;
    Some(address.parse().unwrap_or_else(|e| panic!("{address}: {e}")))
}

/// A child process, killed if the test ends before it does (a failed assertion), so that no
/// server outlives its test.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
