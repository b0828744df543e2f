//! `tests/node/mcp_server.mjs`: a protected MCP server on the official TypeScript SDK, run by
//! Node (`MCP_AUTH_NODE`, else `node` on the PATH) with the packages `scripts/test` installs
//! from `tests/node/package-lock.json` (`npm ci` into `tests/node/node_modules`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::python::{Script, Verify};

/// The TypeScript server, bound but not serving until [`NodeServer::trust`].
pub struct NodeServer {
    script: Script,
    /// Its MCP endpoint, which is also its resource identifier (RFC 8707).
    pub url: String,
}

impl NodeServer {
    pub fn start(dir: &Path, verify: Verify) -> NodeServer {
        let mode = match verify {
            Verify::Jwks => "jwks",
            Verify::Introspection => "introspection",
        };
        let mut command = Command::new(node());
        command
            .arg(node_dir().join("mcp_server.mjs"))
            .args(["--verify", mode])
            .current_dir(node_dir());
        let mut script = Script::spawn(dir, "mcp_server.mjs", command);
        let port = script.expect("port");
        NodeServer {
            script,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }

    /// Gives the server mcp-auth's issuer (as typed for mcp-auth) and waits until it serves.
    pub fn trust(&mut self, issuer: &str) {
        self.script.send(issuer);
        self.script.expect("ready");
    }

    /// What the server wrote to stderr so far (refused tokens, with the reason).
    pub fn log_text(&self) -> String {
        self.script.log_text()
    }
}

fn node_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// The Node interpreter, checked once to find the SDK.
fn node() -> &'static Path {
    static NODE: OnceLock<PathBuf> = OnceLock::new();
    NODE.get_or_init(|| {
        let node = std::env::var_os("MCP_AUTH_NODE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("node"));
        let how = "scripts/test installs them (`npm ci` in tests/node) and sets MCP_AUTH_NODE; \
                   .ci/run installs nodejs and npm";
        let check = Command::new(&node)
            .current_dir(node_dir())
            .args([
                "--input-type=module",
                "-e",
                "await import('@modelcontextprotocol/sdk/server/mcp.js'); await import('jose');",
            ])
            .output()
            .unwrap_or_else(|e| panic!("no Node at {}: {e}. {how}", node.display()));
        assert!(
            check.status.success(),
            "Node ({}) does not find the TypeScript SDK packages in tests/node: {}. {how}",
            node.display(),
            String::from_utf8_lossy(&check.stderr)
        );
        node
    })
}
