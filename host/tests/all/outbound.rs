//! Outbound HTTP from the test guest's `/fetch`: the allow-list, and the vetting of hosts
//! reached only through a wildcard (resolved once, refused on any private address, connected
//! to at the vetted address, capped in size and time).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use hyper::body::{Body, Frame};
use mcp_auth_host::outbound::{Resolve, ResolveFuture, UNTRUSTED_MAX_BODY};

use crate::support::{single_component_manifest, TestHost};
use crate::trust::TestCa;

/// A local HTTP server on 127.0.0.1 that records the `Host` header of every request; stopped
/// on drop.
pub(crate) struct Upstream {
    pub(crate) addr: SocketAddr,
    hosts: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

type Reply = fn() -> UnsyncBoxBody<Bytes, Infallible>;

impl Upstream {
    async fn start(reply: Reply) -> Upstream {
        Upstream::serve(reply, None).await
    }

    /// The same over TLS, presenting `tls`'s certificate.
    pub(crate) async fn start_tls(reply: Reply, tls: rustls::ServerConfig) -> Upstream {
        Upstream::serve(reply, Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))).await
    }

    async fn serve(reply: Reply, tls: Option<tokio_rustls::TlsAcceptor>) -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let seen = hosts.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    let host = req.headers().get("host").map(|h| h.to_str().unwrap_or("?"));
                    seen.lock().unwrap().push(host.unwrap_or("").to_owned());
                    async move { Ok::<_, Infallible>(http::Response::new(reply())) }
                });
                let tls = tls.clone();
                tokio::spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        // A failed handshake (an untrusted client) just ends the connection.
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => {
                                http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await
                            }
                            Err(_) => return,
                        },
                        None => {
                            http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                .await
                        }
                    };
                });
            }
        });
        Upstream { addr, hosts, task }
    }

    pub(crate) fn hello() -> UnsyncBoxBody<Bytes, Infallible> {
        Full::new(Bytes::from_static(b"hello")).boxed_unsync()
    }

    pub(crate) fn hosts(&self) -> Vec<String> {
        self.hosts.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One byte every 100 ms, forever.
struct Trickle(tokio::time::Interval);

impl Body for Trickle {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_tick(cx)
            .map(|_| Some(Ok(Frame::data(Bytes::from_static(b"x")))))
    }
}

/// Names answered from a table (anything else fails), counting lookups.
#[derive(Default)]
pub(crate) struct TableResolver {
    names: HashMap<&'static str, Vec<IpAddr>>,
    lookups: AtomicUsize,
}

impl TableResolver {
    pub(crate) fn new(names: &[(&'static str, &[&str])]) -> Arc<Self> {
        Arc::new(TableResolver {
            names: names
                .iter()
                .map(|(name, ips)| (*name, ips.iter().map(|ip| ip.parse().unwrap()).collect()))
                .collect(),
            lookups: AtomicUsize::new(0),
        })
    }
}

impl Resolve for TableResolver {
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self
            .names
            .get(host)
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, host.to_owned()));
        Box::pin(async move { answer })
    }
}

/// The test guest allowed `hosts`, in a host that lets wildcard hosts resolve to private
/// addresses if `allow_private`.
async fn fetcher(
    hosts: &[String],
    allow_private: bool,
    resolver: Option<Arc<TableResolver>>,
) -> TestHost {
    fetcher_trusting(hosts, allow_private, resolver, Vec::new()).await
}

/// [`fetcher`], with `extra_roots` trusted by vetted TLS connections.
async fn fetcher_trusting(
    hosts: &[String],
    allow_private: bool,
    resolver: Option<Arc<TableResolver>>,
    extra_roots: Vec<Vec<u8>>,
) -> TestHost {
    let list = hosts
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let manifest = single_component_manifest(&format!("allowed_outbound_hosts = [{list}]\n"));
    TestHost::start(&manifest, None, |o| {
        o.outbound_allow_private = allow_private;
        o.outbound_extra_roots = extra_roots;
        if let Some(resolver) = resolver {
            o.resolver = resolver;
        }
    })
    .await
}

/// A fresh CA (its DER certificate) and a server configuration presenting a certificate it
/// issued for `name`.
fn certificate_for(name: &str) -> (Vec<u8>, rustls::ServerConfig) {
    let ca = TestCa::new(&[name]);
    (ca.der(), ca.server)
}

fn refused_for_its_address((status, body): (u16, String)) -> bool {
    status == 502 && body.contains("DestinationIpProhibited")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_requests_follow_the_allow_list() {
    let allowed = Upstream::start(Upstream::hello).await;
    let other = Upstream::start(Upstream::hello).await;
    let manifest = format!(
        "{}\n[variables]\nupstream = {{ required = true }}\n",
        single_component_manifest("allowed_outbound_hosts = [\"http://{{ upstream }}\"]")
    );
    let host = TestHost::start(&manifest, None, |o| {
        o.environment = Some(HashMap::from([(
            "UPSTREAM".to_owned(),
            allowed.addr.to_string(),
        )]));
    })
    .await;
    assert_eq!(
        host.get(&format!("/fetch?url=http://{}/x", allowed.addr))
            .await,
        (200, "200 hello".into())
    );
    let (status, body) = host
        .get(&format!("/fetch?url=http://{}/x", other.addr))
        .await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    let (status, body) = host
        .get(&format!(
            "/fetch?url=http://localhost:{}/x",
            allowed.addr.port()
        ))
        .await;
    assert_eq!(status, 502);
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert!(other.hosts().is_empty());
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_hosts_that_resolve_to_private_addresses_are_refused() {
    let upstream = Upstream::start(Upstream::hello).await;
    let port = upstream.addr.port();
    let host = fetcher(&["http://*:*".to_owned()], false, None).await;
    // `localhost` resolves (through /etc/hosts) to loopback; the literals are their own answer.
    for target in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("[::ffff:127.0.0.1]:{port}"),
        format!("169.254.169.254:{port}"),
    ] {
        let answer = host.get(&format!("/fetch?url=http://{target}/x")).await;
        assert!(
            refused_for_its_address(answer.clone()),
            "{target}: {answer:?}"
        );
    }
    assert!(upstream.hosts().is_empty(), "{:?}", upstream.hosts());
    host.stop().await;

    // A host the manifest names stays reachable wherever it resolves; the same address under
    // another name, covered only by the wildcard, does not.
    let host = fetcher(
        &["http://*:*".to_owned(), format!("http://localhost:{port}")],
        false,
        None,
    )
    .await;
    assert_eq!(
        host.get(&format!("/fetch?url=http://localhost:{port}/x"))
            .await,
        (200, "200 hello".into())
    );
    let answer = host
        .get(&format!("/fetch?url=http://127.0.0.1:{port}/x"))
        .await;
    assert!(refused_for_its_address(answer.clone()), "{answer:?}");
    assert_eq!(upstream.hosts(), [format!("localhost:{port}")]);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_host_is_resolved_once_and_reached_at_the_vetted_address() {
    let upstream = Upstream::start(Upstream::hello).await;
    let port = upstream.addr.port();
    let resolver = TableResolver::new(&[
        ("cimd.test", &["127.0.0.1"]),
        // A rebinding name: one public answer, one private.
        ("rebind.test", &["93.184.216.34", "127.0.0.1"]),
        ("v6.test", &["::1"]),
    ]);
    let wildcard = ["http://*:*".to_owned()];

    let host = fetcher(&wildcard, false, Some(resolver.clone())).await;
    for name in ["cimd.test", "rebind.test", "v6.test"] {
        let answer = host
            .get(&format!("/fetch?url=http://{name}:{port}/x"))
            .await;
        assert!(
            refused_for_its_address(answer.clone()),
            "{name}: {answer:?}"
        );
    }
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 3);
    assert!(upstream.hosts().is_empty());
    host.stop().await;

    // With the address check lifted, the request goes to the address the resolver gave (the
    // system resolver knows no `cimd.test`), still under its name, after one lookup.
    let host = fetcher(&wildcard, true, Some(resolver.clone())).await;
    assert_eq!(
        host.get(&format!("/fetch?url=http://cimd.test:{port}/x"))
            .await,
        (200, "200 hello".into())
    );
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 4);
    assert_eq!(upstream.hosts(), [format!("cimd.test:{port}")]);
    let (status, body) = host
        .get(&format!("/fetch?url=http://unknown.test:{port}/x"))
        .await;
    assert_eq!(status, 502);
    assert!(body.contains("DnsError"), "{body}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_fetches_are_capped_in_size_and_time() {
    let huge = Upstream::start(|| {
        Full::new(Bytes::from(vec![b'x'; 2 * UNTRUSTED_MAX_BODY])).boxed_unsync()
    })
    .await;
    let slow = Upstream::start(|| {
        let mut every = tokio::time::interval(Duration::from_millis(100));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Trickle(every).boxed_unsync()
    })
    .await;
    let huge_port = huge.addr.port();
    let host = fetcher(
        &[
            "http://*:*".to_owned(),
            format!("http://localhost:{huge_port}"),
        ],
        true,
        None,
    )
    .await;
    // Named: the whole body arrives. Through the wildcard: cut at the cap.
    let (status, named) = host
        .get(&format!("/fetch?url=http://localhost:{huge_port}/"))
        .await;
    assert_eq!(
        (status, named.len()),
        (200, "200 ".len() + 2 * UNTRUSTED_MAX_BODY)
    );
    let (status, capped) = host
        .get(&format!("/fetch?url=http://127.0.0.1:{huge_port}/"))
        .await;
    assert_eq!(status, 200);
    assert!(
        capped.len() <= "200 ".len() + UNTRUSTED_MAX_BODY,
        "{}",
        capped.len()
    );

    // A body that never ends is cut at the deadline, well before the guest's own time limit
    // (30 s) would turn the request into a 500.
    let (status, body) = host.get(&format!("/fetch?url=http://{}/", slow.addr)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("200 x"), "{body}");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_https_hosts_are_reached_at_the_vetted_address_under_their_name() {
    let (ca, tls) = certificate_for("cimd.test");
    let upstream = Upstream::start_tls(Upstream::hello, tls).await;
    let port = upstream.addr.port();
    let resolver = TableResolver::new(&[
        ("cimd.test", &["127.0.0.1"]),
        ("other.test", &["127.0.0.1"]),
    ]);
    let wildcard = ["https://*:*".to_owned()];

    // The certificate names `cimd.test` and chains to the trusted CA: the TLS server name is
    // the host's name, not the address it was reached at.
    let host = fetcher_trusting(&wildcard, true, Some(resolver.clone()), vec![ca.clone()]).await;
    assert_eq!(
        host.get(&format!("/fetch?url=https://cimd.test:{port}/x"))
            .await,
        (200, "200 hello".into())
    );
    assert_eq!(upstream.hosts(), [format!("cimd.test:{port}")]);
    // Another name at the same address does not match the certificate.
    let (status, body) = host
        .get(&format!("/fetch?url=https://other.test:{port}/x"))
        .await;
    assert_eq!(status, 502);
    assert!(body.contains("Tls"), "{body}");
    host.stop().await;

    // Without the CA, the same server is not trusted.
    let host = fetcher(&wildcard, true, Some(resolver)).await;
    let (status, body) = host
        .get(&format!("/fetch?url=https://cimd.test:{port}/x"))
        .await;
    assert_eq!(status, 502);
    assert!(body.contains("Tls"), "{body}");
    assert_eq!(upstream.hosts().len(), 1);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_extra_root_stops_the_host_from_starting() {
    let mut options = mcp_auth_host::Options::default();
    options.outbound_extra_roots = vec![b"not a certificate".to_vec()];
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("spin.toml");
    std::fs::write(&manifest, single_component_manifest("")).unwrap();
    let error = mcp_auth_host::Server::new(&manifest, options)
        .err()
        .expect("the host started");
    assert!(
        error
            .to_string()
            .contains("extra outbound root certificate 1"),
        "{error}"
    );
}
