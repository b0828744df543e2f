//! Headers and bodies in `wasi:http`, shared by incoming requests and upstream round trips.

use crate::bindings::wasi::http::types::{Fields, IncomingBody, OutgoingBody};
use crate::bindings::wasi::io::streams::{InputStream, StreamError};

/// The most `blocking-write-and-flush` accepts in one call (`wasi:io/streams`).
const WRITE_CHUNK: usize = 4096;
/// How much one read asks for.
const READ_CHUNK: usize = 16 * 1024;

/// Header fields as the core keeps them: names lower-cased, values as text (a value that is
/// not UTF-8 keeps its readable part rather than vanishing).
pub fn header_list(fields: &Fields) -> Vec<(String, String)> {
    fields
        .entries()
        .into_iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                String::from_utf8_lossy(&value).into_owned(),
            )
        })
        .collect()
}

/// Read an incoming body (a request's or a response's, as `consume` hands it over) with
/// [`read_up_to`].
pub fn read_body(body: Result<IncomingBody, ()>, limit: usize) -> Result<Vec<u8>, String> {
    let body = body.map_err(|()| "the body was already taken".to_string())?;
    // Declared after `body`, so dropped before it: a stream must go before its body.
    let stream = body
        .stream()
        .map_err(|()| "the body stream was already taken".to_string())?;
    read_up_to(&stream, limit)
}

/// Read until the stream closes or more than `limit` bytes arrived: at most `limit + 1`
/// bytes come back, so the caller tells "exactly at the limit" from "over it" without
/// reading (or buffering) an unbounded body.
fn read_up_to(stream: &InputStream, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while body.len() <= limit {
        let want = (limit + 1 - body.len()).min(READ_CHUNK);
        match stream.blocking_read(want as u64) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(err)) => return Err(err.to_debug_string()),
        }
    }
    Ok(body)
}

/// Write all of `bytes` into `body` and finish it (no trailers).
pub fn write_all(body: OutgoingBody, bytes: &[u8]) -> Result<(), String> {
    let stream = body
        .write()
        .map_err(|()| "the body stream was already taken".to_string())?;
    for chunk in bytes.chunks(WRITE_CHUNK) {
        stream
            .blocking_write_and_flush(chunk)
            .map_err(|err| match err {
                StreamError::Closed => "the peer closed the body stream".to_string(),
                StreamError::LastOperationFailed(err) => err.to_debug_string(),
            })?;
    }
    // The stream is a child of the body: it must be gone before the body is finished.
    drop(stream);
    OutgoingBody::finish(body, None).map_err(|err| format!("{err:?}"))
}
