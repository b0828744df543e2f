//! Which clients a user has approved, so that `/authorize` knows whose redirect URIs it may
//! send an error to without asking anyone first.
//!
//! An error response is a redirect the user never agreed to. Sent for any registered client,
//! it would make us an open redirector (RFC 9700 §4.11.2): anyone may register a client whose
//! redirect URI is a phishing page, then hand out `/authorize` links with a bad parameter.
//! So an authorization error goes back to the client only when the operator provisioned the
//! client or a user approved it on the consent page before; otherwise the error is a page.
//!
//! An approval is remembered under `approved/<sha256(client_id)>` for as long as a refresh
//! token lives, renewed by every approval.

use crate::client::Client;
use crate::env::{Env, StoreError};
use crate::records;
use crate::secret::hash;

/// Remember that a user approved `client_id`. Best effort: without the record, the client's
/// next errors are shown as pages instead, which is safe.
pub fn record(env: &Env, client_id: &str) {
    let expires_at = env.now() + env.settings.refresh_token_lifetime;
    let _ = records::put(env, &key(client_id), &(), Some(expires_at));
}

/// May errors of an authorization request by `client` be redirected to its redirect URI?
pub fn trusts_redirects(env: &Env, client: &Client) -> Result<bool, StoreError> {
    if client.is_provisioned() {
        return Ok(true);
    }
    Ok(records::get::<()>(env, &key(&client.client_id))?.is_some())
}

fn key(client_id: &str) -> String {
    format!("approved/{}", hash(client_id))
}
