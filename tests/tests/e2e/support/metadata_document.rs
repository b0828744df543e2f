//! A Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document) served by the
//! test on 127.0.0.1, at the URL it names as its `client_id`, counting how often it is fetched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use serde_json::{json, Value};

use super::site::{self, Server};

/// The running document server; dropping it stops the server.
pub struct MetadataDocument {
    _server: Server,
    /// The document's URL: the client's `client_id`.
    pub url: String,
    fetches: Arc<AtomicUsize>,
}

impl MetadataDocument {
    /// Serves a public native client's document with one redirect URI.
    pub fn serve(client_name: &str, redirect_uri: &str) -> MetadataDocument {
        let url = Arc::new(Mutex::new(String::new()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (counter, document_url) = (fetches.clone(), url.clone());
        let (client_name, redirect_uri) = (client_name.to_string(), redirect_uri.to_string());
        let server = site::serve(move |_request| {
            counter.fetch_add(1, Ordering::SeqCst);
            let url = document_url.lock().expect("url").clone();
            let body = document(&url, &client_name, &redirect_uri).to_string();
            let answer = Response::builder()
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
                .expect("response");
            async move { answer }
        });
        let own_url = format!("http://127.0.0.1:{}/client.json", server.port);
        *url.lock().expect("url") = own_url.clone();
        MetadataDocument {
            _server: server,
            url: own_url,
            fetches,
        }
    }

    /// How many requests the server has answered.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// The document: client metadata (RFC 7591 §2) with `client_id` equal to its own URL.
fn document(url: &str, client_name: &str, redirect_uri: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    })
}
