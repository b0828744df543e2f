//! No secret reaches the host's log: full flows with every kind of secret in play (a
//! confidential client's secret and registration token, a user's password and a wrong one,
//! codes, PKCE verifiers, access and refresh tokens, resource-server credentials, sign-in
//! sessions and CSRF tokens, TaskManager's code, token and our client secret there), then the
//! host's whole output, request lines and audit events alike, at `debug` level, searched for
//! each of them.

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::taskmanager::{self, FakeTaskManager};
use crate::support::*;
use crate::taskmanager::{sign_in_through_taskmanager, start_with};

const USER: &str = "carol";
const PASSWORD: &str = "correct-horse-battery-staple-7Qx";
const WRONG_PASSWORD: &str = "incorrect-horse-battery-staple-2Kp";
const WRONG_SECRET: &str = "not-the-client-secret-9Vd3";
/// The introspection credentials every test host accepts (`rs:rs-secret`).
const RS_SECRET: &str = "rs-secret";

#[test]
fn no_secret_of_full_flows_reaches_the_hosts_log() {
    let dir = tempfile::tempdir().expect("temp dir");
    let verbose = HostOptions::default().variable("RUST_LOG", "debug");
    let local = Host::start(
        &dir.path().join("local"),
        &verbose.clone().variable(
            "LOCAL_USERS",
            &format!("{USER}:{}", hash_password(PASSWORD)),
        ),
    );
    let tm = FakeTaskManager::start();
    let delegating = start_with(
        &tm,
        &dir.path().join("taskmanager"),
        taskmanager::CLIENT_SECRET,
        verbose,
    );

    let mut secrets = local_flows(&local);
    secrets.extend(taskmanager_flow(&delegating, &tm));
    for (what, secret) in [
        ("password", PASSWORD),
        ("wrong password", WRONG_PASSWORD),
        ("wrong client secret", WRONG_SECRET),
        ("resource server's secret", RS_SECRET),
        ("PKCE verifier", VERIFIER),
        ("TaskManager client secret", taskmanager::CLIENT_SECRET),
        ("TaskManager password", taskmanager::PASSWORD),
    ] {
        secrets.push((what.to_string(), secret.to_string()));
    }

    for host in [&local, &delegating] {
        let log = host.log_text();
        for event in ["\"event\":\"sign_in\"", "\"event\":\"token_issued\""] {
            assert!(log.contains(event), "no {event} in the log:\n{log}");
        }
        for (what, secret) in &secrets {
            assert!(
                !log.contains(secret.as_str()),
                "the {what} is in the log of the host at {}",
                host.base
            );
        }
    }
}

/// The built-in login with a confidential client: registration and its management, a wrong
/// and a right password, consent, code, tokens, refresh, a wrong client secret,
/// introspection, ForwardAuth, revocation, a replayed code. The secrets that went by.
fn local_flows(host: &Host) -> Vec<(String, String)> {
    let browser = Browser::new();
    let base = host.base.as_str();
    let mut secrets = Vec::new();
    let mut keep = |what: &str, value: &str| secrets.push((what.to_string(), value.to_string()));

    let registered = register(
        &browser,
        base,
        json!({
            "client_name": "E2E Client",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
        }),
    );
    let client_id = text(&registered, "client_id");
    let client_secret = text(&registered, "client_secret");
    keep("client secret", client_secret);
    keep(
        "registration access token",
        text(&registered, "registration_access_token"),
    );
    assert_eq!(read_registration(&browser, &registered).status, 200);
    let basic = |secret: &str| {
        let pair = format!("{client_id}:{secret}");
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    };
    let token_request = |fields: &[(&str, &str)], secret: &str| {
        browser.post_form_with(
            &format!("{base}/token"),
            fields,
            &[("authorization", &basic(secret))],
        )
    };

    let login = browser.follow(&browser.get(&authorization_url(base, client_id, "st-1")));
    // The sign-in session and its CSRF token (the other hidden fields are not secrets).
    for (name, value) in login.form().hidden.iter().filter(|(_, v)| v.len() >= 16) {
        keep(&format!("login form's {name}"), value);
    }
    let refused = browser.submit(&login, &[("username", USER), ("password", WRONG_PASSWORD)]);
    assert_eq!(refused.status, 400, "{}", refused.body);
    let code = sign_in_locally_as(
        &browser,
        base,
        &issuer_of(base),
        client_id,
        (USER, PASSWORD),
    );
    keep("code", &code);
    let redemption = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", VERIFIER),
        ("redirect_uri", REDIRECT),
        ("resource", RESOURCE),
    ];
    let tokens = tokens_of(&token_request(&redemption, client_secret));
    keep_tokens(&mut keep, &tokens);
    let refreshing = |tokens: &Value, secret: &str| {
        token_request(
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", text(tokens, "refresh_token")),
            ],
            secret,
        )
    };
    assert_eq!(refreshing(&tokens, WRONG_SECRET).status, 401);
    let refreshed = tokens_of(&refreshing(&tokens, client_secret));
    keep_tokens(&mut keep, &refreshed);

    let access = text(&refreshed, "access_token");
    assert_eq!(introspect(&browser, base, access)["active"], true);
    let as_client = browser.post_form_with(
        &format!("{base}/introspect"),
        &[("token", text(&refreshed, "refresh_token"))],
        &[("authorization", &basic(client_secret))],
    );
    // Only resource servers may introspect (RFC 7662 §4); the client's secret went by anyway.
    assert_eq!(as_client.status, 401, "{}", as_client.body);
    assert_eq!(as_client.error(), "invalid_client");
    let bearer = format!("Bearer {access}");
    let verified = browser.get_with(
        &host.url("/verify"),
        &[
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "127.0.0.1:8001"),
            ("x-forwarded-uri", "/mcp"),
            ("authorization", bearer.as_str()),
        ],
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    let revoked = browser.post_form_with(
        &format!("{base}/revoke"),
        &[("token", text(&refreshed, "refresh_token"))],
        &[("authorization", &basic(client_secret))],
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let replayed = token_request(&redemption, client_secret);
    assert_eq!(replayed.error(), "invalid_grant");
    secrets
}

/// A sign-in delegated to TaskManager, and our tokens for it. The secrets that went by.
fn taskmanager_flow(host: &Host, tm: &FakeTaskManager) -> Vec<(String, String)> {
    let browser = Browser::new();
    let client_id = register_public_client(&browser, &host.base);
    let (callback, code) = sign_in_through_taskmanager(&browser, host, tm, &client_id);
    let tokens = tokens_of(&redeem(&browser, &host.base, &client_id, &code));
    let mut secrets = Vec::new();
    let mut keep = |what: &str, value: &str| secrets.push((what.to_string(), value.to_string()));
    let returned = query_of(&callback);
    keep("TaskManager's code", &returned["code"]);
    keep("our state at TaskManager", &returned["state"]);
    for token in tm.access_tokens() {
        keep("TaskManager's access token", &token);
    }
    for exchange in tm.exchanges() {
        keep("our PKCE verifier at TaskManager", &exchange.code_verifier);
    }
    keep("code", &code);
    keep_tokens(&mut keep, &tokens);
    secrets
}

fn keep_tokens(keep: &mut impl FnMut(&str, &str), tokens: &Value) {
    for name in ["access_token", "refresh_token"] {
        keep(name, text(tokens, name));
    }
}
