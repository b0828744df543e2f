//! Outbound HTTP policy: the manifest's `allowed_outbound_hosts`, enforced per component in the
//! `wasi:http` send hook (where wasmtime-wasi-http puts policy), plus connect and first-byte
//! timeouts.
//!
//! Entries follow Spin's format: `scheme://host[:port]`, where the scheme is `http`, `https` or
//! `*`, the host is a name, `*` or `*.suffix` (sub-domains only), and the port is a number or `*`
//! (omitted: the scheme's default port). A refused request fails with `HttpRequestDenied`.
//!
//! # Hosts reached only through a wildcard (SSRF)
//!
//! An entry that names its host (`https://github.com`, `http://127.0.0.1:8000`) is the
//! operator's decision: that host is trusted wherever it resolves, so a TaskManager on loopback
//! or an OIDC issuer on the internal network stays reachable. A host allowed only by a wildcard
//! (`https://*:443`, `https://*.example.com`) was chosen by whoever sent the request (a Client
//! ID Metadata Document URL is attacker-supplied), so for it the host resolves the name itself
//! and refuses the request with `DestinationIpProhibited` when **any** address is loopback,
//! private, link-local (cloud metadata at 169.254.169.254), CGNAT, unique-local, multicast,
//! reserved or documentation space, IPv4-mapped forms included (the core's
//! [`is_private_ip`], which already refuses such IP literals). It then connects to the address
//! it vetted, never resolving again, so a name cannot rebind between the check and the
//! connection; the `Host` header and the TLS server name stay the name. Such a fetch must also
//! finish within [`UNTRUSTED_DEADLINE`] and [`UNTRUSTED_MAX_BODY`], so a slow or endless answer
//! fails while the guest still has time to answer its standard error.
//!
//! [`Options::outbound_allow_private`](crate::Options::outbound_allow_private) (`mcp-auth serve
//! --outbound-allow-private`, for local development) lifts the address check; pinning and the
//! caps stay.
//!
//! # TLS
//!
//! An https request, named or wildcard, trusts what [`crate::tls`] chose for its component and
//! host (`[[client_tls]]`, `--outbound-ca-file`, `--outbound-system-roots`; by default the web
//! PKI roots). wasmtime-wasi-http's own sender only knows the web roots, so it keeps plain http
//! to named hosts; named https goes through our own sender, bounded by the same timeouts.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use mcp_auth_core::cimd::is_private_ip;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant, Sleep};
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::tls::{ComponentTrust, Trust};

/// Whole-exchange deadline (resolution, connection, headers and body) of a request to a host
/// allowed only by a wildcard: well inside a guest's own request time.
pub const UNTRUSTED_DEADLINE: Duration = Duration::from_secs(10);
/// Largest response body from a host allowed only by a wildcard.
pub const UNTRUSTED_MAX_BODY: usize = 1024 * 1024;

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    scheme: Pattern,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com` is stored as `.example.com`.
    Suffix(String),
    Is(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// Omitted in the entry: the default port of the request's scheme.
    SchemeDefault,
    Is(u16),
}

impl AllowList {
    /// Parses expanded entries (templates already resolved).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let entries = entries
            .iter()
            .map(|e| parse_entry(e.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(AllowList { entries })
    }

    /// Whether a request to `scheme://host:port` may go out, and on what grounds.
    pub fn reach(&self, scheme: &str, host: &str, port: Option<u16>) -> Option<Reach> {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let port = port.or_else(|| default_port(&scheme))?;
        self.entries
            .iter()
            .filter(|e| {
                let scheme_ok = match &e.scheme {
                    Pattern::Any => true,
                    Pattern::Is(s) => *s == scheme,
                };
                let host_ok = match &e.host {
                    HostPattern::Any => true,
                    HostPattern::Suffix(s) => host.ends_with(s.as_str()) && host.len() > s.len(),
                    HostPattern::Is(h) => *h == host,
                };
                let port_ok = match e.port {
                    PortPattern::Any => true,
                    PortPattern::SchemeDefault => Some(port) == default_port(&scheme),
                    PortPattern::Is(p) => p == port,
                };
                scheme_ok && host_ok && port_ok
            })
            .map(|e| match e.host {
                HostPattern::Is(_) => Reach::Named,
                HostPattern::Any | HostPattern::Suffix(_) => Reach::Wildcard,
            })
            .min()
    }
}

/// Why a host may be reached; a named entry wins over a wildcard that also matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reach {
    /// An entry names the host: trusted wherever it resolves.
    Named,
    /// Only a wildcard entry covers it: its addresses are vetted, and the vetted one is used.
    Wildcard,
}

fn parse_entry(entry: &str) -> Result<Entry, String> {
    let bad = |why: &str| format!("allowed_outbound_hosts entry {entry:?}: {why}");
    let (scheme, rest) = entry
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://host[:port]"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "*" => Pattern::Any,
        s @ ("http" | "https") => Pattern::Is(s.to_owned()),
        _ => return Err(bad("the scheme must be http, https or *")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(bad("paths are not allowed"));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, "*")) => (h, PortPattern::Any),
        Some((h, p)) => (
            h,
            PortPattern::Is(
                p.parse()
                    .map_err(|_| bad("the port must be a number or *"))?,
            ),
        ),
        None => (rest, PortPattern::SchemeDefault),
    };
    let host = host.to_ascii_lowercase();
    let host = if host == "*" {
        HostPattern::Any
    } else if let Some(suffix) = host.strip_prefix("*.") {
        HostPattern::Suffix(format!(".{suffix}"))
    } else if host.is_empty() || host.contains('*') {
        return Err(bad(
            "`*` may only stand for the whole host or a leading label",
        ));
    } else {
        HostPattern::Is(host)
    };
    Ok(Entry { scheme, host, port })
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// How hosts reached only through a wildcard are resolved and vetted: one for the process.
pub(crate) struct Vetting {
    resolver: Arc<dyn Resolve>,
    /// Wildcard hosts may resolve to private addresses (local development only).
    allow_private: bool,
}

impl Vetting {
    pub(crate) fn new(resolver: Arc<dyn Resolve>, allow_private: bool) -> Self {
        Vetting {
            resolver,
            allow_private,
        }
    }
}

/// What every component's [`OutboundPolicy`] shares: the process's [`Vetting`] and [`Trust`].
pub(crate) struct Outbound {
    pub(crate) vetting: Arc<Vetting>,
    pub(crate) trust: Trust,
}

impl Outbound {
    /// The policy of `component`, which may reach `allow`.
    pub(crate) fn policy(&self, component: &str, allow: AllowList) -> OutboundPolicy {
        OutboundPolicy {
            allow,
            vetting: self.vetting.clone(),
            trust: self.trust.for_component(component),
        }
    }
}

/// What one component may reach: its allow-list, the process's [`Vetting`], and whom its
/// HTTPS requests trust (see [`crate::tls`]).
pub(crate) struct OutboundPolicy {
    allow: AllowList,
    vetting: Arc<Vetting>,
    trust: ComponentTrust,
}

impl OutboundPolicy {
    /// The addresses of a host reached through a wildcard, refused if any is private: one
    /// private answer among public ones is how a rebinding name gets in.
    async fn vet(
        &self,
        component: &str,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, HttpError> {
        let addrs = self
            .vetting
            .resolver
            .resolve(host, port)
            .await
            .map_err(|e| {
                tracing::debug!(component, host, error = %e, "outbound name resolution failed");
                HttpError::DnsError {
                    rcode: None,
                    info_code: None,
                }
            })?;
        if addrs.is_empty() {
            return Err(HttpError::DestinationNotFound);
        }
        if !self.vetting.allow_private {
            if let Some(bad) = addrs.iter().find(|a| is_private_ip(a.ip())) {
                tracing::warn!(
                    component,
                    host,
                    address = %bad.ip(),
                    "outbound request refused: a host allowed by a wildcard resolves to a private address"
                );
                return Err(HttpError::DestinationIpProhibited);
            }
        }
        Ok(addrs)
    }
}

/// Turns a name into addresses for requests to hosts reached only through a wildcard
/// ([`Options::resolver`](crate::Options::resolver)); [`SystemResolver`] unless an embedder
/// (or a test) brings its own.
pub trait Resolve: Send + Sync {
    /// The addresses of `host` (a name, or an IP literal without brackets) at `port`.
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture;
}

/// What [`Resolve::resolve`] returns.
pub type ResolveFuture =
    Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'static>>;

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> ResolveFuture {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// The `wasi:http` hooks of one request: the component's policy and the host's timeouts.
pub struct OutboundHooks {
    pub(crate) component: Arc<str>,
    pub(crate) allow: Arc<OutboundPolicy>,
    pub(crate) connect_timeout: Duration,
    pub(crate) first_byte_timeout: Duration,
}

type IoFuture = Box<dyn Future<Output = Result<(), HttpError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), HttpError>> + Send>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme().unwrap_or(&Scheme::HTTPS).as_str().to_owned();
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().or_else(|| default_port(&scheme));
        let (Some(reach), Some(port)) = (self.allow.allow.reach(&scheme, &host, port), port) else {
            tracing::warn!(
                component = %self.component,
                %scheme,
                %host,
                "outbound request refused: not in allowed_outbound_hosts"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        // The guest may ask for shorter timeouts, never longer ones.
        let options = options.unwrap_or_default();
        let shorter =
            |guest: Option<Duration>, ours: Duration| Some(guest.map_or(ours, |g| g.min(ours)));
        let options = RequestOptions {
            connect_timeout: shorter(options.connect_timeout, self.connect_timeout),
            first_byte_timeout: shorter(options.first_byte_timeout, self.first_byte_timeout),
            between_bytes_timeout: shorter(options.between_bytes_timeout, self.first_byte_timeout),
        };
        let target = Target {
            // `Uri::host` keeps an IPv6 literal's brackets; resolvers and TLS want none.
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            tls: scheme
                .eq_ignore_ascii_case("https")
                .then(|| self.allow.trust.config(&host).clone()),
        };
        match (reach, &target.tls) {
            // Plain http to a named host: wasmtime-wasi-http's own sender, as always.
            (Reach::Named, None) => Box::new(async move {
                let (response, io) =
                    wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
                Ok((
                    response.map(BodyExt::boxed_unsync),
                    Box::new(io) as IoFuture,
                ))
            }),
            // Its sender trusts the web roots only; ours, the roots chosen for this host.
            (Reach::Named, Some(_)) => {
                Box::new(async move { send_named(request, &target, options).await })
            }
            (Reach::Wildcard, _) => {
                let policy = self.allow.clone();
                let component = self.component.clone();
                Box::new(async move {
                    let deadline = Instant::now() + UNTRUSTED_DEADLINE;
                    let addrs = timeout_at(deadline, policy.vet(&component, &target.host, port))
                        .await
                        .map_err(|_| HttpError::DnsTimeout)??;
                    send_pinned(request, &addrs, &target, options, deadline).await
                })
            }
        }
    }
}

/// Where a request goes: the name it asked for, and how to trust it over https (`None`: plain
/// http).
struct Target {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

type Sender = hyper::client::conn::http1::SendRequest<WasiBody>;
type Connection = hyper::client::conn::http1::Connection<TokioIo<Box<dyn Stream>>, WasiBody>;

/// An HTTP/1.1 connection over `tcp`, with TLS for the target's name when it is https.
async fn handshake(tcp: TcpStream, target: &Target) -> Result<(Sender, Connection), HttpError> {
    let stream: Box<dyn Stream> = match &target.tls {
        Some(tls) => {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())?;
            let connector = tokio_rustls::TlsConnector::from(tls.clone());
            Box::new(connector.connect(name, tcp).await.map_err(HttpError::Tls)?)
        }
        None => Box::new(tcp),
    };
    Ok(hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?)
}

/// The connection is already the target's: the request line carries the path only (the
/// `Host` header, set by wasmtime-wasi-http, keeps the name).
fn origin_form(request: &mut http::Request<WasiBody>) -> Result<(), HttpError> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    *request.uri_mut() = http::Uri::try_from(path).map_err(|_| HttpError::HttpRequestUriInvalid)?;
    Ok(())
}

/// Sends `request` to a named https host with the TLS configuration chosen for it, bounded as
/// wasmtime-wasi-http's own sender bounds it: connecting (TCP, then TLS and HTTP handshakes)
/// by the connect timeout, the response head by the first-byte timeout, each body frame by the
/// between-bytes timeout.
async fn send_named(
    mut request: http::Request<WasiBody>,
    target: &Target,
    options: RequestOptions,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let connect_timeout = options.connect_timeout.unwrap_or(NAMED_DEFAULT_TIMEOUT);
    let tcp = timeout(
        connect_timeout,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)?
    .map_err(HttpError::Connect)?;
    let (mut sender, conn) = timeout(connect_timeout, handshake(tcp, target))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let conn = tokio::spawn(conn);
    origin_form(&mut request)?;
    let first_byte = options.first_byte_timeout.unwrap_or(NAMED_DEFAULT_TIMEOUT);
    let response = timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let between = options
        .between_bytes_timeout
        .unwrap_or(NAMED_DEFAULT_TIMEOUT);
    let io = async move {
        match conn.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.is_timeout() => Err(HttpError::HttpResponseTimeout),
            Ok(Err(e)) => Err(HttpError::from(e)),
            Err(_panicked_or_cancelled) => Err(HttpError::ConnectionTerminated),
        }
    };
    Ok((
        response.map(|body| BetweenBytes::new(body, between).boxed_unsync()),
        Box::new(io) as IoFuture,
    ))
}

/// wasmtime-wasi-http's timeout when neither the guest nor the host sets one (the host always
/// does: see [`OutboundHooks`]).
const NAMED_DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Sends `request` over a connection to one of `addrs` (the first that accepts), with TLS for
/// the target's name, and bounds the whole exchange by `deadline` and [`UNTRUSTED_MAX_BODY`].
async fn send_pinned(
    mut request: http::Request<WasiBody>,
    addrs: &[SocketAddr],
    target: &Target,
    options: RequestOptions,
    deadline: Instant,
) -> Result<(http::Response<WasiBody>, IoFuture), HttpError> {
    let connect_timeout = options.connect_timeout.unwrap_or(UNTRUSTED_DEADLINE);
    let first_byte = Instant::now() + options.first_byte_timeout.unwrap_or(UNTRUSTED_DEADLINE);
    let connect = async { handshake(connect_any(addrs).await?, target).await };
    let (mut sender, conn) = timeout_at(deadline, timeout(connect_timeout, connect))
        .await
        .and_then(|r| r)
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let conn = tokio::spawn(timeout_at(deadline, conn));
    origin_form(&mut request)?;
    let response = timeout_at(first_byte.min(deadline), sender.send_request(request))
        .await
        .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let io = async move {
        match conn.await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(HttpError::from(e)),
            Ok(Err(_elapsed)) => Err(HttpError::HttpResponseTimeout),
            Err(_panicked_or_cancelled) => Err(HttpError::ConnectionTerminated),
        }
    };
    Ok((
        response.map(|body| Capped::new(body, deadline).boxed_unsync()),
        Box::new(io) as IoFuture,
    ))
}

/// A TCP connection to the first of `addrs` that accepts.
async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last = HttpError::DestinationNotFound;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = HttpError::Connect(e),
        }
    }
    Err(last)
}

/// A response body that fails when the next frame takes longer than its timeout.
struct BetweenBytes {
    inner: Incoming,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

impl BetweenBytes {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        BetweenBytes {
            inner,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer.as_mut().reset(Instant::now() + this.timeout);
                Poll::Ready(frame.map(|f| {
                    f.map_err(|e| match e.is_timeout() {
                        true => HttpError::HttpResponseTimeout,
                        false => HttpError::from(e),
                    })
                }))
            }
            Poll::Pending => {
                ready!(this.timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

/// A response body that fails at the exchange's deadline or past [`UNTRUSTED_MAX_BODY`].
struct Capped {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    left: usize,
}

impl Capped {
    fn new(inner: Incoming, deadline: Instant) -> Self {
        Capped {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            left: UNTRUSTED_MAX_BODY,
        }
    }
}

impl Body for Capped {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(HttpError::HttpResponseTimeout)));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            Some(Err(e)) => return Poll::Ready(Some(Err(HttpError::from(e)))),
            None => return Poll::Ready(None),
        };
        if let Some(data) = frame.data_ref() {
            if data.len() > this.left {
                return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                    UNTRUSTED_MAX_BODY as u64,
                )))));
            }
            this.left -= data.len();
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(entries).unwrap()
    }

    #[test]
    fn exact_hosts_and_default_ports() {
        let l = list(&["https://upstream.example.com"]);
        assert!(l.reach("https", "upstream.example.com", None).is_some());
        assert!(l
            .reach("https", "UPSTREAM.example.com", Some(443))
            .is_some());
        assert_eq!(l.reach("https", "upstream.example.com", Some(8443)), None);
        assert_eq!(l.reach("http", "upstream.example.com", None), None);
        assert_eq!(l.reach("https", "evil.example.com", None), None);
    }

    #[test]
    fn wildcards() {
        let l = list(&[
            "https://*.example.com",
            "http://127.0.0.1:*",
            "*://any.test:8080",
        ]);
        assert!(l.reach("https", "a.example.com", None).is_some());
        assert!(l.reach("https", "a.b.example.com", None).is_some());
        assert_eq!(l.reach("https", "example.com", None), None);
        assert_eq!(l.reach("https", "badexample.com", None), None);
        assert!(l.reach("http", "127.0.0.1", Some(41234)).is_some());
        assert!(l.reach("http", "127.0.0.1", None).is_some());
        assert!(l.reach("http", "any.test", Some(8080)).is_some());
        assert!(l.reach("https", "any.test", Some(8080)).is_some());
        assert_eq!(l.reach("https", "any.test", None), None);
        let all = list(&["*://*:*"]);
        assert!(all.reach("http", "x.y", Some(1)).is_some());
        assert!(list(&[]) == AllowList::default());
        assert_eq!(list(&[]).reach("https", "x", None), None);
    }

    #[test]
    fn a_named_entry_wins_over_a_wildcard() {
        let l = list(&[
            "https://*:*",
            "http://*.internal",
            "http://auth.internal:8000",
        ]);
        assert_eq!(
            l.reach("https", "cimd.example", None),
            Some(Reach::Wildcard)
        );
        assert_eq!(l.reach("http", "x.internal", None), Some(Reach::Wildcard));
        assert_eq!(
            l.reach("http", "auth.internal", Some(8000)),
            Some(Reach::Named)
        );
        assert_eq!(
            l.reach("http", "auth.internal", None),
            Some(Reach::Wildcard)
        );
        assert_eq!(l.reach("http", "auth.internal", Some(9000)), None);
    }

    #[test]
    fn refuses_malformed_entries() {
        for bad in [
            "example.com",
            "ftp://x",
            "https://x/path",
            "https://a*b.com",
            "https://x:port",
        ] {
            assert!(AllowList::parse(&[bad]).is_err(), "{bad}");
        }
    }
}
