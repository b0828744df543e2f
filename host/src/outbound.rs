//! Outbound HTTP policy: the manifest's `allowed_outbound_hosts`, enforced per component in the
//! `wasi:http` send hook (where wasmtime-wasi-http puts policy), plus connect and first-byte
//! timeouts.
//!
//! Entries follow Spin's format: `scheme://host[:port]`, where the scheme is `http`, `https` or
//! `*`, the host is a name, `*` or `*.suffix` (sub-domains only), and the port is a number or `*`
//! (omitted: the scheme's default port). A refused request fails with `HttpRequestDenied`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::uri::Scheme;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

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

    /// Whether a request to `scheme://host:port` may go out.
    pub fn allows(&self, scheme: &str, host: &str, port: Option<u16>) -> bool {
        let scheme = scheme.to_ascii_lowercase();
        let host = host.to_ascii_lowercase();
        let Some(port) = port.or_else(|| default_port(&scheme)) else {
            return false;
        };
        self.entries.iter().any(|e| {
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
    }
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

/// The `wasi:http` hooks of one request: the component's allow-list and the host's timeouts.
pub struct OutboundHooks {
    pub(crate) component: Arc<str>,
    pub(crate) allow: Arc<AllowList>,
    pub(crate) connect_timeout: Duration,
    pub(crate) first_byte_timeout: Duration,
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        let uri = request.uri();
        let scheme = uri.scheme().unwrap_or(&Scheme::HTTPS).as_str().to_owned();
        let host = uri.host().unwrap_or_default().to_owned();
        if !self.allow.allows(&scheme, &host, uri.port_u16()) {
            tracing::warn!(
                component = %self.component,
                %scheme,
                %host,
                "outbound request refused: not in allowed_outbound_hosts"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        // The guest may ask for shorter timeouts, never longer ones.
        let options = options.unwrap_or_default();
        let shorter =
            |guest: Option<Duration>, ours: Duration| Some(guest.map_or(ours, |g| g.min(ours)));
        let options = RequestOptions {
            connect_timeout: shorter(options.connect_timeout, self.connect_timeout),
            first_byte_timeout: shorter(options.first_byte_timeout, self.first_byte_timeout),
            between_bytes_timeout: shorter(options.between_bytes_timeout, self.first_byte_timeout),
        };
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
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
        assert!(l.allows("https", "upstream.example.com", None));
        assert!(l.allows("https", "UPSTREAM.example.com", Some(443)));
        assert!(!l.allows("https", "upstream.example.com", Some(8443)));
        assert!(!l.allows("http", "upstream.example.com", None));
        assert!(!l.allows("https", "evil.example.com", None));
    }

    #[test]
    fn wildcards() {
        let l = list(&[
            "https://*.example.com",
            "http://127.0.0.1:*",
            "*://any.test:8080",
        ]);
        assert!(l.allows("https", "a.example.com", None));
        assert!(l.allows("https", "a.b.example.com", None));
        assert!(!l.allows("https", "example.com", None));
        assert!(!l.allows("https", "badexample.com", None));
        assert!(l.allows("http", "127.0.0.1", Some(41234)));
        assert!(l.allows("http", "127.0.0.1", None));
        assert!(l.allows("http", "any.test", Some(8080)));
        assert!(l.allows("https", "any.test", Some(8080)));
        assert!(!l.allows("https", "any.test", None));
        let all = list(&["*://*:*"]);
        assert!(all.allows("http", "x.y", Some(1)));
        assert!(list(&[]) == AllowList::default());
        assert!(!list(&[]).allows("https", "x", None));
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
