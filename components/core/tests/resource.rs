//! RFC 8707 §2 at the authorization endpoint: a token here has one audience, so several
//! `resource` parameters are `invalid_target`, sent back to the client like any error found
//! once the client and its redirect URI check out. (The token endpoint's side is in
//! `token.rs`: `several_resources_at_the_token_endpoint_are_invalid_target`.)

#[path = "authz_support/mod.rs"]
mod authz_support;

use authz_support::*;
use mcp_auth_core::client::{self, Client, ClientSource};
use mcp_auth_core::records;

#[test]
fn several_resources_at_the_authorization_endpoint_are_invalid_target() {
    let h = harness(&[]);
    // An operator-provisioned client: its errors are redirected to it in any case.
    let env = h.env();
    let mut stored: Client = records::get(&env, &client::key(CLIENT)).unwrap().unwrap();
    stored.source = ClientSource::Provisioned;
    records::put(&env, &client::key(CLIENT), &stored, None).unwrap();
    drop(env);
    let before = h.store.snapshot();
    let query = format!(
        "{}&resource={}&resource={}",
        authorize_query(&[]),
        "https%3A%2F%2Fmcp.example.com%2Fmcp",
        "https%3A%2F%2Fmcp.example.com%2Fother"
    );
    let res = get(&h, &format!("/authorize?{query}"));
    let location = location(&res);
    assert!(location.starts_with(REDIRECT), "{location}");
    let q = query_of(location);
    assert_eq!(q["error"], "invalid_target", "{location}");
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], ISSUER);
    assert_eq!(h.store.snapshot(), before);
}
