//! [`Config`] over `wasi:config/store`.
//!
//! The core reads nearly every variable on every request (`Settings::from_config` asks for
//! about thirty names), so one `get-all` call replaces thirty `get` calls across the
//! component boundary, each with its own string copies. Under Spin `get-all` returns exactly
//! the variables mapped in the component's `[component.x.variables]`, as `get` would.
//! It also lets a failing variable provider fail the request loudly: `get` errors would have
//! to be read as "unset", silently falling back to defaults (a default issuer, say).

use std::cell::RefCell;
use std::collections::BTreeMap;

use mcp_auth_core::error::{ErrorCode, OAuthError};
use mcp_auth_core::settings::ConfigError;
use mcp_auth_core::{Config, Response, Settings};

use crate::bindings::wasi::config::store;

/// This request's variables, read once.
#[derive(Clone, PartialEq, Eq)]
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

/// The settings parsed from the last variables seen, for an instance that serves several
/// requests (our host's `--instance-reuse`): parsing takes about thirty lookups, URL parsing
/// and list splitting on every request otherwise. The key is the variables' values, so a
/// change of any of them is parsed afresh; nothing of a request is kept. Under Spin (a fresh
/// instance per request) it holds one entry for one request.
#[derive(Default)]
pub struct SettingsCache(RefCell<Option<(Variables, Settings)>>);

impl SettingsCache {
    /// The settings for `variables`, parsed by `parse` unless they are those of the last call.
    /// An error is not kept: the next request parses again.
    pub fn get(
        &self,
        variables: Variables,
        parse: impl FnOnce(&Variables) -> Result<Settings, ConfigError>,
    ) -> Result<Settings, ConfigError> {
        if let Some((cached, settings)) = &*self.0.borrow() {
            if *cached == variables {
                return Ok(settings.clone());
            }
        }
        let settings = parse(&variables)?;
        *self.0.borrow_mut() = Some((variables, settings.clone()));
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variables(pairs: &[(&str, &str)]) -> Variables {
        Variables(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn settings_are_parsed_again_when_a_value_changes() {
        let cache = SettingsCache::default();
        let parses = std::cell::Cell::new(0);
        let parse = |v: &Variables| {
            parses.set(parses.get() + 1);
            Settings::from_config(v)
        };
        let a = variables(&[("mcp_auth_server_url", "https://a.example")]);
        let b = variables(&[("mcp_auth_server_url", "https://b.example")]);
        assert_eq!(
            cache.get(a.clone(), parse).unwrap().issuer,
            "https://a.example/"
        );
        assert_eq!(
            cache.get(a.clone(), parse).unwrap().issuer,
            "https://a.example/"
        );
        assert_eq!(parses.get(), 1);
        assert_eq!(cache.get(b, parse).unwrap().issuer, "https://b.example/");
        assert_eq!(parses.get(), 2);
        // An added variable is a change too, and a bad value is refused, not cached.
        let bad = variables(&[
            ("mcp_auth_server_url", "https://a.example"),
            ("access_token_lifetime", "soon"),
        ]);
        assert!(cache.get(bad.clone(), parse).is_err());
        assert!(cache.get(bad, parse).is_err());
        assert_eq!(parses.get(), 4);
        assert_eq!(cache.get(a, parse).unwrap().issuer, "https://a.example/");
        assert_eq!(parses.get(), 5);
    }
}
