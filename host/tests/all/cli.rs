//! The `mcp-auth` binary itself: `hash-password`, and `serve` with guest stderr forwarding,
//! request logs without query strings, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
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
    let manifest = support::write_app(dir.path(), &support::single_component_manifest(""), None);
    let cache =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-guests/cache");
    // Port 0: the system picks the port, and the "serving" line must say which.
    let mut server = Stopped(
        Command::new(BIN)
            .arg("serve")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--cache-dir")
            .arg(&cache)
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut server.0;
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let addr: SocketAddr = loop {
        match received.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => {
                let address = line
                    .contains("serving")
                    .then(|| {
                        line.split_whitespace()
                            .find_map(|f| f.strip_prefix("address="))
                    })
                    .flatten()
                    .map(|a| a.parse().unwrap_or_else(|e| panic!("{a}: {e}")));
                log.push(line);
                if let Some(address) = address {
                    break address;
                }
            }
            Err(e) => {
                panic!("no \"serving\" line ({e}): {}", log.join("\n"));
            }
        }
    };
    assert_ne!(
        addr.port(),
        0,
        "the log names the requested port, not the bound one"
    );
    assert_eq!(
        support::request(addr, "GET", "/stderr?token=do-not-log", Vec::new(), &[]).await,
        (200, "ok".into())
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    reader.join().unwrap();
    log.extend(received.try_iter());
    let stderr = log.join("\n");
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("[guest] guest line on stderr"), "{stderr}");
    assert!(stderr.contains("component=guest"), "{stderr}");
    assert!(stderr.contains("status=200"), "{stderr}");
    assert!(!stderr.contains("do-not-log"), "{stderr}");
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
