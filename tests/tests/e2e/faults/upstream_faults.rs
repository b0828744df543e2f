//! TaskManager's token endpoint hangs or answers garbage while a user signs in. The user's
//! browser, back at our /oauth/callback, is sent on to the client with
//! `error=temporarily_unavailable`, `state` and `iss` (RFC 6749 §4.1.2.1) within the host's
//! outbound timeout, so the MCP client stops waiting; why is in the audit log, not in the
//! redirect; that callback cannot be replayed, even once TaskManager behaves; and nothing is
//! left stuck: the same user then signs in and the client gets its tokens. (Errors go to a
//! client's redirect URI only once a user approved it, so the client signs in once first.)

use crate::support::taskmanager::{self, FakeTaskManager, TokenFault};
use crate::support::*;
use crate::taskmanager::{
    sign_in_at_taskmanager, sign_in_through_taskmanager, start_with, to_taskmanager,
};

#[test]
fn a_hanging_or_garbled_token_endpoint_fails_the_sign_in_cleanly() {
    let tm = FakeTaskManager::start();
    let dir = tempfile::tempdir().expect("temp dir");
    // A hang ends after one second rather than the default fifteen.
    let options = HostOptions::default().arg("outbound-timeout", "1");
    let host = start_with(&tm, dir.path(), taskmanager::CLIENT_SECRET, options);
    let browser = Browser::new();
    let client_id = register_public_client(&browser, &host.base);
    sign_in_through_taskmanager(&browser, &host, &tm, &client_id);

    let faults = [
        (TokenFault::Hang, "unreachable"),
        (
            TokenFault::Answer {
                status: 200,
                content_type: "text/plain",
                body: "OK",
            },
            "unusable answer",
        ),
        (
            TokenFault::Answer {
                status: 500,
                content_type: "text/html",
                body: "<html><h1>Internal Server Error</h1></html>",
            },
            "failing (HTTP status 500)",
        ),
        (
            TokenFault::Answer {
                status: 200,
                content_type: "application/json",
                body: r#"{"token_type":"Bearer","expires_in":3600}"#,
            },
            "no access_token",
        ),
        (TokenFault::Truncated, "unreachable"),
    ];
    for (fault, reason) in faults {
        tm.set_token_fault(Some(fault.clone()));
        let sign_in = to_taskmanager(&browser, &host, &tm, &client_id);
        let back = sign_in_at_taskmanager(&browser, &sign_in);
        let callback = back.location();
        let failed = browser.follow(&back);
        let (error, description) = client_redirect_error(&failed, &issuer_of(&host.base));
        assert_eq!(error, "temporarily_unavailable", "{fault:?}");
        assert!(!description.contains(&tm.base), "{description}");
        let log = host.log_text();
        let audit = log
            .lines()
            .rfind(|l| l.contains("\"upstream_failed\""))
            .unwrap_or_else(|| panic!("{fault:?}: no upstream_failed event in\n{log}"));
        assert!(audit.contains(reason), "{fault:?}: {audit}");

        tm.set_token_fault(None);
        let replay = browser.get(&callback);
        assert_eq!(replay.status, 400, "{fault:?}: replay: {}", replay.body);
        let (_, code) = sign_in_through_taskmanager(&browser, &host, &tm, &client_id);
        let tokens = tokens_of(&redeem(&browser, &host.base, &client_id, &code));
        let info = introspect(&browser, &host.base, text(&tokens, "access_token"));
        assert_eq!(info["sub"], taskmanager::USER_ID.to_string(), "{fault:?}");
    }
}
