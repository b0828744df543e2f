//! The embedded store is durable: after the host is killed and started again on the same data
//! directory, a registered client is still there (RFC 7592 read) and tokens issued before
//! still introspect as active (same signing key, same records).

use crate::support::*;

#[test]
fn a_restarted_host_still_knows_its_clients_and_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let browser = Browser::new();

    let first = Host::start(&data, &HostOptions::default());
    let base = first.base.clone();
    let registered = register(&browser, &base, public_client_metadata());
    let client_id = text(&registered, "client_id");
    let read = || read_registration(&browser, &registered);
    let before = read();
    assert_eq!(before.status, 200, "{}", before.body);
    let code = sign_in_locally(&browser, &base, &issuer_of(&base), client_id);
    let tokens = tokens_of(&redeem(&browser, &base, client_id, &code));

    // SIGKILL: whatever was answered must already be on disk.
    let port = first.port;
    first.kill();
    let second = Host::start(
        &data,
        &HostOptions {
            port: Some(port),
            ..HostOptions::default()
        },
    );
    assert_eq!(second.base, base);

    let after = read();
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.json()["client_id"], client_id);
    assert_eq!(after.json()["client_name"], "E2E Client");
    for token in ["access_token", "refresh_token"] {
        assert_eq!(
            introspect(&browser, &base, text(&tokens, token))["active"],
            true,
            "{token}"
        );
    }
}
