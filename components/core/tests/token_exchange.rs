//! RFC 8693 token exchange: a resource server trades the user's access token for the user's
//! token at the upstream provider, kept sealed since sign-in and refreshed there when due.

mod authz_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use authz_support::*;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use mcp_auth_core::audit::{AuditEvent, AuditKind};
use mcp_auth_core::http::OutgoingRequest;
use mcp_auth_core::testing::FakeUpstream;
use mcp_auth_core::{tokens, upstream_tokens};
use mcp_auth_core::{Request, Response, UpstreamError, UpstreamResponse};
use serde_json::{json, Value};

const TM: &str = "http://tm.example:8000";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 7636 Appendix B: the verifier of [`CHALLENGE`].
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const OTHER_RESOURCE: &str = "https://other.example/mcp";
/// The upstream tokens' lifetime at the fake TaskManager, seconds.
const UPSTREAM_LIFETIME: u64 = 600;

/// mcp-auth in front of a fake TaskManager, with two resource servers: `rs` serves
/// [`RESOURCE`], `other` serves [`OTHER_RESOURCE`].
fn server(extra: &[(&str, &str)]) -> (Server, Arc<AtomicUsize>) {
    let credentials = format!("rs:rs-secret {RESOURCE}, other:other-secret {OTHER_RESOURCE}");
    let mut settings = vec![
        ("upstream_provider", "taskmanager"),
        ("taskmanager_oauth_host", TM),
        ("taskmanager_client_id", "tm-client"),
        ("taskmanager_client_secret", "tm-secret"),
        ("introspection_credentials", credentials.as_str()),
        (
            "mcp_server",
            "https://mcp.example.com/mcp, https://other.example/mcp",
        ),
    ];
    settings.extend_from_slice(extra);
    let h = harness(&settings);
    let refreshes = Arc::new(AtomicUsize::new(0));
    answer_taskmanager(&h, refreshes.clone(), |_| {});
    (h, refreshes)
}

/// A TaskManager that signs user 42 in with `up-1` / `up-r1` and rotates its refresh tokens:
/// `up-rN` refreshes to `up-(N+1)` / `up-r(N+1)` once, counted in `refreshes`; `on_refresh`
/// runs inside each refresh (to let another exchange race it).
fn answer_taskmanager(
    h: &Server,
    refreshes: Arc<AtomicUsize>,
    on_refresh: impl Fn(&OutgoingRequest) + Send + Sync + 'static,
) {
    let used = std::sync::Mutex::new(std::collections::BTreeSet::<String>::new());
    h.upstream.answer(move |r| {
        if r.url == format!("{TM}/api/oauth/verify") {
            return Ok(FakeUpstream::json(
                200,
                json!({"valid": true, "user_id": 42}),
            ));
        }
        if r.url != format!("{TM}/api/oauth/token") {
            return Err(UpstreamError(format!("unexpected {}", r.url)));
        }
        let form = form(r);
        let n = match form["grant_type"].as_str() {
            "authorization_code" => 1,
            "refresh_token" => {
                on_refresh(r);
                let presented = &form["refresh_token"];
                if !used.lock().unwrap().insert(presented.clone()) {
                    return Ok(invalid_grant());
                }
                refreshes.fetch_add(1, Ordering::SeqCst);
                match presented
                    .strip_prefix("up-r")
                    .and_then(|n| n.parse::<u32>().ok())
                {
                    Some(n) => n + 1,
                    None => return Ok(invalid_grant()),
                }
            }
            _ => return Ok(invalid_grant()),
        };
        Ok(FakeUpstream::json(
            200,
            json!({"access_token": format!("up-{n}"), "refresh_token": format!("up-r{n}"),
                   "token_type": "Bearer", "expires_in": UPSTREAM_LIFETIME}),
        ))
    });
}

fn invalid_grant() -> UpstreamResponse {
    FakeUpstream::json(400, json!({"error": "invalid_grant"}))
}

fn form(request: &OutgoingRequest) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

/// Sign user 42 in through TaskManager and redeem the code: the client's access token.
fn sign_in(h: &Server) -> String {
    sign_in_for(h, RESOURCE)
}

fn sign_in_for(h: &Server, resource: &str) -> String {
    let to_provider = authorize(h, &[("resource", Some(resource))]);
    let state = query_of(location(&to_provider))["state"].clone();
    let back = get(h, &format!("/oauth/callback?code=up-code&state={state}"));
    let code = query_of(location(&back))["code"].clone();
    let res = h.call(Request::form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT),
            ("redirect_uri", REDIRECT),
        ],
    ));
    assert_eq!(res.status, 200, "{}", body(&res));
    json_of(&res)["access_token"].as_str().unwrap().to_string()
}

fn json_of(res: &Response) -> Value {
    serde_json::from_slice(&res.body).unwrap()
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

/// The exchange request of resource server `rs` for `subject`, with `changes`.
fn exchange_request(subject: &str, changes: &[(&str, Option<&str>)]) -> Request {
    exchange_request_by(("rs", "rs-secret"), subject, changes)
}

/// The same, from the resource server with these credentials.
fn exchange_request_by(
    (id, secret): (&str, &str),
    subject: &str,
    changes: &[(&str, Option<&str>)],
) -> Request {
    let mut pairs = vec![
        ("grant_type", Some(GRANT)),
        ("subject_token", Some(subject)),
        ("subject_token_type", Some(ACCESS)),
        ("requested_token_type", Some(ACCESS)),
        ("audience", Some("taskmanager")),
    ];
    for (name, value) in changes {
        match pairs.iter_mut().find(|(n, _)| n == name) {
            Some(pair) => pair.1 = *value,
            None => pairs.push((name, *value)),
        }
    }
    let pairs: Vec<(&str, &str)> = pairs
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect();
    Request::form("/token", &pairs).with_header("authorization", &basic(id, secret))
}

fn exchange(h: &Server, subject: &str) -> Response {
    h.call(exchange_request(subject, &[]))
}

fn upstream_token(res: &Response) -> String {
    assert_eq!(res.status, 200, "{}", body(res));
    json_of(res)["access_token"].as_str().unwrap().to_string()
}

fn error_of(res: &Response) -> (u16, String) {
    let error = json_of(res)["error"].as_str().map(str::to_string);
    (res.status, error.unwrap_or_else(|| body(res)))
}

fn family_of(h: &Server, access_token: &str) -> String {
    tokens::find_access(&h.env(), access_token)
        .unwrap()
        .unwrap()
        .family
}

#[test]
fn a_resource_server_gets_the_users_upstream_token() {
    let (h, refreshes) = server(&[]);
    let mcp_token = sign_in(&h);
    let (res, events) = call_audited(&h, exchange_request(&mcp_token, &[]));
    let answer = json_of(&res);
    assert_eq!(res.status, 200, "{answer}");
    assert_eq!(answer["access_token"], "up-1");
    assert_eq!(answer["issued_token_type"], ACCESS);
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], UPSTREAM_LIFETIME);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(refreshes.load(Ordering::SeqCst), 0);
    let event: &AuditEvent = events.last().unwrap();
    assert_eq!(event.event, AuditKind::TokenExchanged);
    assert_eq!(event.sub.as_deref(), Some("42"));
    assert_eq!(event.client_id.as_deref(), Some(CLIENT));
    assert_eq!(event.grant_type.as_deref(), Some(GRANT));

    // Credentials in the form, `resource` instead of `audience`, no requested type: the same.
    let res = h.call(Request::form(
        "/token",
        &[
            ("grant_type", GRANT),
            ("client_id", "rs"),
            ("client_secret", "rs-secret"),
            ("subject_token", &mcp_token),
            ("subject_token_type", ACCESS),
            ("resource", &format!("{TM}/")),
        ],
    ));
    assert_eq!(upstream_token(&res), "up-1");
}

#[test]
fn the_grant_is_advertised() {
    let (h, _) = server(&[]);
    let doc = json_of(&get(&h, "/.well-known/oauth-authorization-server"));
    assert!(doc["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!(GRANT)));
}

#[test]
fn an_expiring_upstream_token_is_refreshed_once_first() {
    let (h, refreshes) = server(&[]);
    let mcp_token = sign_in(&h);
    h.clock.advance(UPSTREAM_LIFETIME - 30);
    let res = exchange(&h, &mcp_token);
    assert_eq!(upstream_token(&res), "up-2");
    assert_eq!(json_of(&res)["expires_in"], UPSTREAM_LIFETIME);
    let sent = h.upstream.sent.lock().unwrap().clone();
    let refresh = form(sent.last().unwrap());
    assert_eq!(refresh["grant_type"], "refresh_token");
    assert_eq!(refresh["refresh_token"], "up-r1");
    assert_eq!(refresh["client_id"], "tm-client");
    assert_eq!(refresh["client_secret"], "tm-secret");
    // Fresh again: served as it is, and the rotated refresh token is the one kept.
    assert_eq!(upstream_token(&exchange(&h, &mcp_token)), "up-2");
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    h.clock.advance(UPSTREAM_LIFETIME);
    assert_eq!(upstream_token(&exchange(&h, &mcp_token)), "up-3");
    assert_eq!(refreshes.load(Ordering::SeqCst), 2);
}

/// Two exchanges at once, on two threads: the second arrives while the first is refreshing
/// at the provider. One refresh only; the second exchange is told to retry, and its retry
/// gets the new token.
#[test]
fn concurrent_exchanges_refresh_upstream_once() {
    let (h, refreshes) = server(&[]);
    let mcp_token = sign_in(&h);
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let entered_tx = std::sync::Mutex::new(entered_tx);
    let release_rx = std::sync::Mutex::new(release_rx);
    answer_taskmanager(&h, refreshes.clone(), move |_| {
        entered_tx.lock().unwrap().send(()).unwrap();
        let _ = release_rx
            .lock()
            .unwrap()
            .recv_timeout(std::time::Duration::from_secs(10));
    });
    h.clock.advance(UPSTREAM_LIFETIME);
    let harness = &h.harness;
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| harness.call(exchange_request(&mcp_token, &[])));
        entered_rx.recv().unwrap(); // the first is at the provider now
        let second = harness.call(exchange_request(&mcp_token, &[]));
        release_tx.send(()).unwrap();
        (first.join().unwrap(), second)
    });
    assert_eq!(upstream_token(&first), "up-2");
    assert_eq!(error_of(&second), (503, "temporarily_unavailable".into()));
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(upstream_token(&exchange(&h, &mcp_token)), "up-2");
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
}

#[test]
fn upstream_tokens_are_sealed_at_rest_and_bound_to_their_family() {
    let (h, _) = server(&[]);
    let alice = sign_in(&h);
    let bob = sign_in(&h);
    for (key, value) in h.store.snapshot() {
        let text = String::from_utf8_lossy(&value);
        assert!(
            !text.contains("up-1") && !text.contains("up-r1"),
            "{key} holds an upstream token in clear: {text}"
        );
    }
    // Alice's record copied over Bob's does not open there.
    let (a, b) = (family_of(&h, &alice), family_of(&h, &bob));
    let sealed = h.store.snapshot()[&upstream_tokens::key(&a)].clone();
    mcp_auth_core::Store::set(&h.store, &upstream_tokens::key(&b), &sealed).unwrap();
    assert_eq!(
        error_of(&exchange(&h, &bob)),
        (400, "invalid_request".into())
    );
    assert_eq!(upstream_token(&exchange(&h, &alice)), "up-1");
}

#[test]
fn a_configured_key_seals_and_another_cannot_open() {
    let key = STANDARD
        .encode([3u8; 32])
        .replace('+', "-")
        .replace('/', "_");
    let (h, _) = server(&[("upstream_token_key", &key)]);
    let mcp_token = sign_in(&h);
    assert_eq!(upstream_token(&exchange(&h, &mcp_token)), "up-1");
    assert!(!h.store.keys().contains(&"keys/upstream-tokens".to_string()));
    let mut other = h.harness.config.clone();
    other.set("upstream_token_key", &STANDARD.encode([4u8; 32]));
    let env = mcp_auth_core::Env::new(
        &h.store,
        &h.upstream,
        &h.clock,
        &h.rng,
        mcp_auth_core::Settings::from_config(&other).unwrap(),
    );
    let family = family_of(&h, &mcp_token);
    assert!(upstream_tokens::current(&env, &family).is_err());
}

#[test]
fn revoking_the_family_deletes_the_upstream_tokens() {
    let (h, _) = server(&[]);
    let mcp_token = sign_in(&h);
    let family = family_of(&h, &mcp_token);
    assert!(h.store.keys().contains(&upstream_tokens::key(&family)));
    tokens::revoke_family(&h.env(), &family).unwrap();
    assert!(!h.store.keys().contains(&upstream_tokens::key(&family)));
}

#[test]
fn deleting_the_client_deletes_the_upstream_tokens_of_every_family() {
    let (h, _) = server(&[]);
    let families = [sign_in(&h), sign_in(&h)].map(|t| family_of(&h, &t));
    let other_client_left = h.store.keys();
    tokens::retire_client(&h.env(), CLIENT).unwrap();
    let keys = h.store.keys();
    for family in &families {
        assert!(!keys.contains(&upstream_tokens::key(family)), "{family}");
    }
    assert!(
        !keys.iter().any(|k| k.starts_with("upstream-client/")),
        "the client's index is gone: {keys:?}"
    );
    assert!(other_client_left.len() > keys.len());
}

#[test]
fn a_replayed_code_revokes_the_upstream_tokens_too() {
    let (h, _) = server(&[]);
    let to_provider = authorize(&h, &[("resource", Some(RESOURCE))]);
    let state = query_of(location(&to_provider))["state"].clone();
    let back = get(&h, &format!("/oauth/callback?code=up-code&state={state}"));
    let code = query_of(location(&back))["code"].clone();
    let redeem = || {
        h.call(Request::form(
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("client_id", CLIENT),
            ],
        ))
    };
    let first = json_of(&redeem());
    let mcp_token = first["access_token"].as_str().unwrap();
    assert_eq!(upstream_token(&exchange(&h, mcp_token)), "up-1");
    assert_eq!(redeem().status, 400);
    let family = mcp_auth_core::secret::hash(&code);
    assert!(!h.store.keys().contains(&upstream_tokens::key(&family)));
}

#[test]
fn a_device_sign_in_keeps_the_upstream_tokens_with_the_device_grant() {
    let (h, _) = server(&[]);
    device_grant(&h);
    let form_page = get(&h, "/device");
    let to_provider = h.call(Request::form(
        "/device",
        &[
            ("csrf", &hidden(&form_page, "csrf")),
            ("user_code", USER_CODE),
        ],
    ));
    let state = query_of(location(&to_provider))["state"].clone();
    let consent = get(&h, &format!("/oauth/callback?code=up-code&state={state}"));
    let done = post_form(&h, "/consent", &consent, &[("decision", "approve")]);
    assert_eq!(done.status, 200, "{}", body(&done));
    let family = mcp_auth_core::secret::hash("device-code-1");
    assert!(h.store.keys().contains(&upstream_tokens::key(&family)));
    assert!(!h
        .store
        .keys()
        .iter()
        .any(|k| k.starts_with("upstream-sign-in/")));
}

/// Every refusal: its RFC 8693 §2.2.2 error, an audit event once the resource server is
/// known, and no stored state changed.
#[test]
fn refusals() {
    let (h, refreshes) = server(&[]);
    let mcp_token = sign_in(&h);
    let for_other = sign_in_for(&h, OTHER_RESOURCE);
    let cases: Vec<(&str, Request, u16, &str)> = vec![
        (
            "no credentials",
            Request::form(
                "/token",
                &[("grant_type", GRANT), ("subject_token", &mcp_token)],
            ),
            401,
            "invalid_client",
        ),
        (
            "a wrong secret",
            exchange_request_by(("rs", "wrong"), &mcp_token, &[]),
            401,
            "invalid_client",
        ),
        (
            "no subject_token",
            exchange_request(&mcp_token, &[("subject_token", None)]),
            400,
            "invalid_request",
        ),
        (
            "no subject_token_type",
            exchange_request(&mcp_token, &[("subject_token_type", None)]),
            400,
            "invalid_request",
        ),
        (
            "a refresh token type",
            exchange_request(
                &mcp_token,
                &[(
                    "subject_token_type",
                    Some("urn:ietf:params:oauth:token-type:refresh_token"),
                )],
            ),
            400,
            "unsupported_token_type",
        ),
        (
            "an id_token requested",
            exchange_request(
                &mcp_token,
                &[(
                    "requested_token_type",
                    Some("urn:ietf:params:oauth:token-type:id_token"),
                )],
            ),
            400,
            "invalid_request",
        ),
        (
            "an actor",
            exchange_request(&mcp_token, &[("actor_token", Some("x"))]),
            400,
            "invalid_request",
        ),
        (
            "another upstream",
            exchange_request(&mcp_token, &[("audience", Some("github"))]),
            400,
            "invalid_target",
        ),
        (
            "no target",
            exchange_request(&mcp_token, &[("audience", None)]),
            400,
            "invalid_request",
        ),
        (
            "an unknown token",
            exchange_request("not-a-token", &[]),
            400,
            "invalid_request",
        ),
        (
            "a token for another audience",
            exchange_request(&for_other, &[]),
            400,
            "invalid_request",
        ),
    ];
    for (what, request, status, error) in cases {
        let before = h.store.state();
        let (res, events) = call_audited(&h, request);
        assert_eq!(error_of(&res), (status, error.to_string()), "{what}");
        if status == 401 {
            assert!(res.header("www-authenticate").is_some(), "{what}");
            assert!(events.is_empty(), "{what}: {events:?}");
        } else {
            assert_eq!(events.len(), 1, "{what}");
            assert_eq!(events[0].event, AuditKind::TokenExchangeRefused, "{what}");
        }
        assert_eq!(h.store.state(), before, "{what} changed the store");
    }
    // The other resource server may exchange its own.
    let res = h.call(exchange_request_by(
        ("other", "other-secret"),
        &for_other,
        &[],
    ));
    assert_eq!(upstream_token(&res), "up-1");
    assert_eq!(refreshes.load(Ordering::SeqCst), 0);
}

#[test]
fn an_expired_subject_token_is_refused() {
    let (h, _) = server(&[("access_token_lifetime", "60")]);
    let mcp_token = sign_in(&h);
    h.clock.advance(60);
    assert_eq!(
        error_of(&exchange(&h, &mcp_token)),
        (400, "invalid_request".into())
    );
}

#[test]
fn a_refresh_the_provider_refuses_ends_the_upstream_tokens() {
    let (h, _) = server(&[]);
    let mcp_token = sign_in(&h);
    h.upstream.answer(|_| Ok(invalid_grant()));
    h.clock.advance(UPSTREAM_LIFETIME);
    let family = family_of(&h, &mcp_token);
    assert_eq!(
        error_of(&exchange(&h, &mcp_token)),
        (400, "invalid_grant".into())
    );
    assert!(!h.store.keys().contains(&upstream_tokens::key(&family)));
}

#[test]
fn an_unreachable_provider_is_temporarily_unavailable_and_keeps_the_tokens() {
    let (h, refreshes) = server(&[]);
    let mcp_token = sign_in(&h);
    h.upstream
        .answer(|_| Err(UpstreamError("connection refused".into())));
    h.clock.advance(UPSTREAM_LIFETIME);
    let res = exchange(&h, &mcp_token);
    assert_eq!(error_of(&res), (503, "temporarily_unavailable".into()));
    assert!(res.header("retry-after").is_some());
    // Back up, and the next refresh window: the tokens were kept.
    answer_taskmanager(&h, refreshes, |_| {});
    h.clock.advance(60);
    assert_eq!(upstream_token(&exchange(&h, &mcp_token)), "up-2");
}

#[test]
fn a_token_that_cannot_be_refreshed_is_invalid_grant_once_expired() {
    let (h, _) = server(&[]);
    h.upstream.answer(|r| {
        Ok(if r.url.ends_with("/verify") {
            FakeUpstream::json(200, json!({"valid": true, "user_id": 42}))
        } else {
            FakeUpstream::json(200, json!({"access_token": "up-1", "expires_in": 100}))
        })
    });
    let mcp_token = sign_in(&h);
    assert_eq!(upstream_token(&exchange(&h, &mcp_token)), "up-1");
    h.clock.advance(100);
    assert_eq!(
        error_of(&exchange(&h, &mcp_token)),
        (400, "invalid_grant".into())
    );
}

#[test]
fn the_built_in_login_has_nothing_upstream() {
    let h = harness(&[(
        "introspection_credentials",
        &format!("rs:rs-secret {RESOURCE}"),
    )]);
    let env = h.env();
    let grant = tokens::Grant {
        client_id: CLIENT.into(),
        sub: "alice".into(),
        scope: "mcp:read".into(),
        resource: RESOURCE.into(),
        auth_time: None,
        family: "f1".into(),
        username: None,
    };
    let issued = tokens::issue(&env, &grant, tokens::Refresh::None).unwrap();
    drop(env);
    assert_eq!(
        error_of(&exchange(&h, &issued.access_token)),
        (400, "invalid_target".into())
    );
}
