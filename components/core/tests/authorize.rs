//! `/authorize`, the local login, consent and the device verification page.

mod authz_support;

use authz_support::*;
use mcp_auth_core::audit::AuditKind;
use mcp_auth_core::client::ClientSource;
use mcp_auth_core::grants::{self, DeviceGrant, DeviceStatus};
use mcp_auth_core::records;
use mcp_auth_core::upstream::local::MAX_ATTEMPTS;
use mcp_auth_core::{Method, Request, Response};

/// A redirect to the client carrying `error`, the client's `state` and our `iss`.
fn assert_error_redirect(res: &Response, error: &str) {
    let location = location(res);
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(location);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some(error),
        "{location}"
    );
    assert!(q.contains_key("error_description"));
    assert_eq!(q.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER));
}

/// A 400 page, not a redirect, and nothing stored.
fn assert_page_and_nothing_stored(h: &Server, changes: &Changes) {
    let before = h.store.snapshot();
    let res = authorize(h, changes);
    assert_eq!(res.status, 400, "{}", body(&res));
    assert!(res.header("location").is_none());
    assert!(res.header("content-type").unwrap().starts_with("text/html"));
    assert_eq!(h.store.snapshot(), before);
}

/// Sign in as the development user from a `/login?session=` redirect.
fn sign_in_demo(h: &Server, login_url: &str) -> Response {
    let path = login_url.strip_prefix(BASE).unwrap();
    let page = get(h, path);
    assert_eq!(page.status, 200, "{}", body(&page));
    post_form(
        h,
        "/login",
        &page,
        &[("username", "demo"), ("password", "demo")],
    )
}

#[test]
fn valid_request_goes_to_the_login_page_and_ends_with_a_code() {
    let h = harness(&[]);
    let res = authorize(&h, &[]);
    let login = location(&res).to_string();
    assert!(
        login.starts_with(&format!("{BASE}/login?session=")),
        "{login}"
    );
    let done = sign_in_demo(&h, &login);
    let back = location(&done);
    let q = query_of(back);
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], ISSUER);
    let code = code_record(&h, back);
    assert_eq!(code.client_id, CLIENT);
    assert_eq!(code.redirect_uri, REDIRECT);
    assert_eq!(code.code_challenge, CHALLENGE);
    assert_eq!(code.resource, RESOURCE);
    // No scope requested: the configured defaults.
    assert_eq!(code.scope, "mcp:read mcp:write");
    assert_eq!(code.sub, "demo");
}

#[test]
fn loopback_redirects_may_use_any_port_https_may_not() {
    let h = harness(&[]);
    register_as(
        &h,
        "native",
        "CLI",
        &["http://127.0.0.1/cb", "https://app.example/cb"],
        ClientSource::Provisioned,
    );
    let res = authorize(
        &h,
        &[
            ("client_id", Some("native")),
            ("redirect_uri", Some("http://127.0.0.1:51234/cb")),
        ],
    );
    let done = sign_in_demo(&h, location(&res));
    assert!(location(&done).starts_with("http://127.0.0.1:51234/cb?code="));
    assert_eq!(
        code_record(&h, location(&done)).redirect_uri,
        "http://127.0.0.1:51234/cb"
    );

    assert_page_and_nothing_stored(
        &h,
        &[
            ("client_id", Some("native")),
            ("redirect_uri", Some("https://app.example:8443/cb")),
        ],
    );
}

#[test]
fn client_and_redirect_errors_are_pages_never_redirects() {
    let h = harness(&[]);
    assert_page_and_nothing_stored(&h, &[("client_id", None)]);
    assert_page_and_nothing_stored(&h, &[("client_id", Some("nobody"))]);
    assert_page_and_nothing_stored(&h, &[("redirect_uri", Some("https://evil.example/cb"))]);
    assert_page_and_nothing_stored(&h, &[("redirect_uri", Some("https://app.example/cb/"))]);
    // Errors after the redirect check are still pages when the redirect is wrong.
    assert_page_and_nothing_stored(
        &h,
        &[
            ("redirect_uri", Some("https://evil.example/cb")),
            ("response_type", Some("token")),
        ],
    );
}

#[test]
fn redirect_uri_is_optional_only_with_a_single_registration() {
    let h = harness(&[]);
    let res = authorize(&h, &[("redirect_uri", None)]);
    let done = sign_in_demo(&h, location(&res));
    assert!(location(&done).starts_with(REDIRECT));
    // Not sent, so the code carries none for the token endpoint to compare.
    assert_eq!(code_record(&h, location(&done)).redirect_uri, "");

    register(&h, "two", "Two", &[REDIRECT, "https://app.example/other"]);
    assert_page_and_nothing_stored(&h, &[("client_id", Some("two")), ("redirect_uri", None)]);
}

#[test]
fn request_errors_go_back_to_the_client_with_state_and_iss() {
    let h = harness(&[]);
    let cases: &[(&Changes, &str)] = &[
        (
            &[("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (&[("response_type", None)], "invalid_request"),
        (&[("code_challenge", None)], "invalid_request"),
        (&[("code_challenge", Some("short"))], "invalid_request"),
        (
            &[("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (&[("code_challenge_method", None)], "invalid_request"),
        (
            &[("resource", Some("https://evil.example/mcp"))],
            "invalid_target",
        ),
        (&[("resource", Some("not a uri"))], "invalid_target"),
        (&[("scope", Some("mcp:read admin"))], "invalid_scope"),
    ];
    for (changes, error) in cases {
        let before = h.store.snapshot();
        assert_error_redirect(&authorize(&h, changes), error);
        assert_eq!(h.store.snapshot(), before, "{changes:?} changed the store");
    }
}

#[test]
fn plain_pkce_is_refused_even_with_a_valid_looking_challenge() {
    let h = harness(&[]);
    let res = authorize(&h, &[("code_challenge_method", Some("plain"))]);
    assert_error_redirect(&res, "invalid_request");
    assert!(query_of(location(&res))["error_description"].contains("S256"));
}

#[test]
fn resource_is_required_unless_exactly_one_is_configured() {
    let h = harness(&[]);
    let res = authorize(&h, &[("resource", Some("https://MCP.example.com/mcp/"))]);
    let done = sign_in_demo(&h, location(&res));
    assert_eq!(code_record(&h, location(&done)).resource, RESOURCE);

    let h = harness(&[("mcp_server", "https://a.example/mcp https://b.example/mcp")]);
    assert_error_redirect(&authorize(&h, &[]), "invalid_target");
    let res = authorize(&h, &[("resource", Some("https://b.example/mcp"))]);
    assert_eq!(res.status, 302);
    assert!(location(&res).contains("/login?session="));
}

#[test]
fn client_without_the_code_grant_is_unauthorized() {
    let h = harness(&[]);
    let mut client: mcp_auth_core::client::Client =
        records::get(&h.env(), &mcp_auth_core::client::key(CLIENT))
            .unwrap()
            .unwrap();
    client.metadata.grant_types = vec!["urn:ietf:params:oauth:grant-type:device_code".into()];
    records::put(&h.env(), &mcp_auth_core::client::key(CLIENT), &client, None).unwrap();
    assert_error_redirect(&authorize(&h, &[]), "unauthorized_client");
}

#[test]
fn repeated_parameters() {
    let h = harness(&[]);
    // Client and redirect known: the client is told.
    let q = format!(
        "/authorize?{}&scope=mcp:read&scope=mcp:write",
        authorize_query(&[])
    );
    assert_error_redirect(&get(&h, &q), "invalid_request");
    // A repeated client_id cannot be trusted: a page.
    let q = format!("/authorize?{}&client_id=other", authorize_query(&[]));
    let res = get(&h, &q);
    assert_eq!(res.status, 400);
    assert!(res.header("location").is_none());
}

#[test]
fn only_get_is_allowed() {
    let h = harness(&[]);
    let res = h.call(Request::new(Method::Post, "/authorize"));
    assert_eq!(res.status, 405);
    assert_eq!(res.header("allow"), Some("GET"));
}

/// A harness with `alice` / `wonderland` and the login page of a fresh request.
fn alice_login_page() -> (Server, Response) {
    let users = format!("alice:{}", cheap_hash("wonderland"));
    let h = harness(&[("local_users", users.as_str())]);
    let res = authorize(&h, &[]);
    let page = get(&h, location(&res).strip_prefix(BASE).unwrap());
    assert_eq!(page.status, 200);
    assert!(!body(&page).contains("demo"));
    (h, page)
}

#[test]
fn local_users_sign_in_with_their_argon2_password() {
    let (h, page) = alice_login_page();
    let done = post_form(
        &h,
        "/login",
        &page,
        &[("username", "alice"), ("password", "wonderland")],
    );
    assert_eq!(code_record(&h, location(&done)).sub, "alice");
    // The development user does not exist when users are configured.
    let (h, page) = alice_login_page();
    let res = post_form(
        &h,
        "/login",
        &page,
        &[("username", "demo"), ("password", "demo")],
    );
    assert_eq!(res.status, 400);
}

#[test]
fn wrong_password_re_renders_the_form_and_attempts_run_out() {
    let (h, page) = alice_login_page();
    for left in (1..MAX_ATTEMPTS).rev() {
        let res = post_form(
            &h,
            "/login",
            &page,
            &[("username", "alice"), ("password", "nope")],
        );
        assert_eq!(res.status, 400);
        let html = body(&res);
        assert!(html.contains("Wrong username or password"), "{html}");
        assert!(html.contains(&format!("{left} attempt(s) left")), "{html}");
        assert!(html.contains(r#"value="alice""#));
    }
    let res = post_form(
        &h,
        "/login",
        &page,
        &[("username", "alice"), ("password", "nope")],
    );
    assert_eq!(res.status, 429);
    // The session is dead: even the right password finds nothing.
    let res = post_form(
        &h,
        "/login",
        &page,
        &[("username", "alice"), ("password", "wonderland")],
    );
    assert_eq!(res.status, 400);
    assert!(res.header("location").is_none());
    assert!(
        !h.store.keys().iter().any(|k| k.starts_with("pending/")),
        "{:?}",
        h.store.keys()
    );
}

#[test]
fn unknown_user_is_a_wrong_password() {
    let (h, page) = alice_login_page();
    let res = post_form(
        &h,
        "/login",
        &page,
        &[("username", "bob"), ("password", "wonderland")],
    );
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("Wrong username or password"));
}

#[test]
fn login_csrf_must_match_the_stored_token() {
    let (h, page) = alice_login_page();
    let alice = [("username", "alice"), ("password", "wonderland")];
    let with_csrf = |csrf: Option<&str>| {
        let mut pairs = vec![("session", hidden(&page, "session"))];
        pairs.extend(csrf.map(|c| ("csrf", c.to_string())));
        pairs.extend(alice.iter().map(|(k, v)| (*k, v.to_string())));
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Request::form("/login", &pairs)
    };
    let before = h.store.snapshot();
    // From the right browser, but the form's token is forged or missing.
    assert_eq!(h.call(with_csrf(Some("forged"))).status, 403);
    assert_eq!(h.call(with_csrf(None)).status, 403);
    // A double-submitted pair of our device form's kind proves nothing here.
    let pair = with_csrf(Some("forged")).with_header("cookie", "mcp_auth_csrf=forged");
    assert_eq!(h.call(pair).status, 403);
    assert_eq!(h.store.snapshot(), before);
    // Nothing was counted as an attempt: the real form still works.
    let done = post_form(&h, "/login", &page, &alice);
    assert_eq!(code_record(&h, location(&done)).sub, "alice");
}

#[test]
fn without_users_sign_in_is_not_configured_off_loopback() {
    let h = harness(&[("mcp_auth_server_url", "https://auth.example.com")]);
    let res = authorize(&h, &[]);
    let login = location(&res);
    assert!(login.starts_with("https://auth.example.com/login?session="));
    let page = get(&h, login.strip_prefix("https://auth.example.com").unwrap());
    assert_eq!(page.status, 503);
    assert!(body(&page).contains("not configured"));
}

#[test]
fn demo_user_is_announced_on_loopback_and_cookie_is_secure_on_https() {
    let h = harness(&[]);
    let res = authorize(&h, &[]);
    let page = get(&h, location(&res).strip_prefix(BASE).unwrap());
    assert!(body(&page).contains("<strong>demo</strong>"));

    let users = format!("alice:{}", cheap_hash("pw"));
    let h = harness(&[
        ("mcp_auth_server_url", "https://auth.example.com"),
        ("local_users", users.as_str()),
    ]);
    let res = authorize(&h, &[]);
    let cookie = res.header("set-cookie").unwrap();
    assert!(cookie.starts_with("__Host-mcp_auth_flow_"), "{cookie}");
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let page = get(
        &h,
        location(&res)
            .strip_prefix("https://auth.example.com")
            .unwrap(),
    );
    assert_eq!(page.status, 200, "{}", body(&page));
}

#[test]
fn unknown_session_is_a_page() {
    let h = harness(&[]);
    let res = get(&h, "/login?session=nope");
    assert_eq!(res.status, 400);
    let res = get(&h, "/login");
    assert_eq!(res.status, 400);
}

/// Consent on: `/authorize` → login → the consent page.
fn consent_page(h: &Server) -> Response {
    let res = authorize(h, &[("scope", Some("mcp:read"))]);
    let page = sign_in_demo(h, location(&res));
    assert_eq!(page.status, 200, "{}", body(&page));
    page
}

#[test]
fn pages_carry_the_security_headers() {
    let h = harness(&[("consent", "true")]);
    let login = get(
        &h,
        location(&authorize(&h, &[])).strip_prefix(BASE).unwrap(),
    );
    let consent = consent_page(&h);
    let error = get(&h, "/authorize?response_type=code&client_id=nobody");
    let device = get(&h, "/device");
    for (name, page) in [
        ("login", &login),
        ("consent", &consent),
        ("error", &error),
        ("device", &device),
    ] {
        assert!(
            page.header("content-type")
                .is_some_and(|t| t.starts_with("text/html")),
            "{name}"
        );
        let csp = page.header("content-security-policy").unwrap_or_default();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{name}: {csp}"
        );
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{name}");
        assert_eq!(
            page.header("referrer-policy"),
            Some("no-referrer"),
            "{name}"
        );
        assert_eq!(
            page.header("x-content-type-options"),
            Some("nosniff"),
            "{name}"
        );
        assert_eq!(page.header("cache-control"), Some("no-store"), "{name}");
        assert_eq!(page.header("access-control-allow-origin"), None, "{name}");
    }
}

#[test]
fn consent_approve_issues_the_code() {
    let h = harness(&[("consent", "true")]);
    let page = consent_page(&h);
    let html = body(&page);
    assert!(html.contains("Test Client"));
    assert!(html.contains(r#"<span class="host">app.example</span>"#));
    assert!(html.contains("<li>mcp:read</li>"));
    assert!(html.contains(RESOURCE));
    let done = post_form(&h, "/consent", &page, &[("decision", "approve")]);
    let code = code_record(&h, location(&done));
    assert_eq!(
        (code.sub.as_str(), code.scope.as_str()),
        ("demo", "mcp:read")
    );
    // Decided once: a replay finds nothing.
    let again = post_form(&h, "/consent", &page, &[("decision", "approve")]);
    assert_eq!(again.status, 400);
}

#[test]
fn consent_deny_is_access_denied_with_state_and_iss() {
    let h = harness(&[("consent", "true")]);
    let page = consent_page(&h);
    let res = post_form(&h, "/consent", &page, &[("decision", "deny")]);
    assert_error_redirect(&res, "access_denied");
    assert!(!h.store.keys().iter().any(|k| k.starts_with("code/")));
}

#[test]
fn consent_refuses_a_forged_form() {
    let h = harness(&[("consent", "true")]);
    let page = consent_page(&h);
    let session = hidden(&page, "session");
    let before = h.store.snapshot();
    let forged = Request::form(
        "/consent",
        &[
            ("session", &session),
            ("csrf", "x"),
            ("decision", "approve"),
        ],
    )
    .with_header("cookie", "mcp_auth_csrf=x");
    // From the browser that signed in, with a forged token.
    assert_eq!(h.call(forged).status, 403);
    let bad_decision = post_form(&h, "/consent", &page, &[("decision", "maybe")]);
    assert_eq!(bad_decision.status, 400);
    assert_eq!(h.store.snapshot(), before);
    // The real form still works.
    let done = post_form(&h, "/consent", &page, &[("decision", "approve")]);
    assert_eq!(done.status, 302);
}

/// The `form-action` of a page's Content-Security-Policy.
fn form_action(page: &Response) -> String {
    let csp = page.header("content-security-policy").unwrap();
    let directive = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("form-action "))
        .unwrap();
    directive.to_string()
}

#[test]
fn the_form_that_ends_at_the_client_may_be_redirected_there() {
    // Browsers apply `form-action` to the redirects of a submission too.
    let h = harness(&[("consent", "true")]);
    let consent = consent_page(&h);
    assert_eq!(
        form_action(&consent),
        "form-action 'self' https://app.example"
    );
    let res = authorize(&h, &[]);
    let login = get(&h, location(&res).strip_prefix(BASE).unwrap());
    assert_eq!(form_action(&login), "form-action 'self'");

    // Without consent, the login form is the one that ends at the client.
    let h = harness(&[]);
    let res = authorize(&h, &[]);
    let login = get(&h, location(&res).strip_prefix(BASE).unwrap());
    assert_eq!(
        form_action(&login),
        "form-action 'self' https://app.example"
    );
    let done = post_form(
        &h,
        "/login",
        &login,
        &[("username", "demo"), ("password", "demo")],
    );
    assert!(location(&done).starts_with(REDIRECT));
}

#[test]
fn hostile_client_name_is_escaped_on_the_consent_page() {
    let h = harness(&[("consent", "true")]);
    register(&h, CLIENT, r#"<script>alert("x")</script>"#, &[REDIRECT]);
    let html = body(&consent_page(&h));
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
}

#[test]
fn allow_list_refuses_other_users_and_audits() {
    let h = harness(&[("allowed_users", "alice")]);
    let res = authorize(&h, &[]);
    let path = location(&res).strip_prefix(BASE).unwrap().to_string();
    let page = get(&h, &path);
    let req = form_of(
        "/login",
        &page,
        &[("username", "demo"), ("password", "demo")],
    );
    let (refused, audit) = call_audited(&h, req);
    assert_eq!(refused.status, 403);
    assert!(refused.header("location").is_none());
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event, AuditKind::SignInRefused);
    assert_eq!(audit[0].sub.as_deref(), Some("demo"));
    assert!(!h
        .store
        .keys()
        .iter()
        .any(|k| k.starts_with("code/") || k.starts_with("pending/")));
}

// --- device verification page (RFC 8628 §3.3) ---

/// `/device` → code → login → the device consent page.
fn device_consent_page(h: &Server) -> Response {
    let form = get(h, "/device?user_code=WDJB-MJHT");
    assert_eq!(form.status, 200);
    assert!(body(&form).contains(r#"value="WDJB-MJHT""#));
    let csrf = hidden(&form, "csrf");
    let res = h.call(Request::form(
        "/device",
        &[("csrf", &csrf), ("user_code", "wdjb-mjht")],
    ));
    let page = sign_in_demo(h, location(&res));
    assert_eq!(page.status, 200, "{}", body(&page));
    let html = body(&page);
    assert!(
        html.contains("WDJB-MJHT") && html.contains("Test Client") && html.contains("mcp:read")
    );
    page
}

fn decide_device(h: &Server, page: &Response, decision: &str) -> (Response, Vec<AuditKind>) {
    let req = form_of("/consent", page, &[("decision", decision)]);
    let (res, audit) = call_audited(h, req);
    (res, audit.into_iter().map(|e| e.event).collect())
}

#[test]
fn device_approve() {
    // Consent off does not skip the device confirmation.
    let h = harness(&[]);
    let key = device_grant(&h);
    let page = device_consent_page(&h);
    let (res, audit) = decide_device(&h, &page, "approve");
    assert_eq!(res.status, 200);
    assert!(body(&res).contains("You may return to your device"));
    assert_eq!(audit, [AuditKind::DeviceApproved]);
    let grant: DeviceGrant = records::get(&h.env(), &key).unwrap().unwrap();
    assert!(matches!(grant.status, DeviceStatus::Approved { ref sub, .. } if sub == "demo"));
    // The user code is spent.
    assert_eq!(
        grants::find_by_user_code(&h.env(), USER_CODE).unwrap(),
        None
    );
}

#[test]
fn device_deny() {
    let h = harness(&[("consent", "true")]);
    let key = device_grant(&h);
    let page = device_consent_page(&h);
    let (res, audit) = decide_device(&h, &page, "deny");
    assert_eq!(res.status, 200);
    assert!(body(&res).contains("Denied"));
    assert_eq!(audit, [AuditKind::DeviceDenied]);
    let grant: DeviceGrant = records::get(&h.env(), &key).unwrap().unwrap();
    assert_eq!(grant.status, DeviceStatus::Denied);
}

#[test]
fn unknown_device_code_re_renders_the_form() {
    let h = harness(&[]);
    device_grant(&h);
    let form = get(&h, "/device");
    let before = h.store.state();
    let res = h.call(Request::form(
        "/device",
        &[("csrf", &hidden(&form, "csrf")), ("user_code", "AAAA-BBBB")],
    ));
    assert_eq!(res.status, 400);
    assert!(res.header("location").is_none());
    assert!(body(&res).contains("not valid or has expired"));
    assert!(body(&res).contains(r#"value="AAAA-BBBB""#));
    assert_eq!(h.store.state(), before);
    // Without the CSRF cookie (another browser) the form is refused.
    let res = Browser::new().call(
        &h,
        Request::form("/device", &[("csrf", "x"), ("user_code", USER_CODE)]),
    );
    assert_eq!(res.status, 403);
}
