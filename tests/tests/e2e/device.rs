//! The device authorization grant (RFC 8628): the device asks for codes and polls; the user
//! opens `/device`, enters the code, signs in and approves (or denies) in a browser.

use serde_json::{json, Value};

use crate::support::*;

on_each_store!(flow);

fn flow(host: &Host) {
    let device = Browser::new();
    let base = host.base.as_str();
    let client = register(
        &device,
        base,
        json!({
            "client_name": "E2E Device",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }),
    );
    let client_id = text(&client, "client_id");

    // Approved.
    let start = device_authorization(&device, host, client_id);
    let device_code = text(&start, "device_code");
    assert_eq!(start["verification_uri"], host.url("/device"));
    let pending = poll(&device, host, client_id, device_code);
    assert_eq!(pending.status, 400);
    assert_eq!(pending.error(), "authorization_pending");

    let user = Browser::new();
    let entry = user.get(text(&start, "verification_uri"));
    assert_eq!(entry.status, 200, "{}", entry.body);
    decide(&user, &entry, text(&start, "user_code"), "approve");

    let tokens = tokens_of(&poll(&device, host, client_id, device_code));
    assert!(tokens["refresh_token"].is_string());
    let info = introspect(&device, base, text(&tokens, "access_token"));
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "demo");
    assert_eq!(info["client_id"], client_id);
    assert_eq!(info["scope"], "mcp:read");
    // Tokens are handed out once.
    assert_eq!(
        poll(&device, host, client_id, device_code).error(),
        "invalid_grant"
    );

    // Denied, starting from `verification_uri_complete` this time.
    let start = device_authorization(&device, host, client_id);
    let entry = user.get(text(&start, "verification_uri_complete"));
    assert_eq!(entry.status, 200, "{}", entry.body);
    decide(&user, &entry, text(&start, "user_code"), "deny");
    let denied = poll(&device, host, client_id, text(&start, "device_code"));
    assert_eq!(denied.status, 400);
    assert_eq!(denied.error(), "access_denied");
}

/// RFC 8628 §3.1–3.2.
pub(crate) fn device_authorization(device: &Browser, host: &Host, client_id: &str) -> Value {
    let page = device.post_form(
        &host.url("/device/code"),
        &[
            ("client_id", client_id),
            ("scope", "mcp:read"),
            ("resource", RESOURCE),
        ],
    );
    assert_eq!(page.status, 200, "{}", page.body);
    page.json()
}

/// RFC 8628 §3.4.
pub(crate) fn poll(device: &Browser, host: &Host, client_id: &str, device_code: &str) -> Page {
    device.post_form(
        &host.url("/token"),
        &[
            ("grant_type", DEVICE_GRANT),
            ("client_id", client_id),
            ("device_code", device_code),
        ],
    )
}

/// The user enters the code on the `/device` page, signs in as demo and decides.
fn decide(user: &Browser, entry: &Page, user_code: &str, decision: &str) {
    let to_login = user.submit(entry, &[("user_code", user_code)]);
    let login = user.follow(&to_login);
    assert_eq!(login.status, 200, "{}", login.body);
    let consent = user.submit(&login, &[("username", "demo"), ("password", "demo")]);
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(consent.body.contains("E2E Device"), "{}", consent.body);
    let done = user.submit(&consent, &[("decision", decision)]);
    assert_eq!(done.status, 200, "{}", done.body);
}
