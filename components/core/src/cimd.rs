//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a client
//! names itself by an `https` URL, and the document at that URL is its metadata.
//!
//! [`resolve`] checks the URL, takes the document from the cache (`cimd/<sha256(url)>`) or
//! fetches it through [`crate::env::Upstream`], validates it with the registration rules
//! ([`crate::registration::validate_metadata`]) and caches it per its `Cache-Control`.
//! [`without_fetch`] serves the token side, which has no outbound HTTP.
//!
//! A URL we will not fetch, and a document we will not accept, are both an
//! `invalid_client` error naming the reason (never `Ok(None)`), so the authorization page
//! can tell a developer what is wrong with their document.
//!
//! SSRF: hosts named `localhost` (or `*.localhost`) and IP literals in loopback, private,
//! link-local, unique-local, CGNAT, unspecified, multicast, broadcast or reserved ranges —
//! also when written as IPv4-mapped, IPv4-compatible or NAT64 IPv6 — are refused here. The
//! core cannot see DNS answers: **the host's outbound layer must re-check every resolved
//! address** (and follow no redirects) before it connects, or a name that resolves to a
//! private address slips through. `cimd_allow_private` (tests only) lifts the check and
//! also permits `http://` on loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::client::{AuthMethod, Client, ClientMetadata, ClientSource};
use crate::env::Env;
use crate::error::OAuthError;
use crate::http::{OutgoingRequest, UpstreamResponse};
use crate::records;
use crate::registration::{
    self, MetadataDefaults, MetadataRequest, AUTHORIZATION_CODE, REFRESH_TOKEN,
};
use crate::secret::hash;
use crate::settings::Settings;

/// Largest metadata document we accept.
pub const MAX_DOCUMENT: usize = 16 * 1024;
/// Longest client_id URL we accept.
pub const MAX_URL_LEN: usize = 2048;
/// Cache lifetime bounds and default (without `Cache-Control: max-age`), seconds.
pub const MIN_CACHE: u64 = 60;
pub const MAX_CACHE: u64 = 24 * 3600;
pub const DEFAULT_CACHE: u64 = 3600;

/// A document names no secret-based method, and its grant types default to code + refresh.
const DOCUMENT_DEFAULTS: MetadataDefaults = MetadataDefaults {
    grant_types: &[AUTHORIZATION_CODE, REFRESH_TOKEN],
    token_endpoint_auth_method: AuthMethod::None,
};

/// May this `http://` client_id be used? Only on a loopback host, and only when
/// `cimd_allow_private` is set (tests).
pub fn allows_http(settings: &Settings, client_id: &str) -> bool {
    settings.cimd_allow_private
        && url::Url::parse(client_id).is_ok_and(|u| {
            u.scheme() == "http" && u.host_str().is_some_and(crate::resource::is_loopback_host)
        })
}

/// The client a metadata document URL names, from the cache or fetched and validated.
pub fn resolve(env: &Env, client_id: &str) -> Result<Option<Client>, OAuthError> {
    check_url(&env.settings, client_id)?;
    let key = cache_key(client_id);
    if let Some(client) = records::get::<Client>(env, &key)? {
        return Ok(Some(client));
    }
    let response = env
        .upstream
        .send(&OutgoingRequest::get(client_id))
        .map_err(|e| refuse(client_id, &format!("could not be fetched ({e})")))?;
    let metadata = parse_document(env, client_id, &response)?;
    let client = document_client(env, client_id, metadata);
    if let Some(seconds) = cache_lifetime(response.header("cache-control")) {
        records::put(env, &key, &client, Some(env.now() + seconds))?;
        records::maybe_sweep(env);
    }
    Ok(Some(client))
}

/// The client for a URL `client_id` at the token side, without fetching: the cached
/// document if there is one, else a minimal public client (code and refresh grants). The
/// code or refresh token the client presents already proves it went through `/authorize`,
/// where [`resolve`] validated the document. `Ok(None)` for a URL we would not fetch.
pub fn without_fetch(env: &Env, client_id: &str) -> Result<Option<Client>, OAuthError> {
    if check_url(&env.settings, client_id).is_err() {
        return Ok(None);
    }
    if let Some(client) = records::get::<Client>(env, &cache_key(client_id))? {
        return Ok(Some(client));
    }
    let metadata = ClientMetadata {
        token_endpoint_auth_method: AuthMethod::None,
        grant_types: DOCUMENT_DEFAULTS
            .grant_types
            .iter()
            .map(|g| g.to_string())
            .collect(),
        response_types: vec!["code".to_string()],
        application_type: "web".to_string(),
        ..ClientMetadata::default()
    };
    Ok(Some(document_client(env, client_id, metadata)))
}

/// The cache record of a document: `cimd/<sha256(url)>`.
pub fn cache_key(client_id: &str) -> String {
    format!("cimd/{}", hash(client_id))
}

fn document_client(env: &Env, client_id: &str, metadata: ClientMetadata) -> Client {
    Client {
        client_id: client_id.to_string(),
        source: ClientSource::MetadataDocument,
        client_id_issued_at: env.now(),
        client_secret_hash: None,
        client_secret_expires_at: 0,
        registration_token_hash: None,
        metadata,
    }
}

/// The draft's URL rules (§3): `https`, a path, no dot segments, no fragment, no user
/// information; we also refuse a query. The URL must be in canonical form, so what we fetch
/// is exactly what the client named. Then the SSRF rules of the module documentation.
fn check_url(settings: &Settings, client_id: &str) -> Result<(), OAuthError> {
    let fail = |why: &str| Err(refuse(client_id, why));
    if client_id.len() > MAX_URL_LEN {
        return fail("is too long");
    }
    let Ok(url) = url::Url::parse(client_id) else {
        return fail("is not a URL");
    };
    if url.scheme() != "https" && !allows_http(settings, client_id) {
        return fail("must be an https URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return fail("must not contain user information");
    }
    if url.fragment().is_some() || client_id.contains('#') {
        return fail("must not contain a fragment");
    }
    if url.query().is_some() || client_id.contains('?') {
        return fail("must not contain a query");
    }
    let raw_path = client_id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    if raw_path.len() < 2 {
        return fail("must have a path");
    }
    if raw_path.split('/').any(|seg| {
        matches!(
            seg.to_ascii_lowercase().as_str(),
            "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
        )
    }) {
        return fail("must not contain dot segments");
    }
    if url.as_str() != client_id {
        return fail("must be in canonical form (lower-case host, no default port)");
    }
    if !settings.cimd_allow_private && is_private_host(&url) {
        return fail("names a local or private host");
    }
    Ok(())
}

/// Is the host `localhost` or an IP literal we must never fetch from?
fn is_private_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => is_private_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => is_private_ip(IpAddr::V6(ip)),
        None => true,
    }
}

/// Loopback, private, link-local, unique-local, CGNAT, unspecified, multicast, broadcast,
/// reserved, benchmarking and documentation space (RFC 6890 registries); IPv6 forms that
/// embed an IPv4 address are judged by that address.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return is_private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
                || (first & 0xfe00) == 0xfc00 // unique-local fc00::/7
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation 2001:db8::/32 (RFC 3849)
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0 // "this network" 0/8
        || a >= 240 // reserved 240/4
        || (a == 100 && (b & 0xc0) == 64) // CGNAT 100.64/10
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18/15 (RFC 2544)
        // IETF protocol assignments 192.0.0/24; documentation (RFC 5737)
        || matches!(ip.octets(), [192, 0, 0 | 2, _] | [198, 51, 100, _] | [203, 0, 113, _])
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        _ => None,
    }
}

/// A fetched document → validated metadata (draft §4).
fn parse_document(
    env: &Env,
    client_id: &str,
    response: &UpstreamResponse,
) -> Result<ClientMetadata, OAuthError> {
    if !(200..300).contains(&response.status) {
        return Err(refuse(
            client_id,
            &format!("answered HTTP {}", response.status),
        ));
    }
    let media_type = response
        .header("content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media_type != "application/json" && !media_type.ends_with("+json") {
        return Err(refuse(client_id, "did not answer with JSON"));
    }
    if response.body.len() > MAX_DOCUMENT {
        return Err(refuse(client_id, "answered with a document over 16 KiB"));
    }
    let document = MetadataRequest::parse(&response.body).map_err(|e| {
        refuse(
            client_id,
            &format!("is not valid client metadata: {}", e.description),
        )
    })?;
    if document.client_id.as_deref() != Some(client_id) {
        return Err(refuse(
            client_id,
            "holds a client_id that differs from its URL",
        ));
    }
    if document.client_secret.is_some() {
        return Err(refuse(client_id, "must not hold a client_secret"));
    }
    if document.redirect_uris.as_ref().is_none_or(Vec::is_empty) {
        return Err(refuse(client_id, "has no redirect_uris"));
    }
    let metadata = registration::validate_metadata(env, document, DOCUMENT_DEFAULTS)
        .map_err(|e| refuse(client_id, &e.description))?;
    if metadata.token_endpoint_auth_method != AuthMethod::None {
        return Err(refuse(
            client_id,
            "names a secret-based token_endpoint_auth_method (a public document cannot hold a secret)",
        ));
    }
    Ok(metadata)
}

/// How long to cache a document: `max-age` clamped to [`MIN_CACHE`]..[`MAX_CACHE`],
/// [`DEFAULT_CACHE`] without one, `None` (do not cache) for `no-store` or `no-cache`.
fn cache_lifetime(cache_control: Option<&str>) -> Option<u64> {
    let Some(value) = cache_control else {
        return Some(DEFAULT_CACHE);
    };
    let mut max_age = None;
    for directive in value.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return None;
        }
        if let Some(n) = directive.strip_prefix("max-age=") {
            max_age = n.trim_matches('"').parse::<u64>().ok().or(Some(0));
        }
    }
    Some(max_age.map_or(DEFAULT_CACHE, |n| n.clamp(MIN_CACHE, MAX_CACHE)))
}

fn refuse(client_id: &str, why: &str) -> OAuthError {
    OAuthError::invalid_client(format!(
        "client metadata document `{}` {why}",
        registration::printable(client_id)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Harness, MapConfig};

    fn settings(allow_private: bool) -> Settings {
        let flag = if allow_private { "true" } else { "false" };
        Settings::from_config(&MapConfig::from([("cimd_allow_private", flag)])).unwrap()
    }

    #[test]
    fn url_rules() {
        let s = settings(false);
        assert!(check_url(&s, "https://app.example.com/client.json").is_ok());
        for bad in [
            "https://app.example.com",
            "https://app.example.com/",
            "http://app.example.com/client.json",
            "https://app.example.com/client.json#x",
            "https://app.example.com/client.json?x=1",
            "https://u:p@app.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://app.example.com/a/./client.json",
            "https://app.example.com/a/%2e%2e/client.json",
            "https://APP.example.com/client.json",
            "https://app.example.com:443/client.json",
            "https://localhost/client.json",
            "https://foo.localhost/client.json",
            "not a url",
        ] {
            assert!(check_url(&s, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.99",
            "198.18.0.1",
            "198.19.255.254",
            "192.0.0.8",
            "2001:db8::1",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_private_ip(ip), "{ip}");
        }
        for ip in [
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:93.184.216.34",
            "198.20.0.1",
            "192.0.3.1",
            "2001:db9::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_private_ip(ip), "{ip}");
        }
    }

    #[test]
    fn cache_control() {
        assert_eq!(cache_lifetime(None), Some(DEFAULT_CACHE));
        assert_eq!(cache_lifetime(Some("public")), Some(DEFAULT_CACHE));
        assert_eq!(cache_lifetime(Some("max-age=300")), Some(300));
        assert_eq!(cache_lifetime(Some("public, max-age=5")), Some(MIN_CACHE));
        assert_eq!(cache_lifetime(Some("max-age=999999999")), Some(MAX_CACHE));
        assert_eq!(cache_lifetime(Some("max-age=300, no-store")), None);
        assert_eq!(cache_lifetime(Some("No-Cache")), None);
    }

    #[test]
    fn http_only_on_loopback_and_only_when_allowed() {
        assert!(!allows_http(&settings(false), "http://127.0.0.1:9/c.json"));
        assert!(allows_http(&settings(true), "http://127.0.0.1:9/c.json"));
        assert!(!allows_http(
            &settings(true),
            "http://app.example.com/c.json"
        ));
        assert!(!allows_http(&settings(true), "https://127.0.0.1/c.json"));
    }

    #[test]
    fn without_fetch_gives_a_minimal_public_client() {
        let h = Harness::new();
        let env = h.env();
        let c = without_fetch(&env, "https://app.example.com/c.json")
            .unwrap()
            .unwrap();
        assert!(!c.is_confidential());
        assert!(c.allows_grant(REFRESH_TOKEN));
        assert_eq!(c.source, ClientSource::MetadataDocument);
        assert!(h.upstream.sent.lock().unwrap().is_empty());
        assert_eq!(
            without_fetch(&env, "https://10.0.0.1/c.json").unwrap(),
            None
        );
    }
}
