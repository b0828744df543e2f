//! Configuration, parsed once per request from named variables (Spin variables, which reach
//! components through `wasi:config/store`). Names follow the servers mcp-auth replaces
//! (`MCP_AUTH_SERVER_URL`, `TASKMANAGER_CLIENT_ID`, `ALLOWED_GITHUB_USERS`, …), lower-cased
//! as Spin requires.

use crate::env::Config;
use crate::secret::Secret;

/// Which identity provider users sign in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provider {
    /// The built-in login page with users from `local_users`.
    Local,
    /// TaskManager's `/api/oauth/authorize`, `/api/oauth/token`, `/api/oauth/verify`.
    TaskManager {
        base_url: String,
        client_id: String,
        client_secret: UpstreamSecret,
        scope: String,
    },
    /// GitHub OAuth apps; identity from `GET /user`.
    GitHub {
        web_url: String,
        api_url: String,
        client_id: String,
        client_secret: UpstreamSecret,
    },
    /// Any OpenID Connect provider, found by discovery from its issuer.
    Oidc {
        issuer: String,
        client_id: String,
        client_secret: UpstreamSecret,
        scope: String,
    },
}

/// The client secret mcp-auth holds at the upstream provider. Only the `authorize` component
/// uses it (to redeem the provider's code), so only that component is given it: elsewhere it
/// is absent, and asking for it is the configuration error the authorize component reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSecret {
    variable: &'static str,
    value: Option<Secret>,
}

impl UpstreamSecret {
    /// The secret, or the error naming the variable that should hold it.
    pub fn get(&self) -> Result<&str, ConfigError> {
        self.value.as_ref().map(Secret::expose).ok_or(ConfigError {
            variable: self.variable,
            message: "is required for this upstream provider".into(),
        })
    }
}

/// The JWS algorithm of our access tokens. RS256 is the one RFC 9068 §4 makes every
/// server support; ES256 stays the default, being smaller and faster in wasm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    Es256,
    EdDsa,
    Rs256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::Es256 => "ES256",
            SigningAlgorithm::EdDsa => "EdDSA",
            SigningAlgorithm::Rs256 => "RS256",
        }
    }

    /// The JWS `alg` name (RFC 7518 §3.1), `Ed25519` accepted for EdDSA.
    pub fn parse(name: &str) -> Option<SigningAlgorithm> {
        match name {
            "ES256" => Some(SigningAlgorithm::Es256),
            "EdDSA" | "Ed25519" => Some(SigningAlgorithm::EdDsa),
            "RS256" => Some(SigningAlgorithm::Rs256),
            _ => None,
        }
    }
}

/// Every setting, with defaults applied.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `mcp_auth_server_url` in its canonical form, the one every document, redirect and token
    /// carries: the URL's standard serialisation (WHATWG URL, as `url::Url` writes it), so an
    /// origin gains its `/` (`http://127.0.0.1:3000/`), the scheme and host are lower-cased and
    /// a default port is dropped. It is the string the MCP SDKs' URL types (pydantic,
    /// JavaScript's `URL`, Rust's `url::Url`) make of what the operator typed, and clients
    /// compare issuers byte for byte (RFC 8414 §3.3, RFC 9207 §2.4). Endpoint URLs are built
    /// from it without a doubled slash.
    pub issuer: String,
    /// `mcp_server`: the resources (RFC 8707) tokens may be issued for, normalised. Empty
    /// means "any resource on a loopback host" (local development only).
    pub resources: Vec<String>,
    /// `scopes_supported` (space or comma separated).
    pub scopes_supported: Vec<String>,
    /// `default_scopes`: granted when a client asks for none.
    pub default_scopes: Vec<String>,
    /// `access_token_lifetime`, seconds.
    pub access_token_lifetime: u64,
    /// `refresh_token_lifetime`, seconds.
    pub refresh_token_lifetime: u64,
    /// `refresh_grace_period`, seconds: how long the immediately previous refresh token may be
    /// presented again (a client's retry) without counting as reuse; 0 = strict rotation.
    pub refresh_grace_period: u64,
    /// `code_lifetime`, seconds (authorization codes).
    pub code_lifetime: u64,
    /// `session_timeout`, seconds: a pending authorization (upstream login in progress).
    pub session_timeout: u64,
    /// `client_lifetime`, seconds; 0 = registrations never expire.
    pub client_lifetime: u64,
    /// `device_code_lifetime`, seconds.
    pub device_code_lifetime: u64,
    /// `device_poll_interval`, seconds (RFC 8628 §3.2 `interval`).
    pub device_poll_interval: u64,
    /// `upstream_provider` and its settings.
    pub provider: Provider,
    /// `allowed_users` (alias `allowed_github_users`): who may sign in; `None` = anyone (`*`).
    pub allowed_users: Option<Vec<String>>,
    /// `local_users`: `name:PHC-hash` pairs, comma separated, for [`Provider::Local`].
    pub local_users: Vec<(String, String)>,
    /// `consent`: show a consent page before issuing a code.
    pub consent: bool,
    /// `jwt_algorithm`: `ES256` (default), `EdDSA` or `RS256`.
    pub signing_algorithm: SigningAlgorithm,
    /// `signing_keys`: base64url private keys, comma separated, each optionally prefixed with
    /// its algorithm (`RS256:…`, else `jwt_algorithm`; see [`crate::keys`]); the first signs,
    /// all are published. Empty: a key is generated once and kept in the store.
    pub signing_keys: Vec<String>,
    /// `introspection_credentials`: the resource servers that may use `/introspect`, each
    /// seeing only tokens of its audiences (RFC 7662 §4).
    pub introspection_credentials: Vec<IntrospectionCredential>,
    /// `registration_enabled`: accept dynamic client registration.
    pub registration_enabled: bool,
    /// `cimd_allow_private`: let Client ID Metadata Document URLs point at loopback and
    /// private addresses (tests only).
    pub cimd_allow_private: bool,
    /// Abuse limits (see [`crate::limits`]).
    pub rate_limits: RateLimits,
    /// `machine_clients`: the operator-provisioned confidential clients of the
    /// `client_credentials` grant (see [`MachineClient`]); dynamic registration never grants it.
    pub machine_clients: Vec<MachineClient>,
    /// `introspection_allow_clients`: let any confidential client introspect the tokens
    /// issued to itself (default false: only `introspection_credentials` may introspect).
    pub introspection_allow_clients: bool,
    /// `trusted_proxies`: CIDRs (comma separated) of proxies whose `X-Forwarded-For` and
    /// `Forwarded` headers name the client (see [`crate::client_address`]); empty: none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `upstream_token_key`: the 32-byte AES-256-GCM key (base64url) that seals the users'
    /// upstream tokens at rest (see [`crate::sealing`]); `None`: one generated and kept in
    /// the store.
    pub upstream_token_key: Option<Secret>,
}

/// One `machine_clients` entry, `id:secret scope scope …`: a client that gets tokens for
/// itself, with no user (OAuth 2.1 §4.2). See [`crate::client::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineClient {
    pub client_id: String,
    pub secret: Secret,
    /// The scopes it may get (each in `scopes_supported`); empty = the default scopes.
    pub scopes: Vec<String>,
}

/// One `introspection_credentials` entry, `id:secret https://aud1 https://aud2`: a resource
/// server's credentials and the audiences (RFC 8707 resources) whose tokens it may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionCredential {
    pub id: String,
    pub secret: Secret,
    /// Normalised resources. Empty: every resource of `mcp_server` (and, when that is empty
    /// too, any resource: local development).
    pub audiences: Vec<String>,
}

/// How many requests each abuse limit lets through per fixed window; `0` switches a limit
/// off. The defaults suit a public server; see [`crate::limits`] for what each one counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `rate_limit_register_per_ip`: registrations per client IP address per hour (default
    /// 20). Requests whose address the host did not give share one bucket.
    pub register_per_ip: u64,
    /// `rate_limit_register_global`: registrations per hour from everyone together (default
    /// 500), so that many addresses cannot fill the store either.
    pub register_global: u64,
    /// `rate_limit_token_per_client`: token requests per minute per authenticated client and
    /// client IP address (default 60; a device polling every 5 seconds makes 12).
    pub token_per_client: u64,
    /// `rate_limit_device_failures_per_session`: wrong user codes per device-page session
    /// (its CSRF cookie) per 10 minutes (default 5).
    pub device_failures_per_session: u64,
    /// `rate_limit_device_failures_global`: wrong user codes per minute from everyone
    /// together (default 30). This one makes guessing infeasible; see [`crate::limits`].
    pub device_failures_global: u64,
    /// `rate_limit_login_failures_per_user`: failed logins on the built-in login page per
    /// user name per 15 minutes (default 10). The trade-off is in [`crate::limits`].
    pub login_failures_per_user: u64,
    /// `rate_limit_login_failures_per_ip`: failed logins per client IP address per 15
    /// minutes (default 30).
    pub login_failures_per_ip: u64,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            register_per_ip: 20,
            register_global: 500,
            token_per_client: 60,
            device_failures_per_session: 5,
            device_failures_global: 30,
            login_failures_per_user: 10,
            login_failures_per_ip: 30,
        }
    }
}

/// A variable with an unusable value; start-up or the request fails naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "configuration variable `{}`: {}",
            self.variable, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// `mcp_auth_server_url` when none is set, as people type it; the issuer is its canonical
/// form, `http://127.0.0.1:3000/`.
pub const DEFAULT_ISSUER: &str = "http://127.0.0.1:3000";

impl Settings {
    pub fn from_config(config: &dyn Config) -> Result<Settings, ConfigError> {
        let get = |name: &str| config.get(name).filter(|v| !v.trim().is_empty());
        let text = |name: &'static str, default: &str| get(name).unwrap_or_else(|| default.into());
        let required = |name: &'static str| {
            get(name).ok_or(ConfigError {
                variable: name,
                message: "is required for this upstream provider".into(),
            })
        };
        let secret = |variable: &'static str| UpstreamSecret {
            variable,
            value: get(variable).map(Secret::new),
        };
        let number = |name: &'static str, default: u64, what: &str| match get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse::<u64>().map_err(|_| ConfigError {
                variable: name,
                message: format!("`{v}` is not {what}"),
            }),
        };
        let seconds = |name, default| number(name, default, "a whole number of seconds");
        let count = |name, default| number(name, default, "a whole number");
        let flag = |name: &'static str, default: bool| match get(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true" | "1" | "yes") => Ok(true),
            Some("false" | "0" | "no") => Ok(false),
            Some(v) => Err(ConfigError {
                variable: name,
                message: format!("`{v}` is not true or false"),
            }),
        };

        let issuer = canonical_issuer(&text("mcp_auth_server_url", DEFAULT_ISSUER))?;

        let resources = list(&text("mcp_server", ""))
            .into_iter()
            .map(|r| {
                crate::resource::normalize(&r).map_err(|e| ConfigError {
                    variable: "mcp_server",
                    message: format!("`{r}`: {e}"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let provider = match text("upstream_provider", "local").trim() {
            "local" => Provider::Local,
            "taskmanager" => Provider::TaskManager {
                base_url: trim_slash(&text("taskmanager_oauth_host", "http://127.0.0.1:8000")),
                client_id: required("taskmanager_client_id")?,
                client_secret: secret("taskmanager_client_secret"),
                scope: text("taskmanager_mcp_scope", "read"),
            },
            "github" => Provider::GitHub {
                web_url: trim_slash(&text("github_url", "https://github.com")),
                api_url: trim_slash(&text("github_api_url", "https://api.github.com")),
                client_id: required("github_client_id")?,
                client_secret: secret("github_client_secret"),
            },
            "oidc" => Provider::Oidc {
                issuer: required("oidc_issuer")?,
                client_id: required("oidc_client_id")?,
                client_secret: secret("oidc_client_secret"),
                scope: text("oidc_scope", "openid profile email"),
            },
            other => {
                return Err(ConfigError {
                    variable: "upstream_provider",
                    message: format!("`{other}` is not one of local, taskmanager, github, oidc"),
                })
            }
        };

        let allowed = get("allowed_users").or_else(|| get("allowed_github_users"));
        let allowed_users = match allowed.as_deref().map(str::trim) {
            None | Some("*") => None,
            Some(v) => Some(list(v)),
        };

        let algorithm = text("jwt_algorithm", "ES256");
        let signing_algorithm =
            SigningAlgorithm::parse(algorithm.trim()).ok_or_else(|| ConfigError {
                variable: "jwt_algorithm",
                message: format!("`{}` is not ES256, EdDSA or RS256", algorithm.trim()),
            })?;

        let scopes_supported = list(&text(
            "scopes_supported",
            "mcp:read mcp:write offline_access",
        ));
        let default_scopes = list(&text("default_scopes", "mcp:read mcp:write"));
        if let Some(s) = default_scopes
            .iter()
            .find(|s| !scopes_supported.contains(s))
        {
            return Err(ConfigError {
                variable: "default_scopes",
                message: format!("`{s}` is not in scopes_supported"),
            });
        }

        let machine_clients = machine_clients(&text("machine_clients", ""), &scopes_supported)?;
        let introspection_credentials =
            introspection_credentials(&text("introspection_credentials", ""), &resources)?;

        Ok(Settings {
            issuer,
            resources,
            scopes_supported,
            default_scopes,
            access_token_lifetime: seconds("access_token_lifetime", 3600)?,
            refresh_token_lifetime: seconds("refresh_token_lifetime", 30 * 24 * 3600)?,
            refresh_grace_period: seconds("refresh_grace_period", 30)?,
            code_lifetime: seconds("code_lifetime", 60)?,
            session_timeout: seconds("session_timeout", 600)?,
            client_lifetime: seconds("client_lifetime", 0)?,
            device_code_lifetime: seconds("device_code_lifetime", 600)?,
            device_poll_interval: seconds("device_poll_interval", 5)?,
            provider,
            allowed_users,
            local_users: local_users(&text("local_users", ""))?,
            consent: flag("consent", true)?,
            signing_algorithm,
            signing_keys: list(&text("signing_keys", "")),
            introspection_credentials,
            registration_enabled: flag("registration_enabled", true)?,
            cimd_allow_private: flag("cimd_allow_private", false)?,
            rate_limits: {
                let d = RateLimits::default();
                RateLimits {
                    register_per_ip: count("rate_limit_register_per_ip", d.register_per_ip)?,
                    register_global: count("rate_limit_register_global", d.register_global)?,
                    token_per_client: count("rate_limit_token_per_client", d.token_per_client)?,
                    device_failures_per_session: count(
                        "rate_limit_device_failures_per_session",
                        d.device_failures_per_session,
                    )?,
                    device_failures_global: count(
                        "rate_limit_device_failures_global",
                        d.device_failures_global,
                    )?,
                    login_failures_per_user: count(
                        "rate_limit_login_failures_per_user",
                        d.login_failures_per_user,
                    )?,
                    login_failures_per_ip: count(
                        "rate_limit_login_failures_per_ip",
                        d.login_failures_per_ip,
                    )?,
                }
            },
            machine_clients,
            introspection_allow_clients: flag("introspection_allow_clients", false)?,
            trusted_proxies: trusted_proxies(&text("trusted_proxies", ""))?,
            upstream_token_key: get("upstream_token_key")
                .map(|key| upstream_token_key(&key))
                .transpose()?,
        })
    }

    /// `issuer` + `path`, e.g. `endpoint("/token")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer.trim_end_matches('/'), path)
    }

    /// The path part of the issuer (`""` for `https://as.example`), which prefixes every
    /// endpoint path we serve.
    pub fn issuer_path(&self) -> &str {
        issuer_path(&self.issuer)
    }

    /// `https` or `http`, as the issuer says.
    pub fn issuer_scheme(&self) -> &'static str {
        if self.issuer.starts_with("https:") {
            "https"
        } else {
            "http"
        }
    }

    /// Is the issuer on a loopback host (local development)?
    pub fn issuer_is_loopback(&self) -> bool {
        url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(crate::resource::is_loopback_host))
            .unwrap_or(false)
    }
}

fn issuer_path(issuer: &str) -> &str {
    let after_scheme = issuer.split_once("://").map(|(_, r)| r).unwrap_or(issuer);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].trim_end_matches('/'),
        None => "",
    }
}

/// The issuer for `mcp_auth_server_url` as typed: checked against RFC 8414 §2 (https, http
/// only on loopback, no query, no fragment), then serialised as a URL (see
/// [`Settings::issuer`] for why).
fn canonical_issuer(configured: &str) -> Result<String, ConfigError> {
    let err = |message: &str| ConfigError {
        variable: "mcp_auth_server_url",
        message: format!("`{configured}` {message}"),
    };
    let url = url::Url::parse(configured).map_err(|_| err("is not a URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(err("must have no query or fragment"));
    }
    match url.scheme() {
        "https" => Ok(url.into()),
        "http"
            if url
                .host_str()
                .is_some_and(crate::resource::is_loopback_host) =>
        {
            Ok(url.into())
        }
        _ => Err(err("must be https (http only on a loopback host)")),
    }
}

fn trim_slash(s: &str) -> String {
    s.trim().trim_end_matches('/').to_string()
}

/// Split on commas and whitespace, dropping empties.
pub fn list(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect()
}

/// `local_users`: `name:PHC` entries separated by commas. PHC strings hold commas too
/// (`$argon2id$v=19$m=19456,t=2,p=1$…`) but never a `:`, so a piece without a `:` continues
/// the previous entry's hash.
fn local_users(s: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut entries: Vec<String> = Vec::new();
    for piece in s.split(',') {
        match entries.last_mut() {
            Some(last) if !piece.contains(':') && !piece.trim().is_empty() => {
                last.push(',');
                last.push_str(piece.trim());
            }
            _ => entries.push(piece.to_string()),
        }
    }
    parse_pairs(entries.iter().map(String::as_str), "local_users")
}

/// `machine_clients`: comma-separated `id:secret scope scope …` entries, each id unique,
/// each scope supported. Errors name the entry's id, never its secret.
fn machine_clients(s: &str, supported: &[String]) -> Result<Vec<MachineClient>, ConfigError> {
    let fail = |message: String| ConfigError {
        variable: "machine_clients",
        message,
    };
    let mut clients: Vec<MachineClient> = Vec::new();
    for entry in s.split(',').filter(|e| !e.trim().is_empty()) {
        let mut words = entry.split_whitespace();
        let (client_id, secret) = words
            .next()
            .and_then(|first| first.split_once(':'))
            .filter(|(id, secret)| !id.is_empty() && !secret.is_empty())
            .ok_or_else(|| {
                fail("expected `id:secret scope …` entries separated by commas".into())
            })?;
        // No `:` either, so never a Client ID Metadata Document URL.
        if client_id.len() > crate::client::MAX_CLIENT_ID_LEN
            || client_id.contains(char::is_control)
        {
            return Err(fail(format!(
                "a client id must have at most {} bytes and no control characters",
                crate::client::MAX_CLIENT_ID_LEN
            )));
        }
        if clients.iter().any(|c| c.client_id == client_id) {
            return Err(fail(format!("client id `{client_id}` is listed twice")));
        }
        let scopes = crate::scope::parse(&words.collect::<Vec<_>>().join(" "));
        if let Some(s) = scopes.iter().find(|s| !supported.contains(s)) {
            return Err(fail(format!(
                "`{client_id}`: scope `{s}` is not in scopes_supported"
            )));
        }
        clients.push(MachineClient {
            client_id: client_id.to_string(),
            secret: Secret::new(secret),
            scopes,
        });
    }
    Ok(clients)
}

/// `introspection_credentials`: entries separated by commas, each `id:secret` followed by
/// the resources it serves, separated by whitespace (none: every configured resource).
/// Audiences must be resources of `mcp_server` when that is set: anything else is a typo
/// that would hide every token from the resource server.
fn introspection_credentials(
    s: &str,
    resources: &[String],
) -> Result<Vec<IntrospectionCredential>, ConfigError> {
    let variable = "introspection_credentials";
    let mut credentials = Vec::new();
    for entry in s.split(',').filter(|e| !e.trim().is_empty()) {
        let mut words = entry.split_whitespace();
        let pair = words.next().unwrap_or_default();
        let (id, secret) = parse_pair(pair, variable)?;
        let audiences = words
            .map(|aud| {
                let normalized = crate::resource::normalize(aud).map_err(|e| ConfigError {
                    variable,
                    message: format!("`{id}`: audience `{aud}`: {e}"),
                })?;
                if !resources.is_empty() && !resources.contains(&normalized) {
                    return Err(ConfigError {
                        variable,
                        message: format!("`{id}`: audience `{aud}` is not in mcp_server"),
                    });
                }
                Ok(normalized)
            })
            .collect::<Result<_, _>>()?;
        credentials.push(IntrospectionCredential {
            id,
            secret: Secret::new(secret),
            audiences,
        });
    }
    Ok(credentials)
}

/// `upstream_token_key`: 32 bytes, base64url (padding allowed), e.g. `openssl rand 32 |
/// basenc --base64url`. Checked here, decoded where it is used ([`crate::sealing`]); the
/// value is never echoed.
fn upstream_token_key(value: &str) -> Result<Secret, ConfigError> {
    crate::sealing::decode_key(value)
        .map(|_| Secret::new(value.trim()))
        .ok_or_else(|| ConfigError {
            variable: "upstream_token_key",
            message: "is not 32 bytes in base64url".into(),
        })
}

/// `trusted_proxies`: CIDRs or single addresses, separated by commas or whitespace.
fn trusted_proxies(s: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list(s)
        .iter()
        .map(|v| {
            v.parse::<ipnet::IpNet>()
                .or_else(|_| v.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| ConfigError {
                    variable: "trusted_proxies",
                    message: format!("`{v}` is not an IP address or CIDR"),
                })
        })
        .collect()
}

fn parse_pairs<'a>(
    entries: impl Iterator<Item = &'a str>,
    variable: &'static str,
) -> Result<Vec<(String, String)>, ConfigError> {
    entries
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|pair| parse_pair(pair, variable))
        .collect()
}

/// `a:b`; the value may itself hold colons (PHC hashes do not, but be liberal).
fn parse_pair(pair: &str, variable: &'static str) -> Result<(String, String), ConfigError> {
    pair.split_once(':')
        .map(|(a, b)| (a.trim().to_string(), b.trim().to_string()))
        .filter(|(a, b)| !a.is_empty() && !b.is_empty())
        .ok_or(ConfigError {
            variable,
            message: "expected name:value pairs separated by commas".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MapConfig;

    #[test]
    fn defaults_run_the_local_login() {
        let s = Settings::from_config(&MapConfig::default()).unwrap();
        assert_eq!(s.issuer, "http://127.0.0.1:3000/");
        assert_eq!(s.provider, Provider::Local);
        assert!(s.issuer_is_loopback());
        assert_eq!(s.endpoint("/token"), "http://127.0.0.1:3000/token");
        assert_eq!(s.issuer_path(), "");
    }

    /// The issuer is what the SDKs' URL types make of the configured string (WHATWG URL
    /// serialisation), whichever way the operator typed it; endpoints never get `//`.
    #[test]
    fn issuer_is_the_canonical_form_of_the_configured_url() {
        for (configured, issuer, token_endpoint, path) in [
            (
                "https://auth.example.com",
                "https://auth.example.com/",
                "https://auth.example.com/token",
                "",
            ),
            (
                "https://auth.example.com/",
                "https://auth.example.com/",
                "https://auth.example.com/token",
                "",
            ),
            (
                "HTTPS://Auth.Example.COM:443",
                "https://auth.example.com/",
                "https://auth.example.com/token",
                "",
            ),
            (
                "http://LOCALHOST:80",
                "http://localhost/",
                "http://localhost/token",
                "",
            ),
            (
                "https://auth.example.com:8443",
                "https://auth.example.com:8443/",
                "https://auth.example.com:8443/token",
                "",
            ),
            (
                "http://[::1]:3000",
                "http://[::1]:3000/",
                "http://[::1]:3000/token",
                "",
            ),
            // A path is the operator's: kept as typed, with or without its trailing `/`.
            (
                "https://example.com/auth",
                "https://example.com/auth",
                "https://example.com/auth/token",
                "/auth",
            ),
            (
                "https://example.com/auth/",
                "https://example.com/auth/",
                "https://example.com/auth/token",
                "/auth",
            ),
        ] {
            let c = MapConfig::from([("mcp_auth_server_url", configured)]);
            let s = Settings::from_config(&c).unwrap();
            assert_eq!(s.issuer, issuer, "{configured}");
            assert_eq!(s.endpoint("/token"), token_endpoint, "{configured}");
            assert_eq!(s.issuer_path(), path, "{configured}");
            // Canonical already: a second pass changes nothing.
            let again = MapConfig::from([("mcp_auth_server_url", issuer)]);
            assert_eq!(Settings::from_config(&again).unwrap().issuer, issuer);
        }
    }

    #[test]
    fn plain_http_issuer_is_refused_off_loopback() {
        let c = MapConfig::from([("mcp_auth_server_url", "http://auth.example.com")]);
        let err = Settings::from_config(&c).unwrap_err();
        assert_eq!(err.variable, "mcp_auth_server_url");
    }

    #[test]
    fn taskmanager_needs_its_credentials() {
        let c = MapConfig::from([("upstream_provider", "taskmanager")]);
        let err = Settings::from_config(&c).unwrap_err();
        assert_eq!(err.variable, "taskmanager_client_id");
    }

    #[test]
    fn the_client_secret_is_asked_for_only_when_used_and_never_printed() {
        let c = MapConfig::from([
            ("upstream_provider", "github"),
            ("github_client_id", "gh-client"),
        ]);
        let Provider::GitHub { client_secret, .. } = Settings::from_config(&c).unwrap().provider
        else {
            panic!("not github")
        };
        assert_eq!(
            client_secret.get().unwrap_err().variable,
            "github_client_secret"
        );

        let c = MapConfig::from([
            ("upstream_provider", "github"),
            ("github_client_id", "gh-client"),
            ("github_client_secret", "gh-s3cret"),
        ]);
        let settings = Settings::from_config(&c).unwrap();
        assert!(!format!("{settings:?}").contains("gh-s3cret"));
        let Provider::GitHub { client_secret, .. } = settings.provider else {
            panic!("not github")
        };
        assert_eq!(client_secret.get(), Ok("gh-s3cret"));
    }

    #[test]
    fn bad_numbers_name_the_variable() {
        let c = MapConfig::from([("access_token_lifetime", "1h")]);
        assert_eq!(
            Settings::from_config(&c).unwrap_err().variable,
            "access_token_lifetime"
        );
    }

    #[test]
    fn allowed_users_star_means_anyone() {
        let c = MapConfig::from([("allowed_github_users", "*")]);
        assert_eq!(Settings::from_config(&c).unwrap().allowed_users, None);
        let c = MapConfig::from([("allowed_users", "alice, bob")]);
        assert_eq!(
            Settings::from_config(&c).unwrap().allowed_users,
            Some(vec!["alice".to_string(), "bob".to_string()])
        );
    }

    #[test]
    fn local_users_keep_the_commas_of_their_phc_hashes() {
        let c = MapConfig::from([(
            "local_users",
            "alice:$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA, bob:$argon2id$v=19$m=16,t=2,p=1$eA$eQ",
        )]);
        let users = Settings::from_config(&c).unwrap().local_users;
        assert_eq!(
            users,
            [
                (
                    "alice".to_string(),
                    "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".to_string()
                ),
                (
                    "bob".to_string(),
                    "$argon2id$v=19$m=16,t=2,p=1$eA$eQ".to_string()
                ),
            ]
        );
    }

    #[test]
    fn machine_clients_are_parsed_and_malformed_entries_name_the_variable() {
        let c = MapConfig::from([("machine_clients", " svc:s3:cret mcp:read mcp:write ,bot:x,")]);
        let machines = Settings::from_config(&c).unwrap().machine_clients;
        assert_eq!(machines.len(), 2);
        assert_eq!(machines[0].client_id, "svc");
        assert_eq!(machines[0].secret.expose(), "s3:cret");
        assert_eq!(machines[0].scopes, ["mcp:read", "mcp:write"]);
        assert!(machines[1].scopes.is_empty());
        let long = format!("{}:hunter2", "x".repeat(300));
        for bad in [
            "svc",
            "svc: mcp:read",
            ":hunter2",
            "svc:hunter2 mcp:admin",
            "svc:hunter2, svc:b",
            "a\u{1}b:hunter2",
            long.as_str(),
        ] {
            let c = MapConfig::from([("machine_clients", bad)]);
            let err = Settings::from_config(&c).expect_err(bad);
            assert_eq!(err.variable, "machine_clients", "{bad}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }

    #[test]
    fn introspection_credentials_name_their_audiences_and_old_pairs_stay_valid() {
        let c = MapConfig::from([
            ("mcp_server", "https://a.example/mcp, https://b.example/mcp"),
            (
                "introspection_credentials",
                "old:s1, rs:s2 https://A.example/mcp  https://b.example/mcp/ ,x:y:z",
            ),
        ]);
        let creds = Settings::from_config(&c).unwrap().introspection_credentials;
        let summary: Vec<_> = creds
            .iter()
            .map(|c| (c.id.as_str(), c.secret.expose(), c.audiences.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("old", "s1", vec![]),
                (
                    "rs",
                    "s2",
                    vec![
                        "https://a.example/mcp".to_string(),
                        "https://b.example/mcp".to_string()
                    ]
                ),
                ("x", "y:z", vec![]),
            ]
        );
        assert!(!format!("{creds:?}").contains("s2"), "secrets never print");
        for bad in ["rs", "rs:s https://elsewhere.example/mcp", "rs:s not-a-url"] {
            let c = MapConfig::from([
                ("mcp_server", "https://a.example/mcp"),
                ("introspection_credentials", bad),
            ]);
            let err = Settings::from_config(&c).unwrap_err();
            assert_eq!(err.variable, "introspection_credentials", "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let c = MapConfig::from([("trusted_proxies", "10.0.0.0/8, 192.0.2.1 ::1")]);
        let proxies = Settings::from_config(&c).unwrap().trusted_proxies;
        let shown: Vec<String> = proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "192.0.2.1/32", "::1/128"]);
        assert!(Settings::from_config(&MapConfig::default())
            .unwrap()
            .trusted_proxies
            .is_empty());
        let c = MapConfig::from([("trusted_proxies", "10.0.0.0/33")]);
        assert_eq!(
            Settings::from_config(&c).unwrap_err().variable,
            "trusted_proxies"
        );
    }
}
