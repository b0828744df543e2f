//! Dynamic client registration (RFC 7591) and client configuration (RFC 7592), and the
//! client-metadata rules (RFC 7591 §2) that Client ID Metadata Documents share.
//!
//! Registration is liberal in what it reads — unknown fields are ignored, every standard
//! token endpoint authentication method is accepted, `application_type: native` works
//! (MCP pitfalls 1, 2, 12) — and strict in what it stores: redirect URIs are absolute, have
//! no fragment or user information, and are `https`, `http` on a loopback host (RFC 8252
//! §7.3), or a private-use scheme (RFC 8252 §7.1).
//!
//! Private-use schemes are not required to contain a dot, although RFC 8252 §7.1 asks apps
//! for reverse-domain schemes: Cursor registers `cursor://anysphere.cursor-mcp/oauth/callback`
//! (and calls itself `web`), and refusing it breaks a major MCP client. Schemes that run or
//! read content in the browser (`javascript:`, `data:`, `file:`, …) and network schemes that
//! are not private-use are refused instead. PKCE (always required) protects such redirects.
//!
//! Stored state: the client under [`client::key`] (`client/<client_id>`), its secret and
//! registration access token only as SHA-256 hashes; once deleted, its tombstone (see
//! [`tokens::retire_client`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, AuditKind};
use crate::client::{self, AuthMethod, Client, ClientMetadata, ClientSource};
use crate::env::{Env, StoreError};
use crate::error::{ErrorCode, OAuthError};
use crate::http::{Method, Request, Response};
use crate::limits::{self, Limit};
use crate::records;
use crate::resource::is_loopback_host;
use crate::scope;
use crate::secret::{self, Secret};
use crate::tokens;

/// Longest string we keep in any metadata field.
pub const MAX_FIELD_LEN: usize = 2048;
/// Most entries in a list field (`redirect_uris`, `contacts`, …).
pub const MAX_LIST_LEN: usize = 20;

pub const AUTHORIZATION_CODE: &str = "authorization_code";
pub const REFRESH_TOKEN: &str = "refresh_token";
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// `POST /register` (RFC 7591 §3): validate the metadata, store the client, answer 201 with
/// its information (§3.2.1) and the RFC 7592 management credentials.
pub fn register(env: &Env, req: &Request) -> Response {
    if req.method != Method::Post {
        return method_not_allowed("POST");
    }
    match register_client(env, req) {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// `GET|PUT|DELETE /register/{client_id}` (RFC 7592 §2), authorised by the registration
/// access token issued at registration.
pub fn manage(env: &Env, req: &Request) -> Response {
    if !matches!(req.method, Method::Get | Method::Put | Method::Delete) {
        return method_not_allowed("GET, PUT, DELETE");
    }
    let result = authorize_management(env, req).and_then(|(client, token)| match req.method {
        Method::Get => Ok(information(env, &client, None, &token, 200)),
        Method::Put => update_client(env, req, client, &token),
        _ => delete_client(env, req, &client),
    });
    result.unwrap_or_else(OAuthError::into_response)
}

/// Client metadata as a client sends it (RFC 7591 §2), before validation. Unknown fields
/// are ignored; a known field of the wrong type fails to parse; `null` counts as absent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MetadataRequest {
    pub redirect_uris: Option<Vec<String>>,
    pub token_endpoint_auth_method: Option<String>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub application_type: Option<String>,
    pub client_name: Option<String>,
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub tos_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    /// Present in RFC 7592 update requests and in Client ID Metadata Documents.
    pub client_id: Option<String>,
    /// Present in RFC 7592 update requests; never allowed in a metadata document.
    pub client_secret: Option<String>,
}

impl MetadataRequest {
    /// Parse a JSON object. Malformed JSON is an `invalid_request`; a well-formed document
    /// of the wrong shape (a known field of the wrong type, not an object) is
    /// `invalid_client_metadata` (RFC 7591 §3.2.2).
    pub fn parse(body: &[u8]) -> Result<MetadataRequest, OAuthError> {
        serde_json::from_slice(body).map_err(|e| {
            if e.is_data() {
                invalid_metadata(format!("client metadata: {e}"))
            } else {
                OAuthError::invalid_request(format!("the body is not valid JSON: {e}"))
            }
        })
    }
}

/// The defaults that differ between a registration and a metadata document.
#[derive(Debug, Clone, Copy)]
pub struct MetadataDefaults {
    pub grant_types: &'static [&'static str],
    pub token_endpoint_auth_method: AuthMethod,
}

impl MetadataDefaults {
    /// RFC 7591 §2 defaults to `authorization_code` alone; we add `refresh_token` so that
    /// clients which omit `grant_types` are not sent back to sign in every hour (MCP pitfall 7).
    /// The registration response states the grant types, so the client learns what it got.
    pub const REGISTRATION: MetadataDefaults = MetadataDefaults {
        grant_types: &[AUTHORIZATION_CODE, REFRESH_TOKEN],
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
    };
}

/// Validate metadata (RFC 7591 §2, §2.1) and apply defaults; the result is what we store.
pub fn validate_metadata(
    env: &Env,
    request: MetadataRequest,
    defaults: MetadataDefaults,
) -> Result<ClientMetadata, OAuthError> {
    let token_endpoint_auth_method = match request.token_endpoint_auth_method.as_deref() {
        None => defaults.token_endpoint_auth_method,
        Some("none") => AuthMethod::None,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some(other) => {
            return Err(invalid_metadata(format!(
                "token_endpoint_auth_method `{}` is not supported (none, client_secret_post, client_secret_basic)",
                printable(other)
            )))
        }
    };
    let grant_types = match request.grant_types {
        None => defaults.grant_types.iter().map(|g| g.to_string()).collect(),
        Some(list) => grant_types(list)?,
    };
    let uses_code = grant_types.iter().any(|g| g == AUTHORIZATION_CODE);
    let response_types = response_types(request.response_types, uses_code)?;
    let redirect_uris = list("redirect_uris", request.redirect_uris.unwrap_or_default())?;
    if uses_code && redirect_uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    for uri in &redirect_uris {
        validate_redirect_uri(uri)?;
    }
    let application_type = match request.application_type.as_deref() {
        None | Some("web") => "web",
        Some("native") => "native",
        Some(other) => {
            return Err(invalid_metadata(format!(
                "application_type `{}` is not web or native",
                printable(other)
            )))
        }
    };
    let scope = match request.scope {
        None => None,
        Some(s) => Some(registered_scope(env, &text("scope", s)?)?).filter(|s| !s.is_empty()),
    };
    Ok(ClientMetadata {
        redirect_uris,
        token_endpoint_auth_method,
        grant_types,
        response_types,
        application_type: application_type.to_string(),
        client_name: optional_text("client_name", request.client_name)?,
        client_uri: optional_web_uri("client_uri", request.client_uri)?,
        logo_uri: optional_web_uri("logo_uri", request.logo_uri)?,
        scope,
        contacts: list("contacts", request.contacts.unwrap_or_default())?,
        tos_uri: optional_web_uri("tos_uri", request.tos_uri)?,
        policy_uri: optional_web_uri("policy_uri", request.policy_uri)?,
        software_id: optional_text("software_id", request.software_id)?,
        software_version: optional_text("software_version", request.software_version)?,
        resource: None,
    })
}

/// A redirect URI we may send users to (RFC 7591 §2, RFC 8252 §7, OAuth 2.1 §2.3.1):
/// absolute, no fragment, no user information; `https`, `http` on loopback, or a
/// private-use scheme (see the module documentation).
pub fn validate_redirect_uri(uri: &str) -> Result<(), OAuthError> {
    let refuse = |why: &str| {
        OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            format!("redirect URI `{}` {why}", printable(uri)),
        )
    };
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(refuse("contains whitespace or control characters"));
    }
    // RFC 3986 URIs are ASCII. An international host must come as its A-label (`xn--…`),
    // which is what we show users: `https://аpple.com` (Cyrillic а) cannot pass for Apple.
    if !uri.is_ascii() {
        return Err(refuse("must be ASCII (write international names as xn--…)"));
    }
    let url = url::Url::parse(uri).map_err(|_| refuse("is not an absolute URI"))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(refuse("must not contain a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("must not contain user information"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(()),
        "http" => Err(refuse("may use http only on a loopback host")),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => {
            Err(refuse("uses a scheme that is not allowed"))
        }
        _ => Ok(()),
    }
}

/// Schemes that are not private-use app schemes: ones that run or read content in the
/// browser, and other network protocols.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "vbscript",
    "data",
    "file",
    "about",
    "blob",
    "filesystem",
    "view-source",
    "ws",
    "wss",
    "ftp",
    "mailto",
];

// ---------------------------------------------------------------------------------------
// Registration and management

fn register_client(env: &Env, req: &Request) -> Result<Response, OAuthError> {
    if !env.settings.registration_enabled {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "dynamic client registration is disabled",
        ));
    }
    let ip = req.client_addr.as_deref().unwrap_or_default();
    let _ = limits::enforce(
        env,
        &[
            (Limit::RegisterPerIp, ip),
            (Limit::RegisterGlobal, limits::EVERYONE),
        ],
    )?;
    let request = json_body(req)?;
    let metadata = validate_metadata(env, request, MetadataDefaults::REGISTRATION)?;

    let now = env.now();
    let expires_at = (env.settings.client_lifetime > 0).then(|| now + env.settings.client_lifetime);
    let client_id = new_client_id(env);
    let secret =
        (metadata.token_endpoint_auth_method != AuthMethod::None).then(|| Secret::generate(env));
    let registration_token = Secret::generate(env);
    let client = Client {
        client_id,
        source: ClientSource::Registered,
        client_id_issued_at: now,
        client_secret_hash: secret.as_ref().map(Secret::hash),
        client_secret_expires_at: expires_at.unwrap_or(0),
        registration_token_hash: Some(registration_token.hash()),
        metadata,
    };
    records::put(env, &client::key(&client.client_id), &client, expires_at)?;
    env.audit(
        AuditEvent::new(AuditKind::ClientRegistered, now)
            .client(&client.client_id)
            .ip(req.client_addr.as_deref()),
    );
    records::maybe_sweep(env);
    Ok(information(
        env,
        &client,
        secret.as_ref(),
        registration_token.expose(),
        201,
    ))
}

/// RFC 7592 §2.2: replace the metadata; the identity and credentials stay.
fn update_client(
    env: &Env,
    req: &Request,
    client: Client,
    token: &str,
) -> Result<Response, OAuthError> {
    let mut request = json_body(req)?;
    if request.client_id.as_deref() != Some(client.client_id.as_str()) {
        return Err(OAuthError::invalid_request(
            "the body must carry this client's client_id",
        ));
    }
    if let Some(presented) = request.client_secret.take() {
        let matches = client
            .client_secret_hash
            .as_deref()
            .is_some_and(|hash| secret::verify_hash(&presented, hash));
        if !matches {
            return Err(OAuthError::invalid_request(
                "client_secret does not match this client's secret",
            ));
        }
    }
    // RFC 7592 §2.2 lets omitted fields take defaults; the authentication method keeps its
    // current value instead, as it cannot switch between public and confidential anyway.
    let defaults = MetadataDefaults {
        token_endpoint_auth_method: client.metadata.token_endpoint_auth_method,
        ..MetadataDefaults::REGISTRATION
    };
    let metadata = validate_metadata(env, request, defaults)?;
    // A secret can neither be minted nor withdrawn here: the client would lose or lack it.
    if (metadata.token_endpoint_auth_method == AuthMethod::None) == client.is_confidential() {
        return Err(invalid_metadata(
            "token_endpoint_auth_method cannot switch between public and confidential",
        ));
    }
    let key = client::key(&client.client_id);
    let expires_at = records::get_with_expiry::<Client>(env, &key)?.and_then(|(_, exp)| exp);
    let client = Client { metadata, ..client };
    records::update(env, &key, &client, expires_at)?;
    env.audit(
        AuditEvent::new(AuditKind::ClientUpdated, env.now())
            .client(&client.client_id)
            .ip(req.client_addr.as_deref()),
    );
    Ok(information(env, &client, None, token, 200))
}

/// RFC 7592 §2.3: the client, its secret and its registration token stop working, and so
/// do the tokens issued to it (its tombstone, written first, see [`tokens::retire_client`]).
fn delete_client(env: &Env, req: &Request, client: &Client) -> Result<Response, OAuthError> {
    delete(env, &client.client_id, req.client_addr.as_deref())?;
    Ok(Response::new(204).no_store())
}

/// Delete the stored client `client_id` as RFC 7592 §2.3 does: its tombstone first, so the
/// tokens issued to it stop working at once (see [`tokens::retire_client`]), then the record.
/// `ip` is the requester's address, for the audit event (none for the operator's command).
pub fn delete(env: &Env, client_id: &str, ip: Option<&str>) -> Result<(), StoreError> {
    tokens::retire_client(env, client_id)?;
    records::delete(env, &client::key(client_id))?;
    env.audit(
        AuditEvent::new(AuditKind::ClientDeleted, env.now())
            .client(client_id)
            .ip(ip),
    );
    Ok(())
}

/// Provision a confidential machine client for `client_credentials` (`mcp-auth admin clients
/// add`): the stored counterpart of a `machine_clients` entry. Stored as a registration is,
/// its secret only as a hash, never expiring; the secret is returned to be shown once.
/// `scope` limits what it may get (each value supported; none: the default scopes), and
/// `resource` binds its tokens to one of the served resources.
pub fn provision(
    env: &Env,
    name: Option<String>,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<(Client, Secret), OAuthError> {
    let resource = resource
        .map(|r| crate::resource::allowed(&env.settings, r))
        .transpose()?;
    let scope = match scope {
        Some(s) => Some(registered_scope(env, s)?).filter(|s| !s.is_empty()),
        None => None,
    };
    let metadata = ClientMetadata {
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        grant_types: vec![CLIENT_CREDENTIALS.to_string()],
        application_type: "web".to_string(),
        client_name: optional_text("client_name", name)?,
        scope,
        resource,
        ..ClientMetadata::default()
    };
    let secret = Secret::generate(env);
    let client = Client {
        client_id: new_client_id(env),
        source: ClientSource::Provisioned,
        client_id_issued_at: env.now(),
        client_secret_hash: Some(secret.hash()),
        client_secret_expires_at: 0,
        registration_token_hash: None,
        metadata,
    };
    records::put(env, &client::key(&client.client_id), &client, None)?;
    env.audit(AuditEvent::new(AuditKind::ClientRegistered, env.now()).client(&client.client_id));
    Ok((client, secret))
}

/// A fresh `client_id`: 128 random bits, base64url (22 characters).
fn new_client_id(env: &Env) -> String {
    URL_SAFE_NO_PAD.encode(env.random_bytes::<16>())
}

/// The client named by the path, if the bearer token is its registration access token.
/// Every failure looks the same (RFC 7592 §3): whether the client exists is not revealed.
fn authorize_management(env: &Env, req: &Request) -> Result<(Client, String), OAuthError> {
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "a valid registration access token is required",
        )
        .with_header("www-authenticate", "Bearer error=\"invalid_token\"")
    };
    let prefix = format!("{}/register/", env.settings.issuer_path());
    let client_id = req.path.strip_prefix(&prefix).unwrap_or_default();
    let token = req.bearer_token().ok_or_else(invalid)?;
    let client = if client_id.is_empty() || client_id.len() > 256 || client_id.contains('/') {
        None
    } else {
        records::get::<Client>(env, &client::key(client_id))?
    };
    let stored_hash = client
        .as_ref()
        .and_then(|c| c.registration_token_hash.as_deref());
    // Hash and compare even without a client, so both answers take as long.
    let valid = secret::verify_hash(token, stored_hash.unwrap_or(UNMATCHABLE_HASH));
    match client {
        Some(client) if valid && stored_hash.is_some() => Ok((client, token.to_string())),
        _ => Err(invalid()),
    }
}

/// Not a SHA-256 hex digest: nothing hashes to it.
const UNMATCHABLE_HASH: &str = "-";

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3). The secret is shown only
/// when just minted; the registration token is the one the caller holds (we keep its hash).
fn information(
    env: &Env,
    client: &Client,
    secret: Option<&Secret>,
    registration_access_token: &str,
    status: u16,
) -> Response {
    #[derive(Serialize)]
    struct Information<'a> {
        client_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        client_secret: Option<&'a str>,
        client_id_issued_at: u64,
        client_secret_expires_at: u64,
        registration_access_token: &'a str,
        registration_client_uri: String,
        #[serde(flatten)]
        metadata: &'a ClientMetadata,
    }
    let body = Information {
        client_id: &client.client_id,
        client_secret: secret.map(Secret::expose),
        client_id_issued_at: client.client_id_issued_at,
        client_secret_expires_at: client.client_secret_expires_at,
        registration_access_token,
        registration_client_uri: env
            .settings
            .endpoint(&format!("/register/{}", client.client_id)),
        metadata: &client.metadata,
    };
    Response::json(status, &body).no_store()
}

/// The JSON body of a registration or update request (RFC 7591 §3.1).
fn json_body(req: &Request) -> Result<MetadataRequest, OAuthError> {
    let media_type = req
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/json") {
        return Err(OAuthError::invalid_request(
            "the request body must be application/json",
        ));
    }
    MetadataRequest::parse(&req.body)
}

// ---------------------------------------------------------------------------------------
// Field rules

/// RFC 7591 §2: the grant types we serve to registered clients. Not `client_credentials`:
/// it issues tokens with no user behind them, so anyone able to register would get past
/// `allowed_users`; only the operator's `machine_clients` have it.
fn grant_types(list: Vec<String>) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for grant in list {
        match grant.as_str() {
            AUTHORIZATION_CODE | REFRESH_TOKEN | DEVICE_CODE => {}
            CLIENT_CREDENTIALS => return Err(invalid_metadata(
                "client_credentials is only for clients the operator provisions (machine_clients)",
            )),
            other => {
                return Err(invalid_metadata(format!(
                    "grant type `{}` is not supported",
                    printable(other)
                )))
            }
        }
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    if out.is_empty() {
        return Err(invalid_metadata("grant_types must not be empty"));
    }
    Ok(out)
}

/// RFC 7591 §2.1: `code` exactly when `authorization_code` is a grant type.
fn response_types(list: Option<Vec<String>>, uses_code: bool) -> Result<Vec<String>, OAuthError> {
    let Some(list) = list else {
        return Ok(if uses_code {
            vec!["code".to_string()]
        } else {
            Vec::new()
        });
    };
    if let Some(other) = list.iter().find(|r| *r != "code") {
        return Err(invalid_metadata(format!(
            "response type `{}` is not supported (only code)",
            printable(other)
        )));
    }
    match (list.is_empty(), uses_code) {
        (false, true) => Ok(vec!["code".to_string()]),
        (true, false) => Ok(Vec::new()),
        (true, true) => Err(invalid_metadata(
            "the authorization_code grant needs the code response type",
        )),
        (false, false) => Err(invalid_metadata(
            "the code response type needs the authorization_code grant",
        )),
    }
}

/// The registered `scope`: every value must be one we support.
fn registered_scope(env: &Env, value: &str) -> Result<String, OAuthError> {
    let scopes = scope::parse(value);
    if let Some(s) = scopes
        .iter()
        .find(|s| !env.settings.scopes_supported.contains(s))
    {
        return Err(invalid_metadata(format!(
            "scope `{}` is not supported",
            printable(s)
        )));
    }
    Ok(scope::join(&scopes))
}

/// A list field: at most [`MAX_LIST_LEN`] entries of valid text, duplicates dropped.
fn list(field: &str, values: Vec<String>) -> Result<Vec<String>, OAuthError> {
    if values.len() > MAX_LIST_LEN {
        return Err(invalid_metadata(format!(
            "{field} holds more than {MAX_LIST_LEN} entries"
        )));
    }
    let mut out: Vec<String> = Vec::new();
    for value in values {
        let value = text(field, value)?;
        if !out.contains(&value) {
            out.push(value);
        }
    }
    Ok(out)
}

fn optional_text(field: &str, value: Option<String>) -> Result<Option<String>, OAuthError> {
    value.map(|v| text(field, v)).transpose()
}

/// A text field: at most [`MAX_FIELD_LEN`] bytes, no control characters.
fn text(field: &str, value: String) -> Result<String, OAuthError> {
    if value.len() > MAX_FIELD_LEN {
        return Err(invalid_metadata(format!(
            "{field} is longer than {MAX_FIELD_LEN} bytes"
        )));
    }
    if value.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(invalid_metadata(format!(
            "{field} contains control or invisible characters"
        )));
    }
    Ok(value)
}

/// Characters that change how the text around them reads without showing themselves:
/// direction overrides and isolates (a name that reads as another, CVE-2021-42574),
/// zero-width and other format characters, line and paragraph separators, tags, and
/// non-characters.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{AD}' | '\u{34F}' | '\u{61C}' | '\u{115F}' | '\u{1160}' | '\u{180E}'
        | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
        | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}'
    ) || (c as u32 & 0xFFFE) == 0xFFFE
        || ('\u{FDD0}'..='\u{FDEF}').contains(&c)
}

/// `client_uri`, `logo_uri`, `tos_uri`, `policy_uri`: pages may link them, so only
/// `http(s)` URLs without user information.
fn optional_web_uri(field: &str, value: Option<String>) -> Result<Option<String>, OAuthError> {
    let Some(value) = optional_text(field, value)? else {
        return Ok(None);
    };
    let ok = value.is_ascii()
        && url::Url::parse(&value).is_ok_and(|u| {
            matches!(u.scheme(), "https" | "http")
                && u.username().is_empty()
                && u.password().is_none()
        });
    if !ok {
        return Err(invalid_metadata(format!("{field} must be an http(s) URL")));
    }
    Ok(Some(value))
}

fn invalid_metadata(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, description)
}

/// A value quoted in an error description: shortened, control characters replaced.
pub(crate) fn printable(value: &str) -> String {
    value
        .chars()
        .take(100)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

fn method_not_allowed(allow: &str) -> Response {
    OAuthError::new(
        ErrorCode::MethodNotAllowed,
        format!("use {allow} on this endpoint"),
    )
    .with_header("allow", allow)
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Harness;

    fn validate(json: &str) -> Result<ClientMetadata, OAuthError> {
        let h = Harness::new();
        let request = MetadataRequest::parse(json.as_bytes())?;
        let env = h.env();
        validate_metadata(&env, request, MetadataDefaults::REGISTRATION)
    }

    #[test]
    fn redirect_uri_rules() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:8765/callback",
            "http://localhost/cb",
            "http://[::1]:9/cb",
            "com.example.app:/oauth2redirect",
            "cursor://anysphere.cursor-mcp/oauth/callback",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/cb",
            "https://app.example.com/cb#frag",
            "https://app.example.com/cb#",
            "https://user:pw@app.example.com/cb",
            "https://user@app.example.com/cb",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "/relative/cb",
            "https://app.example.com/c b",
            "https://app.example.com/cb\n",
            "",
        ] {
            let err = validate_redirect_uri(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRedirectUri, "{bad}");
        }
    }

    #[test]
    fn defaults_follow_rfc_7591_plus_refresh() {
        let m = validate(r#"{"redirect_uris":["https://a.example/cb"]}"#).unwrap();
        assert_eq!(m.grant_types, [AUTHORIZATION_CODE, REFRESH_TOKEN]);
        assert_eq!(m.response_types, ["code"]);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(m.application_type, "web");
    }

    #[test]
    fn response_types_must_match_grant_types() {
        let m = validate(r#"{"grant_types":["urn:ietf:params:oauth:grant-type:device_code"],"token_endpoint_auth_method":"none"}"#).unwrap();
        assert!(m.response_types.is_empty());
        assert!(m.redirect_uris.is_empty());
        for bad in [
            r#"{"redirect_uris":["https://a.example/cb"],"response_types":[]}"#,
            r#"{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}"#,
            r#"{"grant_types":["refresh_token"],"response_types":["code"]}"#,
        ] {
            assert_eq!(
                validate(bad).unwrap_err().code,
                ErrorCode::InvalidClientMetadata,
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_json_and_wrong_types() {
        assert_eq!(
            validate("{not json").unwrap_err().code,
            ErrorCode::InvalidRequest
        );
        for bad in [
            r#"{"redirect_uris":"https://a.example/cb"}"#,
            r#"{"client_name":7}"#,
            r#"[1,2]"#,
        ] {
            assert_eq!(
                validate(bad).unwrap_err().code,
                ErrorCode::InvalidClientMetadata,
                "{bad}"
            );
        }
    }

    #[test]
    fn text_fields_are_bounded_and_printable() {
        let long = "x".repeat(MAX_FIELD_LEN + 1);
        let json = serde_json::json!({"redirect_uris":["https://a.example/cb"],"client_name":long});
        assert!(validate(&json.to_string()).is_err());
        let json = r#"{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0007b"}"#;
        assert!(validate(json).is_err());
        let uris: Vec<String> = (0..=MAX_LIST_LEN)
            .map(|i| format!("https://a.example/{i}"))
            .collect();
        let json = serde_json::json!({ "redirect_uris": uris });
        assert!(validate(&json.to_string()).is_err());
        let json = r#"{"redirect_uris":["https://a.example/cb"],"client_uri":"javascript:x"}"#;
        assert!(validate(json).is_err());
    }
}
