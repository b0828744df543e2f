//! Signing in through an upstream provider: TaskManager, GitHub, OpenID Connect, and what
//! happens when the provider fails.

mod authz_support;

use authz_support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use mcp_auth_core::audit::{AuditEvent, AuditKind};
use mcp_auth_core::http::{Method, OutgoingRequest};
use mcp_auth_core::pkce;
use mcp_auth_core::testing::FakeUpstream;
use mcp_auth_core::{Clock, Request, Response, UpstreamError, UpstreamResponse};
use serde_json::json;

const TM: &str = "http://tm.example:8000";

fn taskmanager(extra: &[(&str, &str)]) -> Server {
    let mut settings = vec![
        ("upstream_provider", "taskmanager"),
        ("taskmanager_oauth_host", TM),
        ("taskmanager_client_id", "tm-client"),
        ("taskmanager_client_secret", "tm-secret"),
    ];
    settings.extend_from_slice(extra);
    harness(&settings)
}

fn form_of(request: &OutgoingRequest) -> std::collections::BTreeMap<String, String> {
    form_urlencoded::parse(&request.body).into_owned().collect()
}

fn sent(h: &Server) -> Vec<OutgoingRequest> {
    h.upstream.sent.lock().unwrap().clone()
}

/// A TaskManager that issues `tok` for any code and says it belongs to user 42.
fn answer_taskmanager(h: &Server) {
    h.upstream.answer(|r| match r.url.as_str() {
        u if u == format!("{TM}/api/oauth/token") => Ok(FakeUpstream::json(
            200,
            json!({"access_token": "tok", "token_type": "Bearer", "expires_in": 3600}),
        )),
        u if u == format!("{TM}/api/oauth/verify") => Ok(FakeUpstream::json(
            200,
            json!({"valid": true, "client_id": "tm-client", "user_id": 42,
                   "scopes": "[\"read\"]", "expires_in": 3500, "token_type": "Bearer"}),
        )),
        other => Err(UpstreamError(format!("unexpected {other}"))),
    });
}

/// `/authorize` → the provider's authorize URL; its parameters.
fn start(h: &Server) -> std::collections::BTreeMap<String, String> {
    let res = authorize(h, &[]);
    query_of(location(&res))
}

fn callback(h: &Server, query: &str) -> Response {
    get(h, &format!("/oauth/callback?{query}"))
}

#[test]
fn taskmanager_round_trip() {
    let h = taskmanager(&[]);
    let res = authorize(&h, &[]);
    let to = location(&res);
    assert!(
        to.starts_with(&format!("{TM}/api/oauth/authorize?")),
        "{to}"
    );
    let q = query_of(to);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "tm-client");
    assert_eq!(q["redirect_uri"], format!("{BASE}/oauth/callback"));
    assert_eq!(q["scope"], "read");
    assert_eq!(q["code_challenge_method"], "S256");
    // Our own PKCE, not the client's.
    assert_ne!(q["code_challenge"], CHALLENGE);
    assert!(!q.contains_key("nonce"));

    answer_taskmanager(&h);
    let back = callback(&h, &format!("code=up-code&state={}", q["state"]));
    let client_redirect = location(&back);
    let params = query_of(client_redirect);
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("xyz", ISSUER)
    );
    assert_eq!(code_record(&h, client_redirect).sub, "42");

    let requests = sent(&h);
    assert_eq!(requests.len(), 2);
    let token = &requests[0];
    assert_eq!(token.method, Method::Post);
    let form = form_of(token);
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "up-code");
    assert_eq!(form["redirect_uri"], format!("{BASE}/oauth/callback"));
    assert_eq!(form["client_id"], "tm-client");
    assert_eq!(form["client_secret"], "tm-secret");
    assert!(pkce::verify(&form["code_verifier"], &q["code_challenge"]));
    let verify = &requests[1];
    assert_eq!(verify.method, Method::Get);
    assert!(verify
        .headers
        .contains(&("authorization".into(), "Bearer tok".into())));

    // The callback is single use.
    assert_eq!(
        callback(&h, &format!("code=up-code&state={}", q["state"])).status,
        400
    );
}

/// The client learns of a failed sign-in at its redirect URI, with `state` and `iss`
/// (RFC 6749 §4.1.2.1, RFC 9207), so it stops waiting; the description says nothing of the
/// provider, whose answer goes to the audit log. Returns the audit reason.
fn assert_client_told(res: &Response, events: &[AuditEvent], code: &str) -> String {
    let to = location(res);
    assert!(to.starts_with(REDIRECT), "{to}");
    let p = query_of(to);
    assert_eq!(p["error"], code);
    assert_eq!((p["state"].as_str(), p["iss"].as_str()), ("xyz", ISSUER));
    assert!(!p["error_description"].contains("tm.example"), "{to}");
    let failed = events
        .iter()
        .find(|e| e.event == AuditKind::UpstreamFailed)
        .expect("an upstream_failed audit event");
    assert_eq!(failed.client_id.as_deref(), Some(CLIENT));
    failed.reason.clone().unwrap()
}

#[test]
fn a_refusal_by_taskmanager_is_a_server_error_for_the_client_with_its_detail_in_the_audit() {
    let h = taskmanager(&[]);
    let q = start(&h);
    h.upstream.answer(|_| {
        Ok(FakeUpstream::json(
            400,
            json!({"detail": {"code": "OAUTH_003", "message": "Authorization code expired"}}),
        ))
    });
    let (res, events) = call_audited(&h, callback_request(&q["state"]));
    let reason = assert_client_told(&res, &events, "server_error");
    assert!(
        reason.contains("Authorization code expired (OAUTH_003)"),
        "{reason}"
    );
}

/// After a failed exchange the client is told `code`, and nothing of the sign-in is left to
/// use.
fn assert_failure_consumes_the_sign_in(
    code: &str,
    answer: impl Fn(&OutgoingRequest) -> Result<UpstreamResponse, UpstreamError> + Send + Sync + 'static,
) {
    let h = taskmanager(&[]);
    let q = start(&h);
    h.upstream.answer(answer);
    let (res, events) = call_audited(&h, callback_request(&q["state"]));
    assert_client_told(&res, &events, code);
    assert!(!h
        .store
        .keys()
        .iter()
        .any(|k| k.starts_with("pending/") || k.starts_with("code/")));
    // A working provider cannot revive it.
    answer_taskmanager(&h);
    assert_eq!(
        callback(&h, &format!("code=c&state={}", q["state"])).status,
        400
    );
}

fn callback_request(state: &str) -> Request {
    Request::new(
        Method::Get,
        &format!("/oauth/callback?code=c&state={state}"),
    )
}

#[test]
fn an_unreachable_upstream_is_temporarily_unavailable_for_the_client() {
    assert_failure_consumes_the_sign_in("temporarily_unavailable", |_| {
        Err(UpstreamError(
            "connect to tm.example:8000: timed out".into(),
        ))
    });
}

#[test]
fn an_upstream_5xx_is_temporarily_unavailable_for_the_client() {
    for status in [500, 502, 503] {
        assert_failure_consumes_the_sign_in("temporarily_unavailable", move |_| {
            Ok(UpstreamResponse {
                status,
                headers: vec![],
                body: b"<html>Bad Gateway</html>".to_vec(),
            })
        });
    }
}

#[test]
fn upstream_garbage_is_temporarily_unavailable_for_the_client() {
    assert_failure_consumes_the_sign_in("temporarily_unavailable", |_| {
        Ok(UpstreamResponse {
            status: 200,
            headers: vec![],
            body: b"<html>hello</html>".to_vec(),
        })
    });
}

#[test]
fn a_verify_refusal_is_a_server_error_for_the_client() {
    assert_failure_consumes_the_sign_in("server_error", |r| {
        if r.url.ends_with("/token") {
            Ok(FakeUpstream::json(200, json!({"access_token": "tok"})))
        } else {
            Ok(FakeUpstream::json(200, json!({"valid": false})))
        }
    });
}

#[test]
fn upstream_error_is_access_denied_for_the_client() {
    let h = taskmanager(&[]);
    let q = start(&h);
    let res = callback(&h, &format!("error=access_denied&state={}", q["state"]));
    let to = location(&res);
    assert!(to.starts_with(REDIRECT));
    let p = query_of(to);
    assert_eq!(p["error"], "access_denied");
    assert_eq!((p["state"].as_str(), p["iss"].as_str()), ("xyz", ISSUER));
    assert!(sent(&h).is_empty());
    assert_eq!(
        callback(&h, &format!("code=c&state={}", q["state"])).status,
        400
    );
}

#[test]
fn unknown_or_expired_state_is_a_page() {
    let h = taskmanager(&[]);
    assert_eq!(callback(&h, "code=c&state=forged").status, 400);
    assert_eq!(callback(&h, "code=c").status, 400);
    let q = start(&h);
    h.clock.advance(601);
    let res = callback(&h, &format!("code=c&state={}", q["state"]));
    assert_eq!(res.status, 400);
    assert!(res.header("location").is_none());
    assert!(sent(&h).is_empty());
}

/// The provider's return with a good code for sign-in `state`, and its audit events.
fn signed_in_upstream(h: &Server, state: &str) -> (Response, Vec<AuditEvent>) {
    let path = format!("/oauth/callback?code=c&state={state}");
    call_audited(h, Request::new(Method::Get, &path))
}

#[test]
fn allow_list_refusal_after_upstream_sign_in() {
    let h = taskmanager(&[("allowed_users", "7")]);
    let q = start(&h);
    answer_taskmanager(&h);
    let (res, audit) = signed_in_upstream(&h, &q["state"]);
    assert_eq!(res.status, 403);
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].event, audit[0].sub.as_deref()),
        (AuditKind::SignInRefused, Some("42"))
    );
    assert!(!h.store.keys().iter().any(|k| k.starts_with("code/")));
}

#[test]
fn upstream_sign_in_with_consent_then_approve() {
    let h = taskmanager(&[("consent", "true")]);
    let q = start(&h);
    answer_taskmanager(&h);
    let (page, audit) = signed_in_upstream(&h, &q["state"]);
    assert_eq!(page.status, 200, "{}", body(&page));
    assert_eq!(audit[0].event, AuditKind::SignIn);
    let done = post_form(&h, "/consent", &page, &[("decision", "approve")]);
    assert_eq!(code_record(&h, location(&done)).sub, "42");
}

#[test]
fn github_sign_in() {
    let h = harness(&[
        ("upstream_provider", "github"),
        ("github_client_id", "gh-client"),
        ("github_client_secret", "gh-secret"),
        ("allowed_github_users", "OctoCat"),
    ]);
    let res = authorize(&h, &[]);
    let to = location(&res);
    assert!(
        to.starts_with("https://github.com/login/oauth/authorize?"),
        "{to}"
    );
    let q = query_of(to);
    assert_eq!(
        (q["client_id"].as_str(), q["scope"].as_str()),
        ("gh-client", "read:user")
    );
    assert_eq!(q["code_challenge_method"], "S256");
    h.upstream.answer(|r| match r.url.as_str() {
        "https://github.com/login/oauth/access_token" => Ok(FakeUpstream::json(
            200,
            json!({"access_token": "gho_x", "token_type": "bearer"}),
        )),
        "https://api.github.com/user" => Ok(FakeUpstream::json(
            200,
            json!({"login": "octocat", "id": 583231}),
        )),
        other => Err(UpstreamError(format!("unexpected {other}"))),
    });
    let back = callback(&h, &format!("code=gh&state={}", q["state"]));
    // GitHub logins ignore case on the allow-list; the user is their numeric id.
    assert_eq!(code_record(&h, location(&back)).sub, "583231");
    let requests = sent(&h);
    let token = &requests[0];
    assert!(token
        .headers
        .contains(&("accept".into(), "application/json".into())));
    let form = form_of(token);
    assert_eq!(
        (form["client_id"].as_str(), form["client_secret"].as_str()),
        ("gh-client", "gh-secret")
    );
    assert!(pkce::verify(&form["code_verifier"], &q["code_challenge"]));
    let user = &requests[1];
    assert!(user.headers.iter().any(|(n, _)| n == "user-agent"));
    assert!(user
        .headers
        .contains(&("authorization".into(), "Bearer gho_x".into())));
}

#[test]
fn github_bad_code_answered_with_200_is_refused() {
    let h = harness(&[
        ("upstream_provider", "github"),
        ("github_client_id", "gh-client"),
        ("github_client_secret", "gh-secret"),
    ]);
    let q = start(&h);
    h.upstream.answer(|_| {
        Ok(FakeUpstream::json(
            200,
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
        ))
    });
    let (res, events) = call_audited(&h, callback_request(&q["state"]));
    let reason = assert_client_told(&res, &events, "server_error");
    assert!(reason.contains("incorrect or expired"), "{reason}");
}

// --- OpenID Connect ---

const IDP: &str = "https://idp.example";

fn oidc() -> Server {
    harness(&[
        ("upstream_provider", "oidc"),
        ("oidc_issuer", IDP),
        ("oidc_client_id", "oidc-client"),
        ("oidc_client_secret", "oidc-secret"),
    ])
}

fn id_token(claims: serde_json::Value) -> String {
    let enc = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).unwrap());
    format!(
        "{}.{}.c2ln",
        enc(json!({"alg": "RS256", "kid": "k"})),
        enc(claims)
    )
}

/// A provider whose token endpoint answers with `token_body` (built from the nonce sent).
fn answer_oidc(h: &Server, token_body: serde_json::Value) {
    let discovery = json!({
        "issuer": IDP,
        "authorization_endpoint": format!("{IDP}/authorize"),
        "token_endpoint": format!("{IDP}/token"),
        "userinfo_endpoint": format!("{IDP}/userinfo"),
    });
    h.upstream.answer(move |r| match r.url.strip_prefix(IDP) {
        Some("/.well-known/openid-configuration") => Ok(FakeUpstream::json(200, discovery.clone())),
        Some("/token") => Ok(FakeUpstream::json(200, token_body.clone())),
        Some("/userinfo") => Ok(FakeUpstream::json(200, json!({"sub": "from-userinfo"}))),
        _ => Err(UpstreamError(format!("unexpected {}", r.url))),
    });
}

fn claims(h: &Server, nonce: &str) -> serde_json::Value {
    json!({"iss": IDP, "sub": "alice-sub", "aud": "oidc-client",
           "exp": h.clock.now() + 300, "nonce": nonce})
}

#[test]
fn oidc_sign_in_with_nonce_and_cached_discovery() {
    let h = oidc();
    answer_oidc(&h, json!({}));
    let q = start(&h);
    let nonce = q["nonce"].clone();
    assert!(!nonce.is_empty());
    assert_eq!(q["scope"], "openid profile email");
    // A second sign-in uses the cached discovery document.
    let _ = start(&h);
    assert_eq!(sent(&h).len(), 1);

    answer_oidc(
        &h,
        json!({"access_token": "at", "id_token": id_token(claims(&h, &nonce))}),
    );
    let back = callback(&h, &format!("code=o&state={}", q["state"]));
    assert_eq!(code_record(&h, location(&back)).sub, "alice-sub");
    let token = sent(&h)
        .into_iter()
        .find(|r| r.url.ends_with("/token"))
        .unwrap();
    let form = form_of(&token);
    assert_eq!(
        (form["client_id"].as_str(), form["client_secret"].as_str()),
        ("oidc-client", "oidc-secret")
    );
}

#[test]
fn oidc_nonce_mismatch_is_refused() {
    let h = oidc();
    answer_oidc(&h, json!({}));
    let q = start(&h);
    answer_oidc(
        &h,
        json!({"access_token": "at", "id_token": id_token(claims(&h, "another"))}),
    );
    let (res, events) = call_audited(&h, callback_request(&q["state"]));
    let reason = assert_client_told(&res, &events, "temporarily_unavailable");
    assert!(reason.contains("nonce"), "{reason}");
    assert!(!h.store.keys().iter().any(|k| k.starts_with("code/")));
}

#[test]
fn oidc_without_id_token_asks_userinfo() {
    let h = oidc();
    answer_oidc(&h, json!({"access_token": "at"}));
    let q = start(&h);
    let back = callback(&h, &format!("code=o&state={}", q["state"]));
    assert_eq!(code_record(&h, location(&back)).sub, "from-userinfo");
}

/// The provider is down before the user could be sent there: the client is told at once.
#[test]
fn oidc_discovery_failure_is_temporarily_unavailable_and_stores_nothing() {
    let h = oidc();
    let before = h.store.snapshot();
    let (res, events) = call_audited(
        &h,
        Request::new(Method::Get, &format!("/authorize?{}", authorize_query(&[]))),
    );
    let reason = assert_client_told(&res, &events, "temporarily_unavailable");
    assert!(reason.contains("unreachable"), "{reason}");
    assert_eq!(h.store.snapshot(), before);
}

#[test]
fn callback_is_not_served_for_the_local_provider() {
    let h = harness(&[]);
    assert_eq!(callback(&h, "code=c&state=s").status, 404);
}

#[test]
fn login_page_is_not_served_for_upstream_providers() {
    let h = taskmanager(&[]);
    assert_eq!(get(&h, "/login?session=s").status, 404);
    let res = h.call(Request::form("/login", &[("session", "s")]));
    assert_eq!(res.status, 404);
}

/// Only `authorize` is given the upstream client secret: every other endpoint works without
/// it, and a sign-in without it ends with `server_error` at the client (the audit log names
/// the variable), before the user is sent to the provider and before anything is stored.
#[test]
fn missing_client_secret_fails_only_the_sign_in() {
    let h = harness(&[
        ("upstream_provider", "taskmanager"),
        ("taskmanager_oauth_host", TM),
        ("taskmanager_client_id", "tm-client"),
    ]);
    let metadata = get(&h, "/.well-known/oauth-authorization-server");
    assert_eq!(metadata.status, 200, "{}", body(&metadata));

    let before = h.store.keys();
    let (res, events) = call_audited(
        &h,
        Request::new(Method::Get, &format!("/authorize?{}", authorize_query(&[]))),
    );
    let reason = assert_client_told(&res, &events, "server_error");
    assert!(reason.contains("taskmanager_client_secret"), "{reason}");
    assert_eq!(h.store.keys(), before);
    assert!(sent(&h).is_empty());
}

/// Signs in at the fake GitHub as `user` (its `/user` answer); the response of our callback.
fn github_sign_in_as(h: &Server, user: serde_json::Value) -> Response {
    let q = query_of(location(&authorize(h, &[])));
    h.upstream.answer(move |r| match r.url.as_str() {
        "https://github.com/login/oauth/access_token" => Ok(FakeUpstream::json(
            200,
            json!({"access_token": "gho_x", "token_type": "bearer"}),
        )),
        "https://api.github.com/user" => Ok(FakeUpstream::json(200, user.clone())),
        other => Err(UpstreamError(format!("unexpected {other}"))),
    });
    callback(h, &format!("code=gh&state={}", q["state"]))
}

#[test]
fn github_users_are_their_numeric_id_so_a_reused_login_is_someone_else() {
    let github = [
        ("upstream_provider", "github"),
        ("github_client_id", "gh-client"),
        ("github_client_secret", "gh-secret"),
    ];
    let h = harness(&github);
    let first = github_sign_in_as(&h, json!({"login": "octocat", "id": 1}));
    // The login was renamed, then registered by someone else.
    let second = github_sign_in_as(&h, json!({"login": "octocat", "id": 2}));
    assert_eq!(code_record(&h, location(&first)).sub, "1");
    assert_eq!(code_record(&h, location(&second)).sub, "2");

    // An allow-list of ids admits the first user only, whatever their login is now.
    let mut allow = github.to_vec();
    allow.push(("allowed_github_users", "1"));
    let h = harness(&allow);
    let renamed = github_sign_in_as(&h, json!({"login": "monalisa", "id": 1}));
    assert_eq!(code_record(&h, location(&renamed)).sub, "1");
    let impostor = github_sign_in_as(&h, json!({"login": "octocat", "id": 2}));
    assert_eq!(impostor.status, 403);
    assert!(body(&impostor).contains("octocat"), "{}", body(&impostor));
}

#[test]
fn a_github_login_travels_as_a_display_name_beside_the_numeric_sub() {
    let h = harness(&[
        ("upstream_provider", "github"),
        ("github_client_id", "gh-client"),
        ("github_client_secret", "gh-secret"),
        ("introspection_credentials", "rs:rs-secret"),
    ]);
    let back = github_sign_in_as(&h, json!({"login": "octocat", "id": 583231}));
    let code = query_of(location(&back))["code"].clone();
    let tokens = h.call(Request::form(
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            // RFC 7636 Appendix B: the verifier of CHALLENGE.
            (
                "code_verifier",
                "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            ),
        ],
    ));
    assert_eq!(tokens.status, 200, "{}", body(&tokens));
    let tokens: serde_json::Value = serde_json::from_slice(&tokens.body).unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], "583231");
    assert_eq!(claims["preferred_username"], "octocat");

    for token in [access, tokens["refresh_token"].as_str().unwrap()] {
        let info = h.call(
            Request::form("/introspect", &[("token", token)])
                .with_header("authorization", "Basic cnM6cnMtc2VjcmV0"),
        );
        let info: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
        assert_eq!(info["active"], true, "{info}");
        assert_eq!(
            (info["sub"].as_str(), info["username"].as_str()),
            (Some("583231"), Some("octocat"))
        );
    }
}

/// A device sign-in has no client to send the user back to: the failure ends on a page, and
/// the device grant stays pending (the user may try again with the same code).
#[test]
fn a_failing_upstream_ends_a_device_sign_in_on_a_page() {
    let h = taskmanager(&[]);
    device_grant(&h);
    let form = get(&h, "/device");
    let to_provider = h.call(Request::form(
        "/device",
        &[("csrf", &hidden(&form, "csrf")), ("user_code", USER_CODE)],
    ));
    let q = query_of(location(&to_provider));
    h.upstream
        .answer(|_| Err(UpstreamError("connection refused".into())));
    let (res, events) = call_audited(&h, callback_request(&q["state"]));
    assert_eq!(res.status, 502, "{}", body(&res));
    assert!(res.header("location").is_none());
    assert!(events.iter().any(|e| e.event == AuditKind::UpstreamFailed));
    assert!(grants_pending(&h));
}

fn grants_pending(h: &Server) -> bool {
    use mcp_auth_core::grants::{self, DeviceStatus};
    matches!(
        grants::find_by_user_code(&h.env(), USER_CODE).unwrap(),
        Some((_, grant)) if grant.status == DeviceStatus::Pending
    )
}

/// A failure is sent to a client's redirect URI only when errors may go there (RFC 9700
/// §4.11.2): a client anyone registered and no user approved gets a page, which says nothing
/// of the provider; once a user approved the client, the same failure is a redirect.
#[test]
fn a_failure_for_a_client_nobody_approved_is_a_page_not_a_redirect() {
    let h = taskmanager(&[]);
    register(&h, "dcr-1", "Phish", &["https://phish.example/cb"]);
    let sign_in_fails = |h: &Server| {
        let res = authorize(h, &[("client_id", Some("dcr-1")), ("redirect_uri", None)]);
        let q = query_of(location(&res));
        h.upstream
            .answer(|_| Err(UpstreamError("connect to 10.0.0.7:8000: refused".into())));
        call_audited(h, callback_request(&q["state"]))
    };
    let (res, events) = sign_in_fails(&h);
    assert_eq!(res.status, 502, "{}", body(&res));
    assert!(res.header("location").is_none());
    assert!(!body(&res).contains("10.0.0.7"), "{}", body(&res));
    assert!(body(&res).contains("try again later"), "{}", body(&res));
    assert!(events.iter().any(|e| e.event == AuditKind::UpstreamFailed
        && e.reason.as_deref().is_some_and(|r| r.contains("10.0.0.7"))));

    // A user approves the client once; its next failed sign-in goes back to it.
    answer_taskmanager(&h);
    let q = query_of(location(&authorize(
        &h,
        &[("client_id", Some("dcr-1")), ("redirect_uri", None)],
    )));
    let consent = callback(&h, &format!("code=c&state={}", q["state"]));
    let approved = post_form(&h, "/consent", &consent, &[("decision", "approve")]);
    assert!(location(&approved).starts_with("https://phish.example/cb?code="));
    let (res, _) = sign_in_fails(&h);
    let p = query_of(location(&res));
    assert_eq!(p["error"], "temporarily_unavailable");
}

/// A provider may send an error back at once, without the user doing anything: for a client
/// nobody approved that is a page too, never a redirect to its URI.
#[test]
fn a_providers_error_for_a_client_nobody_approved_is_a_page_not_a_redirect() {
    let h = taskmanager(&[]);
    register(&h, "dcr-1", "Phish", &["https://phish.example/cb"]);
    let res = authorize(&h, &[("client_id", Some("dcr-1")), ("redirect_uri", None)]);
    let q = query_of(location(&res));
    let res = callback(&h, &format!("error=invalid_scope&state={}", q["state"]));
    assert_eq!(res.status, 403, "{}", body(&res));
    assert!(res.header("location").is_none());
    assert!(!h.store.keys().iter().any(|k| k.starts_with("pending/")));
}
