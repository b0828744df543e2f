//! `mcp-auth-bench`: see the crate documentation and README.md § Benchmarks. It builds
//! nothing: `scripts/bench` builds the components, the test guest and the host (profile
//! `perf`), then runs this.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use mcp_auth_bench::load::{self, Fixed, Outcome, Script};
use mcp_auth_bench::process::{free_addr, redis, Process};
use mcp_auth_bench::report::{self, Row};
use mcp_auth_bench::{mcp_auth, oidc_provider, python_peer};

#[derive(Parser)]
#[command(
    name = "mcp-auth-bench",
    about = "Benchmark mcp-auth against its baselines"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,
    /// The repository (spin.toml, target/, bench/oidc-provider).
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."))]
    root: PathBuf,
    /// The host binary; default: <root>/target/perf/mcp-auth.
    #[arg(long)]
    host_bin: Option<PathBuf>,
    /// Seconds each scenario runs.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Connections kept open by the load generator.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Which key-value backend(s) our scenarios run on.
    #[arg(long, value_enum, default_value_t = Stores::Embedded)]
    store: Stores,
    /// Only these scenarios (comma separated): discovery, registration, refresh,
    /// introspection, verify.
    #[arg(long, value_delimiter = ',')]
    scenarios: Option<Vec<String>>,
    /// Runs of the whole sequence; each row reports the round with the median req/s (and the
    /// highest peak RSS of all rounds). This machine's figures vary by 10–20% from run to
    /// run: three rounds give verdicts that hold.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Skip the trivial-component and hyper baselines.
    #[arg(long)]
    no_ceiling: bool,
    /// The peers measured beside us (comma separated): oidc-provider, python-sdk (the MCP
    /// Python SDK's authorization server), or none.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "oidc-provider,python-sdk"
    )]
    peers: Vec<Peer>,
    /// uvicorn worker processes of the Python SDK peer; several, comma separated (`1,2`),
    /// measure it once for each in the same run. With more than one, only discovery and
    /// registration run: the example's provider keeps tokens in one process's memory.
    #[arg(long, value_delimiter = ',', default_value = "1",
          value_parser = clap::value_parser!(u16).range(1..))]
    python_workers: Vec<u16>,
    /// The access tokens' signing algorithm (mcp-auth's `jwt_algorithm`): ES256, EdDSA or
    /// RS256. Several, comma separated (`ES256,RS256`), run our systems once for each in the
    /// same run, their rows named by the algorithm.
    #[arg(long, value_delimiter = ',', default_value = "ES256")]
    jwt_algorithm: Vec<String>,
    /// `mcp-auth serve --instance-reuse N` for every host started (1: a fresh instance per
    /// request, 0: no bound); default: the host's own default. Several, comma separated
    /// (`1,0`), run the trivial component and our systems once for each in the same run, their
    /// rows named `… reuse=N`.
    #[arg(long, value_name = "N", value_delimiter = ',')]
    instance_reuse: Vec<u32>,
}

#[derive(Subcommand)]
enum Sub {
    /// A plain hyper server answering 200 "ok" (the ceiling's own baseline).
    OkServer {
        #[arg(long)]
        listen: SocketAddr,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Peer {
    OidcProvider,
    PythonSdk,
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stores {
    Embedded,
    Redis,
    Both,
}

const SCENARIOS: [&str; 5] = [
    "discovery",
    "registration",
    "refresh",
    "introspection",
    "verify",
];

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::OkServer { listen }) = cli.command {
        return ok_server(listen);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.max(1))
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-auth-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> Result<(), String> {
    let root = cli
        .root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", cli.root.display()))?;
    let host_bin = cli
        .host_bin
        .clone()
        .unwrap_or_else(|| root.join("target/perf/mcp-auth"));
    if !host_bin.exists() {
        return Err(format!(
            "{} is missing: run scripts/bench, which builds it",
            host_bin.display()
        ));
    }
    let duration = Duration::from_secs(cli.duration);
    let scenarios: Vec<&str> = SCENARIOS
        .into_iter()
        .filter(|s| {
            cli.scenarios
                .as_ref()
                .is_none_or(|l| l.iter().any(|x| x == s))
        })
        .collect();
    let bench = Bench {
        connections: cli.concurrency,
        duration,
    };
    println!(
        "mcp-auth-bench: {} connections, {} s per scenario, load generator on {} threads, {} round(s)",
        cli.concurrency, cli.duration, cli.threads, cli.rounds
    );
    let mut rounds = Vec::new();
    let mut ours = Vec::new();
    let mut notes = Vec::new();
    for round in 1..=cli.rounds {
        if cli.rounds > 1 {
            eprintln!("round {round} of {}", cli.rounds);
        }
        let measured = run_round(cli, &root, &host_bin, &bench, &scenarios).await?;
        rounds.push(measured.rows);
        ours = measured.ours;
        notes = measured.notes;
    }
    let ours: Vec<&str> = ours.iter().map(String::as_str).collect();
    report::print(&report::median(rounds), &ours);
    println!();
    for note in notes {
        println!("{note}");
    }
    print_component_sizes(&root);
    Ok(())
}

/// What one round measured.
struct Round {
    rows: Vec<Row>,
    /// Our systems (embedded, Redis; each signing algorithm) in this round.
    ours: Vec<String>,
    notes: Vec<String>,
}

/// One pass over the baselines, our systems and oidc-provider, each started afresh.
async fn run_round(
    cli: &Cli,
    root: &Path,
    host_bin: &Path,
    bench: &Bench,
    scenarios: &[&str],
) -> Result<Round, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let cache = root.join("target/bench-cache");
    let mut rows = Vec::new();
    let mut ours = Vec::new();
    let mut notes = Vec::new();

    if !cli.no_ceiling {
        let addr = free_addr();
        let mut command = Command::new(std::env::current_exe().map_err(|e| e.to_string())?);
        command
            .arg("ok-server")
            .arg("--listen")
            .arg(addr.to_string());
        let hyper =
            Process::start("hyper", command, addr, &tmp.path().join("hyper.log"), "/").await?;
        rows.push(bench.measure(&hyper, "ok", |_| ok_request()).await?);
        drop(hyper);

        let guest = root.join("target/test-guests/wasm32-wasip2/release/mcp_auth_test_guest.wasm");
        let manifest = tmp.path().join("trivial.toml");
        std::fs::write(&manifest, trivial_manifest(&guest)).map_err(|e| e.to_string())?;
        for reuse in reuse_runs(cli) {
            let host = Host {
                bin: host_bin,
                manifest: &manifest,
                cache: &cache,
                runtime_config: None,
                jwt_algorithm: &cli.jwt_algorithm[0],
                instance_reuse: reuse,
            };
            let system = format!("trivial{}", reuse_suffix(cli, reuse));
            let dir = tmp.path().join(system.replace(['/', ' '], "-"));
            let trivial = host.start("trivial", &dir).await?;
            let row = bench.measure(&trivial, "ok", |_| ok_request()).await?;
            rows.push(Row { system, ..row });
        }
    }

    let stores: &[(&'static str, bool)] = match cli.store {
        Stores::Embedded => &[("mcp-auth", false)],
        Stores::Redis => &[("mcp-auth/redis", true)],
        Stores::Both => &[("mcp-auth", false), ("mcp-auth/redis", true)],
    };
    let runs = stores.iter().flat_map(|&(store, on_redis)| {
        cli.jwt_algorithm.iter().flat_map(move |algorithm| {
            reuse_runs(cli).into_iter().map(move |reuse| {
                let system = match cli.jwt_algorithm.len() {
                    1 => store.to_owned(),
                    _ => format!("{store} {algorithm}"),
                };
                let system = format!("{system}{}", reuse_suffix(cli, reuse));
                (system, on_redis, algorithm.as_str(), reuse)
            })
        })
    });
    for (system, on_redis, algorithm, reuse) in runs {
        let system = system.as_str();
        let dir = tmp.path().join(system.replace(['/', ' '], "-"));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let redis_server = match on_redis {
            true => Some(redis(&dir).await?),
            false => None,
        };
        let runtime_config = match &redis_server {
            Some(redis) => {
                let path = dir.join("runtime-config.toml");
                let text = format!(
                    "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://{}\"\n",
                    redis.addr
                );
                std::fs::write(&path, text).map_err(|e| e.to_string())?;
                Some(path)
            }
            None => None,
        };
        let host = Host {
            bin: host_bin,
            manifest: &root.join("spin.toml"),
            cache: &cache,
            runtime_config: runtime_config.as_deref(),
            jwt_algorithm: algorithm,
            instance_reuse: reuse,
        };
        // The first start fills the compile cache (if it was cold); the second is measured.
        drop(host.start(system, &dir).await?);
        let server = host.start(system, &dir).await?;
        notes.push(format!(
            "{system}: start to first served request (warm compile cache): {:.0} ms",
            server.started_in.as_secs_f64() * 1000.0
        ));
        let state = mcp_auth::set_up(server.addr, cli.concurrency).await?;
        for scenario in scenarios {
            let row = match *scenario {
                "discovery" => {
                    bench
                        .measure(&server, scenario, |_| mcp_auth::discovery())
                        .await
                }
                "registration" => {
                    bench
                        .measure(&server, scenario, |_| mcp_auth::registration())
                        .await
                }
                "refresh" => {
                    bench
                        .measure(&server, scenario, |i| mcp_auth::Refresh::new(&state, i))
                        .await
                }
                "introspection" => {
                    bench
                        .measure(&server, scenario, |_| mcp_auth::introspection(&state))
                        .await
                }
                _ => {
                    bench
                        .measure(&server, scenario, |_| mcp_auth::verify(&state))
                        .await
                }
            }?;
            rows.push(Row {
                system: system.to_owned(),
                ..row
            });
        }
        ours.push(system.to_owned());
    }

    if cli.peers.contains(&Peer::OidcProvider) {
        let peer = oidc_provider::start(&root.join("bench/oidc-provider"), tmp.path()).await?;
        for scenario in scenarios {
            // Set up right before each scenario: the default adapter of oidc-provider is an
            // LRU cache of 1000 entries, which a registration run would have emptied.
            let state = oidc_provider::set_up(peer.addr, cli.concurrency).await?;
            let row = match *scenario {
                "discovery" => {
                    bench
                        .measure(&peer, scenario, |_| oidc_provider::discovery())
                        .await
                }
                "registration" => {
                    bench
                        .measure(&peer, scenario, |_| oidc_provider::registration())
                        .await
                }
                "refresh" => {
                    bench
                        .measure(&peer, scenario, |i| oidc_provider::refresh(&state, i))
                        .await
                }
                "introspection" => {
                    bench
                        .measure(&peer, scenario, |_| oidc_provider::introspection(&state))
                        .await
                }
                _ => continue,
            }?;
            rows.push(row);
        }
    }

    if cli.peers.contains(&Peer::PythonSdk) {
        for &workers in &cli.python_workers {
            let workers = usize::from(workers);
            rows.extend(python_sdk_rows(root, tmp.path(), bench, scenarios, workers).await?);
        }
    }

    Ok(Round { rows, ours, notes })
}

/// The Python SDK peer's rows, with `workers` uvicorn processes. Each scenario gets a fresh
/// server: its provider keeps every client and token forever, and what one scenario left (a
/// registration run's clients) would weigh on the next one's memory and garbage collector.
async fn python_sdk_rows(
    root: &Path,
    tmp: &Path,
    bench: &Bench,
    scenarios: &[&str],
    workers: usize,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for scenario in scenarios {
        // Its state lives in the memory of the worker that served the set-up, and a scenario's
        // connections may reach another: with several workers only the stateless ones run.
        let stateless = matches!(*scenario, "discovery" | "registration");
        if *scenario == "verify" || (workers > 1 && !stateless) {
            continue;
        }
        let peer = python_peer::start(
            &root.join("bench/python-sdk-peer"),
            &root.join("target/bench-python-peer"),
            workers,
            tmp,
        )
        .await?;
        let row = match *scenario {
            "discovery" => {
                bench
                    .measure(&peer, scenario, |_| python_peer::discovery())
                    .await
            }
            "registration" => {
                bench
                    .measure(&peer, scenario, |_| python_peer::registration())
                    .await
            }
            "refresh" => {
                let state = python_peer::set_up(peer.addr, bench.connections).await?;
                bench
                    .measure(&peer, scenario, |i| python_peer::Refresh::new(&state, i))
                    .await
            }
            _ => {
                let state = python_peer::set_up(peer.addr, bench.connections).await?;
                bench
                    .measure(&peer, scenario, |_| python_peer::introspection(&state))
                    .await
            }
        }?;
        rows.push(row);
    }
    Ok(rows)
}

/// The measuring part of a run.
struct Bench {
    connections: usize,
    duration: Duration,
}

impl Bench {
    /// Runs one scenario against `process` and reads its peak RSS over the run.
    async fn measure<S: Script>(
        &self,
        process: &Process,
        scenario: &str,
        script: impl Fn(usize) -> S,
    ) -> Result<Row, String> {
        let window = process.reset_peak();
        let outcome: Outcome = load::run(process.addr, self.connections, self.duration, script)
            .await
            .map_err(|e| format!("{} {scenario}: {e}", process.name))?;
        let peak = process.peak_rss();
        let row = Row::new(
            &process.name,
            scenario,
            &outcome,
            if window { peak } else { None },
        );
        eprintln!(
            "{:<20} {:<14} {:>9.0} req/s  p50 {:.2} ms  p99 {:.2} ms  RSS {} MiB{}",
            process.name,
            scenario,
            row.per_second,
            row.p50_ms,
            row.p99_ms,
            report::mib(row.peak_rss),
            if outcome.failed > 0 {
                format!("  {} FAILED, e.g. {:?}", outcome.failed, outcome.failures)
            } else {
                String::new()
            }
        );
        Ok(row)
    }
}

/// The host's `--instance-reuse` of each run: the values asked for, or the host's default.
fn reuse_runs(cli: &Cli) -> Vec<Option<u32>> {
    match cli.instance_reuse.is_empty() {
        true => vec![None],
        false => cli.instance_reuse.iter().copied().map(Some).collect(),
    }
}

/// What names a run's rows when several reuse values are measured: ` reuse=N`.
fn reuse_suffix(cli: &Cli, reuse: Option<u32>) -> String {
    match (cli.instance_reuse.len(), reuse) {
        (2.., Some(n)) => format!(" reuse={n}"),
        _ => String::new(),
    }
}

/// How to start `mcp-auth serve` for one system.
struct Host<'a> {
    bin: &'a Path,
    manifest: &'a Path,
    cache: &'a Path,
    runtime_config: Option<&'a Path>,
    jwt_algorithm: &'a str,
    instance_reuse: Option<u32>,
}

impl Host<'_> {
    /// Starts the host keeping its data in `dir` and waits for its first answer.
    async fn start(&self, name: &str, dir: &Path) -> Result<Process, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let addr = free_addr();
        let issuer = format!("http://{addr}");
        let mut command = Command::new(self.bin);
        command
            .arg("serve")
            .arg("--manifest")
            .arg(self.manifest)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--cache-dir")
            .arg(self.cache)
            .arg("--env-file")
            .arg(dir.join("absent.env"))
            .env_clear()
            .envs(mcp_auth::variables(&issuer, self.jwt_algorithm));
        if let Some(config) = self.runtime_config {
            command.arg("--runtime-config").arg(config);
        }
        if let Some(n) = self.instance_reuse {
            command.arg("--instance-reuse").arg(n.to_string());
        }
        let ready = if name == "trivial" { "/ok" } else { "/health" };
        Process::start(
            name,
            command,
            addr,
            &dir.join(format!("{name}.log").replace('/', "-")),
            ready,
        )
        .await
    }
}

fn ok_request() -> Fixed {
    Fixed {
        request: mcp_auth::get("/ok", &[]),
        expect: http::StatusCode::OK,
        contains: None,
    }
}

fn trivial_manifest(guest: &Path) -> String {
    format!(
        r#"spin_manifest_version = 2
[application]
name = "bench-trivial"

[[trigger.http]]
route = "/..."
component = "trivial"

[component.trivial]
source = "{}"
"#,
        guest.display()
    )
}

fn print_component_sizes(root: &Path) {
    let dir = root.join("target/wasm32-wasip2/release");
    let sizes: Vec<String> = [
        "discovery",
        "registration",
        "authorize",
        "token",
        "introspect",
    ]
    .iter()
    .filter_map(|name| {
        let len = std::fs::metadata(dir.join(format!("mcp_auth_{name}.wasm")))
            .ok()?
            .len();
        Some(format!("{name} {:.0} KiB", len as f64 / 1024.0))
    })
    .collect();
    println!(
        "component sizes (budget 1024 KiB each, 1280 KiB for token, which links RS256): {}",
        sizes.join(", ")
    );
}

/// `ok-server`: hyper's own HTTP/1.1 server answering "ok", on a multi-threaded runtime.
fn ok_server(listen: SocketAddr) -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        };
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
