//! OAuth clients: the stored record, lookup by `client_id` (an operator's machine client,
//! registered, or a Client ID Metadata Document URL), and client authentication at the
//! token-side endpoints (RFC 6749 §2.3, OAuth 2.1 §2.4).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::env::Env;
use crate::error::OAuthError;
use crate::http::{Params, Request};
use crate::records;
use crate::registration::CLIENT_CREDENTIALS;
use crate::scope;
use crate::secret::verify_hash;
use crate::settings::Settings;

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// A public client (native apps, CLIs, browser apps).
    #[default]
    None,
    ClientSecretPost,
    ClientSecretBasic,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::None => "none",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::ClientSecretBasic => "client_secret_basic",
        }
    }
}

/// Where a client came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSource {
    /// Dynamic registration (RFC 7591).
    Registered,
    /// A Client ID Metadata Document: the `client_id` is the document's URL.
    MetadataDocument,
    /// Provisioned by the operator in the configuration, never through an open endpoint: the
    /// only clients trusted with what an anonymous client must not get (`client_credentials`,
    /// skipping consent, errors redirected before any user approved the client).
    Provisioned,
}

/// Client metadata (RFC 7591 §2) as we keep and return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClientMetadata {
    pub redirect_uris: Vec<String>,
    pub token_endpoint_auth_method: AuthMethod,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    /// `web` or `native` (OpenID Connect Registration §2; MCP clients send it).
    pub application_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// The one resource (RFC 8707) this client's tokens may be for, normalised. Not an RFC 7591
    /// field: only the operator sets it (`mcp-auth admin clients add --resource`), never a
    /// registration or a metadata document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// A client as stored under `client/<client_id>`. Secrets are kept only as hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub source: ClientSource,
    pub client_id_issued_at: u64,
    /// SHA-256 (hex) of the client secret, for confidential clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_hash: Option<String>,
    /// 0 = never expires.
    #[serde(default)]
    pub client_secret_expires_at: u64,
    /// SHA-256 (hex) of the RFC 7592 registration access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_token_hash: Option<String>,
    pub metadata: ClientMetadata,
}

impl Client {
    pub fn is_confidential(&self) -> bool {
        self.client_secret_hash.is_some()
    }

    /// Did the operator provision this client (see [`ClientSource::Provisioned`])?
    pub fn is_provisioned(&self) -> bool {
        self.source == ClientSource::Provisioned
    }

    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.metadata.grant_types.iter().any(|g| g == grant_type)
    }

    /// The name to show users: the registered name, else the `client_id`.
    pub fn display_name(&self) -> &str {
        self.metadata
            .client_name
            .as_deref()
            .unwrap_or(&self.client_id)
    }
}

/// The store key of a registered client.
pub fn key(client_id: &str) -> String {
    format!("client/{client_id}")
}

/// Is this `client_id` a Client ID Metadata Document URL? Registered client_ids are never
/// URLs, so any `http(s)://` client_id goes to [`crate::cimd`], which refuses the URLs it
/// will not fetch (plain `http` only on loopback when `cimd_allow_private` is set).
pub fn is_metadata_document_url(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Longest `client_id` we look up (registered ids are 22 characters).
pub const MAX_CLIENT_ID_LEN: usize = 256;

/// The client named `client_id`: an operator's machine client, a registered one, or a
/// metadata document fetched (or taken from cache) by [`crate::cimd::resolve`]. Machine
/// clients come first, so no registration can stand in for one. `Ok(None)` when there is no
/// such client.
pub fn find(env: &Env, client_id: &str) -> Result<Option<Client>, OAuthError> {
    if let Some(client) = machine_client(&env.settings, client_id) {
        return Ok(Some(client));
    }
    if is_metadata_document_url(client_id) {
        return crate::cimd::resolve(env, client_id);
    }
    if client_id.len() > MAX_CLIENT_ID_LEN || client_id.chars().any(char::is_control) {
        return Ok(None);
    }
    Ok(records::get::<Client>(env, &key(client_id))?)
}

/// The id of this request's client when [`authenticate`] will read its record from the
/// store ([`key`]): for reading it ahead (`Env::prefetch`).
pub(crate) fn stored_id(env: &Env, req: &Request, params: &Params) -> Option<String> {
    let basic = req
        .header("authorization")
        .filter(|h| h.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")))
        .and_then(|h| parse_basic(&h[6..]));
    let client_id = match basic {
        Some((id, _)) => id,
        None => params.get("client_id")?.to_string(),
    };
    let stored = machine_client(&env.settings, &client_id).is_none()
        && !is_metadata_document_url(&client_id)
        && client_id.len() <= MAX_CLIENT_ID_LEN
        && !client_id.chars().any(char::is_control);
    stored.then_some(client_id)
}

/// The `machine_clients` entry named `client_id`, as a client: provisioned, confidential,
/// `client_credentials` only, limited to its configured scopes. Built from the configuration
/// on each request, never stored. Its secret is checked like any other, hash against hash in
/// constant time.
fn machine_client(settings: &Settings, client_id: &str) -> Option<Client> {
    let machine = settings
        .machine_clients
        .iter()
        .find(|m| m.client_id == client_id)?;
    Some(Client {
        client_id: machine.client_id.clone(),
        source: ClientSource::Provisioned,
        client_id_issued_at: 0,
        client_secret_hash: Some(machine.secret.hash()),
        client_secret_expires_at: 0,
        registration_token_hash: None,
        metadata: ClientMetadata {
            token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
            grant_types: vec![CLIENT_CREDENTIALS.to_string()],
            application_type: "web".to_string(),
            scope: (!machine.scopes.is_empty()).then(|| scope::join(&machine.scopes)),
            ..ClientMetadata::default()
        },
    })
}

/// Authenticate the client of a token, revocation or introspection request.
///
/// Accepts `client_secret_basic` (RFC 6749 §2.3.1, credentials form-urlencoded inside
/// Basic), `client_secret_post`, and `none` (public clients send only `client_id`, or Basic
/// with an empty password, as several clients do). A confidential client may use either
/// secret method whatever it registered: clients get this wrong often and both are equally
/// safe. Using two methods at once is refused. Every `invalid_client` is a 401 with a Basic
/// challenge (see [`OAuthError::into_response`]).
pub fn authenticate(env: &Env, req: &Request, params: &Params) -> Result<Client, OAuthError> {
    let basic = match req.header("authorization") {
        Some(h) if h.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("basic ")) => Some(
            parse_basic(&h[6..])
                .ok_or_else(|| OAuthError::invalid_client("malformed Basic credentials"))?,
        ),
        _ => None,
    };
    let (client_id, secret) = match (basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ))
        }
        (Some((id, secret)), None) => {
            if params.get("client_id").is_some_and(|p| p != id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret).filter(|s| !s.is_empty()))
        }
        (None, secret) => {
            let id = params
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
            (id.to_string(), secret.map(str::to_string))
        }
    };
    let fail = OAuthError::invalid_client;
    // A metadata-document client is public: taken from the cache or built minimal, never
    // fetched here (the token side has no outbound HTTP; see `cimd::without_fetch`).
    let client = if is_metadata_document_url(&client_id) {
        crate::cimd::without_fetch(env, &client_id)?
    } else {
        find(env, &client_id)?
    };
    let client = client.ok_or_else(|| fail("unknown client"))?;
    match (&client.client_secret_hash, secret) {
        (None, None) => Ok(client),
        (None, Some(_)) => Err(fail("this client is public and has no secret")),
        (Some(_), None) => Err(fail("this client must authenticate with its secret")),
        (Some(hash), Some(secret)) => {
            if !verify_hash(&secret, hash) {
                return Err(fail("client authentication failed"));
            }
            if client.client_secret_expires_at != 0 && client.client_secret_expires_at <= env.now()
            {
                return Err(fail("the client secret has expired"));
            }
            Ok(client)
        }
    }
}

/// `base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1); also used for the
/// resource servers' credentials at `/introspect`.
pub fn parse_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    (!id.is_empty()).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::hash;
    use crate::testing::Harness;

    fn store_client(h: &Harness, secret: Option<&str>) {
        let client = Client {
            client_id: "c1".into(),
            source: ClientSource::Registered,
            client_id_issued_at: 0,
            client_secret_hash: secret.map(hash),
            client_secret_expires_at: 0,
            registration_token_hash: None,
            metadata: ClientMetadata::default(),
        };
        records::put(&h.env(), &key("c1"), &client, None).unwrap();
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn confidential_client_by_basic_or_post() {
        let h = Harness::new();
        store_client(&h, Some("s3cret"));
        let env = h.env();
        let req = Request::new(crate::Method::Post, "/token")
            .with_header("authorization", &basic("c1", "s3cret"));
        assert!(authenticate(&env, &req, &Params::default()).is_ok());
        let params = Params::parse(b"client_id=c1&client_secret=s3cret").unwrap();
        assert!(authenticate(&env, &Request::new(crate::Method::Post, "/token"), &params).is_ok());
    }

    #[test]
    fn wrong_secret_basic_gets_www_authenticate() {
        let h = Harness::new();
        store_client(&h, Some("s3cret"));
        let req = Request::new(crate::Method::Post, "/token")
            .with_header("authorization", &basic("c1", "nope"));
        let res = authenticate(&h.env(), &req, &Params::default())
            .unwrap_err()
            .into_response();
        assert_eq!(res.status, 401);
        assert!(res.header("www-authenticate").is_some());
    }

    #[test]
    fn basic_with_an_empty_password_is_none_for_a_public_client_only() {
        let h = Harness::new();
        store_client(&h, None);
        let req = Request::new(crate::Method::Post, "/token")
            .with_header("authorization", &basic("c1", ""));
        let client = authenticate(&h.env(), &req, &Params::default()).unwrap();
        assert!(!client.is_confidential());
        let h = Harness::new();
        store_client(&h, Some("s3cret"));
        let err = authenticate(&h.env(), &req, &Params::default()).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::InvalidClient);
    }

    #[test]
    fn machine_clients_come_from_the_configuration_before_the_store() {
        let h = Harness::with_config(crate::testing::MapConfig::from([(
            "machine_clients",
            "c1:m4chine mcp:read, c2:other",
        )]));
        store_client(&h, Some("s3cret")); // a stored client under the same id loses
        let env = h.env();
        let c1 = find(&env, "c1").unwrap().unwrap();
        assert!(c1.is_provisioned() && c1.is_confidential());
        assert_eq!(c1.metadata.grant_types, [CLIENT_CREDENTIALS]);
        assert_eq!(c1.metadata.scope.as_deref(), Some("mcp:read"));
        assert_eq!(find(&env, "c2").unwrap().unwrap().metadata.scope, None);
        let post = |secret: &str| {
            let body = format!("client_id=c1&client_secret={secret}");
            let req = Request::new(crate::Method::Post, "/token");
            authenticate(&env, &req, &Params::parse(body.as_bytes()).unwrap())
        };
        assert!(post("m4chine").unwrap().is_provisioned());
        assert_eq!(post("s3cret").unwrap_err().status, 401);
        assert!(records::get::<Client>(&env, &key("c2")).unwrap().is_none());
    }

    #[test]
    fn public_client_must_not_send_a_secret_and_confidential_must() {
        let h = Harness::new();
        store_client(&h, None);
        let env = h.env();
        let none = Request::new(crate::Method::Post, "/token");
        assert!(authenticate(&env, &none, &Params::parse(b"client_id=c1").unwrap()).is_ok());
        let p = Params::parse(b"client_id=c1&client_secret=x").unwrap();
        assert!(authenticate(&env, &none, &p).is_err());
        let h = Harness::new();
        store_client(&h, Some("s3cret"));
        let p = Params::parse(b"client_id=c1").unwrap();
        assert_eq!(authenticate(&h.env(), &none, &p).unwrap_err().status, 401);
    }

    #[test]
    fn two_methods_at_once_are_refused() {
        let h = Harness::new();
        store_client(&h, Some("s3cret"));
        let req = Request::new(crate::Method::Post, "/token")
            .with_header("authorization", &basic("c1", "s3cret"));
        let p = Params::parse(b"client_secret=s3cret").unwrap();
        assert_eq!(authenticate(&h.env(), &req, &p).unwrap_err().status, 400);
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        assert_eq!(
            parse_basic(&STANDARD.encode("a%3Ab:c%2Bd")),
            Some(("a:b".to_string(), "c+d".to_string()))
        );
    }
}
