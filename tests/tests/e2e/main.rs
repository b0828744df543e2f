//! End-to-end tests over real HTTP: `mcp-auth serve` (the built host binary) serving the
//! built `wasm32-wasip2` components from the repository's `spin.toml`, driven like an MCP
//! client, a user's browser and a resource server would, with a fake TaskManager upstream and
//! a real `redis-server`; the pages people see also in headless Chromium.
//!
//! Needs: the components built (`cargo build --target wasm32-wasip2 --release`, which
//! `scripts/test` runs first), `redis-server` on `PATH` (or `REDIS_SERVER`), and Debian's
//! `chromium` and `chromedriver` (or `CHROMIUM`, `CHROMEDRIVER`). The host
//! binary is built by the first test (`cargo build -p mcp-auth-host --bin mcp-auth`).

mod support;

mod chromium;
mod device;
mod local_login;
mod restart;
mod stores;
mod taskmanager;
