//! The core does no I/O: nothing in its dependency tree (for the wasm target it ships on)
//! opens sockets, files or databases. Checked with `cargo tree`, so a dependency that brings
//! one in fails this test rather than a review.

use std::process::Command;

/// Crates whose presence would mean the core can reach the network or storage by itself.
const IO_CRATES: &[&str] = &[
    "tokio",
    "mio",
    "hyper",
    "reqwest",
    "ureq",
    "socket2",
    "rusqlite",
    "redis",
    "wasmtime",
    "async-std",
    "smol",
    "curl",
    "isahc",
    "native-tls",
    "rustls",
];

#[test]
fn no_io_crate_in_the_core_dependency_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "mcp-auth-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--target",
            "wasm32-wasip2",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        names.contains(&"jwt-simple"),
        "the tree was read: {names:?}"
    );
    let found: Vec<&&str> = IO_CRATES.iter().filter(|c| names.contains(c)).collect();
    assert!(found.is_empty(), "I/O crates in the core: {found:?}");
}
