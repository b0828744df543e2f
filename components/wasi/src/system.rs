//! [`Clock`] over `wasi:clocks/wall-clock` and [`Rng`] over `wasi:random/random`.

use mcp_auth_core::{Clock, Rng};

use crate::bindings::wasi::clocks::wall_clock;
use crate::bindings::wasi::random::random;

/// Wall-clock seconds since the Unix epoch (token `iat`/`exp`, record expiry).
pub struct WallClock;

impl Clock for WallClock {
    fn now(&self) -> u64 {
        wall_clock::now().seconds
    }
}

/// The host's cryptographically secure random source (`wasi:random/random` promises one).
pub struct Random;

impl Rng for Random {
    fn fill(&self, buf: &mut [u8]) {
        let bytes = random::get_random_bytes(buf.len() as u64);
        // `get-random-bytes` promises exactly `len` bytes. A host that broke the promise must
        // not get predictable secrets out of us: trap (the request fails with a 500).
        assert_eq!(bytes.len(), buf.len(), "wasi:random returned a short read");
        buf.copy_from_slice(&bytes);
    }
}
