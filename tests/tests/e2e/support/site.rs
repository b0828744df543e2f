//! Small real HTTP servers on ephemeral loopback ports: [`serve`] runs any handler (the fake
//! TaskManager uses it), and a [`Site`] serves fixed pages on an origin of its own — a
//! client's redirect URI, or a hostile site that frames our pages or posts to our forms —
//! and remembers every request it got.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};

/// What a handler answers.
pub type Answer = Response<Full<Bytes>>;

/// A server on `127.0.0.1:<port>`; dropping it stops the server.
pub struct Server {
    runtime: Option<tokio::runtime::Runtime>,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Serves HTTP/1.1 with `handler` on an ephemeral loopback port, on a runtime of its own.
/// The body type is the handler's: usually [`Answer`]'s, or one that breaks off.
pub fn serve<H, F, B>(handler: H) -> Server
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    listen(move |stream| {
        let handler = handler.clone();
        async move {
            let service = hyper::service::service_fn(move |req| {
                let answer = handler(req);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        }
    })
}

/// Accepts connections on an ephemeral loopback port, on a runtime of its own, and hands
/// each to `connection` (a task per connection).
pub fn listen<C, F>(connection: C) -> Server
where
    C: Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local addr").port();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(connection(stream));
        }
    });
    Server {
        runtime: Some(runtime),
        port,
    }
}

/// Fixed HTML pages by path (anything else is a blank 200 page), and a log of the requests.
pub struct Site {
    _server: Server,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pages: Arc<Mutex<HashMap<String, String>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Site {
    pub fn start() -> Site {
        let pages = Arc::new(Mutex::new(HashMap::<String, String>::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (served, seen) = (pages.clone(), requests.clone());
        let server = serve(move |req: Request<Incoming>| {
            let path = req.uri().path().to_string();
            let target = req.uri().to_string();
            seen.lock().expect("requests").push(target);
            let html = served
                .lock()
                .expect("pages")
                .get(&path)
                .cloned()
                .unwrap_or_else(|| "<!doctype html><title>site</title>".into());
            async move {
                Response::builder()
                    .header("content-type", "text/html; charset=utf-8")
                    .body(Full::new(Bytes::from(html)))
                    .expect("response")
            }
        });
        Site {
            base: format!("http://127.0.0.1:{}", server.port),
            _server: server,
            pages,
            requests,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Serves `html` at `path` from now on.
    pub fn put(&self, path: &str, html: &str) {
        self.pages
            .lock()
            .expect("pages")
            .insert(path.into(), html.into());
    }

    /// The path and query of every request so far, oldest first.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("requests").clone()
    }
}
