//! The MCP Inspector's browser flow against `mcp-auth serve`, in headless Chromium: a page on
//! another origin (`http://localhost:<port>`, as the Inspector's `http://localhost:6274`) runs
//! the official TypeScript SDK's `auth()` with the Inspector's provider
//! (`tests/node/inspector_flow.mjs`, bundled here with esbuild): protected resource metadata
//! and authorization server metadata (with `MCP-Protocol-Version`, so preflighted),
//! registration, the sign-in, the code exchange and a refresh, every call a cross-origin
//! `fetch` that CORS must allow.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::chromium::{Chromium, Key};
use crate::support::site::Site;
use crate::support::*;

/// `tests/node/inspector_flow.mjs` and the SDK it imports, bundled for the browser.
fn inspector_bundle(out_dir: &Path) -> String {
    let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("node");
    let esbuild: PathBuf = std::env::var_os("MCP_AUTH_ESBUILD")
        .map(PathBuf::from)
        .unwrap_or_else(|| node.join("node_modules/.bin/esbuild"));
    let out = out_dir.join("inspector_flow.js");
    let status = Command::new(&esbuild)
        .arg(node.join("inspector_flow.mjs"))
        .args([
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--log-level=warning",
        ])
        .arg(format!("--outfile={}", out.display()))
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "{} cannot run ({e}): scripts/test installs tests/node's packages",
                esbuild.display()
            )
        });
    assert!(status.success(), "esbuild failed");
    std::fs::read_to_string(&out).expect("the bundle")
}

#[test]
fn the_inspectors_browser_flow_registers_signs_in_and_refreshes_from_another_origin() {
    let dir = tempfile::tempdir().expect("temp dir");
    // The host also publishes the MCP server's RFC 9728 metadata, for `/mcp` at its origin.
    let port = free_port();
    let server_url = format!("http://127.0.0.1:{port}/mcp");
    let host = Host::start(
        &dir.path().join("host"),
        &HostOptions {
            port: Some(port),
            ..HostOptions::default()
        }
        .variable("MCP_SERVER", &server_url),
    );

    let script = inspector_bundle(dir.path()).replace("</script", "<\\/script");
    let page = format!(
        "<!doctype html><title>inspector</title><pre id=result></pre>\
         <script type=module>{script}</script>"
    );
    let inspector = Site::start();
    inspector.put("/inspector", &page);
    inspector.put("/oauth/callback", &page);
    // Its own origin, named as the Inspector's is.
    let origin = inspector.base.replace("127.0.0.1", "localhost");

    let c = Chromium::start();
    let start = url::Url::parse_with_params(
        &format!("{origin}/inspector"),
        [("server", server_url.as_str())],
    )
    .expect("URL");
    c.goto(start.as_str());
    c.wait_for("the login page or a failure", |c| {
        c.title() == "Sign in" || c.title() == "failed"
    });
    assert_eq!(c.title(), "Sign in", "{}", c.text("body"));
    assert!(c.text("body").contains("MCP Inspector asks you to sign in"));
    c.type_keys("demo");
    c.press(Key::Tab);
    c.type_keys("demo");
    c.press(Key::Enter);
    c.wait_for_title("Authorize access");
    c.click("button[value=approve]");
    c.wait_for("the Inspector's report", |c| {
        c.url().starts_with(&format!("{origin}/oauth/callback"))
            && (c.title() == "done" || c.title() == "failed")
    });
    let report: Value = serde_json::from_str(&c.text("#result")).expect("a JSON report");
    assert_eq!(c.title(), "done", "{report:#}");

    assert_eq!(report["exchanged"], "AUTHORIZED");
    assert_eq!(report["refreshed"], "AUTHORIZED");
    let issuer = Browser::new()
        .get(&host.url("/.well-known/oauth-authorization-server"))
        .json()["issuer"]
        .clone();
    assert_eq!(report["iss"], issuer);
    let client_id = report["client"]["client_id"].as_str().expect("client_id");
    let (first, second) = (&report["first"], &report["second"]);
    assert_eq!(
        first["token_type"].as_str().map(str::to_lowercase),
        Some("bearer".into())
    );
    assert_ne!(first["access_token"], second["access_token"]);
    assert_ne!(first["refresh_token"], second["refresh_token"], "rotated");

    // The refreshed token is for the MCP server, the user and the Inspector.
    let access = second["access_token"].as_str().expect("access_token");
    let info = introspect(&Browser::new(), &host.base, access);
    assert_eq!(info["active"], true, "{info}");
    assert_eq!(info["aud"], server_url.as_str());
    assert_eq!(info["sub"], "demo");
    assert_eq!(info["client_id"], client_id);
}
