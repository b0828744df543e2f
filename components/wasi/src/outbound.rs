//! [`Upstream`] over `wasi:http/outgoing-handler`: one blocking round trip.
//!
//! `outgoing-handler` sends exactly the request it is given and never follows redirects, so
//! a 3xx comes back to the core as it is (OAuth token and userinfo endpoints do not
//! redirect; a CIMD fetch must not be steered elsewhere). Time is bounded by the request
//! options' timeouts, size by [`MAX_RESPONSE_BODY`]. Which hosts are reachable at all is the
//! host's business (Spin's `allowed_outbound_hosts`, our host's allow-list).

use mcp_auth_core::{OutgoingRequest, Upstream, UpstreamError, UpstreamResponse};

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types::{
    Fields, IncomingResponse, OutgoingRequest as WasiRequest, RequestOptions, Scheme,
};
use crate::message;

/// Largest upstream response body we read (token responses, user info and CIMD documents
/// are a few KiB).
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;
const CONNECT_TIMEOUT_NS: u64 = 5_000_000_000;
const FIRST_BYTE_TIMEOUT_NS: u64 = 10_000_000_000;
const BETWEEN_BYTES_TIMEOUT_NS: u64 = 10_000_000_000;

/// Outbound HTTP through the host: for `authorize` (the provider, OIDC discovery, metadata
/// documents) and `token` (the provider's token endpoint, to refresh upstream tokens).
pub struct Http;

/// No outbound HTTP at all: for the components that spin.toml does not let out. Passing this
/// instead of [`Http`] keeps `wasi:http/outgoing-handler` out of the component's imports, so
/// least privilege is visible in the `.wasm` itself, not only in the manifest.
pub struct Denied;

impl Upstream for Denied {
    fn send(&self, request: &OutgoingRequest) -> Result<UpstreamResponse, UpstreamError> {
        Err(UpstreamError(format!(
            "{}: this component makes no outbound requests",
            request.url
        )))
    }
}

impl Upstream for Http {
    fn send(&self, request: &OutgoingRequest) -> Result<UpstreamResponse, UpstreamError> {
        let outgoing = build(request)?;
        let options = options();
        let future = outgoing_handler::handle(outgoing, Some(options))
            .map_err(|e| UpstreamError(format!("{}: {e:?}", request.url)))?;
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(UpstreamError(format!("{}: {e:?}", request.url))),
            // Ready after `block`, and `get` is called once: neither can happen.
            Some(Err(())) | None => {
                return Err(UpstreamError(format!("{}: no response", request.url)))
            }
        };
        read(response).map_err(|e| UpstreamError(format!("{}: {e}", request.url)))
    }
}

fn build(request: &OutgoingRequest) -> Result<WasiRequest, UpstreamError> {
    let err = |what: &str| UpstreamError(format!("{}: {what}", request.url));
    let url = url::Url::parse(&request.url).map_err(|_| err("not a URL"))?;
    let scheme = match url.scheme() {
        "https" => Scheme::Https,
        "http" => Scheme::Http,
        _ => return Err(err("only http and https are supported")),
    };
    let host = url.host_str().ok_or_else(|| err("no host"))?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let path_with_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_string(),
    };

    let entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into_bytes()))
        .collect();
    let headers = Fields::from_list(&entries).map_err(|e| err(&format!("header: {e:?}")))?;
    let outgoing = WasiRequest::new(headers);
    outgoing
        .set_method(&method(request.method))
        .map_err(|()| err("bad method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| err("bad scheme"))?;
    outgoing
        .set_authority(Some(&authority))
        .map_err(|()| err("bad authority"))?;
    outgoing
        .set_path_with_query(Some(&path_with_query))
        .map_err(|()| err("bad path"))?;
    let body = outgoing.body().map_err(|()| err("no body"))?;
    message::write_all(body, &request.body).map_err(|e| err(&e))?;
    Ok(outgoing)
}

/// Timeouts, each best effort: a host that does not support one refuses to set it, and the
/// request still goes out under the host's own limits.
fn options() -> RequestOptions {
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(CONNECT_TIMEOUT_NS));
    let _ = options.set_first_byte_timeout(Some(FIRST_BYTE_TIMEOUT_NS));
    let _ = options.set_between_bytes_timeout(Some(BETWEEN_BYTES_TIMEOUT_NS));
    options
}

fn method(method: mcp_auth_core::Method) -> crate::bindings::wasi::http::types::Method {
    use crate::bindings::wasi::http::types::Method as M;
    use mcp_auth_core::Method;
    match method {
        Method::Get => M::Get,
        Method::Head => M::Head,
        Method::Post => M::Post,
        Method::Put => M::Put,
        Method::Delete => M::Delete,
        Method::Options => M::Options,
        Method::Other => M::Other("OTHER".into()),
    }
}

fn read(response: IncomingResponse) -> Result<UpstreamResponse, String> {
    let status = response.status();
    let headers = message::header_list(&response.headers());
    let bytes = message::read_body(response.consume(), MAX_RESPONSE_BODY)?;
    if bytes.len() > MAX_RESPONSE_BODY {
        return Err(format!(
            "response body larger than {MAX_RESPONSE_BODY} bytes"
        ));
    }
    Ok(UpstreamResponse {
        status,
        headers,
        body: bytes,
    })
}
