//! Client ID Metadata Documents: fetching, validation, SSRF refusal, caching, and token-side
//! authentication without a fetch.

use mcp_auth_core::client::{self, ClientSource};
use mcp_auth_core::http::Params;
use mcp_auth_core::testing::{FakeUpstream, Harness, MapConfig};
use mcp_auth_core::{cimd, ErrorCode, Method, Request, UpstreamResponse};
use serde_json::{json, Value};

const URL: &str = "https://app.example.com/oauth/client.json";

fn document() -> Value {
    json!({
        "client_id": URL,
        "client_name": "Example App",
        "redirect_uris": ["http://127.0.0.1:8765/callback", "https://app.example.com/cb"],
        "application_type": "native",
        "logo_uri": "https://app.example.com/logo.png",
        "some_extension": true,
    })
}

/// Serve `doc` as JSON with an optional `Cache-Control`.
fn serve(h: &Harness, doc: Value, cache_control: Option<&'static str>) {
    h.upstream.answer(move |_| {
        let mut res = FakeUpstream::json(200, doc.clone());
        if let Some(cc) = cache_control {
            res.headers.push(("cache-control".into(), cc.into()));
        }
        Ok(res)
    });
}

fn sent(h: &Harness) -> usize {
    h.upstream.sent.lock().unwrap().len()
}

fn resolve_err(h: &Harness, url: &str) -> mcp_auth_core::OAuthError {
    cimd::resolve(&h.env(), url).unwrap_err()
}

#[test]
fn a_valid_document_resolves() {
    let h = Harness::new();
    serve(&h, document(), None);
    let client = cimd::resolve(&h.env(), URL).unwrap().unwrap();
    assert_eq!(client.client_id, URL);
    assert_eq!(client.source, ClientSource::MetadataDocument);
    assert!(!client.is_confidential());
    assert_eq!(client.display_name(), "Example App");
    assert_eq!(client.metadata.application_type, "native");
    assert_eq!(
        client.metadata.grant_types,
        ["authorization_code", "refresh_token"]
    );
    assert_eq!(client.metadata.redirect_uris.len(), 2);
    let requests = h.upstream.sent.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url, URL);
    assert_eq!(requests[0].method, Method::Get);
}

#[test]
fn find_resolves_urls_through_the_document() {
    let h = Harness::new();
    serve(&h, document(), None);
    let client = client::find(&h.env(), URL).unwrap().unwrap();
    assert_eq!(client.source, ClientSource::MetadataDocument);
    assert_eq!(sent(&h), 1);
}

#[test]
fn bad_documents_are_refused_and_not_cached() {
    let mut mismatched = document();
    mismatched["client_id"] = json!("https://app.example.com/other.json");
    let mut no_id = document();
    no_id.as_object_mut().unwrap().remove("client_id");
    let mut no_redirects = document();
    no_redirects
        .as_object_mut()
        .unwrap()
        .remove("redirect_uris");
    let mut empty_redirects = document();
    empty_redirects["redirect_uris"] = json!([]);
    let mut bad_redirect = document();
    bad_redirect["redirect_uris"] = json!(["javascript:alert(1)"]);
    let mut secret_method = document();
    secret_method["token_endpoint_auth_method"] = json!("client_secret_basic");
    let mut secret_post = document();
    secret_post["token_endpoint_auth_method"] = json!("client_secret_post");
    let mut with_secret = document();
    with_secret["client_secret"] = json!("leaked");
    let mut wrong_type = document();
    wrong_type["grant_types"] = json!("authorization_code");
    let mut machine = document();
    machine["grant_types"] = json!(["authorization_code", "client_credentials"]);
    for doc in [
        mismatched,
        no_id,
        no_redirects,
        empty_redirects,
        bad_redirect,
        secret_method,
        secret_post,
        with_secret,
        wrong_type,
        machine,
    ] {
        let h = Harness::new();
        serve(&h, doc.clone(), None);
        let err = resolve_err(&h, URL);
        assert_eq!(err.code, ErrorCode::InvalidClient, "{doc}");
        assert!(h.store.keys().is_empty(), "{doc}");
    }
}

#[test]
fn auth_method_none_is_accepted() {
    let h = Harness::new();
    let mut doc = document();
    doc["token_endpoint_auth_method"] = json!("none");
    serve(&h, doc, None);
    assert!(cimd::resolve(&h.env(), URL).unwrap().is_some());
}

#[test]
fn bad_responses_are_refused() {
    let raw = |status: u16, content_type: &str, body: Vec<u8>| UpstreamResponse {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body,
    };
    let doc = document().to_string().into_bytes();
    let mut big = document();
    big["padding"] = json!("x".repeat(16 * 1024));
    let cases = [
        raw(404, "application/json", doc.clone()),
        raw(302, "application/json", doc.clone()),
        raw(500, "application/json", doc.clone()),
        raw(200, "text/html", doc.clone()),
        raw(200, "application/json", b"{not json".to_vec()),
        raw(200, "application/json", big.to_string().into_bytes()),
    ];
    for response in cases {
        let h = Harness::new();
        let status = response.status;
        h.upstream.answer(move |_| Ok(response.clone()));
        let err = resolve_err(&h, URL);
        assert_eq!(err.code, ErrorCode::InvalidClient, "status {status}");
        assert!(h.store.keys().is_empty());
    }
    // A transport failure is refused too.
    let h = Harness::new();
    assert_eq!(resolve_err(&h, URL).code, ErrorCode::InvalidClient);
}

#[test]
fn json_with_parameters_or_suffix_is_json() {
    for content_type in [
        "application/json; charset=utf-8",
        "application/client-metadata+json",
    ] {
        let h = Harness::new();
        let body = document().to_string().into_bytes();
        h.upstream.answer(move |_| {
            Ok(UpstreamResponse {
                status: 200,
                headers: vec![("content-type".into(), content_type.into())],
                body: body.clone(),
            })
        });
        assert!(cimd::resolve(&h.env(), URL).unwrap().is_some());
    }
}

#[test]
fn private_and_local_hosts_are_never_fetched() {
    let h = Harness::new();
    serve(&h, document(), None);
    for host in [
        "localhost",
        "api.localhost",
        "127.0.0.1",
        "127.1.2.3",
        "0x7f.0.0.1",
        "2130706433",
        "10.0.0.1",
        "172.16.0.1",
        "172.31.0.1",
        "192.168.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "[::1]",
        "[::]",
        "[fe80::1]",
        "[fc00::1]",
        "[fd00::1]",
        "[ff02::1]",
        "[::ffff:7f00:1]",
        "[::ffff:a00:1]",
        "[64:ff9b::a9fe:a9fe]",
        "[::ffff:a9fe:a9fe]",
    ] {
        let url = format!("https://{host}/client.json");
        let err = resolve_err(&h, &url);
        assert_eq!(err.code, ErrorCode::InvalidClient, "{url}");
    }
    assert_eq!(sent(&h), 0);
    assert!(h.store.keys().is_empty());
}

#[test]
fn malformed_client_id_urls_are_refused_without_a_fetch() {
    let h = Harness::new();
    serve(&h, document(), None);
    for url in [
        "https://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/a/../client.json",
        "https://app.example.com/./client.json",
        "https://app.example.com/client.json#frag",
        "https://app.example.com/client.json?v=1",
        "https://user:pw@app.example.com/client.json",
        "http://app.example.com/client.json",
        "http://127.0.0.1:8000/client.json",
    ] {
        assert_eq!(resolve_err(&h, url).code, ErrorCode::InvalidClient, "{url}");
    }
    assert_eq!(sent(&h), 0);
}

#[test]
fn private_targets_and_loopback_http_when_allowed() {
    let h = Harness::with_config(MapConfig::from([("cimd_allow_private", "true")]));
    let url = "http://127.0.0.1:8000/client.json";
    let mut doc = document();
    doc["client_id"] = json!(url);
    serve(&h, doc, None);
    assert!(cimd::resolve(&h.env(), url).unwrap().is_some());
    // Still only loopback for plain http.
    assert!(cimd::resolve(&h.env(), "http://app.example.com/client.json").is_err());
}

#[test]
fn second_resolve_is_served_from_the_cache() {
    let h = Harness::new();
    serve(&h, document(), None);
    let first = cimd::resolve(&h.env(), URL).unwrap();
    let second = cimd::resolve(&h.env(), URL).unwrap();
    assert_eq!(first, second);
    assert_eq!(sent(&h), 1);
    assert!(h.store.keys().contains(&cimd::cache_key(URL)));
}

/// Serve the document with `cache_control`, and check that it is fetched once, served from
/// the cache until `lifetime` seconds have passed, and fetched again then.
fn assert_cached_for(cache_control: Option<&'static str>, lifetime: u64) {
    let h = Harness::new();
    serve(&h, document(), cache_control);
    cimd::resolve(&h.env(), URL).unwrap();
    h.clock.advance(lifetime - 1);
    cimd::resolve(&h.env(), URL).unwrap();
    assert_eq!(sent(&h), 1, "{cache_control:?}");
    h.clock.advance(1);
    cimd::resolve(&h.env(), URL).unwrap();
    assert_eq!(sent(&h), 2, "{cache_control:?}");
}

#[test]
fn cache_expires_after_the_default_hour() {
    assert_cached_for(None, cimd::DEFAULT_CACHE);
    assert_cached_for(Some("public"), cimd::DEFAULT_CACHE);
}

#[test]
fn max_age_is_honoured_and_clamped() {
    assert_cached_for(Some("public, max-age=300"), 300);
    assert_cached_for(Some("max-age=1"), cimd::MIN_CACHE);
    assert_cached_for(Some("max-age=31536000"), cimd::MAX_CACHE);
}

#[test]
fn no_store_is_never_cached() {
    let h = Harness::new();
    serve(&h, document(), Some("no-store"));
    cimd::resolve(&h.env(), URL).unwrap();
    cimd::resolve(&h.env(), URL).unwrap();
    assert_eq!(sent(&h), 2);
    assert!(h.store.keys().is_empty());
}

#[test]
fn token_side_authenticates_url_clients_without_fetching() {
    let h = Harness::new();
    serve(&h, document(), None);
    let req = Request::new(Method::Post, "/token");
    let params = Params::parse(format!("client_id={URL}").as_bytes()).unwrap();

    // Nothing cached: a minimal public client, no request sent.
    let client = client::authenticate(&h.env(), &req, &params).unwrap();
    assert_eq!(client.client_id, URL);
    assert_eq!(client.source, ClientSource::MetadataDocument);
    assert!(client.allows_grant("refresh_token"));
    assert_eq!(sent(&h), 0);

    // Cached: the validated document.
    cimd::resolve(&h.env(), URL).unwrap();
    let client = client::authenticate(&h.env(), &req, &params).unwrap();
    assert_eq!(client.display_name(), "Example App");
    assert_eq!(sent(&h), 1);

    // A URL client has no secret, and a URL we would not fetch is no client.
    let with_secret = Params::parse(format!("client_id={URL}&client_secret=x").as_bytes()).unwrap();
    assert_eq!(
        client::authenticate(&h.env(), &req, &with_secret)
            .unwrap_err()
            .code,
        ErrorCode::InvalidClient
    );
    let private = Params::parse(b"client_id=https://10.0.0.1/client.json").unwrap();
    assert_eq!(
        client::authenticate(&h.env(), &req, &private)
            .unwrap_err()
            .code,
        ErrorCode::InvalidClient
    );
    assert_eq!(sent(&h), 1);
}
