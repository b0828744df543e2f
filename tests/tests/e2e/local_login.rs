//! The authorization-code flow with the built-in login (the default provider; `demo`/`demo`
//! exists because the issuer and the browser are on loopback): discovery, registration,
//! /authorize, login, consent, /token, introspection, ForwardAuth `/verify`, refresh
//! rotation, revocation, and a replayed code. Then the sign-in's binding to the browser that
//! started it: a login link handed to someone else is refused, and one browser runs several
//! sign-ins at once.

use serde_json::json;

use crate::support::*;

on_each_store!(flow);

/// Every component serves the whole flow in the memory it starts with (the heap its
/// pre-initialization reserved): a request that grows it makes the next instance in its pool
/// slot flush every core's TLB, which once halved discovery's throughput.
#[test]
fn the_flow_runs_in_the_memory_the_components_start_with() {
    let dir = tempfile::tempdir().expect("temp dir");
    let metrics_port = free_port();
    let options =
        HostOptions::default().arg("metrics-listen", &format!("127.0.0.1:{metrics_port}"));
    let host = Host::start(dir.path(), &options);
    flow(&host);
    let metrics = Browser::new()
        .get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .body;
    assert!(
        metrics.contains("mcp_auth_requests_total{component=\"discovery\",status=\"200\"}")
            && metrics.contains("mcp_auth_requests_total{component=\"token\",status=\"200\"}"),
        "{metrics}"
    );
    let grown: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("mcp_auth_guest_memory_grown_total{"))
        .collect();
    assert!(grown.is_empty(), "{grown:?}");
}

#[test]
fn a_sign_in_continues_only_in_the_browser_that_started_it() {
    with_host(Store::Embedded, |host| {
        let base = host.base.as_str();
        let attacker = Browser::new();
        let client_id = register_public_client(&attacker, base);
        // The attacker starts a sign-in and sends its login link to the victim.
        let to_login = attacker.get(&authorization_url(base, &client_id, "st-1"));
        let login_link = to_login.location();
        let attacker_login = attacker.get(&login_link);
        assert_eq!(attacker_login.status, 200, "{}", attacker_login.body);

        let victim = Browser::new();
        let refused = victim.get(&login_link);
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert!(refused.body.contains("started in another browser"));
        // Even submitting the attacker's form (its session and token) signs nobody in.
        let refused = victim.submit(
            &attacker_login,
            &[("username", "demo"), ("password", "demo")],
        );
        assert_eq!(refused.status, 403, "{}", refused.body);
        // So there is no signed-in sign-in for the attacker to approve: its own browser still
        // sees the login page, as before the victim came.
        let still = attacker.get(&login_link);
        assert_eq!(still.status, 200, "{}", still.body);
        assert!(still.body.contains(r#"name="username""#));

        // The other way round: the victim's own sign-in reaches consent, and the attacker,
        // holding its session and form token, cannot approve it.
        let to_login = victim.get(&authorization_url(base, &client_id, "st-1"));
        let login = victim.follow(&to_login);
        let consent = victim.submit(&login, &[("username", "demo"), ("password", "demo")]);
        assert_eq!(consent.status, 200, "{}", consent.body);
        let approval = attacker.submit(&consent, &[("decision", "approve")]);
        assert_eq!(approval.status, 403, "{}", approval.body);
        let back = victim.submit(&consent, &[("decision", "approve")]);
        let code = client_redirect_code(&back, &issuer_of(base));
        assert_eq!(redeem(&victim, base, &client_id, &code).status, 200);
    });
}

#[test]
fn one_browser_runs_two_sign_ins_in_parallel() {
    with_host(Store::Embedded, |host| {
        let base = host.base.as_str();
        let browser = Browser::new();
        let first = register_public_client(&browser, base);
        let second = register_public_client(&browser, base);
        // Both authorization requests first (two servers authorized at once), then both
        // sign-ins and decisions, crosswise.
        let to_first = browser.get(&authorization_url(base, &first, "st-1"));
        let to_second = browser.get(&authorization_url(base, &second, "st-1"));
        let login_first = browser.follow(&to_first);
        let login_second = browser.follow(&to_second);
        let demo = [("username", "demo"), ("password", "demo")];
        let consent_second = browser.submit(&login_second, &demo);
        let consent_first = browser.submit(&login_first, &demo);
        assert_eq!(consent_first.status, 200, "{}", consent_first.body);
        assert_eq!(consent_second.status, 200, "{}", consent_second.body);
        let back_first = browser.submit(&consent_first, &[("decision", "approve")]);
        let back_second = browser.submit(&consent_second, &[("decision", "approve")]);
        for (client_id, back) in [(&first, &back_first), (&second, &back_second)] {
            let code = client_redirect_code(back, &issuer_of(base));
            let tokens = tokens_of(&redeem(&browser, base, client_id, &code));
            assert_eq!(
                introspect(&browser, base, text(&tokens, "access_token"))["client_id"],
                client_id.as_str()
            );
        }
    });
}

fn flow(host: &Host) {
    let browser = Browser::new();
    let base = host.base.as_str();

    let metadata = browser
        .get(&host.url("/.well-known/oauth-authorization-server"))
        .json();
    assert_eq!(metadata["issuer"], issuer_of(base));
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(metadata["token_endpoint"], host.url("/token"));

    let client_id = register_public_client(&browser, base);
    let code = sign_in_locally(&browser, base, &issuer_of(base), &client_id);
    let tokens = tokens_of(&redeem(&browser, base, &client_id, &code));
    let access = text(&tokens, "access_token");
    let refresh = text(&tokens, "refresh_token");

    let info = introspect(&browser, base, access);
    assert_eq!(info["active"], true);
    assert_eq!(info["sub"], "demo");
    assert_eq!(info["aud"], RESOURCE);
    assert_eq!(info["client_id"], client_id.as_str());

    // ForwardAuth, as a reverse proxy in front of the MCP server asks.
    let forwarded = [
        ("x-forwarded-proto", "http"),
        ("x-forwarded-host", "127.0.0.1:8001"),
        ("x-forwarded-uri", "/mcp"),
    ];
    let bearer = format!("Bearer {access}");
    let mut with_token = forwarded.to_vec();
    with_token.push(("authorization", bearer.as_str()));
    let verified = browser.get_with(&host.url("/verify"), &with_token);
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.header("x-auth-subject"), Some("demo"));
    let anonymous = browser.get_with(&host.url("/verify"), &forwarded);
    assert_eq!(anonymous.status, 401);
    assert!(anonymous.header("www-authenticate").is_some());

    // Refresh rotates the refresh token (OAuth 2.1 §4.3.1).
    let rotated = tokens_of(&browser.post_form(
        &host.url("/token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", refresh),
        ],
    ));
    let new_refresh = text(&rotated, "refresh_token");
    let new_access = text(&rotated, "access_token");
    assert_ne!(new_refresh, refresh);
    assert_eq!(introspect(&browser, base, new_access)["active"], true);

    // Revoking the refresh token (RFC 7009) ends its family.
    let revoked = browser.post_form(
        &host.url("/revoke"),
        &[("client_id", &client_id), ("token", new_refresh)],
    );
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(introspect(&browser, base, new_refresh)["active"], false);
    assert_eq!(introspect(&browser, base, new_access)["active"], false);

    // The code was single use.
    let replay = redeem(&browser, base, &client_id, &code);
    assert_eq!(replay.status, 400);
    assert_eq!(replay.error(), "invalid_grant");
}
