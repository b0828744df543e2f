//! Who is trusted with what at `/authorize`: consent for clients that anyone may create
//! (dynamic registration, metadata documents), errors redirected only to approved clients
//! (RFC 9700 §4.11.2), `prompt`, `response_mode`, and the one rule for unknown scopes.

mod authz_support;

use authz_support::*;
use mcp_auth_core::testing::FakeUpstream;
use mcp_auth_core::{Method, Request, Response};
use serde_json::json;

/// A client anyone could have registered (RFC 7591), with the harness's redirect URI.
const DCR: &str = "dcr-client";

/// Sign in as the development user from the response of `/authorize`.
fn sign_in(h: &Server, authorize: &Response) -> Response {
    let path = location(authorize).strip_prefix(BASE).unwrap().to_string();
    let page = get(h, &path);
    assert_eq!(page.status, 200, "{}", body(&page));
    post_form(
        h,
        "/login",
        &page,
        &[("username", "demo"), ("password", "demo")],
    )
}

fn is_consent_page(res: &Response) -> bool {
    res.status == 200 && body(res).contains(r#"name="decision" value="approve""#)
}

/// A 400 page naming `error`, no redirect, nothing stored.
fn assert_error_page(h: &Server, changes: &Changes, error: &str) {
    let before = h.store.snapshot();
    let res = authorize(h, changes);
    assert_eq!(res.status, 400, "{}", body(&res));
    assert!(res.header("location").is_none());
    assert!(body(&res).contains(error), "{}", body(&res));
    assert_eq!(h.store.snapshot(), before);
}

fn assert_error_redirect(res: &Response, error: &str) {
    let q = query_of(location(res));
    assert_eq!(q.get("error").map(String::as_str), Some(error), "{q:?}");
    assert_eq!(q.get("state").map(String::as_str), Some("xyz"));
    assert_eq!(q.get("iss").map(String::as_str), Some(ISSUER));
}

#[test]
fn consent_off_still_asks_about_a_dynamically_registered_client() {
    let h = harness(&[("consent", "false")]);
    register(&h, DCR, "Anyone's Client", &[REDIRECT]);
    let res = sign_in(&h, &authorize(&h, &[("client_id", Some(DCR))]));
    assert!(is_consent_page(&res), "{} {}", res.status, body(&res));
    assert!(body(&res).contains("Anyone&#39;s Client"));
}

#[test]
fn consent_off_still_asks_about_a_metadata_document_client() {
    let url = "https://app.example.com/client.json";
    let h = harness(&[("consent", "false")]);
    h.upstream.answer(move |_| {
        Ok(FakeUpstream::json(
            200,
            json!({"client_id": url, "client_name": "Doc App", "redirect_uris": [REDIRECT]}),
        ))
    });
    let res = sign_in(&h, &authorize(&h, &[("client_id", Some(url))]));
    assert!(is_consent_page(&res), "{} {}", res.status, body(&res));
}

#[test]
fn consent_off_skips_the_page_only_for_a_provisioned_client_and_prompt_consent_asks() {
    let h = harness(&[("consent", "false")]);
    let done = sign_in(&h, &authorize(&h, &[]));
    assert!(location(&done).starts_with(REDIRECT));

    let asked = sign_in(&h, &authorize(&h, &[("prompt", Some("consent"))]));
    assert!(is_consent_page(&asked), "{} {}", asked.status, body(&asked));

    let on = harness(&[("consent", "true")]);
    assert!(is_consent_page(&sign_in(&on, &authorize(&on, &[]))));
}

#[test]
fn errors_for_a_client_nobody_approved_are_pages_until_a_user_approves_it() {
    let h = harness(&[("consent", "true")]);
    register(&h, DCR, "Phisher", &["https://evil.example/cb"]);
    fn dcr<'a>(changes: &[(&'a str, Option<&'a str>)]) -> Vec<(&'a str, Option<&'a str>)> {
        let mut all = vec![
            ("client_id", Some(DCR)),
            ("redirect_uri", Some("https://evil.example/cb")),
        ];
        all.extend_from_slice(changes);
        all
    }
    // Each kind of error a request can carry once its client and redirect URI check out.
    assert_error_page(
        &h,
        &dcr(&[("code_challenge_method", Some("plain"))]),
        "invalid_request",
    );
    assert_error_page(
        &h,
        &dcr(&[("response_type", Some("token"))]),
        "unsupported_response_type",
    );
    assert_error_page(&h, &dcr(&[("scope", Some("admin"))]), "invalid_scope");
    assert_error_page(&h, &dcr(&[("prompt", Some("none"))]), "login_required");
    // A repeated parameter takes another path to the same rule.
    let repeated = format!("/authorize?{}&state=again", authorize_query(&dcr(&[])));
    let res = get(&h, &repeated);
    assert_eq!(res.status, 400, "{}", body(&res));
    assert!(res.header("location").is_none());

    // A user approves the client once; from then on its errors go back to it.
    let consent = sign_in(&h, &authorize(&h, &dcr(&[])));
    let approved = post_form(&h, "/consent", &consent, &[("decision", "approve")]);
    assert!(location(&approved).starts_with("https://evil.example/cb?code="));
    let res = authorize(&h, &dcr(&[("code_challenge_method", Some("plain"))]));
    assert!(location(&res).starts_with("https://evil.example/cb?"));
    assert_error_redirect(&res, "invalid_request");
    let res = get(&h, &repeated);
    assert!(location(&res).starts_with("https://evil.example/cb?error=invalid_request"));
}

#[test]
fn a_denied_consent_does_not_approve_the_client() {
    let h = harness(&[("consent", "true")]);
    register(&h, DCR, "Someone", &[REDIRECT]);
    let consent = sign_in(&h, &authorize(&h, &[("client_id", Some(DCR))]));
    let denied = post_form(&h, "/consent", &consent, &[("decision", "deny")]);
    assert_error_redirect(&denied, "access_denied");
    assert_error_page(
        &h,
        &[
            ("client_id", Some(DCR)),
            ("response_mode", Some("fragment")),
        ],
        "invalid_request",
    );
}

#[test]
fn prompt_none_is_login_required_by_redirect() {
    let h = harness(&[]);
    let before = h.store.snapshot();
    assert_error_redirect(
        &authorize(&h, &[("prompt", Some("none"))]),
        "login_required",
    );
    assert_eq!(h.store.snapshot(), before);
    assert_error_redirect(
        &authorize(&h, &[("prompt", Some("none consent"))]),
        "invalid_request",
    );
    // Other values need nothing we would not do anyway.
    for prompt in ["login", "select_account", "login consent"] {
        let res = authorize(&h, &[("prompt", Some(prompt))]);
        assert!(location(&res).contains("/login?session="), "{prompt}");
    }
}

#[test]
fn response_mode_other_than_query_is_invalid_request() {
    let h = harness(&[]);
    for mode in ["fragment", "form_post", "query.jwt", ""] {
        let res = authorize(&h, &[("response_mode", Some(mode))]);
        if mode.is_empty() {
            // An empty parameter is an absent one (RFC 6749 §3.1).
            assert!(location(&res).contains("/login?session="));
        } else {
            assert_error_redirect(&res, "invalid_request");
        }
    }
    let res = authorize(&h, &[("response_mode", Some("query"))]);
    assert!(location(&res).contains("/login?session="));
}

/// The rule: a scope outside `scopes_supported` is refused wherever it is asked for, never
/// silently dropped (a client must not believe it holds a scope it was not given).
#[test]
fn unknown_scopes_are_refused_everywhere() {
    let h = harness(&[]);
    assert_error_redirect(
        &authorize(&h, &[("scope", Some("mcp:read admin"))]),
        "invalid_scope",
    );

    let register = Request::new(Method::Post, "/register")
        .with_header("content-type", "application/json")
        .with_body(
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                   "scope": "mcp:read admin"})
            .to_string(),
        );
    let res = h.call(register);
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("invalid_client_metadata"));

    let tv = h.call(
        Request::new(Method::Post, "/register")
            .with_header("content-type", "application/json")
            .with_body(
                json!({"grant_types": ["urn:ietf:params:oauth:grant-type:device_code"],
                       "token_endpoint_auth_method": "none"})
                .to_string(),
            ),
    );
    assert_eq!(tv.status, 201, "{}", body(&tv));
    let tv: serde_json::Value = serde_json::from_slice(&tv.body).unwrap();
    let res = h.call(Request::form(
        "/device/code",
        &[
            ("client_id", tv["client_id"].as_str().unwrap()),
            ("scope", "admin"),
        ],
    ));
    assert_eq!(res.status, 400);
    assert!(body(&res).contains("invalid_scope"), "{}", body(&res));
}
