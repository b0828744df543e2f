//! Acting for the user upstream (RFC 8693): users sign in through the fake TaskManager, whose
//! access tokens expire after a few seconds; the Python SDK's MCP server (`mcp_server.py
//! --taskmanager`, introspection credentials as users configure them) has a `tasks` tool that
//! exchanges the caller's MCP token at our /token for the user's TaskManager token and calls
//! TaskManager's `GET /api/tasks` with it. The official Python client calls the tool before and
//! after the TaskManager token expires: both succeed, the second through one refresh at
//! TaskManager. A token for another audience is refused.

use std::time::Duration;

use serde_json::Value;

use crate::support::python::{McpServer, Script, Verify};
use crate::support::taskmanager::{self, FakeTaskManager};
use crate::support::*;
use crate::taskmanager::{sign_in_at_taskmanager, start_with};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
/// TaskManager's access tokens expire well before ours: the second tool call needs a refresh.
const UPSTREAM_LIFETIME: Duration = Duration::from_secs(3);

#[test]
fn an_mcp_server_calls_taskmanager_as_the_user_before_and_after_its_token_expires() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tm = FakeTaskManager::start();
    tm.set_token_lifetime(UPSTREAM_LIFETIME);
    let mut server = McpServer::start_with(
        dir.path(),
        Verify::Introspection,
        &["--taskmanager", &tm.base],
    );
    // The resource server may see (and exchange) only tokens for itself.
    let options = HostOptions::default()
        .variable("MCP_SERVER", &format!("{},{RESOURCE}", server.url))
        .variable(
            "INTROSPECTION_CREDENTIALS",
            &format!("rs:rs-secret {}", server.url),
        )
        .variable("ACCESS_TOKEN_LIFETIME", "6");
    let host = start_with(
        &tm,
        &dir.path().join("host"),
        taskmanager::CLIENT_SECRET,
        options,
    );
    server.trust(&host.base);

    let outcome = python_client(&server);
    let calls = outcome["whoami"].as_array().expect("the tool's answers");
    assert_eq!(calls.len(), 2, "{outcome}");
    for call in calls {
        let tasks: Value = serde_json::from_str(call.as_str().unwrap()).expect("tasks JSON");
        assert_eq!(tasks["user_id"], taskmanager::USER_ID, "{tasks}");
        assert_eq!(tasks["tasks"][0]["title"], "Feed the cat");
    }
    assert_eq!(
        tm.refreshes(),
        1,
        "one upstream refresh, for the second call"
    );
    let exchanged = audit(&host, "token_exchanged");
    assert_eq!(exchanged.len(), 2, "{}", host.log_text());
    let user = taskmanager::USER_ID.to_string();
    assert!(exchanged.iter().all(|e| e["sub"].as_str() == Some(&*user)));

    // A token for another resource: the resource server may not exchange it.
    let browser = Browser::new();
    let client_id = register_public_client(&browser, &host.base);
    let code = sign_in_for(&browser, &host, &client_id);
    let tokens = tokens_of(&redeem(&browser, &host.base, &client_id, &code));
    let refused = exchange(&browser, &host.base, text(&tokens, "access_token"));
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.json()["error"], "invalid_request");
    assert_eq!(audit(&host, "token_exchange_refused").len(), 1);
    assert_eq!(tm.refreshes(), 1);
}

/// The resource server's request (README § Token exchange).
fn exchange(browser: &Browser, base: &str, subject_token: &str) -> Page {
    browser.post_form_with(
        &format!("{base}/token"),
        &[
            ("grant_type", GRANT),
            ("subject_token", subject_token),
            ("subject_token_type", ACCESS),
            ("requested_token_type", ACCESS),
            ("audience", "taskmanager"),
        ],
        &[("authorization", "Basic cnM6cnMtc2VjcmV0")],
    )
}

/// Our /authorize for [`RESOURCE`] → TaskManager's sign-in → our consent, approved: the code.
fn sign_in_for(browser: &Browser, host: &Host, client_id: &str) -> String {
    let to_taskmanager = browser.get(&authorization_url(&host.base, client_id, "st-1"));
    let to_client = approve_through_taskmanager(browser, &to_taskmanager);
    client_redirect_code(&to_client, &issuer_of(&host.base))
}

/// From our redirect to TaskManager: alice signs in there and approves on our consent page;
/// our redirect to the client (with the code).
fn approve_through_taskmanager(browser: &Browser, to_taskmanager: &Page) -> Page {
    let sign_in = browser.follow(to_taskmanager);
    assert_eq!(sign_in.status, 200, "{}", sign_in.body);
    let back = sign_in_at_taskmanager(browser, &sign_in);
    let consent = browser.follow(&back);
    assert_eq!(consent.status, 200, "consent page: {}", consent.body);
    browser.submit(&consent, &[("decision", "approve")])
}

/// Runs `tests/python/mcp_client.py --tool tasks`, signing in through TaskManager whenever
/// the SDK opens an authorization URL; the script's result.
fn python_client(server: &McpServer) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = [
        "--server",
        server.url.as_str(),
        "--redirect-uri",
        REDIRECT,
        "--tool",
        "tasks",
    ];
    let mut client = Script::start(dir.path(), "mcp_client.py", &args);
    loop {
        let line = client.next_line();
        if let Some(url) = line.strip_prefix("authorize ") {
            let browser = Browser::new();
            let to_taskmanager = browser.get(url);
            let to_client = approve_through_taskmanager(&browser, &to_taskmanager);
            client.send(&to_client.location());
        } else if let Some(result) = line.strip_prefix("result ") {
            return serde_json::from_str(result).expect("the client's result");
        } else {
            panic!(
                "unexpected line from the Python client: {line}\nserver: {}",
                server.log_text()
            );
        }
    }
}

/// The host's audit events of kind `event`.
fn audit(host: &Host, event: &str) -> Vec<Value> {
    host.log_text()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(&line[line.find('{')?..]).ok())
        .filter(|e| e["audit"] == "mcp-auth" && e["event"] == event)
        .collect()
}
