//! The client's address behind trusted proxies, for every rate limit and audit event.
//!
//! A reverse proxy in front of us makes every request come from the proxy's address, so each
//! limit would count all clients together. When the peer is one of `trusted_proxies`, the
//! client is found in the forwarding headers the proxies append to: `X-Forwarded-For` and
//! RFC 7239 `Forwarded` (`for=`). Each proxy appends the address it received the request from,
//! so the chain is walked from the right, skipping trusted proxies; the first untrusted
//! address is the client (RFC 7239 §5.2; anything to its left was written by the client and
//! is never believed). A peer outside `trusted_proxies` is the client, whatever it sends.
//!
//! Anything doubtful falls back to the peer: a malformed or obfuscated entry on the walk
//! (`unknown`, `_hidden`), a `Forwarded` element without `for=`, or the two headers naming
//! different clients (a client forging the header its proxy does not write).
//!
//! The origin the client addressed is the request's authority, unless a trusted proxy says
//! otherwise with `X-Forwarded-Host` / `X-Forwarded-Proto`: from any other peer those are
//! removed before a handler sees them, so a client cannot choose the origin our documents
//! name (a shared cache would keep what it chose).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::http::Request;

/// The headers in which a proxy names the origin the client addressed.
const ORIGIN_HEADERS: [&str; 2] = ["x-forwarded-host", "x-forwarded-proto"];

/// `req` as the handlers should see it, when that differs from how it came: from a trusted
/// proxy, `client_addr` is the client it names; from any other peer, the
/// [`ORIGIN_HEADERS`] are gone (unless `keep_origin`: ForwardAuth, whose forwarded headers
/// are the question asked, not a claim about this request). `None`: `req` as it came.
pub fn as_seen(trusted: &[IpNet], req: &Request, keep_origin: bool) -> Option<Request> {
    if peer_is_trusted(trusted, req) {
        let client = behind_proxies(trusted, req)?;
        return Some(Request {
            client_addr: Some(client),
            ..req.clone()
        });
    }
    let forged = |name: &str| ORIGIN_HEADERS.contains(&name);
    if keep_origin || !req.headers.iter().any(|(name, _)| forged(name)) {
        return None;
    }
    let mut seen = req.clone();
    seen.headers.retain(|(name, _)| !forged(name));
    Some(seen)
}

/// Is the peer one of the `trusted` proxies?
fn peer_is_trusted(trusted: &[IpNet], req: &Request) -> bool {
    req.client_addr
        .as_deref()
        .and_then(parse_addr)
        .is_some_and(|peer| trusted.iter().any(|net| net.contains(&peer)))
}

/// The client address of `req` when its peer is a trusted proxy and the forwarding headers
/// name a client; `None` keeps the peer's address.
pub fn behind_proxies(trusted: &[IpNet], req: &Request) -> Option<String> {
    if !peer_is_trusted(trusted, req) {
        return None;
    }
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let chains = [
        header_values(req, "x-forwarded-for").map(|v| parse_list(&v, parse_addr)),
        header_values(req, "forwarded").map(|v| parse_list(&v, forwarded_for)),
    ];
    let mut client = None;
    for chain in chains.into_iter().flatten() {
        let found = client_in(&chain, &is_trusted)?;
        if client.is_some_and(|c| c != found) {
            return None;
        }
        client = Some(found);
    }
    client.map(|ip| ip.to_string())
}

/// Walks `chain` (leftmost: the original client) from the right past trusted addresses.
/// `None` when an entry on the walk could not be read; when every entry is trusted, the
/// leftmost one (a client inside a trusted network).
fn client_in(chain: &[Option<IpAddr>], is_trusted: &dyn Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    let mut last = None;
    for entry in chain.iter().rev() {
        let ip = (*entry)?;
        if !is_trusted(&ip) {
            return Some(ip);
        }
        last = Some(ip);
    }
    last
}

/// Every value of header `name`, joined in order as one list (RFC 9110 §5.3).
fn header_values(req: &Request, name: &str) -> Option<String> {
    let values: Vec<&str> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// A comma-separated list; an unreadable entry is `None` (it matters only if the walk
/// reaches it).
fn parse_list(value: &str, entry: fn(&str) -> Option<IpAddr>) -> Vec<Option<IpAddr>> {
    value.split(',').map(|e| entry(e.trim())).collect()
}

/// The `for=` of one RFC 7239 element (`for=192.0.2.60;proto=http`, `for="[2001:db8::1]:80"`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    parse_addr(value)
}

/// `192.0.2.1`, `192.0.2.1:80`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:80`;
/// IPv4-mapped IPv6 addresses as their IPv4 form.
fn parse_addr(s: &str) -> Option<IpAddr> {
    let ip = s
        .parse::<IpAddr>()
        .or_else(|_| s.parse::<SocketAddr>().map(|a| a.ip()))
        .or_else(|_| {
            s.strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or("")
                .parse::<IpAddr>()
        })
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn from(peer: &str, headers: &[(&str, &str)]) -> Request {
        let mut req = Request::new(Method::Get, "/");
        req.client_addr = Some(peer.into());
        for (n, v) in headers {
            req = req.with_header(n, v);
        }
        req
    }

    fn client(peer: &str, headers: &[(&str, &str)]) -> Option<String> {
        behind_proxies(
            &nets(&["10.0.0.0/8", "2001:db8:ff::/48"]),
            &from(peer, headers),
        )
    }

    #[test]
    fn the_first_untrusted_address_from_the_right_is_the_client() {
        let xff = |v| client("10.0.0.1", &[("x-forwarded-for", v)]);
        assert_eq!(xff("203.0.113.9").as_deref(), Some("203.0.113.9"));
        assert_eq!(
            xff("forged, 198.51.100.1, 203.0.113.9, 10.0.0.2").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(xff("10.1.1.1, 10.0.0.2").as_deref(), Some("10.1.1.1"));
        assert_eq!(xff("[2001:db8::1]:4711").as_deref(), Some("2001:db8::1"));
        assert_eq!(xff("203.0.113.9:4711").as_deref(), Some("203.0.113.9"));
        assert_eq!(xff("::ffff:203.0.113.9").as_deref(), Some("203.0.113.9"));
        let split = from(
            "10.0.0.1",
            &[
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-for", "10.0.0.3"),
            ],
        );
        assert_eq!(
            behind_proxies(&nets(&["10.0.0.0/8"]), &split).as_deref(),
            Some("203.0.113.9")
        );
    }

    #[test]
    fn rfc7239_forwarded_is_read_too() {
        let fwd = |v| client("2001:db8:ff::1", &[("forwarded", v)]);
        assert_eq!(
            fwd("for=198.51.100.7;proto=https, For=\"[2001:db8:ff::2]:80\"").as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(fwd("for=unknown"), None);
        assert_eq!(fwd("proto=https"), None);
        // Both headers must agree.
        let both = |f, x| client("10.0.0.1", &[("forwarded", f), ("x-forwarded-for", x)]);
        assert_eq!(
            both("for=203.0.113.9", "203.0.113.9").as_deref(),
            Some("203.0.113.9")
        );
        assert_eq!(both("for=192.0.2.1", "203.0.113.9"), None);
    }

    #[test]
    fn untrusted_peers_and_doubtful_headers_keep_the_peer() {
        assert_eq!(
            client("198.51.100.1", &[("x-forwarded-for", "203.0.113.9")]),
            None
        );
        assert_eq!(
            behind_proxies(
                &[],
                &from("10.0.0.1", &[("x-forwarded-for", "203.0.113.9")])
            ),
            None
        );
        for bad in [
            "",
            "garbage",
            "203.0.113.9, _hidden",
            "203.0.113.9,, 10.0.0.2",
        ] {
            assert_eq!(
                client("10.0.0.1", &[("x-forwarded-for", bad)]),
                None,
                "{bad}"
            );
        }
        assert_eq!(client("10.0.0.1", &[]), None);
        // An unreadable entry left of the client is the client's own business.
        assert_eq!(
            client("10.0.0.1", &[("x-forwarded-for", "garbage, 203.0.113.9")]).as_deref(),
            Some("203.0.113.9")
        );
    }
}
