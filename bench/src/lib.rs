//! The mcp-auth benchmark (`scripts/bench`): starts `mcp-auth serve` on the embedded store (and
//! on Redis with `--store`), drives each scenario at fixed concurrency for a fixed time with
//! its own load generator, and prints req/s, p50, p99 and the host's peak RSS beside two
//! baselines measured in the same run: a trivial component through the same host (our
//! ceiling, itself against a plain hyper server) and two peers users would pick instead:
//! oidc-provider, and the MCP Python SDK's own authorization server routes.
//!
//! The library holds the parts the smoke test reuses; `main.rs` is the command.

pub mod load;
pub mod mcp_auth;
pub mod oidc_provider;
pub mod process;
pub mod python_peer;
pub mod report;
