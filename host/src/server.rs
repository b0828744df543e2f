//! The embedding API: build a [`Server`] from a manifest, `serve` it on a listener, `shutdown`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use mcp_auth_kv::Store;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::app::App;
use crate::engine::Runtime;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::metrics::Metrics;
use crate::outbound::{Outbound, Resolve, SystemResolver, Vetting};
use crate::request::{self, Shared};
use crate::tls::{Trust, TrustSources};
use crate::variables::{self, Variables};

/// Per-request limits. The defaults suit the mcp-auth components (small JSON and HTML).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Instances served at once: the size of the instance pool and of the semaphore in front
    /// of it. Requests beyond it wait (within their time limit).
    pub max_concurrent_requests: u32,
    /// Wall time of one request, from routing to the last byte of the response.
    pub request_timeout: Duration,
    /// Linear memory of one instance.
    pub max_memory_bytes: usize,
    /// Request body; larger ones get 413.
    pub max_request_body_bytes: usize,
    /// Response body; a guest that writes more gets a 500.
    pub max_response_body_bytes: usize,
    /// Outbound connect timeout (a guest may ask for less).
    pub outbound_connect_timeout: Duration,
    /// Outbound time to the first response byte, and between bytes (a guest may ask for less).
    pub outbound_first_byte_timeout: Duration,
    /// Requests one instance may serve, one after another (`mcp-auth serve --instance-reuse`):
    /// 1 is a fresh instance per request; `u32::MAX` is no bound. An instance that traps, runs
    /// out of time or memory, or leaves a resource of its request behind is never reused (see
    /// the `instances` module).
    pub instance_reuse: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_concurrent_requests: 100,
            request_timeout: Duration::from_secs(30),
            max_memory_bytes: 64 << 20,
            max_request_body_bytes: 1 << 20,
            max_response_body_bytes: 4 << 20,
            outbound_connect_timeout: Duration::from_secs(5),
            outbound_first_byte_timeout: Duration::from_secs(15),
            instance_reuse: DEFAULT_INSTANCE_REUSE,
        }
    }
}

/// [`Limits::instance_reuse`] unless configured (see the README, `mcp-auth serve`).
pub const DEFAULT_INSTANCE_REUSE: u32 = 1;

/// The CIMD entry of `allowed_outbound_hosts` under this host: any https host on port 443,
/// each one resolved and refused if any of its addresses is private (see [`crate::outbound`]).
/// It also reaches OpenID Connect providers on public addresses.
pub const VETTED_CIMD_OUTBOUND_HOST: &str = "https://*:443";

/// How to build a [`Server`]; `Options::default()` is what `mcp-auth serve` does without flags.
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// Spin runtime-config file selecting the key-value backends (none: the embedded store)
    /// and, with `[[client_tls]]`, whom outbound HTTPS trusts per component and host.
    pub runtime_config: Option<PathBuf>,
    /// Where the embedded store keeps its data.
    pub data_dir: PathBuf,
    /// Where precompiled components are cached; none: no cache.
    pub cache_dir: Option<PathBuf>,
    /// The `.env` file; none: `.env` beside the manifest.
    pub env_file: Option<PathBuf>,
    /// The environment variables are read from; none: the process environment.
    pub environment: Option<HashMap<String, String>>,
    /// Backends by label, instead of opening them from `runtime_config` (for embedding and
    /// tests).
    pub stores: Option<HashMap<String, Arc<dyn Store>>>,
    /// Values that replace the manifest's defaults of the variables it declares, below
    /// `.env` and the environment. [`Options::default`] opens Client ID Metadata Documents:
    /// `cimd_outbound_host` = [`VETTED_CIMD_OUTBOUND_HOST`], which the shipped `spin.toml`
    /// keeps inert because Spin does not vet wildcard destinations; this host does (see
    /// [`crate::outbound`]).
    pub variable_defaults: HashMap<String, String>,
    /// Per-request limits.
    pub limits: Limits,
    /// How long [`Server::serve`] waits for in-flight requests after a shutdown.
    pub shutdown_grace: Duration,
    /// Resolves hosts that outbound requests reach only through a wildcard of
    /// `allowed_outbound_hosts`, before their addresses are vetted (see [`crate::outbound`]).
    pub resolver: Arc<dyn Resolve>,
    /// Let hosts reached only through a wildcard resolve to private addresses (local
    /// development: a Client ID Metadata Document on this machine). Off: refused.
    pub outbound_allow_private: bool,
    /// PEM files of certificate authorities that every outbound HTTPS connection trusts beside
    /// its other roots (`mcp-auth serve --outbound-ca-file`): the company CA in front of an
    /// OIDC provider, TaskManager or an internal Client ID Metadata Document host. Per
    /// component and host, the runtime config's `[[client_tls]]` tables choose (see
    /// [`crate::tls`]).
    pub outbound_ca_files: Vec<PathBuf>,
    /// Certificates (DER) trusted like [`Options::outbound_ca_files`], for embedders and tests.
    pub outbound_extra_roots: Vec<Vec<u8>>,
    /// Let hosts that no `[[client_tls]]` entry names also trust the system's certificate store
    /// (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the distribution's bundle). Off: the web
    /// PKI roots only, so that what is trusted does not depend on the machine.
    pub outbound_system_roots: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runtime_config: None,
            data_dir: PathBuf::from(".mcp-auth"),
            cache_dir: crate::cache::default_dir(),
            env_file: None,
            environment: None,
            stores: None,
            variable_defaults: HashMap::from([(
                "cimd_outbound_host".to_owned(),
                VETTED_CIMD_OUTBOUND_HOST.to_owned(),
            )]),
            limits: Limits::default(),
            shutdown_grace: Duration::from_secs(30),
            resolver: Arc::new(SystemResolver),
            outbound_allow_private: false,
            outbound_ca_files: Vec::new(),
            outbound_extra_roots: Vec::new(),
            outbound_system_roots: false,
        }
    }
}

/// A loaded application, ready to serve.
pub struct Server {
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    grace: Duration,
}

/// Stops a [`Server`] from elsewhere (a signal handler, another task).
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    /// Stops accepting connections; in-flight requests finish.
    pub fn shutdown(&self) {
        self.0.send_replace(true);
    }
}

impl Server {
    /// Loads the manifest at `manifest`: resolves variables, opens the stores, compiles (or
    /// loads from the cache) and pre-instantiates every component. Errors name what to fix.
    pub fn new(manifest: impl AsRef<Path>, options: Options) -> Result<Self, Error> {
        let manifest = Manifest::load(manifest.as_ref())?;
        let environment = options
            .environment
            .unwrap_or_else(|| std::env::vars().collect());
        let env_file = options
            .env_file
            .unwrap_or_else(|| manifest.dir.join(".env"));
        let dotenv = variables::read_dotenv(&env_file)?;
        let variables = Variables::resolve(
            &manifest.variables,
            &environment,
            &dotenv,
            &options.variable_defaults,
        )?;
        let stores = match options.stores {
            Some(stores) => stores,
            None => mcp_auth_kv::open_from_runtime_config(
                options.runtime_config.as_deref(),
                &options.data_dir,
            )?,
        };
        let vetting = Vetting::new(options.resolver.clone(), options.outbound_allow_private);
        let trust = Trust::load(&TrustSources {
            runtime_config: options.runtime_config.as_deref(),
            ca_files: &options.outbound_ca_files,
            extra_roots: &options.outbound_extra_roots,
            system_roots: options.outbound_system_roots,
        })
        .map_err(Error::OutboundTls)?;
        for unknown in trust
            .components()
            .filter(|id| !manifest.components.contains_key(*id))
        {
            tracing::warn!(
                component = unknown,
                "a [[client_tls]] entry names a component that the manifest does not have"
            );
        }
        let runtime = Runtime::new(&options.limits)?;
        let app = App::load(
            &runtime,
            &manifest,
            &variables,
            &stores,
            options.cache_dir.as_deref(),
            &Outbound {
                vetting: Arc::new(vetting),
                trust,
            },
        )?;
        let slots = Arc::new(Semaphore::new(
            options.limits.max_concurrent_requests.max(1) as usize,
        ));
        let shared = Arc::new(Shared {
            engine: runtime.engine,
            app,
            metrics: Arc::new(Metrics::default()),
            limits: options.limits,
            slots,
        });
        Ok(Server {
            shared,
            shutdown: watch::channel(false).0,
            grace: options.shutdown_grace,
        })
    }

    /// Serves HTTP/1.1 on `listener` until [`Server::shutdown`], then waits for in-flight
    /// requests (up to the grace period) and returns. Only the manifest's routes are served
    /// here: `/metrics` is a path like any other (see [`Server::serve_metrics`]).
    pub async fn serve(&self, listener: TcpListener) -> Result<(), Error> {
        let shared = self.shared.clone();
        self.accept(listener, move |req, client| {
            request::handle(shared.clone(), req, client)
        })
        .await
    }

    /// Serves the host's Prometheus metrics on `GET /metrics` of `listener` (anything else is
    /// a 404) until [`Server::shutdown`]. Give it a listener of its own, on an address only
    /// the monitoring can reach: the metrics are not for the public.
    pub async fn serve_metrics(&self, listener: TcpListener) -> Result<(), Error> {
        let metrics = self.shared.metrics.clone();
        self.accept(listener, move |req, _| {
            std::future::ready(crate::metrics::respond(&metrics, &req))
        })
        .await
    }

    /// Accepts HTTP/1.1 connections on `listener`, answering each request with `respond`,
    /// until [`Server::shutdown`]; then waits for in-flight requests (up to the grace period).
    async fn accept<F, Fut>(&self, listener: TcpListener, respond: F) -> Result<(), Error>
    where
        F: Fn(Request<Incoming>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let mut stop = self.shutdown.subscribe();
        let stopped = async move {
            // An error means the sender is gone, which cannot happen while `self` lives.
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        tokio::pin!(stopped);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        loop {
            let (stream, client) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: keep serving the others.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stopped => break,
            };
            let respond = respond.clone();
            let service = service_fn(move |req| {
                let response = respond(req, client);
                async move { Ok::<_, Infallible>(response.await) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tracing::info!("shutting down: finishing in-flight requests");
        if tokio::time::timeout(self.grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("grace period over: dropping the remaining connections");
        }
        Ok(())
    }

    /// Stops accepting connections; [`Server::serve`] returns once in-flight requests finish.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// A handle that can stop this server from elsewhere.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    /// The current metrics, in the Prometheus text format.
    pub fn metrics(&self) -> String {
        self.shared.metrics.render()
    }
}
