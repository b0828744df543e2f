//! The bodies of the fuzz targets, kept in one place so that both ways of running them share
//! them: `fuzz/` runs them under libFuzzer (`scripts/fuzz [seconds]`), and `tests/fuzz.rs`
//! runs them over the committed seed corpus (`fuzz/corpus/<target>/`) and random and mutated
//! inputs in every `cargo test`. Each target takes arbitrary bytes and panics only on a
//! defect: a panic in the core, a broken invariant, or an answer that is not a well-formed
//! status (a 500 for bad input included).
//!
//! Bytes become requests in a readable form, so seeds are plain text files: the first line
//! is `METHOD /path?query`, header lines `name: value` follow up to an empty line, and the
//! rest is the body. [`handle`] serves several such requests in turn, separated by a line
//! `===`, against one store, so a seed can register a client (the test RNG makes its id
//! predictable) and then use it.

use crate::client::parse_basic;
use crate::http::Params;
use crate::registration::{
    validate_metadata, validate_redirect_uri, MetadataDefaults, MetadataRequest,
};
use crate::testing::{Harness, MapConfig};
use crate::{resource, scope, Method, Request};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/<name>.rs` and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("request", request),
    ("validation", validation),
    ("handle", handle),
];

/// Separates the requests [`handle`] serves in turn.
const NEXT_REQUEST: &[u8] = b"\n===\n";

/// Request parsing: the query, form and JSON bodies, headers, cookies, Basic credentials.
pub fn request(data: &[u8]) {
    let req = decode(data);
    let _ = req.oversized();
    let _ = req.query_params();
    let _ = req.form_params();
    let _ = req.bearer_token();
    let _ = req.cookie("session");
    if let Some(credentials) = req.header("authorization") {
        let _ = parse_basic(credentials.strip_prefix("Basic ").unwrap_or(credentials));
    }
    let _ = Params::parse(&req.body);
    let _ = MetadataRequest::parse(&req.body);
}

/// Validation of redirect URIs, resources, scopes (each line of the input is tried as each)
/// and of client metadata (the whole input as a registration document).
pub fn validation(data: &[u8]) {
    let h = harness();
    let env = h.env();
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        let _ = validate_redirect_uri(line);
        if let Ok(normal) = resource::normalize(line) {
            assert_eq!(
                resource::normalize(&normal).as_deref(),
                Ok(normal.as_str()),
                "resource normalization is not idempotent for {line:?}"
            );
        }
        let _ = resource::allowed(&env.settings, line);
        let _ = scope::requested(&env.settings, Some(line), Some(line));
        let _ = scope::narrow("mcp:read mcp:write", Some(line));
        assert_eq!(
            scope::parse(&scope::join(&scope::parse(line))),
            scope::parse(line)
        );
    }
    if let Ok(request) = MetadataRequest::parse(data) {
        if let Ok(metadata) = validate_metadata(&env, request, MetadataDefaults::REGISTRATION) {
            for uri in &metadata.redirect_uris {
                assert!(
                    validate_redirect_uri(uri).is_ok(),
                    "stored an invalid redirect URI {uri:?}"
                );
            }
        }
    }
}

/// The whole server (every endpoint) on one in-memory store: each request is answered with
/// a status from 200 to 499, or 502/503 when the upstream or store failed (they do not here).
pub fn handle(data: &[u8]) {
    let h = harness();
    for part in split(data, NEXT_REQUEST) {
        let req = decode(part);
        let res = h.call(req.clone());
        assert!(
            (200..500).contains(&res.status),
            "{} {}?{} → {}: {}",
            req.method.as_str(),
            req.path,
            req.query,
            res.status,
            String::from_utf8_lossy(&res.body)
        );
        let is_json = res
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        if res.status >= 400 && is_json {
            let body = res.json_body();
            assert!(
                body.as_ref().and_then(|b| b["error"].as_str()).is_some(),
                "{} {} → {} without an RFC 6749 error: {body:?}",
                req.method.as_str(),
                req.path,
                res.status
            );
        }
    }
}

/// A server configured as in production, with an MCP server, an introspection client and a
/// machine client (the one of the `client_credentials` seed).
fn harness() -> Harness {
    Harness::with_config(MapConfig::from([
        ("mcp_server", "https://mcp.example.com/mcp"),
        ("introspection_credentials", "rs:rs-secret"),
        ("machine_clients", "c1:s1"),
    ]))
}

/// `METHOD /path?query`, `name: value` lines, an empty line, the body.
pub fn decode(data: &[u8]) -> Request {
    let (head, body) = match split(data, b"\n\n").next() {
        Some(head) if head.len() < data.len() => (head, &data[head.len() + 2..]),
        _ => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let mut req = Request::new(Method::parse(method), target);
    for line in lines {
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        req = req.with_header(name.trim(), value.trim());
    }
    req.body = body.to_vec();
    req.client_addr = Some("203.0.113.7".to_string());
    req
}

/// The pieces of `data` between occurrences of `separator`.
fn split<'a>(data: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    let mut rest = Some(data);
    std::iter::from_fn(move || {
        let current = rest?;
        match current
            .windows(separator.len())
            .position(|w| w == separator)
        {
            Some(i) => {
                rest = Some(&current[i + separator.len()..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}
