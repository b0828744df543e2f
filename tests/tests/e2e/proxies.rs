//! Client addresses behind a reverse proxy, through the real host: the forwarding headers reach
//! the component (wasi:http strips only forbidden and hop-by-hop headers), and the registration
//! limit counts the client they name only when the peer is a trusted proxy (issue 16 item 5).

use crate::support::*;

/// Registration statuses for clients that claim `forwarded_for`, from this test (127.0.0.1).
fn register_as(browser: &Browser, base: &str, forwarded_for: &str) -> u16 {
    browser
        .send_json(
            "POST",
            &format!("{base}/register"),
            Some(&public_client_metadata()),
            &[("x-forwarded-for", forwarded_for)],
        )
        .status
}

#[test]
fn the_registration_limit_counts_clients_behind_a_trusted_proxy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let browser = Browser::new();
    // This test is the proxy: it connects from loopback.
    let host = Host::start(
        dir.path(),
        &HostOptions::default()
            .variable("TRUSTED_PROXIES", "127.0.0.0/8, ::1")
            .variable("RATE_LIMIT_REGISTER_PER_IP", "1"),
    );
    assert_eq!(register_as(&browser, &host.base, "203.0.113.1"), 201);
    assert_eq!(register_as(&browser, &host.base, "203.0.113.2"), 201);
    assert_eq!(register_as(&browser, &host.base, "203.0.113.1"), 429);
    assert!(
        host.log_text().contains("\"ip\":\"203.0.113.2\""),
        "the audit names the client: {}",
        host.log_text()
    );
}

#[test]
fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let browser = Browser::new();
    let host = Host::start(
        dir.path(),
        &HostOptions::default().variable("RATE_LIMIT_REGISTER_PER_IP", "1"),
    );
    assert_eq!(register_as(&browser, &host.base, "203.0.113.1"), 201);
    assert_eq!(
        register_as(&browser, &host.base, "203.0.113.2"),
        429,
        "a forged X-Forwarded-For is still this peer"
    );
}

/// A host protecting an MCP server at its own origin (`/mcp` beside the authorization server,
/// as one reverse proxy in front of both presents them), with `more` variables.
fn host_protecting_its_own_origin(dir: &std::path::Path, more: &[(&str, &str)]) -> (Host, String) {
    let port = free_port();
    let resource = format!("http://127.0.0.1:{port}/mcp");
    let mut options = HostOptions {
        port: Some(port),
        ..HostOptions::default()
    }
    .variable(
        "MCP_SERVER",
        &format!("{resource}, https://mcp.example.com/mcp"),
    );
    for (name, value) in more {
        options = options.variable(name, value);
    }
    (Host::start(dir, &options), resource)
}

/// wasi:http never hands a component a `host` header: the protected resource metadata and
/// ForwardAuth find the host in the request's authority (issue 13 item 2).
#[test]
fn the_host_a_client_addressed_reaches_the_component_without_forwarding_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let browser = Browser::new();
    let (host, resource) = host_protecting_its_own_origin(dir.path(), &[]);

    let page = browser.get(&host.url("/.well-known/oauth-protected-resource/mcp"));
    assert_eq!(page.status, 200, "{}", page.body);
    let doc = page.json();
    assert_eq!(doc["resource"], resource.as_str());
    let issuer = browser
        .get(&host.url("/.well-known/oauth-authorization-server"))
        .json()["issuer"]
        .clone();
    assert_eq!(doc["authorization_servers"][0], issuer);

    // A proxy that keeps the client's Host and names only the path.
    let challenge = browser.get_with(&host.url("/verify"), &[("x-forwarded-uri", "/mcp")]);
    assert_eq!(challenge.status, 401);
    assert_eq!(
        challenge.header("www-authenticate"),
        Some(
            format!(
                "Bearer realm=\"mcp-auth\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
                host.base
            )
            .as_str()
        )
    );
}

/// `X-Forwarded-Host` / `-Proto` choose the origin the document names only when a trusted
/// proxy sends them; from anyone else they are ignored (issue 13 item 2).
#[test]
fn only_a_trusted_proxy_chooses_the_origin_of_the_protected_resource_metadata() {
    let forwarded = [
        ("x-forwarded-host", "mcp.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    let path = "/.well-known/oauth-protected-resource/mcp";
    let browser = Browser::new();

    let dir = tempfile::tempdir().expect("temp dir");
    let (untrusting, own) = host_protecting_its_own_origin(dir.path(), &[]);
    let page = browser.get_with(&untrusting.url(path), &forwarded);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.json()["resource"],
        own.as_str(),
        "a forged host is ignored"
    );
    drop(untrusting);

    let dir = tempfile::tempdir().expect("temp dir");
    let (behind_proxy, _) =
        host_protecting_its_own_origin(dir.path(), &[("TRUSTED_PROXIES", "127.0.0.0/8, ::1")]);
    let page = browser.get_with(&behind_proxy.url(path), &forwarded);
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.json()["resource"], "https://mcp.example.com/mcp");
}
