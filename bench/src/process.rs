//! The processes a benchmark run starts (hosts, redis-server, oidc-provider, the plain hyper
//! server), each killed when its guard drops, also on panic, and their memory as Linux
//! reports it.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to answer before the run gives up.
const START_LIMIT: Duration = Duration::from_secs(120);

/// A child process, killed on drop.
pub struct Process {
    pub name: String,
    pub child: Child,
    pub addr: SocketAddr,
    /// From spawn to the first successful answer.
    pub started_in: Duration,
}

impl Process {
    /// Spawns `command` (its output going to `log`) and waits until `GET ready_path` on
    /// `addr` answers `ready_status`.
    pub async fn start(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        log: &Path,
        ready_path: &str,
    ) -> Result<Process, String> {
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name} ({command:?}): {e}"))?;
        let mut process = Process {
            name: name.to_owned(),
            child,
            addr,
            started_in: Duration::ZERO,
        };
        process.started_in = process.wait_ready(ready_path, log, spawned).await?;
        Ok(process)
    }

    async fn wait_ready(
        &mut self,
        path: &str,
        log: &Path,
        spawned: Instant,
    ) -> Result<Duration, String> {
        while spawned.elapsed() < START_LIMIT {
            if let Ok(Some(status)) = self.child.try_wait() {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("{} exited ({status}):\n{text}", self.name));
            }
            let request = crate::mcp_auth::get(path, &[]);
            if let Ok((status, _, _)) = crate::load::once(self.addr, request).await {
                if status.is_success() {
                    return Ok(spawned.elapsed());
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Err(format!(
            "{} did not answer within {START_LIMIT:?}",
            self.name
        ))
    }

    /// The peak resident set (`VmHWM`) since it started or since [`Process::reset_peak`], in
    /// bytes, added up over the process and its descendants (uvicorn's worker processes).
    pub fn peak_rss(&self) -> Option<u64> {
        let mut total = None;
        for pid in tree(self.child.id()) {
            if let Some(kib) = status_kib(pid, "VmHWM:") {
                *total.get_or_insert(0) += kib * 1024;
            }
        }
        total
    }

    /// Starts a new peak-RSS window (Linux `clear_refs` 5) for the process and its
    /// descendants; `false` when the kernel refused.
    pub fn reset_peak(&self) -> bool {
        tree(self.child.id())
            .into_iter()
            .all(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }
}

impl Drop for Process {
    /// Kills the process and its descendants: uvicorn's worker processes (and
    /// multiprocessing's resource tracker) outlive a killed parent.
    fn drop(&mut self) {
        let descendants: Vec<String> = tree(self.child.id())[1..]
            .iter()
            .map(u32::to_string)
            .collect();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !descendants.is_empty() {
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&descendants)
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `pid` and its descendants, from each thread's `children` list.
fn tree(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut next = 0;
    while next < all.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", all[next]));
        for task in tasks.into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            all.extend(
                children
                    .split_whitespace()
                    .filter_map(|c| c.parse::<u32>().ok()),
            );
        }
        next += 1;
    }
    all
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A loopback address nobody listens on right now (the child binds it a moment later).
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
}

/// A redis-server of the run's own, on an ephemeral port, without persistence files outside
/// `dir`.
pub async fn redis(dir: &Path) -> Result<Process, String> {
    let addr = free_addr();
    let mut command = Command::new("redis-server");
    command
        .args(["--bind", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir);
    let log = dir.join("redis.log");
    let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    command
        .stdin(Stdio::null())
        .stdout(out.try_clone().map_err(|e| e.to_string())?)
        .stderr(out);
    let spawned = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start redis-server (apt-get install redis-server): {e}"))?;
    while spawned.elapsed() < START_LIMIT {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server exited ({status}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(Process {
                name: "redis-server".into(),
                child,
                addr,
                started_in: spawned.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("redis-server did not start".into())
}
