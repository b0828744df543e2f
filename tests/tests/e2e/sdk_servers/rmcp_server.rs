//! A protected MCP server on the official Rust SDK, as rmcp's own auth examples build one: its
//! `StreamableHttpService` on axum, behind a bearer-checking middleware, beside an RFC 9728
//! metadata route (rmcp has no server-side auth of its own). Its one tool, `whoami`, names the
//! token's subject and client.
//!
//! It is configured the way an operator configures it: with mcp-auth's issuer exactly as typed
//! for mcp-auth (`MCP_AUTH_SERVER_URL`), parsed into the `url::Url` that rmcp and reqwest take,
//! and its own URL. The metadata names that `Url` as its authorization server, and a token's
//! `iss` must equal it. The rest comes from mcp-auth's RFC 8414 metadata: tokens are checked
//! locally against its JWKS (RFC 9068 JWTs, with jwt-simple), or by RFC 7662 introspection as
//! resource server `rs`; either way they must be for this server (RFC 8707).
//!
//! It runs inside the test process, on a runtime of its own that stops when it drops.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use jwt_simple::prelude::*;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};
use url::Url;

use crate::support::python::Verify;

/// The running server.
pub struct RmcpServer {
    /// Its MCP endpoint, which is also its resource identifier (RFC 8707).
    pub url: String,
    listener: Option<TcpListener>,
    verify: Verify,
    refusals: Arc<Mutex<Vec<String>>>,
    runtime: tokio::runtime::Runtime,
}

impl RmcpServer {
    /// Binds 127.0.0.1 (an ephemeral port); serves nothing until [`RmcpServer::trust`].
    pub fn start(verify: Verify) -> RmcpServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().expect("local addr").port();
        RmcpServer {
            url: format!("http://127.0.0.1:{port}/mcp"),
            listener: Some(listener),
            verify,
            refusals: Arc::default(),
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("tokio runtime"),
        }
    }

    /// Trusts mcp-auth at `issuer` (as typed for mcp-auth) and serves.
    pub fn trust(&mut self, issuer: &str) {
        let listener = self.listener.take().expect("trust is called once");
        let trust = self
            .runtime
            .block_on(Trust::discover(issuer, &self.url, self.verify))
            .unwrap_or_else(|e| panic!("the rmcp server cannot trust {issuer}: {e}"));
        let refusals = self.refusals.clone();
        self.runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            axum::serve(listener, app(trust, refusals))
                .await
                .expect("serve");
        });
    }

    /// Why tokens were refused so far, one line each.
    pub fn refusals(&self) -> String {
        self.refusals.lock().expect("refusals").join("\n")
    }
}

/// What the server knows of its authorization server, and how it checks tokens.
struct Trust {
    issuer: Url,
    resource: Url,
    check: Check,
}

enum Check {
    /// mcp-auth's published keys (RFC 7517), by `kid`.
    Jwks(Vec<JwkKey>),
    /// RFC 7662, with the resource server's credentials.
    Introspection {
        endpoint: Url,
        client: reqwest::Client,
    },
}

enum JwkKey {
    Es256(ES256PublicKey),
    EdDsa(Ed25519PublicKey),
}

/// Who a valid token speaks for; the middleware hands it to the tool.
#[derive(Clone)]
struct Caller {
    subject: String,
    client_id: String,
}

/// RFC 9068 §2.2 claims beyond the registered ones (`client_id`, `scope`).
type AccessClaims = serde_json::Map<String, Value>;

/// The one scope every call needs.
const REQUIRED_SCOPE: &str = "mcp:read";

impl Trust {
    async fn discover(issuer: &str, resource: &str, verify: Verify) -> Result<Trust, String> {
        let issuer = Url::parse(issuer).map_err(|e| e.to_string())?;
        let resource = Url::parse(resource).map_err(|e| e.to_string())?;
        let metadata = get_json(authorization_server_metadata_url(&issuer)).await?;
        let url = |name: &str| {
            metadata[name]
                .as_str()
                .and_then(|u| Url::parse(u).ok())
                .ok_or(format!("no {name} in {metadata}"))
        };
        let check = match verify {
            Verify::Jwks => Check::Jwks(jwk_keys(&get_json(url("jwks_uri")?).await?)),
            Verify::Introspection => Check::Introspection {
                endpoint: url("introspection_endpoint")?,
                client: reqwest::Client::new(),
            },
        };
        Ok(Trust {
            issuer,
            resource,
            check,
        })
    }

    /// The caller, or why the token is refused.
    async fn verify(&self, token: &str) -> Result<(Caller, String), String> {
        match &self.check {
            Check::Jwks(keys) => self.verify_jwt(keys, token),
            Check::Introspection { endpoint, client } => {
                let info: Value = client
                    .post(endpoint.clone())
                    .basic_auth("rs", Some("rs-secret"))
                    .form(&[("token", token)])
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let text = |name: &str| info[name].as_str().unwrap_or_default().to_string();
                // A refresh token is active too (RFC 7662 §2.2), but it is no bearer token.
                if info["active"] != true
                    || info["token_type"] != "Bearer"
                    || info["iss"] != self.issuer.as_str()
                    || info["aud"] != self.resource.as_str()
                {
                    return Err(info.to_string());
                }
                let caller = Caller {
                    subject: text("sub"),
                    client_id: text("client_id"),
                };
                Ok((caller, text("scope")))
            }
        }
    }

    fn verify_jwt(&self, keys: &[JwkKey], token: &str) -> Result<(Caller, String), String> {
        let options = VerificationOptions {
            required_signature_type: Some("at+jwt".into()),
            allowed_issuers: Some(HashSet::from([self.issuer.to_string()])),
            allowed_audiences: Some(HashSet::from([self.resource.to_string()])),
            ..VerificationOptions::default()
        };
        let kid = Token::decode_metadata(token)
            .map_err(|e| e.to_string())?
            .key_id()
            .map(str::to_string);
        let mut last = "no key of the JWKS has this kid".to_string();
        for key in keys.iter().filter(|k| k.key_id() == kid.as_deref()) {
            let claims = match key {
                JwkKey::Es256(k) => k.verify_token::<AccessClaims>(token, Some(options.clone())),
                JwkKey::EdDsa(k) => k.verify_token::<AccessClaims>(token, Some(options.clone())),
            };
            match claims {
                Ok(claims) => {
                    let text = |name: &str| {
                        claims
                            .custom
                            .get(name)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    let caller = Caller {
                        subject: claims.subject.clone().unwrap_or_default(),
                        client_id: text("client_id"),
                    };
                    return Ok((caller, text("scope")));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}

impl JwkKey {
    fn key_id(&self) -> Option<&str> {
        match self {
            JwkKey::Es256(k) => k.key_id().as_deref(),
            JwkKey::EdDsa(k) => k.key_id().as_deref(),
        }
    }
}

/// The signing keys of a JWKS that jwt-simple reads (ES256 and EdDSA, mcp-auth's algorithms).
fn jwk_keys(jwks: &Value) -> Vec<JwkKey> {
    let keys = jwks["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    keys.iter()
        .filter_map(|jwk| {
            let text = jwk.to_string();
            match jwk["alg"].as_str()? {
                "ES256" => ES256PublicKey::from_jwk(&text).ok().map(JwkKey::Es256),
                "EdDSA" => Ed25519PublicKey::from_jwk(&text).ok().map(JwkKey::EdDsa),
                _ => None,
            }
        })
        .collect()
}

/// RFC 8414 §3.1: the well-known path goes before the issuer's path.
fn authorization_server_metadata_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = issuer.path().trim_end_matches('/');
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    url
}

async fn get_json(url: Url) -> Result<Value, String> {
    let response = reqwest::get(url.clone())
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {url}: {e}"))?;
    response.json().await.map_err(|e| format!("GET {url}: {e}"))
}

/// The metadata route, and the MCP endpoint behind the bearer check.
fn app(trust: Trust, refusals: Arc<Mutex<Vec<String>>>) -> Router {
    let metadata_path = format!(
        "/.well-known/oauth-protected-resource{}",
        trust.resource.path()
    );
    let metadata = json!({
        "resource": trust.resource.as_str(),
        "authorization_servers": [trust.issuer.as_str()],
        "scopes_supported": [REQUIRED_SCOPE],
        "bearer_methods_supported": ["header"],
    });
    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default(),
    );
    let gate = Arc::new(Gate {
        metadata_url: {
            let mut url = trust.resource.clone();
            url.set_path(&metadata_path);
            url
        },
        trust,
        refusals,
    });
    Router::new()
        .route_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(gate, require_bearer))
        .route(&metadata_path, get(move || async move { Json(metadata) }))
}

struct Gate {
    trust: Trust,
    metadata_url: Url,
    refusals: Arc<Mutex<Vec<String>>>,
}

/// RFC 6750: no token, or a bad one, is a 401 whose challenge names the metadata (RFC 9728
/// §5.1); a good one without the scope is a 403.
async fn require_bearer(
    State(gate): State<Arc<Gate>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string);
    let challenge = |error: Option<&str>| {
        let error = error
            .map(|e| format!(r#"error="{e}", "#))
            .unwrap_or_default();
        format!(r#"Bearer {error}resource_metadata="{}""#, gate.metadata_url)
    };
    let Some(token) = token else {
        return unauthorized(StatusCode::UNAUTHORIZED, challenge(None));
    };
    match gate.trust.verify(&token).await {
        Ok((caller, scope)) if scope.split(' ').any(|s| s == REQUIRED_SCOPE) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Ok(_) => unauthorized(StatusCode::FORBIDDEN, challenge(Some("insufficient_scope"))),
        Err(reason) => {
            let line = format!("refused a token: {reason}");
            eprintln!("rmcp server: {line}");
            gate.refusals.lock().expect("refusals").push(line);
            unauthorized(StatusCode::UNAUTHORIZED, challenge(Some("invalid_token")))
        }
    }
}

fn unauthorized(status: StatusCode, challenge: String) -> Response {
    (status, [(header::WWW_AUTHENTICATE, challenge)]).into_response()
}

/// The MCP server proper: one tool.
#[derive(Clone)]
struct WhoAmI;

impl ServerHandler for WhoAmI {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let schema = json!({"type": "object", "properties": {}});
        let Value::Object(schema) = schema else {
            unreachable!("an object")
        };
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "whoami",
            "Who the bearer token speaks for.",
            schema,
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name != "whoami" {
            return Err(McpError::invalid_params("no such tool", None));
        }
        // The HTTP request's parts travel with the MCP request; the middleware put the caller in.
        let caller = context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .ok_or_else(|| McpError::internal_error("no caller", None))?;
        let text = format!("{} via {}", caller.subject, caller.client_id);
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}
