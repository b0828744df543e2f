//! Client ID Metadata Documents: a URL as `client_id`.

use crate::client::Client;
use crate::env::Env;
use crate::error::OAuthError;

/// May this `http://` client_id be used (only on loopback, only when private targets are
/// allowed for tests)?
pub fn allows_http(_client_id: &str) -> bool {
    false
}

/// The client a metadata document URL names, from cache or fetched.
pub fn resolve(_env: &Env, _client_id: &str) -> Result<Option<Client>, OAuthError> {
    Ok(None)
}
