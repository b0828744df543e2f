//! The `mcp-auth` binary itself: `hash-password`, and `serve` with guest stderr forwarding,
//! request logs without query strings, and a clean stop on SIGTERM.

use std::io::{Read, Write};
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
    // An ephemeral port, released for the child to bind.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let cache =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-guests/cache");
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--manifest")
        .arg(&manifest)
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--cache-dir")
        .arg(&cache)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = false;
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            ready = true;
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("mcp-auth exited early ({status}): {err}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "mcp-auth did not start listening");
    assert_eq!(
        support::request(addr, "GET", "/stderr?token=do-not-log", Vec::new(), &[]).await,
        (200, "ok".into())
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("[guest] guest line on stderr"), "{stderr}");
    assert!(stderr.contains("component=guest"), "{stderr}");
    assert!(stderr.contains("status=200"), "{stderr}");
    assert!(!stderr.contains("do-not-log"), "{stderr}");
}
