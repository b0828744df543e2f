//! mcp-auth core: every OAuth 2.1 and MCP-authorization decision, as a pure library.
//!
//! A caller (a WASI component, or a test) builds an [`Env`] from its capabilities, parses
//! the HTTP request into a [`Request`], and calls [`handle`] with the endpoints it serves.
//! The core never touches a socket, a file, the clock or an RNG of its own.
//!
//! ```
//! use mcp_auth_core::{handle, Endpoint, Request, Method};
//! use mcp_auth_core::testing::Harness;
//!
//! let h = Harness::new();
//! let req = Request::new(Method::Get, "/.well-known/oauth-authorization-server");
//! let res = handle(&h.env(), &req, &[Endpoint::AuthorizationServerMetadata]);
//! assert_eq!(res.status, 200);
//! ```

pub mod audit;
pub mod authorize;
pub mod cimd;
pub mod client;
pub mod client_address;
pub mod device;
pub mod env;
pub mod error;
pub mod fuzz;
pub mod grants;
pub mod http;
pub mod introspection;
pub mod keys;
pub mod limits;
pub mod metadata;
pub mod pages;
pub mod pkce;
pub mod records;
pub mod registration;
pub mod resource;
pub mod revocation;
pub mod scope;
pub mod sealing;
pub mod secret;
pub mod settings;
pub mod testing;
pub mod token;
pub mod tokens;
pub mod upstream;
pub mod upstream_tokens;
pub mod verify;

pub use env::{Clock, Config, Env, Rng, Store, StoreError, Upstream, UpstreamError};
pub use error::{ErrorCode, OAuthError};
pub use http::{Method, OutgoingRequest, Request, Response, UpstreamResponse};
pub use settings::{ConfigError, Settings};

/// Every endpoint the core serves. Each WASI component serves a group of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/.well-known/oauth-authorization-server` (RFC 8414)
    AuthorizationServerMetadata,
    /// `/.well-known/oauth-protected-resource[/…]` (RFC 9728)
    ProtectedResourceMetadata,
    /// `/jwks`
    Jwks,
    /// `/health`
    Health,
    /// `POST /register` (RFC 7591)
    Register,
    /// `GET|PUT|DELETE /register/{client_id}` (RFC 7592)
    ClientConfiguration,
    /// `GET /authorize`
    Authorize,
    /// `GET|POST /login` (the built-in login page)
    Login,
    /// `POST /consent`
    Consent,
    /// `GET /oauth/callback` (return from the upstream provider)
    Callback,
    /// `GET|POST /device` (RFC 8628 verification page)
    DeviceVerification,
    /// `POST /token`
    Token,
    /// `POST /device/code` (RFC 8628 §3.1)
    DeviceAuthorization,
    /// `POST /revoke` (RFC 7009)
    Revoke,
    /// `POST /introspect` (RFC 7662)
    Introspect,
    /// `GET /verify` (ForwardAuth)
    Verify,
}

impl Endpoint {
    pub const ALL: &'static [Endpoint] = &[
        Endpoint::AuthorizationServerMetadata,
        Endpoint::ProtectedResourceMetadata,
        Endpoint::Jwks,
        Endpoint::Health,
        Endpoint::Register,
        Endpoint::ClientConfiguration,
        Endpoint::Authorize,
        Endpoint::Login,
        Endpoint::Consent,
        Endpoint::Callback,
        Endpoint::DeviceVerification,
        Endpoint::Token,
        Endpoint::DeviceAuthorization,
        Endpoint::Revoke,
        Endpoint::Introspect,
        Endpoint::Verify,
    ];
    pub const DISCOVERY: &'static [Endpoint] = &[
        Endpoint::AuthorizationServerMetadata,
        Endpoint::ProtectedResourceMetadata,
        Endpoint::Jwks,
        Endpoint::Health,
    ];
    pub const REGISTRATION: &'static [Endpoint] =
        &[Endpoint::Register, Endpoint::ClientConfiguration];
    pub const AUTHORIZE: &'static [Endpoint] = &[
        Endpoint::Authorize,
        Endpoint::Login,
        Endpoint::Consent,
        Endpoint::Callback,
        Endpoint::DeviceVerification,
    ];
    pub const TOKEN: &'static [Endpoint] = &[
        Endpoint::Token,
        Endpoint::DeviceAuthorization,
        Endpoint::Revoke,
    ];
    pub const INTROSPECT: &'static [Endpoint] = &[Endpoint::Introspect, Endpoint::Verify];

    /// Endpoints browser-based MCP clients call cross-origin (CORS, no credentials).
    fn is_cors_open(self) -> bool {
        matches!(
            self,
            Endpoint::AuthorizationServerMetadata
                | Endpoint::ProtectedResourceMetadata
                | Endpoint::Jwks
                | Endpoint::Register
                | Endpoint::ClientConfiguration
                | Endpoint::Token
                | Endpoint::DeviceAuthorization
                | Endpoint::Revoke
        )
    }
}

/// Which endpoint `path` names, for an issuer whose path is `issuer_path` (`""` or `/p`).
///
/// Well-known documents follow RFC 8414 §3.1 (`/.well-known/oauth-authorization-server/p`);
/// every other endpoint lives under the issuer's path. There is no OpenID Connect Discovery
/// document: we issue no ID tokens, and MCP clients ask for RFC 8414 metadata first.
pub fn route(issuer_path: &str, path: &str) -> Option<Endpoint> {
    let well_known = |name: &str| {
        path == format!("/.well-known/{name}{issuer_path}")
            || (!issuer_path.is_empty() && path == format!("/.well-known/{name}"))
    };
    if well_known("oauth-authorization-server") {
        return Some(Endpoint::AuthorizationServerMetadata);
    }
    if path == "/.well-known/oauth-protected-resource"
        || path.starts_with("/.well-known/oauth-protected-resource/")
    {
        return Some(Endpoint::ProtectedResourceMetadata);
    }
    let rest = path.strip_prefix(issuer_path)?;
    Some(match rest {
        "/jwks" | "/.well-known/jwks.json" => Endpoint::Jwks,
        "/health" => Endpoint::Health,
        "/register" => Endpoint::Register,
        r if r.starts_with("/register/") && r.len() > "/register/".len() => {
            Endpoint::ClientConfiguration
        }
        "/authorize" => Endpoint::Authorize,
        "/login" => Endpoint::Login,
        "/consent" => Endpoint::Consent,
        "/oauth/callback" | "/callback" => Endpoint::Callback,
        "/device" => Endpoint::DeviceVerification,
        "/token" => Endpoint::Token,
        "/device/code" | "/device_authorization" => Endpoint::DeviceAuthorization,
        "/revoke" => Endpoint::Revoke,
        "/introspect" => Endpoint::Introspect,
        "/verify" => Endpoint::Verify,
        _ => return None,
    })
}

/// Serve one request. `served` is the set of endpoints this caller answers; any other path
/// is a 404. Never panics on any input; audit events are left in `env` for the caller.
///
/// This reaches every endpoint's code; a WASI component uses [`handle_group`] instead.
pub fn handle(env: &Env, req: &Request, served: &[Endpoint]) -> Response {
    serve(env, req, served, dispatch_any)
}

/// Serve one request for one component's [`Group`]. Only that group's dispatcher is
/// reachable from here, so link-time optimisation leaves every other group's code (and its
/// crypto) out of the component: smaller, and least privilege in the binary too.
pub fn handle_group(env: &Env, req: &Request, group: &Group) -> Response {
    serve(env, req, group.endpoints, group.dispatch)
}

/// One component's endpoints and the dispatcher that reaches only their code.
#[derive(Clone, Copy)]
pub struct Group {
    pub endpoints: &'static [Endpoint],
    dispatch: Dispatch,
}

/// Answers `endpoint` if it belongs to the group, `None` otherwise.
type Dispatch = fn(&Env, &Request, Endpoint) -> Option<Response>;

impl Group {
    pub const DISCOVERY: Group = Group {
        endpoints: Endpoint::DISCOVERY,
        dispatch: dispatch_discovery,
    };
    pub const REGISTRATION: Group = Group {
        endpoints: Endpoint::REGISTRATION,
        dispatch: dispatch_registration,
    };
    pub const AUTHORIZE: Group = Group {
        endpoints: Endpoint::AUTHORIZE,
        dispatch: dispatch_authorize,
    };
    pub const TOKEN: Group = Group {
        endpoints: Endpoint::TOKEN,
        dispatch: dispatch_token,
    };
    pub const INTROSPECT: Group = Group {
        endpoints: Endpoint::INTROSPECT,
        dispatch: dispatch_introspect,
    };
    pub const ALL: [Group; 5] = [
        Group::DISCOVERY,
        Group::REGISTRATION,
        Group::AUTHORIZE,
        Group::TOKEN,
        Group::INTROSPECT,
    ];
}

fn serve(env: &Env, req: &Request, served: &[Endpoint], dispatch: Dispatch) -> Response {
    let Some(endpoint) =
        route(env.settings.issuer_path(), &req.path).filter(|e| served.contains(e))
    else {
        return OAuthError::not_found().into_response();
    };
    let cors = endpoint.is_cors_open();
    if let Some((status, what)) = req.oversized() {
        // A browser client reads this refusal only with the CORS headers.
        let refused = OAuthError::new(ErrorCode::PayloadTooLarge, what)
            .with_status(status)
            .into_response();
        return if cors { cors_headers(refused) } else { refused };
    }
    // Behind a trusted proxy, every limit and audit event downstream sees the client; from
    // any other peer, no handler sees a forwarded origin.
    let seen;
    let trusted = &env.settings.trusted_proxies;
    let req = match client_address::as_seen(trusted, req, endpoint == Endpoint::Verify) {
        Some(as_seen) => {
            seen = as_seen;
            &seen
        }
        None => req,
    };
    if cors && req.method == Method::Options {
        return cors_headers(Response::new(204))
            .with_header(
                "access-control-allow-methods",
                "GET, POST, PUT, DELETE, OPTIONS",
            )
            .with_header(
                "access-control-allow-headers",
                "authorization, content-type, mcp-protocol-version",
            )
            .with_header("access-control-max-age", "86400");
    }
    let response =
        dispatch(env, req, endpoint).unwrap_or_else(|| OAuthError::not_found().into_response());
    // What the handler wrote goes out before its response does (see `Env::flush`).
    let response = match env.flush() {
        Ok(()) => response,
        Err(err) => OAuthError::from(err).into_response(),
    };
    if cors {
        cors_headers(response)
    } else {
        response
    }
}

fn dispatch_any(env: &Env, req: &Request, endpoint: Endpoint) -> Option<Response> {
    Group::ALL
        .iter()
        .find_map(|group| (group.dispatch)(env, req, endpoint))
}

fn dispatch_discovery(env: &Env, req: &Request, endpoint: Endpoint) -> Option<Response> {
    Some(match endpoint {
        Endpoint::AuthorizationServerMetadata => metadata::authorization_server(env, req),
        Endpoint::ProtectedResourceMetadata => metadata::protected_resource(env, req),
        Endpoint::Jwks => keys::jwks(env, req),
        Endpoint::Health => metadata::health(env, req),
        _ => return None,
    })
}

fn dispatch_registration(env: &Env, req: &Request, endpoint: Endpoint) -> Option<Response> {
    Some(match endpoint {
        Endpoint::Register => registration::register(env, req),
        Endpoint::ClientConfiguration => registration::manage(env, req),
        _ => return None,
    })
}

fn dispatch_authorize(env: &Env, req: &Request, endpoint: Endpoint) -> Option<Response> {
    Some(match endpoint {
        Endpoint::Authorize => authorize::authorize(env, req),
        Endpoint::Login => authorize::login(env, req),
        Endpoint::Consent => authorize::consent(env, req),
        Endpoint::Callback => authorize::callback(env, req),
        Endpoint::DeviceVerification => authorize::device_verification(env, req),
        _ => return None,
    })
}

fn dispatch_token(env: &Env, req: &Request, endpoint: Endpoint) -> Option<Response> {
    Some(match endpoint {
        Endpoint::Token => token::token(env, req),
        Endpoint::DeviceAuthorization => device::device_authorization(env, req),
        Endpoint::Revoke => revocation::revoke(env, req),
        _ => return None,
    })
}

fn dispatch_introspect(env: &Env, req: &Request, endpoint: Endpoint) -> Option<Response> {
    Some(match endpoint {
        Endpoint::Introspect => introspection::introspect(env, req),
        Endpoint::Verify => verify::verify(env, req),
        _ => return None,
    })
}

/// CORS for browser MCP clients: any origin, no credentials, `WWW-Authenticate` readable.
fn cors_headers(response: Response) -> Response {
    response
        .with_header("access-control-allow-origin", "*")
        .with_header("access-control-expose-headers", "WWW-Authenticate")
}

/// Build a response for a request that failed before reaching the core (the glue uses this
/// for a bad configuration): a JSON `server_error` naming the problem, never a panic.
pub fn config_error_response(err: &ConfigError) -> Response {
    OAuthError::new(ErrorCode::ServerError, err.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_without_issuer_path() {
        assert_eq!(route("", "/token"), Some(Endpoint::Token));
        assert_eq!(
            route("", "/register/abc"),
            Some(Endpoint::ClientConfiguration)
        );
        assert_eq!(route("", "/register/"), None);
        assert_eq!(
            route("", "/.well-known/oauth-authorization-server"),
            Some(Endpoint::AuthorizationServerMetadata)
        );
        assert_eq!(
            route("", "/.well-known/oauth-protected-resource/mcp"),
            Some(Endpoint::ProtectedResourceMetadata)
        );
        assert_eq!(route("", "/nope"), None);
    }

    #[test]
    fn routes_with_issuer_path() {
        assert_eq!(route("/auth", "/auth/token"), Some(Endpoint::Token));
        assert_eq!(route("/auth", "/token"), None);
        assert_eq!(
            route("/auth", "/.well-known/oauth-authorization-server/auth"),
            Some(Endpoint::AuthorizationServerMetadata)
        );
        for openid in [
            "/.well-known/openid-configuration/auth",
            "/auth/.well-known/openid-configuration",
            "/.well-known/openid-configuration",
        ] {
            assert_eq!(route("/auth", openid), None, "{openid}");
        }
    }

    #[test]
    fn every_endpoint_has_exactly_one_group() {
        for endpoint in Endpoint::ALL {
            let owners = Group::ALL
                .iter()
                .filter(|g| g.endpoints.contains(endpoint))
                .count();
            assert_eq!(owners, 1, "{endpoint:?}");
        }
        let h = testing::Harness::new();
        let env = h.env();
        let req = Request::new(Method::Get, "/");
        for group in Group::ALL {
            for endpoint in Endpoint::ALL {
                let answered = (group.dispatch)(&env, &req, *endpoint).is_some();
                assert_eq!(answered, group.endpoints.contains(endpoint), "{endpoint:?}");
            }
        }
    }

    #[test]
    fn a_group_serves_only_its_own_endpoints() {
        let h = testing::Harness::new();
        let res = handle_group(
            &h.env(),
            &Request::new(Method::Post, "/token"),
            &Group::DISCOVERY,
        );
        assert_eq!(res.status, 404);
    }

    #[test]
    fn unserved_endpoints_are_404() {
        let h = testing::Harness::new();
        let res = handle(
            &h.env(),
            &Request::new(Method::Post, "/token"),
            Endpoint::DISCOVERY,
        );
        assert_eq!(res.status, 404);
    }
}
