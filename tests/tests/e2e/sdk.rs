//! Real MCP clients, unmodified, against mcp-auth: the official Python SDK (`mcp`, its
//! `OAuthClientProvider`) and the official Rust SDK (`rmcp` with `auth`) get their tokens from
//! `mcp-auth serve` and call the `whoami` tool of a protected MCP server (the Python SDK's
//! `MCPServer`, `tests/python/mcp_server.py`), which checks each token by JWKS or by
//! introspection. That server is configured as a user would: from the very string the operator
//! gave mcp-auth as `MCP_AUTH_SERVER_URL`, never from mcp-auth's metadata.
//!
//! Each client discovers everything from the MCP server's 401 (RFC 9728, then RFC 8414), gets a
//! client id by dynamic registration (RFC 7591) or as a Client ID Metadata Document URL served
//! here, authorizes with PKCE and `resource` (the user's part is [`approve_as_demo`]), redeems
//! the code, calls the tool, refreshes, and calls it again.
//!
//! Both SDKs accept only an `https` metadata document URL for CIMD, and the host's TLS trusts
//! public roots only, so the loopback `http` document is handed to them as their client id
//! (pre-registered client information): mcp-auth still resolves it as a metadata document
//! (fetched here, with `cimd_allow_private` and `cimd_outbound_host`).

use rmcp::model::CallToolRequestParams;
use rmcp::transport::auth::{AuthClient, AuthorizationRequest, OAuthState, OAuthTokenResponse};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt as _;
use serde_json::{json, Value};

use crate::support::metadata_document::MetadataDocument;
use crate::support::python::{McpServer, Script, Verify};
use crate::support::*;

/// Short enough that the Python client's second call finds its access token expired, which
/// makes the SDK refresh it (seconds).
const SHORT_ACCESS_TOKEN_LIFETIME: &str = "5";

#[test]
fn python_sdk_with_dynamic_registration() {
    let world = World::start(Verify::Jwks, None, SHORT_ACCESS_TOKEN_LIFETIME);
    let outcome = python_client(&world, None);
    let client_id = text(&outcome, "client_id");
    assert!(!client_id.starts_with("http"), "{client_id}");
    let registered = world.audit("client_registered");
    assert!(
        registered.iter().any(|e| e["client_id"] == client_id),
        "{registered:?}"
    );
    check_python_outcome(&world, &outcome, client_id);
}

#[test]
fn python_sdk_with_a_client_id_metadata_document() {
    let document = MetadataDocument::serve("Python SDK e2e", REDIRECT);
    let world = World::start(
        Verify::Introspection,
        Some(&document),
        SHORT_ACCESS_TOKEN_LIFETIME,
    );
    let outcome = python_client(&world, Some(&document.url));
    let client_id = text(&outcome, "client_id");
    assert_eq!(client_id, document.url);
    assert!(
        document.fetches() > 0,
        "mcp-auth never fetched the document"
    );
    assert!(world.audit("client_registered").is_empty());
    // Given an https document URL, the SDK would use it: mcp-auth advertises
    // `client_id_metadata_document_supported`.
    assert_eq!(outcome["would_use_cimd"], true);
    check_python_outcome(&world, &outcome, client_id);
}

#[test]
fn rmcp_with_dynamic_registration() {
    let world = World::start(Verify::Jwks, None, "3600");
    let client_id = rmcp_client(&world, None);
    assert!(!client_id.starts_with("http"), "{client_id}");
    let registered = world.audit("client_registered");
    assert!(
        registered.iter().any(|e| e["client_id"] == client_id),
        "{registered:?}"
    );
}

#[test]
fn rmcp_with_a_client_id_metadata_document() {
    let document = MetadataDocument::serve("rmcp e2e", REDIRECT);
    let world = World::start(Verify::Introspection, Some(&document), "3600");
    let client_id = rmcp_client(&world, Some(&document.url));
    assert_eq!(client_id, document.url);
    assert!(
        document.fetches() > 0,
        "mcp-auth never fetched the document"
    );
    assert!(world.audit("client_registered").is_empty());
}

/// The operator gives mcp-auth `MCP_AUTH_SERVER_URL=http://127.0.0.1:PORT` and the SDK's
/// `AuthSettings` the same string (`mcp_server.py`). The SDK publishes it in its RFC 9728
/// metadata as its URL type serialises it, with a `/`; the official client then requires
/// mcp-auth's RFC 8414 `issuer` to be that very string (§3.3). The flows above run on this
/// configuration; this names the strings they depend on.
#[test]
fn the_sdk_server_and_mcp_auth_publish_one_issuer_for_the_url_as_typed() {
    let world = World::start(Verify::Jwks, None, "3600");
    let browser = Browser::new();
    let base = world.host.base.as_str();
    let mut resource_metadata = url::Url::parse(&world.server.url).expect("server URL");
    resource_metadata.set_path("/.well-known/oauth-protected-resource/mcp");
    let resource_metadata = browser.get(resource_metadata.as_str()).json();
    let metadata = browser
        .get(&world.host.url("/.well-known/oauth-authorization-server"))
        .json();
    let issuer = format!("{base}/");
    assert_eq!(resource_metadata["authorization_servers"], json!([issuer]));
    assert_eq!(metadata["issuer"], issuer);
    assert_eq!(metadata["token_endpoint"], format!("{base}/token"));
}

/// A token for another resource (RFC 8707 audience) is refused, whichever way the server
/// checks (the tests above show its own tokens pass both ways).
#[test]
fn the_mcp_server_refuses_a_token_for_another_resource() {
    for verify in [Verify::Jwks, Verify::Introspection] {
        let world = World::start(verify, None, "3600");
        let browser = Browser::new();
        let base = world.host.base.as_str();
        let client_id = register_public_client(&browser, base);
        // `redeem` asks for a token for RESOURCE, which the host also serves.
        let code = sign_in_locally(&browser, base, &issuer_of(base), &client_id);
        let foreign = tokens_of(&redeem(&browser, base, &client_id, &code));
        let foreign = text(&foreign, "access_token");
        let refused = initialize(&browser, &world.server.url, Some(foreign));
        assert_eq!(refused.status, 401, "{verify:?}: {}", refused.body);
        assert!(
            refused
                .header("www-authenticate")
                .is_some_and(|h| h.contains("resource_metadata=")),
            "{:?}",
            refused.headers
        );
        // Refused for its audience, not for anything else.
        let reason = match verify {
            Verify::Jwks => "refused a token: Audience doesn't match",
            Verify::Introspection => RESOURCE,
        };
        let log = world.server.log_text();
        assert!(log.contains(reason), "{verify:?}: {log}");
    }
}

/// A protected MCP server trusting a host that issues tokens for it (and for [`RESOURCE`]).
struct World {
    // Dropped in this order: the clients' counterparts stop before the directory goes.
    server: McpServer,
    host: Host,
    _dir: tempfile::TempDir,
}

impl World {
    fn start(
        verify: Verify,
        document: Option<&MetadataDocument>,
        access_token_lifetime: &str,
    ) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = McpServer::start(dir.path(), verify);
        let mut options = HostOptions::default()
            .variable("MCP_SERVER", &format!("{},{RESOURCE}", server.url))
            .variable("ACCESS_TOKEN_LIFETIME", access_token_lifetime);
        if let Some(document) = document {
            let origin = url::Url::parse(&document.url).expect("document URL");
            options = options
                .variable("CIMD_ALLOW_PRIVATE", "true")
                .variable("CIMD_OUTBOUND_HOST", &origin.origin().ascii_serialization());
        }
        let host = Host::start(&dir.path().join("host"), &options);
        // The host's MCP_AUTH_SERVER_URL is its address, as typed: no trailing slash.
        server.trust(&host.base);
        World {
            server,
            host,
            _dir: dir,
        }
    }

    /// The host's audit events (one JSON line each in its log) of kind `event`.
    fn audit(&self, event: &str) -> Vec<Value> {
        self.host
            .log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(&line[line.find('{')?..]).ok())
            .filter(|e| e["audit"] == "mcp-auth" && e["event"] == event)
            .collect()
    }

    /// Checks that `client_id` refreshed a token (the audit says so) and that the rotation
    /// left `old` inactive and `new` active (OAuth 2.1 §4.3.1).
    fn check_refresh(&self, client_id: &str, old: &str, new: &str) {
        assert_ne!(old, new, "the refresh token did not rotate");
        let refreshes: Vec<Value> = self
            .audit("token_issued")
            .into_iter()
            .filter(|e| e["client_id"] == client_id && e["grant_type"] == "refresh_token")
            .collect();
        assert!(!refreshes.is_empty(), "no refresh by {client_id}");
        let browser = Browser::new();
        assert_eq!(introspect(&browser, &self.host.base, old)["active"], false);
        assert_eq!(introspect(&browser, &self.host.base, new)["active"], true);
    }
}

/// Runs `tests/python/mcp_client.py` against the world's server, signing in for it whenever
/// the SDK opens an authorization URL; returns the script's result.
fn python_client(world: &World, client_id_url: Option<&str>) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = vec![
        "--server",
        world.server.url.as_str(),
        "--redirect-uri",
        REDIRECT,
    ];
    if let Some(url) = client_id_url {
        args.extend(["--client-id-url", url]);
    }
    let mut client = Script::start(dir.path(), "mcp_client.py", &args);
    loop {
        let line = client.next_line();
        if let Some(url) = line.strip_prefix("authorize ") {
            let params = query_of(url);
            assert_eq!(params["resource"], world.server.url, "RFC 8707 resource");
            assert_eq!(params["code_challenge_method"], "S256");
            let back = approve_as_demo(&Browser::new(), url, "Python SDK e2e");
            client.send(&back.location());
        } else if let Some(result) = line.strip_prefix("result ") {
            return serde_json::from_str(result).expect("the client's result");
        } else {
            panic!("unexpected line from the Python client: {line}");
        }
    }
}

/// Both calls answered for demo and the client; the second one came after a refresh.
fn check_python_outcome(world: &World, outcome: &Value, client_id: &str) {
    let expected = format!("demo via {client_id}");
    assert_eq!(outcome["whoami"], json!([expected, expected]));
    // The SDK stores each token response; the last one came from the refresh.
    let tokens = outcome["tokens"].as_array().expect("token history");
    let [.., before, after] = tokens.as_slice() else {
        panic!("no refresh: {tokens:?}");
    };
    world.check_refresh(
        client_id,
        text(before, "refresh_token"),
        text(after, "refresh_token"),
    );
}

/// rmcp: discovery from the server's challenge, registration (dynamic, or `client_id_url` as a
/// ready client id), authorization, a tool call, an explicit refresh, another call. Returns
/// the client id.
fn rmcp_client(world: &World, client_id_url: Option<&str>) -> String {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let browser = Browser::new();
    let url = world.server.url.as_str();

    // The server's 401 names its metadata (RFC 9728 §5.1); rmcp starts discovery from it.
    let challenge = initialize(&browser, url, None);
    assert_eq!(challenge.status, 401, "{}", challenge.body);
    let challenge = challenge
        .header("www-authenticate")
        .expect("WWW-Authenticate")
        .to_string();
    let mut request = AuthorizationRequest::new(REDIRECT)
        .with_client_name("rmcp e2e")
        .with_challenge(challenge);
    if let Some(client_id) = client_id_url {
        request = request.with_preregistered_client(client_id);
    }
    let mut state = runtime
        .block_on(OAuthState::new(url, None))
        .expect("rmcp OAuth state");
    runtime
        .block_on(state.start_authorization(request))
        .expect("rmcp discovery and registration");
    let authorization_url = runtime
        .block_on(state.get_authorization_url())
        .expect("authorization URL");
    assert_eq!(query_of(&authorization_url)["resource"], url, "RFC 8707");
    let back = approve_as_demo(&Browser::new(), &authorization_url, "rmcp e2e");
    runtime
        .block_on(state.handle_callback_url(&back.location()))
        .expect("rmcp token request");
    let manager = state
        .into_authorization_manager()
        .expect("an authorized manager");
    let (client_id, first) = runtime
        .block_on(manager.get_credentials())
        .expect("credentials");
    let first_refresh = refresh_token_of(&first.expect("a token response"));

    let auth = AuthClient::new(reqwest::Client::new(), manager);
    let expected = format!("demo via {client_id}");
    assert_eq!(runtime.block_on(call_whoami(&auth, url)), expected);
    let refreshed = runtime
        .block_on(async { auth.auth_manager.lock().await.refresh_token().await })
        .expect("rmcp refresh");
    let new_refresh = refresh_token_of(&refreshed);
    world.check_refresh(&client_id, &first_refresh, &new_refresh);
    // The next call carries the refreshed access token.
    assert_eq!(runtime.block_on(call_whoami(&auth, url)), expected);
    client_id
}

/// The `refresh_token` of an rmcp token response (RFC 6749 §5.1).
fn refresh_token_of(response: &OAuthTokenResponse) -> String {
    let json = serde_json::to_value(response).expect("token response");
    text(&json, "refresh_token").to_string()
}

/// Connects over streamable HTTP with `auth`, calls `whoami`, disconnects; returns its text.
async fn call_whoami(auth: &AuthClient<reqwest::Client>, url: &str) -> String {
    let transport = StreamableHttpClientTransport::with_client(
        auth.clone(),
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let client = ().serve(transport).await.expect("MCP initialization");
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .expect("tools/call whoami");
    client.cancel().await.expect("close the MCP session");
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let content = serde_json::to_value(&result.content).expect("content");
    content[0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no text in {content}"))
        .to_string()
}
