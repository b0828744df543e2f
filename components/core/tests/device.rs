//! RFC 8628: `POST /device/code` and the device's polling at `/token`.

mod token_support;

use mcp_auth_core::grants::{self, DeviceGrant, DeviceStatus};
use mcp_auth_core::testing::Harness;
use mcp_auth_core::{records, Clock, Request, Response};
use serde_json::Value;
use token_support::*;

fn device_client(h: &Harness, id: &str) {
    add_client(h, id, None, &[DEVICE_GRANT, "refresh_token"]);
}

fn start(h: &Harness, client_id: &str) -> Value {
    ok_json(&h.call(Request::form(
        "/device/code",
        &[("client_id", client_id), ("scope", "mcp:read")],
    )))
}

fn poll(h: &Harness, client_id: &str, device_code: &str) -> Response {
    token(
        h,
        client_id,
        &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
    )
}

fn decide(h: &Harness, user_code: &str, decision: DeviceStatus) {
    let env = h.env();
    let (key, _) = grants::find_by_user_code(&env, user_code).unwrap().unwrap();
    assert!(grants::decide(&env, &key, decision).unwrap());
}

fn approve(h: &Harness, user_code: &str) {
    let auth_time = h.clock.now();
    decide(
        h,
        user_code,
        DeviceStatus::Approved {
            sub: "alice".into(),
            auth_time,
            username: None,
        },
    );
}

#[test]
fn device_authorization_answers_rfc8628_3_2() {
    let h = harness();
    device_client(&h, "tv");
    let body = start(&h, "tv");
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert!(user_code
        .chars()
        .filter(|c| *c != '-')
        .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(body["verification_uri"], "http://127.0.0.1:3000/device");
    assert_eq!(
        body["verification_uri_complete"],
        format!("http://127.0.0.1:3000/device?user_code={user_code}")
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 5);
    let device_code = body["device_code"].as_str().unwrap();
    let stored: DeviceGrant = records::get(&h.env(), &grants::device_key(device_code))
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, DeviceStatus::Pending);
    assert_eq!(stored.resource, RESOURCE);
    assert_eq!(stored.scope, "mcp:read");
    let (key, _) = grants::find_by_user_code(&h.env(), &user_code.to_lowercase())
        .unwrap()
        .unwrap();
    assert_eq!(key, grants::device_key(device_code));
}

#[test]
fn device_authorization_refuses_bad_requests_without_storing_anything() {
    let h = harness();
    device_client(&h, "tv");
    public_client(&h, "web");
    let before = h.store.state();
    let cases = [
        (
            vec![
                ("client_id", "tv"),
                ("resource", "https://evil.example/mcp"),
            ],
            "invalid_target",
        ),
        (
            vec![("client_id", "tv"), ("scope", "admin")],
            "invalid_scope",
        ),
        (vec![("client_id", "web")], "unauthorized_client"),
        (vec![("client_id", "ghost")], "invalid_client"),
    ];
    for (params, expected) in cases {
        assert_eq!(
            error_of(&h.call(Request::form("/device/code", &params))),
            expected
        );
    }
    assert_eq!(h.store.state(), before);
}

#[test]
fn polling_pending_slow_down_then_the_interval_is_honoured_then_tokens_once() {
    let h = harness();
    device_client(&h, "tv");
    let body = start(&h, "tv");
    let device_code = body["device_code"].as_str().unwrap();
    let user_code = body["user_code"].as_str().unwrap();

    assert_eq!(
        error_of(&poll(&h, "tv", device_code)),
        "authorization_pending"
    );
    h.clock.advance(2);
    assert_eq!(error_of(&poll(&h, "tv", device_code)), "slow_down");
    // The interval is now 10 s: 6 s later is still too soon, and adds another 5 s.
    h.clock.advance(6);
    assert_eq!(error_of(&poll(&h, "tv", device_code)), "slow_down");
    h.clock.advance(15);
    assert_eq!(
        error_of(&poll(&h, "tv", device_code)),
        "authorization_pending"
    );

    approve(&h, user_code);
    let tokens = ok_json(&poll(&h, "tv", device_code));
    assert_eq!(tokens["scope"], "mcp:read");
    assert!(tokens["refresh_token"].is_string());
    let seen = introspect(&h, tokens["access_token"].as_str().unwrap());
    assert_eq!(seen["sub"], "alice");
    assert_eq!(seen["client_id"], "tv");
    assert_eq!(error_of(&poll(&h, "tv", device_code)), "invalid_grant");
    // The refresh token works like any other.
    ok_json(&refresh(
        &h,
        "tv",
        tokens["refresh_token"].as_str().unwrap(),
    ));
}

#[test]
fn a_denied_request_is_access_denied() {
    let h = harness();
    device_client(&h, "tv");
    let body = start(&h, "tv");
    decide(
        &h,
        body["user_code"].as_str().unwrap(),
        DeviceStatus::Denied,
    );
    let res = poll(&h, "tv", body["device_code"].as_str().unwrap());
    assert_eq!(res.status, 400);
    assert_eq!(error_of(&res), "access_denied");
}

#[test]
fn an_expired_code_is_expired_token_and_an_unknown_one_invalid_grant() {
    let h = harness();
    device_client(&h, "tv");
    let body = start(&h, "tv");
    h.clock.advance(600);
    let device_code = body["device_code"].as_str().unwrap();
    assert_eq!(error_of(&poll(&h, "tv", device_code)), "expired_token");
    assert_eq!(error_of(&poll(&h, "tv", "nonsense")), "invalid_grant");
}

#[test]
fn another_client_cannot_poll_a_device_code() {
    let h = harness();
    device_client(&h, "tv");
    device_client(&h, "thief");
    let body = start(&h, "tv");
    approve(&h, body["user_code"].as_str().unwrap());
    let device_code = body["device_code"].as_str().unwrap();
    assert_eq!(error_of(&poll(&h, "thief", device_code)), "invalid_grant");
    ok_json(&poll(&h, "tv", device_code));
}
