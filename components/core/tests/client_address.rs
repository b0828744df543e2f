//! Client addresses behind a reverse proxy (`trusted_proxies`): the address every limit
//! counts and every audit event names.

use mcp_auth_core::audit::AuditKind;
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{Method, Request};
use serde_json::json;

/// A registration from `peer`, with `headers` (the forwarding ones).
fn registration(peer: &str, headers: &[(&str, &str)]) -> Request {
    let mut req = Request::new(Method::Post, "/register")
        .with_header("content-type", "application/json")
        .with_body(
            json!({
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
            })
            .to_string(),
        );
    for (name, value) in headers {
        req = req.with_header(name, value);
    }
    req.client_addr = Some(peer.into());
    req
}

/// One registration per address per hour, the proxies at 10.0.0.0/8.
fn harness(trusted_proxies: &str) -> Harness {
    Harness::with_config(MapConfig::from([
        ("rate_limit_register_per_ip", "1"),
        ("trusted_proxies", trusted_proxies),
    ]))
}

#[test]
fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    for trusted in ["", "10.0.0.0/8"] {
        let h = harness(trusted);
        let spoofed = |forged: &str| {
            h.call(registration(
                "198.51.100.1",
                &[
                    ("x-forwarded-for", forged),
                    ("forwarded", &format!("for={forged}")),
                ],
            ))
            .status
        };
        assert_eq!(spoofed("203.0.113.1"), 201, "trusted: {trusted:?}");
        // Another forged address is still the same peer, whose hour is used up.
        assert_eq!(spoofed("203.0.113.2"), 429, "trusted: {trusted:?}");
    }
}

#[test]
fn clients_behind_a_trusted_proxy_get_their_own_buckets() {
    let h = harness("10.0.0.0/8");
    let via_proxy =
        |header: &str, value: &str| h.call(registration("10.0.0.1", &[(header, value)]));
    assert_eq!(via_proxy("x-forwarded-for", "203.0.113.1").status, 201);
    assert_eq!(
        via_proxy("forwarded", "for=203.0.113.2;proto=https").status,
        201,
        "another client behind the same proxy has its own allowance"
    );
    assert_eq!(
        via_proxy("x-forwarded-for", "forged, 203.0.113.1, 10.0.0.7").status,
        429,
        "the first untrusted address from the right is the client, not what it forged"
    );
    // The audit event names the client, not the proxy.
    let env = h.env();
    let req = registration("10.0.0.1", &[("x-forwarded-for", "203.0.113.3")]);
    let res = mcp_auth_core::handle(&env, &req, mcp_auth_core::Endpoint::REGISTRATION);
    assert_eq!(res.status, 201);
    let events = env.take_audit();
    let registered = events
        .iter()
        .find(|e| e.event == AuditKind::ClientRegistered)
        .expect("a client_registered event");
    assert_eq!(registered.ip.as_deref(), Some("203.0.113.3"));
}

#[test]
fn malformed_forwarding_headers_fall_back_to_the_proxy() {
    let h = harness("10.0.0.0/8");
    let via_proxy = |value: &str| {
        h.call(registration("10.0.0.1", &[("x-forwarded-for", value)]))
            .status
    };
    assert_eq!(via_proxy("not an address"), 201);
    assert_eq!(
        via_proxy("203.0.113.1, unknown"),
        429,
        "counted as the proxy"
    );
}
