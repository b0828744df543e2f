#![no_main]
//! `mcp_auth_core::fuzz::handle` under libFuzzer: see `scripts/fuzz`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcp_auth_core::fuzz::handle(data));
