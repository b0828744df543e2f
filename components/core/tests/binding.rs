//! A sign-in belongs to the browser that started it: its id (in the login link, the
//! upstream `state`, the forms) continues nothing from another browser, and one browser may
//! run several sign-ins at once.

mod authz_support;

use authz_support::*;
use mcp_auth_core::testing::FakeUpstream;
use mcp_auth_core::{Method, Request, Response};

/// Everything stored, counters included: a refused step must change none of it.
fn everything(h: &Server) -> (Vec<String>, std::collections::BTreeMap<String, Vec<u8>>) {
    (h.store.keys(), h.store.snapshot())
}

fn path_of(url: &str) -> &str {
    url.strip_prefix(BASE).unwrap()
}

fn assert_refused_as_another_browser(res: &Response) {
    assert_eq!(res.status, 403, "{}", body(res));
    assert!(res.header("location").is_none());
    assert!(
        body(res).contains("started in another browser"),
        "{}",
        body(res)
    );
}

#[test]
fn a_login_link_sent_to_someone_else_is_refused_and_changes_nothing() {
    // The attacker (the server's default browser) starts a sign-in and sends its login link.
    let h = harness(&[("consent", "true")]);
    let login_url = location(&authorize(&h, &[])).to_string();
    let attacker_page = get(&h, path_of(&login_url));
    assert_eq!(attacker_page.status, 200);
    let before = everything(&h);

    let victim = Browser::new();
    assert_refused_as_another_browser(&victim.get(&h, path_of(&login_url)));
    // Even with the attacker's form (session and CSRF token) the victim's sign-in is refused,
    // so the attacker never gets a signed-in sign-in to approve.
    let login = form_of(
        "/login",
        &attacker_page,
        &[("username", "demo"), ("password", "demo")],
    );
    assert_refused_as_another_browser(&victim.call(&h, login));
    // A cookie of the right name with a wrong secret is no better.
    let name = h.browser.cookie_names().pop().unwrap();
    let forged = form_of(
        "/login",
        &attacker_page,
        &[("username", "demo"), ("password", "demo")],
    )
    .with_header("cookie", &format!("{name}=forged"));
    assert_refused_as_another_browser(&Browser::new().call(&h, forged));
    // No attempt counted, no claim, no stage moved: the sign-in still works for its browser.
    assert_eq!(everything(&h), before);
    let consent = post_form(
        &h,
        "/login",
        &attacker_page,
        &[("username", "demo"), ("password", "demo")],
    );
    assert_eq!(consent.status, 200, "{}", body(&consent));
}

#[test]
fn consent_cannot_be_approved_from_another_browser() {
    let h = harness(&[("consent", "true")]);
    let res = authorize(&h, &[]);
    let page = get(&h, path_of(location(&res)));
    let consent = post_form(
        &h,
        "/login",
        &page,
        &[("username", "demo"), ("password", "demo")],
    );
    assert_eq!(consent.status, 200, "{}", body(&consent));
    let before = everything(&h);
    // Someone who knows the session and the form's token (say, from a shoulder or a log).
    let approve = form_of("/consent", &consent, &[("decision", "approve")]);
    assert_refused_as_another_browser(&Browser::new().call(&h, approve));
    assert_eq!(everything(&h), before);
    let done = post_form(&h, "/consent", &consent, &[("decision", "approve")]);
    assert_eq!(code_record(&h, location(&done)).sub, "demo");
}

#[test]
fn the_upstream_callback_must_come_back_to_the_browser_that_left() {
    const TM: &str = "http://tm.example:8000";
    let h = harness(&[
        ("upstream_provider", "taskmanager"),
        ("taskmanager_oauth_host", TM),
        ("taskmanager_client_id", "tm-client"),
        ("taskmanager_client_secret", "tm-secret"),
    ]);
    h.upstream.answer(|r| {
        if r.url.ends_with("/api/oauth/token") {
            Ok(FakeUpstream::json(
                200,
                serde_json::json!({"access_token": "tok", "token_type": "Bearer"}),
            ))
        } else {
            Ok(FakeUpstream::json(
                200,
                serde_json::json!({"valid": true, "client_id": "tm-client", "user_id": 42}),
            ))
        }
    });
    let state = query_of(location(&authorize(&h, &[])))
        .remove("state")
        .unwrap();
    let callback = format!("/oauth/callback?code=c&state={state}");
    let before = everything(&h);
    // The attacker's browser returns with a code for its own upstream account, in a
    // sign-in the victim started (login CSRF, RFC 6749 §10.12): refused before the code is
    // even redeemed.
    assert_refused_as_another_browser(&Browser::new().get(&h, &callback));
    assert_eq!(everything(&h), before);
    assert!(h.upstream.sent.lock().unwrap().is_empty());
    let back = get(&h, &callback);
    assert_eq!(code_record(&h, location(&back)).sub, "42");
}

#[test]
fn a_device_sign_in_belongs_to_the_browser_that_entered_the_code() {
    let h = harness(&[]);
    device_grant(&h);

    let entry = get(&h, "/device");
    let csrf = hidden(&entry, "csrf");
    let started = h.call(Request::form(
        "/device",
        &[("csrf", &csrf), ("user_code", "WDJB-MJHT")],
    ));
    let login_url = location(&started).to_string();
    let before = everything(&h);
    assert_refused_as_another_browser(&Browser::new().get(&h, path_of(&login_url)));
    assert_eq!(everything(&h), before);
    let page = get(&h, path_of(&login_url));
    assert!(body(&page).contains("connect a device to <strong>Test Client</strong>"));
    let consent = post_form(
        &h,
        "/login",
        &page,
        &[("username", "demo"), ("password", "demo")],
    );
    let approve = form_of("/consent", &consent, &[("decision", "approve")]);
    assert_refused_as_another_browser(&Browser::new().call(&h, approve));
    let done = post_form(&h, "/consent", &consent, &[("decision", "approve")]);
    assert_eq!(done.status, 200, "{}", body(&done));
}

#[test]
fn one_browser_runs_two_sign_ins_at_once() {
    let h = harness(&[("consent", "true")]);
    register(
        &h,
        "client-2",
        "Second Client",
        &["https://other.example/cb"],
    );
    let first = location(&authorize(&h, &[("state", Some("one"))])).to_string();
    let second = location(&authorize(
        &h,
        &[
            ("client_id", Some("client-2")),
            ("redirect_uri", Some("https://other.example/cb")),
            ("state", Some("two")),
        ],
    ))
    .to_string();
    // Interleaved: both login pages, then both sign-ins, then both decisions, crosswise.
    let page_1 = get(&h, path_of(&first));
    let page_2 = get(&h, path_of(&second));
    let demo = [("username", "demo"), ("password", "demo")];
    let consent_2 = post_form(&h, "/login", &page_2, &demo);
    let consent_1 = post_form(&h, "/login", &page_1, &demo);
    assert_eq!(consent_2.status, 200, "{}", body(&consent_2));
    assert_eq!(consent_1.status, 200, "{}", body(&consent_1));
    assert_eq!(h.browser.cookie_names().len(), 2);
    assert!(body(&consent_2).contains("Second Client"));
    let done_1 = post_form(&h, "/consent", &consent_1, &[("decision", "approve")]);
    let done_2 = post_form(&h, "/consent", &consent_2, &[("decision", "approve")]);
    assert!(location(&done_1).starts_with(REDIRECT));
    assert_eq!(query_of(location(&done_1))["state"], "one");
    assert!(location(&done_2).starts_with("https://other.example/cb?"));
    assert_eq!(query_of(location(&done_2))["state"], "two");
    assert_eq!(code_record(&h, location(&done_2)).client_id, "client-2");
    // Each ended sign-in cleared its cookie.
    assert!(
        h.browser.cookie_names().is_empty(),
        "{:?}",
        h.browser.cookie_names()
    );
}

#[test]
fn the_login_page_says_who_asks_and_where_the_user_will_be_sent() {
    let h = harness(&[]);
    register(&h, CLIENT, "<b>Shiny</b> App", &[REDIRECT]);
    let page = get(&h, path_of(location(&authorize(&h, &[]))));
    let html = body(&page);
    assert!(
        html.contains("<strong>&lt;b&gt;Shiny&lt;/b&gt; App</strong> asks you to sign in"),
        "{html}"
    );
    assert!(html.contains(r#"you will be sent to <span class="host">app.example</span>"#));
}

#[test]
fn every_step_needs_the_cookie_even_with_a_valid_session() {
    // Without any cookie at all (a client that does not keep them, or a link opened
    // elsewhere), each step of a live sign-in is the same 403 page.
    let h = harness(&[("consent", "true")]);
    let login_url = location(&authorize(&h, &[])).to_string();
    let session = query_of(&login_url).remove("session").unwrap();
    let bare = Browser::new();
    let before = everything(&h);
    let steps = [
        Request::new(Method::Get, path_of(&login_url)),
        Request::form("/login", &[("session", &session), ("csrf", "x")]),
        Request::form("/consent", &[("session", &session), ("csrf", "x")]),
    ];
    for step in steps {
        assert_refused_as_another_browser(&bare.call(&h, step));
    }
    assert_eq!(everything(&h), before);
}

#[test]
fn two_device_forms_open_in_one_browser_both_submit() {
    // Two tabs of the device page: the second does not invalidate the first one's token.
    let h = harness(&[]);
    let first = get(&h, "/device");
    let second = get(&h, "/device");
    for form in [&first, &second] {
        let res = h.call(Request::form(
            "/device",
            &[("csrf", &hidden(form, "csrf")), ("user_code", "AAAA-BBBB")],
        ));
        // A wrong code, but past the CSRF check: the form again, not a refusal.
        assert_eq!(res.status, 400, "{}", body(&res));
        assert!(body(&res).contains("not valid or has expired"));
    }
}
