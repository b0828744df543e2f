//! `mcp-auth`: a wasmtime host that serves the mcp-auth components from the same `spin.toml`
//! as Fermyon Spin, with the same routes, request headers, variables, key-value stores and
//! outbound allow-lists, so the components behave the same under both hosts.
//!
//! The host works in three phases, like Spin's factors: the **process** phase builds one engine
//! (pooling allocator, epoch interruption) and one linker with every host interface; the **app**
//! phase reads the manifest, resolves variables, opens the key-value backends and precompiles
//! and pre-instantiates each component (pre-initialized first when it exports
//! `wizer-initialize`, see `preinit`; cached on disk by content hash); the **request** phase
//! serves each request in a fresh instance from the pool, bounded in time and memory.
//!
//! # Embedding
//!
//! ```no_run
//! use mcp_auth_host::{Options, Server};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::new("spin.toml", Options::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! let stop = server.shutdown_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     stop.shutdown();
//! });
//! server.serve(listener).await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod admin;
mod app;
mod cache;
mod config;
mod engine;
mod error;
mod instances;
mod keyvalue;
pub mod manifest;
mod metrics;
pub mod outbound;
mod preinit;
mod request;
pub mod routing;
mod server;
mod state;
pub mod tls;
pub mod variables;

pub use cache::default_dir as default_cache_dir;
pub use error::Error;
pub use server::{
    Limits, Options, Server, ShutdownHandle, DEFAULT_INSTANCE_REUSE, VETTED_CIMD_OUTBOUND_HOST,
};
