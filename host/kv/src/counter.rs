//! Counters as the SQLite and memory backends keep them: 8-byte little-endian `i64`, the
//! encoding Spin's SQLite key-value store writes, so counters survive a move between hosts.

use crate::Error;

/// Decode the counter under `key` (absent = 0).
pub(crate) fn decode(key: &str, stored: Option<&[u8]>) -> Result<i64, Error> {
    match stored {
        None => Ok(0),
        Some(bytes) => bytes.try_into().map(i64::from_le_bytes).map_err(|_| {
            Error(format!(
                "cannot increment `{key}`: it holds a {}-byte value, not an 8-byte counter",
                bytes.len()
            ))
        }),
    }
}

/// `current + delta`, or an error instead of wrapping around.
pub(crate) fn add(key: &str, current: i64, delta: i64) -> Result<i64, Error> {
    current.checked_add(delta).ok_or_else(|| {
        Error(format!(
            "cannot increment `{key}`: {current} + {delta} overflows i64"
        ))
    })
}

/// The stored form of a counter.
pub(crate) fn encode(value: i64) -> [u8; 8] {
    value.to_le_bytes()
}
