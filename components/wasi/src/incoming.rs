//! The incoming request as the core's [`Request`], and the core's [`Response`] back out
//! through `wasi:http/types`.

use mcp_auth_core::error::OAuthError;
use mcp_auth_core::http::MAX_BODY;
use mcp_auth_core::{Method, Request, Response};

use crate::bindings::wasi::http::types::{
    ErrorCode as HttpErrorCode, Fields, IncomingRequest, Method as WasiMethod, OutgoingBody,
    OutgoingResponse, ResponseOutparam,
};
use crate::message;

/// The header in which Spin (and our host) pass the client's `ip:port`.
pub const CLIENT_ADDR_HEADER: &str = "spin-client-addr";

/// Read method, path and query, headers and at most [`MAX_BODY`]` + 1` bytes of body. A
/// longer body is cut there and the core answers `413` (after routing, so an unknown path
/// is still a 404); an unreadable one is a `400` right here.
pub fn read_request(request: IncomingRequest) -> Result<Request, Response> {
    let method = Method::parse(match &request.method() {
        WasiMethod::Get => "GET",
        WasiMethod::Head => "HEAD",
        WasiMethod::Post => "POST",
        WasiMethod::Put => "PUT",
        WasiMethod::Delete => "DELETE",
        WasiMethod::Options => "OPTIONS",
        WasiMethod::Connect | WasiMethod::Trace | WasiMethod::Patch | WasiMethod::Other(_) => {
            "OTHER"
        }
    });
    let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
    let mut parsed = Request::new(method, &path_with_query);
    parsed.headers = message::header_list(&request.headers());
    // wasi:http forbids a `host` header; the authority is where Spin and our host put it.
    parsed.authority = request.authority();
    parsed.client_addr = parsed.header(CLIENT_ADDR_HEADER).map(client_ip);
    parsed.body = message::read_body(request.consume(), MAX_BODY).map_err(|why| {
        OAuthError::invalid_request(format!("could not read the request body: {why}"))
            .into_response()
    })?;
    Ok(parsed)
}

/// `ip:port` → `ip` (`[::1]:80` → `::1`); anything else is kept as it came.
fn client_ip(addr: &str) -> String {
    addr.parse::<std::net::SocketAddr>()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|_| addr.to_string())
}

/// Send `response`. Failures past this point can only be logged: the client is gone, or
/// the host refused a header the core made (a bug worth a line on stderr, not a trap).
pub fn send_response(out: ResponseOutparam, response: Response) {
    let headers = Fields::new();
    for (name, value) in &response.headers {
        if let Err(e) = headers.append(name, value.as_bytes()) {
            eprintln!("mcp-auth: response header `{name}` refused: {e:?}");
        }
    }
    let outgoing = OutgoingResponse::new(headers);
    if outgoing.set_status_code(response.status).is_err() {
        eprintln!("mcp-auth: status {} refused", response.status);
        let _ = outgoing.set_status_code(500);
    }
    let body: OutgoingBody = match outgoing.body() {
        Ok(body) => body,
        Err(()) => {
            let why = "the response body was already taken".to_string();
            ResponseOutparam::set(out, Err(HttpErrorCode::InternalError(Some(why))));
            return;
        }
    };
    ResponseOutparam::set(out, Ok(outgoing));
    if let Err(e) = message::write_all(body, &response.body) {
        eprintln!("mcp-auth: writing the response body failed: {e}");
    }
}
