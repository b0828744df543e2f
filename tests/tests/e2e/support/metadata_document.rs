//! A Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document) served by the
//! test on 127.0.0.1, at the URL it names as its `client_id`, counting how often it is fetched.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::Response;
use serde_json::{json, Value};

/// The running document server; dropping it stops the server.
pub struct MetadataDocument {
    runtime: Option<tokio::runtime::Runtime>,
    /// The document's URL: the client's `client_id`.
    pub url: String,
    fetches: Arc<AtomicUsize>,
}

impl MetadataDocument {
    /// Serves a public native client's document with one redirect URI.
    pub fn serve(client_name: &str, redirect_uri: &str) -> MetadataDocument {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind the metadata document server");
        let port = listener.local_addr().expect("local addr").port();
        let url = format!("http://127.0.0.1:{port}/client.json");
        let document = Bytes::from(document(&url, client_name, redirect_uri).to_string());
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (document, counter) = (document.clone(), counter.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        counter.fetch_add(1, Ordering::SeqCst);
                        let answer = Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(document.clone()))
                            .expect("response");
                        async move { Ok::<_, Infallible>(answer) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        MetadataDocument {
            runtime: Some(runtime),
            url,
            fetches,
        }
    }

    /// How many requests the server has answered.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for MetadataDocument {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
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
