//! Reading and writing `wasi:io` stream bodies, shared by incoming requests and upstream
//! round trips.

use crate::bindings::wasi::http::types::OutgoingBody;
use crate::bindings::wasi::io::streams::{InputStream, StreamError};

/// The most `blocking-write-and-flush` accepts in one call (`wasi:io/streams`).
const WRITE_CHUNK: usize = 4096;
/// How much one read asks for.
const READ_CHUNK: usize = 16 * 1024;

/// Read until the stream closes or more than `limit` bytes arrived: at most `limit + 1`
/// bytes come back, so the caller tells "exactly at the limit" from "over it" without
/// reading (or buffering) an unbounded body.
pub fn read_up_to(stream: &InputStream, limit: usize) -> Result<Vec<u8>, String> {
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
