//! The built-in login against guessing (failures limited per user name and per client
//! address, over all sign-ins) and the development user `demo`, offered only to browsers on
//! a loopback address.

mod authz_support;

use authz_support::*;
use mcp_auth_core::authorize::pending::{self, PendingAuthorization};
use mcp_auth_core::records;
use mcp_auth_core::{Request, Response};

/// A server with the users `alice` / `wonderland` and `bob` / `builder`, and `extra`.
fn with_users(extra: &[(&str, &str)]) -> Server {
    let users = format!(
        "alice:{},bob:{}",
        cheap_hash("wonderland"),
        cheap_hash("builder")
    );
    let mut settings = vec![("local_users", users.as_str())];
    settings.extend_from_slice(extra);
    harness(&settings)
}

/// Start a fresh sign-in in `browser` and submit `username` / `password` on its login page.
fn log_in(h: &Server, browser: &Browser, username: &str, password: &str) -> Response {
    let page = login_page(h, browser);
    browser.call(
        h,
        form_of(
            "/login",
            &page,
            &[("username", username), ("password", password)],
        ),
    )
}

fn login_page(h: &Server, browser: &Browser) -> Response {
    let res = browser.get(h, &format!("/authorize?{}", authorize_query(&[])));
    let page = browser.get(h, location(&res).strip_prefix(BASE).unwrap());
    assert_eq!(page.status, 200, "{}", body(&page));
    page
}

/// What is stored besides the limits' own bookkeeping, counters included.
fn state(h: &Server) -> Vec<String> {
    h.store
        .keys()
        .into_iter()
        .filter(|k| !k.starts_with("limit/") && !k.starts_with("sweep/"))
        .collect()
}

fn assert_too_many(res: &Response) -> u64 {
    assert_eq!(res.status, 429, "{}", body(res));
    assert!(res.header("location").is_none());
    assert!(
        body(res).contains("Too many failed sign-ins"),
        "{}",
        body(res)
    );
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    retry
}

#[test]
fn failures_are_limited_per_user_name_over_all_sign_ins_and_addresses() {
    let h = with_users(&[]);
    // Ten wrong passwords for alice (the default), each in a fresh sign-in from a fresh
    // address: the 5 tries of one sign-in and the per-address limit do not stop this.
    for i in 0..10 {
        let from = Browser::at(Some(&format!("192.0.2.{i}")));
        assert_eq!(log_in(&h, &from, "alice", "guess").status, 400);
    }
    // Now even the right password waits for the window, and the refusal counted no
    // attempt of the sign-in and changed nothing else.
    let owner = Browser::at(Some("198.51.100.1"));
    let page = login_page(&h, &owner);
    let before = state(&h);
    let right = form_of(
        "/login",
        &page,
        &[("username", "alice"), ("password", "wonderland")],
    );
    let retry = assert_too_many(&owner.call(&h, right));
    assert_eq!(state(&h), before);
    // Other names are not affected.
    assert_eq!(log_in(&h, &owner, "bob", "builder").status, 302);
    h.clock.advance(retry);
    assert_eq!(log_in(&h, &owner, "alice", "wonderland").status, 302);
}

#[test]
fn failures_are_limited_per_client_address_whatever_the_names() {
    let h = with_users(&[]);
    let sprayer = Browser::at(Some("192.0.2.7"));
    for i in 0..30 {
        let res = log_in(&h, &sprayer, &format!("user{i}"), "123456");
        assert_eq!(res.status, 400, "{}", body(&res));
    }
    assert_too_many(&log_in(&h, &sprayer, "alice", "wonderland"));
    // The address over its limit did not spend alice's budget; elsewhere she signs in.
    let elsewhere = Browser::at(Some("203.0.113.5"));
    assert_eq!(log_in(&h, &elsewhere, "alice", "wonderland").status, 302);
}

#[test]
fn only_failures_count() {
    let h = with_users(&[("rate_limit_login_failures_per_user", "2")]);
    let b = Browser::new();
    for _ in 0..5 {
        assert_eq!(log_in(&h, &b, "alice", "wonderland").status, 302);
    }
    assert_eq!(log_in(&h, &b, "alice", "nope").status, 400);
    assert_eq!(log_in(&h, &b, "alice", "nope").status, 400);
    assert_too_many(&log_in(&h, &b, "alice", "wonderland"));
}

#[test]
fn zero_switches_the_login_limits_off() {
    let h = with_users(&[
        ("rate_limit_login_failures_per_user", "0"),
        ("rate_limit_login_failures_per_ip", "0"),
    ]);
    let b = Browser::new();
    for _ in 0..35 {
        assert_eq!(log_in(&h, &b, "alice", "nope").status, 400);
    }
    assert_eq!(log_in(&h, &b, "alice", "wonderland").status, 302);
    assert!(!h.store.keys().iter().any(|k| k.starts_with("limit/")));
}

/// The CSRF token stored with the sign-in a login URL names (what a page would show).
fn stored_csrf(h: &Server, login_url: &str) -> String {
    let session = query_of(login_url).remove("session").unwrap();
    let record: PendingAuthorization = records::get(&h.env(), &pending::key(&session))
        .unwrap()
        .unwrap();
    record.csrf
}

#[test]
fn demo_is_offered_only_to_browsers_on_a_loopback_address() {
    // A loopback issuer without users, as `mcp-auth serve --listen 0.0.0.0:3000` has.
    let h = harness(&[]);
    for addr in [Some("192.0.2.1"), Some("10.0.0.8"), None] {
        let remote = Browser::at(addr);
        let res = remote.get(&h, &format!("/authorize?{}", authorize_query(&[])));
        let login_url = location(&res).to_string();
        let page = remote.get(&h, login_url.strip_prefix(BASE).unwrap());
        assert_eq!(page.status, 503, "{addr:?}: {}", body(&page));
        assert!(body(&page).contains("only to a browser on the server"));
        assert!(!body(&page).contains("<strong>demo</strong>"));
        // Posting demo / demo anyway signs nobody in.
        let session = query_of(&login_url).remove("session").unwrap();
        let csrf = stored_csrf(&h, &login_url);
        let post = Request::form(
            "/login",
            &[
                ("session", &session),
                ("csrf", &csrf),
                ("username", "demo"),
                ("password", "demo"),
            ],
        );
        let res = remote.call(&h, post);
        assert_eq!(res.status, 503, "{addr:?}: {}", body(&res));
        assert!(!h.store.keys().iter().any(|k| k.starts_with("code/")));
    }
    for addr in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        let local = Browser::at(Some(addr));
        let page = login_page(&h, &local);
        assert!(body(&page).contains("<strong>demo</strong>"), "{addr}");
        let done = local.call(
            &h,
            form_of(
                "/login",
                &page,
                &[("username", "demo"), ("password", "demo")],
            ),
        );
        assert_eq!(code_record(&h, location(&done)).sub, "demo", "{addr}");
    }
}
