//! Delegation to TaskManager: our /authorize sends the user to TaskManager's sign-in, which
//! sends them back to our /oauth/callback; we exchange its code (client credentials in the
//! body, our PKCE verifier), learn the user from `/api/oauth/verify`, ask for consent and
//! issue our own code and tokens naming TaskManager's `user_id`.

use crate::support::taskmanager::{self, FakeTaskManager};
use crate::support::*;

fn start(tm: &FakeTaskManager, dir: &std::path::Path, client_secret: &str) -> Host {
    start_with(tm, dir, client_secret, HostOptions::default())
}

/// A host delegating to `tm` as TaskManager client `client_secret`, started with `options`.
pub(crate) fn start_with(
    tm: &FakeTaskManager,
    dir: &std::path::Path,
    client_secret: &str,
    options: HostOptions,
) -> Host {
    let options = options
        .variable("UPSTREAM_PROVIDER", "taskmanager")
        .variable("TASKMANAGER_OAUTH_HOST", &tm.base)
        .variable("TASKMANAGER_CLIENT_ID", taskmanager::CLIENT_ID)
        .variable("TASKMANAGER_CLIENT_SECRET", client_secret);
    let host = Host::start(dir, &options);
    tm.register_redirect_uri(&host.url("/oauth/callback"));
    host
}

/// Our /authorize → TaskManager's sign-in page, checking what we asked TaskManager for.
pub(crate) fn to_taskmanager(
    browser: &Browser,
    host: &Host,
    tm: &FakeTaskManager,
    client_id: &str,
) -> Page {
    let redirect = browser.get(&authorization_url(&host.base, client_id, "st-1"));
    let upstream = redirect.location();
    assert!(
        upstream.starts_with(&format!("{}/api/oauth/authorize?", tm.base)),
        "{upstream}"
    );
    let asked = query_of(&upstream);
    assert_eq!(asked["client_id"], taskmanager::CLIENT_ID);
    assert_eq!(asked["redirect_uri"], host.url("/oauth/callback"));
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["scope"], "read");
    let sign_in = browser.follow(&redirect);
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    sign_in
}

/// alice signs in on TaskManager's page and allows us; TaskManager's redirect back to our
/// /oauth/callback.
pub(crate) fn sign_in_at_taskmanager(browser: &Browser, sign_in: &Page) -> Page {
    browser.submit(
        sign_in,
        &[
            ("username", taskmanager::USERNAME),
            ("password", taskmanager::PASSWORD),
        ],
    )
}

/// A whole sign-in through TaskManager, approved on our consent page: TaskManager's redirect
/// to our callback, and the code our redirect to the client carries.
pub(crate) fn sign_in_through_taskmanager(
    browser: &Browser,
    host: &Host,
    tm: &FakeTaskManager,
    client_id: &str,
) -> (String, String) {
    let sign_in = to_taskmanager(browser, host, tm, client_id);
    let back = sign_in_at_taskmanager(browser, &sign_in);
    let consent = browser.follow(&back);
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    let to_client = browser.submit(&consent, &[("decision", "approve")]);
    (
        back.location(),
        client_redirect_code(&to_client, &issuer_of(&host.base)),
    )
}

#[test]
fn a_taskmanager_user_signs_in_and_is_the_subject_of_our_tokens() {
    let tm = FakeTaskManager::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let host = start(&tm, dir.path(), taskmanager::CLIENT_SECRET);
    let base = host.base.as_str();
    let browser = Browser::new();
    let client_id = register_public_client(&browser, base);

    let sign_in = to_taskmanager(&browser, &host, &tm, &client_id);
    let wrong = browser.submit(&sign_in, &[("username", "alice"), ("password", "guess")]);
    assert_eq!(wrong.status, 401);
    let back = sign_in_at_taskmanager(&browser, &wrong);
    let callback = back.location();
    assert!(
        callback.starts_with(&host.url("/oauth/callback?")),
        "{callback}"
    );
    let consent = browser.follow(&back);
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    assert!(consent.body.contains("E2E Client"), "{}", consent.body);
    let to_client = browser.submit(&consent, &[("decision", "approve")]);
    let code = client_redirect_code(&to_client, &issuer_of(base));

    let tokens = tokens_of(&redeem(&browser, base, &client_id, &code));
    let info = introspect(&browser, base, text(&tokens, "access_token"));
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], taskmanager::USER_ID.to_string());
    assert_eq!(info["client_id"], client_id.as_str());

    // TaskManager saw one exchange, with our credentials and the verifier of our challenge.
    let exchanges = tm.exchanges();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    let exchange = &exchanges[0];
    assert_eq!(exchange.client_id, taskmanager::CLIENT_ID);
    assert_eq!(exchange.client_secret, taskmanager::CLIENT_SECRET);
    assert!(exchange.verifier_matched, "{exchange:?}");
    assert!(exchange.succeeded, "{exchange:?}");

    // Replaying TaskManager's redirect finds the sign-in taken.
    let replay = browser.get(&callback);
    assert_eq!(replay.status, 400, "{}", replay.body);
}

/// Our exchange refused (a wrong client secret): no user ever approved this client, so the
/// user is not sent to its redirect URI (RFC 9700 §4.11.2) but shown a page that says
/// nothing of TaskManager; TaskManager's reason is in the audit log.
#[test]
fn a_refused_exchange_is_a_page_with_taskmanagers_reason_only_in_the_log() {
    let tm = FakeTaskManager::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let host = start(&tm, dir.path(), "not-the-secret");
    let browser = Browser::new();
    let client_id = register_public_client(&browser, &host.base);

    let sign_in = to_taskmanager(&browser, &host, &tm, &client_id);
    let back = sign_in_at_taskmanager(&browser, &sign_in);
    let failed = browser.follow(&back);
    assert_eq!(failed.status, 502, "{}", failed.body);
    assert!(failed.header("location").is_none());
    assert!(
        !failed.body.contains("Invalid client credentials"),
        "{}",
        failed.body
    );
    let log = host.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("\"upstream_failed\"") && l.contains("Invalid client credentials")),
        "{log}"
    );
    assert!(!tm.exchanges()[0].succeeded);
}
