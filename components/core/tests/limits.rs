//! Abuse limits through the HTTP surface: 429 with `Retry-After`, per subject, per window,
//! and nothing else stored.

#[path = "token_support/mod.rs"]
mod token_support;

use mcp_auth_core::grants::{self, DeviceGrant, DeviceStatus};
use mcp_auth_core::testing::{Harness, MapConfig};
use mcp_auth_core::{records, Clock, Method, Request, Response};
use serde_json::json;
use token_support::{error_of, harness_with, public_client, token};

fn registration(addr: Option<&str>) -> Request {
    let req = Request::new(Method::Post, "/register")
        .with_header("content-type", "application/json")
        .with_body(
            json!({
                "redirect_uris": ["http://127.0.0.1/cb"],
                "token_endpoint_auth_method": "none",
            })
            .to_string(),
        );
    Request {
        client_addr: addr.map(str::to_string),
        ..req
    }
}

/// Seconds left in the current window of `window` seconds.
fn left_in_window(h: &Harness, window: u64) -> u64 {
    window - h.clock.now() % window
}

fn assert_too_many(res: &Response, retry_after: u64) {
    assert_eq!(res.status, 429, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(error_of(res), "too_many_requests");
    assert_eq!(
        res.header("retry-after"),
        Some(retry_after.to_string().as_str())
    );
}

#[test]
fn registration_is_limited_per_address_then_globally() {
    let h = Harness::with_config(MapConfig::from([
        ("rate_limit_register_per_ip", "2"),
        ("rate_limit_register_global", "3"),
    ]));
    let a = Some("198.51.100.1");
    assert_eq!(h.call(registration(a)).status, 201);
    assert_eq!(h.call(registration(a)).status, 201);
    let before = h.store.state();
    assert_too_many(&h.call(registration(a)), left_in_window(&h, 3600));
    assert_eq!(
        h.store.state(),
        before,
        "a refused registration stores nothing"
    );
    // Another address has its own allowance, until the global one runs out.
    assert_eq!(h.call(registration(Some("198.51.100.2"))).status, 201);
    assert_too_many(
        &h.call(registration(Some("198.51.100.3"))),
        left_in_window(&h, 3600),
    );
    // The next hour starts afresh.
    h.clock.advance(left_in_window(&h, 3600));
    assert_eq!(h.call(registration(a)).status, 201);
}

#[test]
fn registrations_without_an_address_share_one_bucket() {
    let h = Harness::with_config(MapConfig::from([("rate_limit_register_per_ip", "1")]));
    assert_eq!(h.call(registration(None)).status, 201);
    assert_eq!(h.call(registration(None)).status, 429);
    assert_eq!(h.call(registration(Some("192.0.2.7"))).status, 201);
}

#[test]
fn the_token_endpoint_is_limited_per_client_and_address() {
    let h = harness_with(&[("rate_limit_token_per_client", "3")]);
    public_client(&h, "c1");
    public_client(&h, "c2");
    let bad_grant = [("grant_type", "refresh_token"), ("refresh_token", "nope")];
    for _ in 0..3 {
        assert_eq!(error_of(&token(&h, "c1", &bad_grant)), "invalid_grant");
    }
    assert_too_many(&token(&h, "c1", &bad_grant), left_in_window(&h, 60));
    // Another client, or the same client from elsewhere, is not held back.
    assert_eq!(error_of(&token(&h, "c2", &bad_grant)), "invalid_grant");
    let elsewhere = Request {
        client_addr: Some("203.0.113.5".into()),
        ..Request::form(
            "/token",
            &[
                ("client_id", "c1"),
                ("grant_type", "refresh_token"),
                ("refresh_token", "nope"),
            ],
        )
    };
    assert_eq!(error_of(&h.call(elsewhere)), "invalid_grant");
    // Unauthenticated requests are not counted against the client they name.
    assert_eq!(error_of(&token(&h, "ghost", &bad_grant)), "invalid_client");
    h.clock.advance(left_in_window(&h, 60));
    assert_eq!(error_of(&token(&h, "c1", &bad_grant)), "invalid_grant");
}

/// A pending device grant under user code `WDJBMJHT`.
fn device_grant(h: &Harness) {
    let env = h.env();
    let key = grants::device_key("device-code-1");
    let grant = DeviceGrant {
        client_id: "tv".into(),
        scope: "mcp:read".into(),
        resource: token_support::RESOURCE.into(),
        user_code: "WDJBMJHT".into(),
        status: DeviceStatus::Pending,
    };
    let exp = Some(env.now() + 600);
    records::put(&env, &key, &grant, exp).unwrap();
    records::put(&env, &grants::user_code_key("WDJBMJHT"), &key, exp).unwrap();
}

/// POST a user code on the device page as session `session` (its CSRF cookie).
fn enter(h: &Harness, session: &str, user_code: &str) -> Response {
    h.call(
        Request::form("/device", &[("csrf", session), ("user_code", user_code)])
            .with_header("cookie", &format!("mcp_auth_csrf={session}")),
    )
}

#[test]
fn wrong_user_codes_are_limited_per_session_and_globally() {
    let h = harness_with(&[
        ("rate_limit_device_failures_per_session", "2"),
        ("rate_limit_device_failures_global", "3"),
    ]);
    device_grant(&h);
    assert_eq!(enter(&h, "s1", "BBBB-BBBB").status, 400);
    assert_eq!(enter(&h, "s1", "BBBB-BBBC").status, 400);
    let refused = enter(&h, "s1", "WDJB-MJHT");
    assert_eq!(refused.status, 429);
    assert!(refused
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(
        refused.header("retry-after"),
        Some(left_in_window(&h, 600).to_string().as_str())
    );
    assert!(String::from_utf8_lossy(&refused.body).contains("Too many"));
    // A right code is not counted: other sessions may still enter theirs.
    assert_eq!(enter(&h, "s2", "WDJB-MJHT").status, 302);
    assert_eq!(enter(&h, "s2", "WDJB-MJHT").status, 302);
    // The third wrong code of the minute (any session) spends the global allowance.
    assert_eq!(enter(&h, "s3", "CCCC-CCCC").status, 400);
    assert_eq!(enter(&h, "s4", "WDJB-MJHT").status, 429);
    h.clock.advance(left_in_window(&h, 60));
    assert_eq!(enter(&h, "s4", "WDJB-MJHT").status, 302);
}

#[test]
fn guessing_in_parallel_cannot_pass_the_limit() {
    let h = harness_with(&[("rate_limit_device_failures_global", "10")]);
    device_grant(&h);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let h = &h;
                s.spawn(move || enter(h, &format!("s{i}"), "BBBB-BBBB").status)
            })
            .collect();
        handles.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|&&s| s == 400).count(), 10);
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 30);
}
