//! Discovery documents: authorization server metadata (RFC 8414), protected resource
//! metadata (RFC 9728), and the health check.
//!
//! A document claims only what we do: there is no OpenID Connect Discovery document, since
//! we issue no ID tokens (MCP clients try RFC 8414 first), and protected resource metadata
//! leaves out `resource_signing_alg_values_supported`, which describes how the resource
//! server signs its own responses (RFC 9728 §2), not our tokens.

use serde::Serialize;
use serde_json::{json, Value};

use crate::env::Env;
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Request, Response};
use crate::resource;
use crate::settings::Settings;

/// How long clients and proxies may cache the documents, seconds.
const MAX_AGE: &str = "public, max-age=300";

pub const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "client_credentials",
    // RFC 8693, for resource servers (with their introspection credentials) only.
    "urn:ietf:params:oauth:grant-type:token-exchange",
];

/// Every client authentication method we accept (MCP pitfall 1: accept them all).
pub const AUTH_METHODS: [&str; 3] = ["none", "client_secret_post", "client_secret_basic"];

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 §3).
pub fn authorization_server(env: &Env, req: &Request) -> Response {
    if let Some(refused) = only_get(req) {
        return refused;
    }
    document(&server_metadata(&env.settings))
}

/// The RFC 8414 fields. `issuer` is the canonical issuer (§3.3: clients compare it byte for
/// byte with the one they were pointed to, trailing slash included; see `Settings::issuer`).
fn server_metadata(s: &Settings) -> Value {
    let mut doc = json!({
        "issuer": s.issuer,
        "authorization_endpoint": s.endpoint("/authorize"),
        "token_endpoint": s.endpoint("/token"),
        "jwks_uri": s.endpoint("/jwks"),
        "revocation_endpoint": s.endpoint("/revoke"),
        "introspection_endpoint": s.endpoint("/introspect"),
        "device_authorization_endpoint": s.endpoint("/device/code"),
        "scopes_supported": s.scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GRANT_TYPES,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        // RFC 9207: every authorization response carries `iss`.
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": true,
    });
    if s.registration_enabled {
        doc["registration_endpoint"] = json!(s.endpoint("/register"));
    }
    doc
}

/// `GET /.well-known/oauth-protected-resource[/path]` (RFC 9728 §3), for MCP servers that
/// sit behind the same host (e.g. one reverse proxy in front of both).
///
/// The resource identifier is derived from the request as §3.1 describes (the well-known
/// segment removed); it must be one of the configured resources, since the document's
/// `resource` must equal the identifier the client derived the URL from (§3.3).
pub fn protected_resource(env: &Env, req: &Request) -> Response {
    if let Some(refused) = only_get(req) {
        return refused;
    }
    let suffix = req
        .path
        .strip_prefix("/.well-known/oauth-protected-resource")
        .unwrap_or("");
    let Some(origin) = request_origin(&env.settings, req) else {
        return OAuthError::invalid_request("the request names no usable host").into_response();
    };
    let identifier = format!("{origin}{suffix}");
    match resource::allowed(&env.settings, &identifier) {
        Ok(resource) => document(&json!({
            "resource": resource,
            "authorization_servers": [env.settings.issuer],
            "scopes_supported": env.settings.scopes_supported,
            "bearer_methods_supported": ["header"],
        })),
        Err(_) => OAuthError::new(
            ErrorCode::NotFound,
            format!("`{identifier}` is not a resource protected by this server"),
        )
        .into_response(),
    }
}

/// `GET /health`: 200 when the store answers, 503 otherwise.
pub fn health(env: &Env, req: &Request) -> Response {
    if let Some(refused) = only_get(req) {
        return refused;
    }
    #[derive(Serialize)]
    struct Health<'a> {
        status: &'a str,
    }
    match env.store.get("health") {
        Ok(_) => Response::json(200, &Health { status: "ok" }).no_store(),
        Err(err) => OAuthError::from(err).into_response(),
    }
}

/// `scheme://host[:port]` of the request as the client addressed it: the request's
/// authority, or the host a trusted proxy forwarded (others' forwarding headers never get
/// here, see [`crate::client_address`]); the scheme a trusted proxy forwarded, else the
/// issuer's (the host's own listener is plain HTTP even when the world sees https).
fn request_origin(settings: &Settings, req: &Request) -> Option<String> {
    let host = req
        .header("x-forwarded-host")
        .and_then(|h| h.split(',').next())
        .or(req.authority.as_deref())?
        .trim();
    if host.is_empty() || host.contains(['/', '@', ' ', '?', '#', '\\']) {
        return None;
    }
    let scheme = match req.header("x-forwarded-proto").map(str::trim) {
        Some("https") => "https",
        Some("http") => "http",
        _ => settings.issuer_scheme(),
    };
    Some(format!("{scheme}://{host}"))
}

fn document(doc: &Value) -> Response {
    Response::json(200, doc).with_header("cache-control", MAX_AGE)
}

/// Discovery documents answer GET and HEAD only.
fn only_get(req: &Request) -> Option<Response> {
    match req.method {
        Method::Get | Method::Head => None,
        _ => Some(
            OAuthError::new(ErrorCode::MethodNotAllowed, "use GET")
                .with_header("allow", "GET, HEAD")
                .into_response(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, MapConfig};
    use crate::Endpoint;

    fn get(h: &Harness, path: &str) -> Response {
        h.call(Request::new(Method::Get, path).with_authority("127.0.0.1:3000"))
    }

    #[test]
    fn rfc8414_document_has_what_mcp_clients_need() {
        let h = Harness::new();
        let res = get(&h, "/.well-known/oauth-authorization-server");
        assert_eq!(res.status, 200);
        let doc = res.json_body().unwrap();
        assert_eq!(doc["issuer"], "http://127.0.0.1:3000/");
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["client_id_metadata_document_supported"], true);
        assert_eq!(doc["token_endpoint"], "http://127.0.0.1:3000/token");
        assert_eq!(
            doc["registration_endpoint"],
            "http://127.0.0.1:3000/register"
        );
        assert_eq!(
            doc["device_authorization_endpoint"],
            "http://127.0.0.1:3000/device/code"
        );
        assert_eq!(
            doc["grant_types_supported"],
            json!(GRANT_TYPES),
            "every grant the token endpoint serves"
        );
        assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    }

    #[test]
    fn issuer_is_published_in_its_canonical_form() {
        let h = Harness::with_config(MapConfig::from([(
            "mcp_auth_server_url",
            "https://Auth.example.com",
        )]));
        let doc = get(&h, "/.well-known/oauth-authorization-server")
            .json_body()
            .unwrap();
        assert_eq!(doc["issuer"], "https://auth.example.com/");
        assert_eq!(
            doc["authorization_endpoint"],
            "https://auth.example.com/authorize"
        );
    }

    #[test]
    fn issuer_with_a_path_is_found_at_its_rfc8414_location() {
        let h = Harness::with_config(MapConfig::from([(
            "mcp_auth_server_url",
            "https://example.com/tenant1",
        )]));
        let res = get(&h, "/.well-known/oauth-authorization-server/tenant1");
        assert_eq!(res.status, 200);
        let doc = res.json_body().unwrap();
        assert_eq!(doc["issuer"], "https://example.com/tenant1");
        assert_eq!(doc["token_endpoint"], "https://example.com/tenant1/token");
    }

    /// We issue no ID tokens, so no document may say we do (OpenID Connect Discovery 1.0
    /// §3 would promise `id_token_signing_alg_values_supported`).
    #[test]
    fn no_openid_configuration_is_served_at_any_location() {
        for issuer in ["http://127.0.0.1:3000", "https://example.com/tenant1"] {
            let h = Harness::with_config(MapConfig::from([("mcp_auth_server_url", issuer)]));
            for path in [
                "/.well-known/openid-configuration",
                "/.well-known/openid-configuration/tenant1",
                "/tenant1/.well-known/openid-configuration",
            ] {
                let res = get(&h, path);
                assert_eq!(res.status, 404, "{issuer}: {path}");
                assert!(!String::from_utf8_lossy(&res.body).contains("id_token"));
            }
            let doc = get(
                &h,
                &format!(
                    "/.well-known/oauth-authorization-server{}",
                    h.env().settings.issuer_path()
                ),
            )
            .json_body()
            .unwrap();
            assert!(!doc.to_string().contains("id_token"), "{doc}");
        }
    }

    #[test]
    fn registration_endpoint_is_absent_when_registration_is_off() {
        let h = Harness::with_config(MapConfig::from([("registration_enabled", "false")]));
        let doc = get(&h, "/.well-known/oauth-authorization-server")
            .json_body()
            .unwrap();
        assert!(doc.get("registration_endpoint").is_none());
    }

    #[test]
    fn protected_resource_metadata_for_configured_resources() {
        let h = Harness::with_config(MapConfig::from([
            ("mcp_auth_server_url", "https://auth.example.com"),
            ("mcp_server", "https://mcp.example.com/mcp"),
        ]));
        // wasi:http: the authority, never a `host` header; the scheme is the issuer's.
        let req = Request::new(Method::Get, "/.well-known/oauth-protected-resource/mcp")
            .with_authority("MCP.example.com");
        let res = h.call(req);
        assert_eq!(res.status, 200);
        let doc = res.json_body().unwrap();
        assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
        assert_eq!(
            doc["authorization_servers"],
            json!(["https://auth.example.com/"])
        );
        // RFC 9728 §2: how the resource server signs its responses is not ours to say.
        assert!(doc.get("resource_signing_alg_values_supported").is_none());

        let req = Request::new(Method::Get, "/.well-known/oauth-protected-resource/other")
            .with_authority("mcp.example.com");
        assert_eq!(h.call(req).status, 404);
        let req = Request::new(Method::Get, "/.well-known/oauth-protected-resource/mcp");
        assert_eq!(h.call(req).status, 400, "no authority: no identifier");
    }

    /// A client cannot choose the origin the document names (a shared cache would keep it):
    /// `X-Forwarded-Host` / `-Proto` count only from a trusted proxy.
    #[test]
    fn only_a_trusted_proxy_forwards_the_origin() {
        let config = |proxies: &'static str| {
            Harness::with_config(MapConfig::from([
                ("mcp_auth_server_url", "https://auth.example.com"),
                ("mcp_server", "https://mcp.example.com/mcp"),
                ("trusted_proxies", proxies),
            ]))
        };
        let forwarded = |peer: &str| {
            let mut req = Request::new(Method::Get, "/.well-known/oauth-protected-resource/mcp")
                .with_authority("auth.internal:3000")
                .with_header("x-forwarded-host", "MCP.example.com")
                .with_header("x-forwarded-proto", "https");
            req.client_addr = Some(peer.into());
            req
        };
        let res = config("10.0.0.0/8").call(forwarded("10.1.2.3"));
        assert_eq!(res.status, 200, "{:?}", res.json_body());
        assert_eq!(
            res.json_body().unwrap()["resource"],
            "https://mcp.example.com/mcp"
        );
        // The same headers from a peer outside the list, or with no list: the authority.
        for h in [config("10.0.0.0/8"), config("")] {
            let res = h.call(forwarded("192.0.2.7"));
            assert_eq!(res.status, 404, "{:?}", res.json_body());
            assert!(res.json_body().unwrap()["error_description"]
                .as_str()
                .unwrap()
                .contains("`https://auth.internal:3000/mcp`"));
        }
    }

    #[test]
    fn documents_refuse_other_methods() {
        let h = Harness::new();
        let res = h.call(Request::new(
            Method::Post,
            "/.well-known/oauth-authorization-server",
        ));
        assert_eq!(res.status, 405);
        assert_eq!(res.header("allow"), Some("GET, HEAD"));
    }

    #[test]
    fn cors_preflight_is_answered() {
        let h = Harness::new();
        let res = crate::handle(
            &h.env(),
            &Request::new(Method::Options, "/.well-known/oauth-authorization-server"),
            Endpoint::DISCOVERY,
        );
        assert_eq!(res.status, 204);
        assert_eq!(res.header("access-control-allow-origin"), Some("*"));
        assert_eq!(
            res.header("access-control-expose-headers"),
            Some("WWW-Authenticate")
        );
    }

    #[test]
    fn health_reports_ok() {
        let h = Harness::new();
        let res = get(&h, "/health");
        assert_eq!(res.status, 200);
        assert_eq!(res.json_body().unwrap()["status"], "ok");
    }
}
