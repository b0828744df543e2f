//! End-to-end tests over real HTTP: `mcp-auth serve` (the built host binary) serving the
//! built `wasm32-wasip2` components from the repository's `spin.toml`, driven like an MCP
//! client, a user's browser and a resource server would, with a fake TaskManager upstream and
//! a real `redis-server`; the pages people see also in headless Chromium.
//!
//! Needs: the components built (`cargo build --target wasm32-wasip2 --release`, which
//! `scripts/test` runs first), `redis-server` on `PATH` (or `REDIS_SERVER`), Debian's `chromium`
//! and `chromedriver` (or `CHROMIUM`, `CHROMEDRIVER`), and for the SDK tests a Python with
//! `tests/python/requirements.txt` (`MCP_AUTH_PYTHON`, or `target/venv`, which `scripts/test`
//! prepares). The host binary is built by the first test (`cargo test --workspace --no-run`).

mod support;

mod chromium;
mod device;
mod faults;
mod inspector;
mod local_login;
mod proxies;
mod restart;
mod rs256;
mod sdk;
mod sdk_servers;
mod stores;
mod taskmanager;
mod token_exchange;
mod trust_roots;
