//! `mcp-auth`: serve the mcp-auth components (`serve`), operate a deployment's store
//! (`admin`), or hash a password for the `local_users` variable (`hash-password`).

mod admin_cli;

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use mcp_auth_host::{Limits, Options, Server};

/// mimalloc instead of glibc's malloc: instantiating a component allocates and frees many small
/// objects per request, where glibc spent about 8% of the host's CPU (README § Benchmarks:
/// 5–17% more requests per second). Without transparent huge pages, which added about 10 MiB
/// of resident memory. Only the binary: a host embedding the library keeps its own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mcp-auth",
    version,
    about = "OAuth 2.1 authorization server for MCP, on wasmtime"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the application described by a Spin manifest.
    Serve(Box<ServeArgs>),
    /// Operate on the store a server uses (safe while it runs): clients, tokens, keys.
    Admin(Box<admin_cli::AdminArgs>),
    /// Read a password on standard input and print its Argon2id PHC string, for `local_users`
    /// (`name:PHC` pairs).
    HashPassword,
}

/// Where an application's configuration and store are: the same options for `serve` and
/// `admin`, so that both find the same deployment.
#[derive(clap::Args)]
struct AppLocation {
    /// The Spin manifest (spin_manifest_version = 2).
    #[arg(long, default_value = "spin.toml", global = true)]
    manifest: PathBuf,
    /// Spin runtime-config file selecting key-value backends (e.g. Redis) and, with
    /// `[[client_tls]]`, outbound TLS roots per component and host.
    #[arg(long, global = true)]
    runtime_config: Option<PathBuf>,
    /// Directory of the embedded key-value store.
    #[arg(long, default_value = ".mcp-auth", global = true)]
    data_dir: PathBuf,
    /// The .env file (default: .env beside the manifest).
    #[arg(long, global = true)]
    env_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ServeArgs {
    #[command(flatten)]
    location: AppLocation,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Serve the host's Prometheus metrics on `GET /metrics` of this address, apart from the
    /// public listener (off by default: they are not for the public).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Port to listen on (keeps the `--listen` address; the earlier servers' `--port`).
    #[arg(long)]
    port: Option<u16>,
    /// Public URL of this server, the issuer (sets the `mcp_auth_server_url` variable).
    #[arg(long)]
    public_url: Option<String>,
    /// TaskManager's URL (sets the `taskmanager_oauth_host` variable).
    #[arg(long)]
    taskmanager_url: Option<String>,
    /// Directory of precompiled components (default: $XDG_CACHE_HOME/mcp-auth).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Requests served at once (the instance pool's size).
    #[arg(long, default_value_t = 100)]
    max_concurrent_requests: u32,
    /// Wall-time limit of one request, in seconds.
    #[arg(long, default_value_t = 30)]
    request_timeout: u64,
    /// Time limit of an outbound request (the upstream provider, Client ID Metadata
    /// Documents) to its first response byte and between bytes, in seconds; connecting gets
    /// at most 5 of them.
    #[arg(long, default_value_t = 15)]
    outbound_timeout: u64,
    /// Let hosts that `allowed_outbound_hosts` reaches only through a wildcard resolve to
    /// private and loopback addresses (local development only; refused by default).
    #[arg(long)]
    outbound_allow_private: bool,
    /// PEM file of certificate authorities that every outbound HTTPS connection trusts beside
    /// the web PKI roots (a company CA in front of the OIDC provider or TaskManager).
    /// Repeatable, or a comma-separated list. Per component and host, `[[client_tls]]` in the
    /// runtime config chooses instead, as under Spin.
    #[arg(
        long,
        value_name = "FILE",
        value_delimiter = ',',
        env = "MCP_AUTH_OUTBOUND_CA_FILE"
    )]
    outbound_ca_file: Vec<PathBuf>,
    /// Also trust the system's certificate store (SSL_CERT_FILE / SSL_CERT_DIR when set, else
    /// the distribution's bundle) for hosts that no `[[client_tls]]` entry names. Off by
    /// default: only the built-in web PKI roots, the same on every machine.
    #[arg(long, env = "MCP_AUTH_OUTBOUND_SYSTEM_ROOTS")]
    outbound_system_roots: bool,
    /// Linear-memory limit of one instance, in MiB.
    #[arg(long, default_value_t = 64)]
    max_memory_mib: usize,
    /// Requests one instance may serve one after another before it is dropped: 1 is a fresh
    /// instance per request, 0 no bound. An instance that traps, times out or runs out of
    /// memory is never reused.
    #[arg(long, value_name = "N", env = "MCP_AUTH_INSTANCE_REUSE",
          default_value_t = mcp_auth_host::DEFAULT_INSTANCE_REUSE)]
    instance_reuse: u32,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Admin(args) => admin_cli::run(*args),
        Command::HashPassword => hash_password(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mcp-auth: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(mut args: ServeArgs) -> Result<(), String> {
    if let Some(port) = args.port {
        args.listen.set_port(port);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(async move {
        let mut limits = Limits::default();
        limits.max_concurrent_requests = args.max_concurrent_requests;
        limits.request_timeout = Duration::from_secs(args.request_timeout);
        limits.max_memory_bytes = args.max_memory_mib << 20;
        limits.instance_reuse = match args.instance_reuse {
            0 => u32::MAX,
            n => n,
        };
        limits.outbound_first_byte_timeout = Duration::from_secs(args.outbound_timeout);
        limits.outbound_connect_timeout = limits
            .outbound_connect_timeout
            .min(limits.outbound_first_byte_timeout);
        let mut options = Options::default();
        options.environment = command_line_variables(&args);
        options.runtime_config = args.location.runtime_config;
        options.data_dir = args.location.data_dir;
        if args.cache_dir.is_some() {
            options.cache_dir = args.cache_dir;
        }
        options.env_file = args.location.env_file;
        options.limits = limits;
        options.outbound_allow_private = args.outbound_allow_private;
        options.outbound_ca_files = args.outbound_ca_file;
        options.outbound_system_roots = args.outbound_system_roots;
        let manifest = args.location.manifest;
        let server = Server::new(&manifest, options).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
        let metrics_listener = match args.metrics_listen {
            Some(address) => Some(
                tokio::net::TcpListener::bind(address)
                    .await
                    .map_err(|e| format!("cannot listen for metrics on {address}: {e}"))?,
            ),
            None => None,
        };
        // Registered before the "serving" line: a signal sent as soon as it appears is
        // already a graceful stop, not the default action's instant death.
        let signalled = stop_signals()?;
        // The bound address: with `--listen 127.0.0.1:0` the system picks the port.
        let address = listener.local_addr().unwrap_or(args.listen);
        if let (Some(metrics), Some(requested)) = (&metrics_listener, args.metrics_listen) {
            let address = metrics.local_addr().unwrap_or(requested);
            tracing::info!(%address, "metrics on GET /metrics");
        }
        tracing::info!(%address, manifest = %manifest.display(), "serving");
        let stop = server.shutdown_handle();
        tokio::spawn(async move {
            signalled.await;
            stop.shutdown();
        });
        let metrics = async {
            match metrics_listener {
                Some(listener) => server.serve_metrics(listener).await,
                None => Ok(()),
            }
        };
        tokio::try_join!(server.serve(listener), metrics)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

/// The process environment with the variables given as options on top. `SPIN_VARIABLE_*`
/// names win over plain ones, so the options take those.
fn command_line_variables(args: &ServeArgs) -> Option<HashMap<String, String>> {
    let given = [
        ("MCP_AUTH_SERVER_URL", &args.public_url),
        ("TASKMANAGER_OAUTH_HOST", &args.taskmanager_url),
    ];
    if given.iter().all(|(_, v)| v.is_none()) {
        return None;
    }
    let mut environment: HashMap<String, String> = std::env::vars().collect();
    for (name, value) in given {
        if let Some(value) = value {
            environment.insert(format!("SPIN_VARIABLE_{name}"), value.clone());
        }
    }
    Some(environment)
}

/// Handles SIGINT and SIGTERM from now on; the future ends at the first of them.
fn stop_signals() -> Result<impl std::future::Future<Output = ()>, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot handle SIGINT: {e}"))?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

fn hash_password() -> Result<(), String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err("empty password on standard input".into());
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| format!("cannot hash: {e}"))?;
    println!("{hash}");
    Ok(())
}
