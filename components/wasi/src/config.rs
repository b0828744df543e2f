//! [`Config`] over `wasi:config/store`.
//!
//! The core reads nearly every variable on every request (`Settings::from_config` asks for
//! about thirty names), so one `get-all` call replaces thirty `get` calls across the
//! component boundary, each with its own string copies. Under Spin `get-all` returns exactly
//! the variables mapped in the component's `[component.x.variables]`, as `get` would.
//! It also lets a failing variable provider fail the request loudly: `get` errors would have
//! to be read as "unset", silently falling back to defaults (a default issuer, say).

use std::collections::BTreeMap;

use mcp_auth_core::error::{ErrorCode, OAuthError};
use mcp_auth_core::{Config, Response};

use crate::bindings::wasi::config::store;

/// This request's variables, read once.
pub struct Variables(BTreeMap<String, String>);

impl Variables {
    /// Read every variable; a provider failure becomes a 500 naming it.
    pub fn load() -> Result<Variables, Response> {
        match store::get_all() {
            Ok(all) => Ok(Variables(all.into_iter().collect())),
            Err(err) => {
                let message = match err {
                    store::Error::Upstream(m) | store::Error::Io(m) => m,
                };
                eprintln!("mcp-auth: wasi:config get-all failed: {message}");
                Err(OAuthError::new(
                    ErrorCode::ServerError,
                    format!("configuration is unavailable: {message}"),
                )
                .into_response())
            }
        }
    }
}

impl Config for Variables {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}
