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
