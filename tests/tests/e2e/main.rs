//! End-to-end tests over real HTTP: `mcp-auth serve` (the built host binary) serving the
//! built `wasm32-wasip2` components from the repository's `spin.toml`, driven like an MCP
//! client, a user's browser and a resource server would, with a fake TaskManager upstream and
//! a real `redis-server`.
//!
//! Needs: the components built (`cargo build --target wasm32-wasip2 --release`, which
//! `scripts/test` runs first), `redis-server` on `PATH` (or `REDIS_SERVER`), and for the SDK
//! tests a Python with `tests/python/requirements.txt` (`MCP_AUTH_PYTHON`, or `target/venv`,
//! which `scripts/test` prepares). The host binary is built by the first test (`cargo build -p
//! mcp-auth-host --bin mcp-auth`).

mod support;

mod device;
mod faults;
mod local_login;
mod restart;
mod sdk;
mod stores;
mod taskmanager;
