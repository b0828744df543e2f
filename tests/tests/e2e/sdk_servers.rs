//! Resource servers built on the official TypeScript and Rust MCP SDKs trust mcp-auth, each
//! configured as its SDK's documentation shows and as an operator would: with the very string
//! given to mcp-auth as `MCP_AUTH_SERVER_URL` (`http://127.0.0.1:PORT`, no trailing slash), never
//! with a value the test read from mcp-auth. Each SDK parses that string into its URL type (a
//! WHATWG `URL`, a `url::Url`), which serialises an origin with a `/`: the server publishes that
//! in its RFC 9728 metadata and expects it as the tokens' `iss`, so mcp-auth's issuer must be
//! the same serialisation for a client to get through.
//!
//! The TypeScript server is `tests/node/mcp_server.mjs` (`mcpAuthMetadataRouter`,
//! `requireBearerAuth`, `StreamableHTTPServerTransport`); the Rust one is rmcp's
//! `StreamableHttpService` on axum ([`rmcp_server`]). The official Python SDK's client
//! (`tests/python/mcp_client.py`) discovers everything from the server's 401, registers, signs
//! in, calls `whoami`, refreshes, and calls it again; each server checks tokens by JWKS or by
//! introspection. A token for another resource is refused.

mod node;
mod rmcp_server;

use serde_json::{json, Value};

use crate::support::python::{Script, Verify};
use crate::support::*;
use node::NodeServer;
use rmcp_server::RmcpServer;

/// Short enough that the client's second call finds its access token expired, which makes the
/// SDK refresh it (seconds).
const SHORT_ACCESS_TOKEN_LIFETIME: &str = "5";

#[test]
fn typescript_sdk_server_with_jwks() {
    python_client_through(Sdk::TypeScript, Verify::Jwks);
}

#[test]
fn typescript_sdk_server_with_introspection() {
    python_client_through(Sdk::TypeScript, Verify::Introspection);
}

#[test]
fn rmcp_server_with_jwks() {
    python_client_through(Sdk::Rust, Verify::Jwks);
}

#[test]
fn rmcp_server_with_introspection() {
    python_client_through(Sdk::Rust, Verify::Introspection);
}

/// A token mcp-auth issued for another resource (RFC 8707 audience) is refused with a 401 that
/// names the server's metadata, for its audience: by each SDK's server, each way it checks.
#[test]
fn the_sdk_servers_refuse_a_token_for_another_resource() {
    for sdk in [Sdk::TypeScript, Sdk::Rust] {
        for verify in [Verify::Jwks, Verify::Introspection] {
            let world = World::start(sdk, verify);
            let browser = Browser::new();
            let base = world.host.base.as_str();
            let client_id = register_public_client(&browser, base);
            // `redeem` asks for a token for RESOURCE, which the host also serves.
            // The `iss` of the redirect (RFC 9207) is whatever mcp-auth publishes.
            let metadata = browser
                .get(&format!("{base}/.well-known/oauth-authorization-server"))
                .json();
            let issuer = text(&metadata, "issuer");
            let code = sign_in_locally(&browser, base, issuer, &client_id);
            let foreign = tokens_of(&redeem(&browser, base, &client_id, &code));
            let foreign = text(&foreign, "access_token");
            let refused = initialize(&browser, world.server.url(), Some(foreign));
            assert_eq!(refused.status, 401, "{sdk:?} {verify:?}: {}", refused.body);
            assert!(
                refused
                    .header("www-authenticate")
                    .is_some_and(|h| h.contains("resource_metadata=")),
                "{sdk:?} {verify:?}: {:?}",
                refused.headers
            );
            // Refused for its audience, not for anything else.
            let reason = match (sdk, verify) {
                (Sdk::TypeScript, Verify::Jwks) => r#"refused a token: unexpected "aud" claim"#,
                (Sdk::Rust, Verify::Jwks) => "refused a token: Required audience mismatch",
                (_, Verify::Introspection) => RESOURCE,
            };
            let log = world.server.refusals();
            assert!(log.contains(reason), "{sdk:?} {verify:?}: {log}");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Sdk {
    TypeScript,
    Rust,
}

/// A resource server of either SDK.
enum Server {
    TypeScript(NodeServer),
    Rust(RmcpServer),
}

impl Server {
    fn start(sdk: Sdk, dir: &std::path::Path, verify: Verify) -> Server {
        match sdk {
            Sdk::TypeScript => Server::TypeScript(NodeServer::start(dir, verify)),
            Sdk::Rust => Server::Rust(RmcpServer::start(verify)),
        }
    }

    fn url(&self) -> &str {
        match self {
            Server::TypeScript(s) => &s.url,
            Server::Rust(s) => &s.url,
        }
    }

    /// Configures the server with `issuer`, exactly as given to mcp-auth.
    fn trust(&mut self, issuer: &str) {
        match self {
            Server::TypeScript(s) => s.trust(issuer),
            Server::Rust(s) => s.trust(issuer),
        }
    }

    /// Why the server refused tokens so far.
    fn refusals(&self) -> String {
        match self {
            Server::TypeScript(s) => s.log_text(),
            Server::Rust(s) => s.refusals(),
        }
    }
}

/// An SDK's resource server trusting a host that issues tokens for it (and for [`RESOURCE`]).
struct World {
    // Dropped in this order: the server stops before the host, the directory goes last.
    server: Server,
    host: Host,
    _dir: tempfile::TempDir,
}

impl World {
    fn start(sdk: Sdk, verify: Verify) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start(sdk, dir.path(), verify);
        let options = HostOptions::default()
            .variable("MCP_SERVER", &format!("{},{RESOURCE}", server.url()))
            .variable("ACCESS_TOKEN_LIFETIME", SHORT_ACCESS_TOKEN_LIFETIME);
        let host = Host::start(&dir.path().join("host"), &options);
        // What the operator typed as MCP_AUTH_SERVER_URL (the host's default).
        let typed = host.base.clone();
        assert!(!typed.ends_with('/'), "{typed}");
        server.trust(&typed);
        World {
            server,
            host,
            _dir: dir,
        }
    }
}

/// The Python SDK's client through the SDK's server: two `whoami` calls, a refresh between.
fn python_client_through(sdk: Sdk, verify: Verify) {
    let world = World::start(sdk, verify);
    let dir = tempfile::tempdir().expect("temp dir");
    let url = world.server.url().to_string();
    let args = ["--server", url.as_str(), "--redirect-uri", REDIRECT];
    let mut client = Script::start(dir.path(), "mcp_client.py", &args);
    let outcome = loop {
        let line = client.next_line();
        if let Some(authorize) = line.strip_prefix("authorize ") {
            let params = query_of(authorize);
            assert_eq!(params["resource"], url, "RFC 8707 resource");
            let back = approve_as_demo(&Browser::new(), authorize, "Python SDK e2e");
            client.send(&back.location());
        } else if let Some(result) = line.strip_prefix("result ") {
            break serde_json::from_str::<Value>(result).expect("the client's result");
        } else {
            panic!("unexpected line from the Python client: {line}");
        }
    };
    let client_id = text(&outcome, "client_id");
    let expected = format!("demo via {client_id}");
    assert_eq!(
        outcome["whoami"],
        json!([expected, expected]),
        "{sdk:?} {verify:?}; the server refused: {}",
        world.server.refusals()
    );
    // The second call came after a refresh (the SDK stores each token response).
    let tokens = outcome["tokens"].as_array().expect("token history");
    assert!(tokens.len() >= 2, "no refresh: {tokens:?}");
}
