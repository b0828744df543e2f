//! A real `redis-server` on an ephemeral loopback port, without persistence (or, for the
//! fault tests, with every write fsynced before it is answered), stopped when the guard drops.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::host::free_port;

/// A guard against hanging forever, not a speed assertion.
const START_LIMIT: Duration = Duration::from_secs(30);

pub struct Redis {
    child: Child,
    pub port: u16,
    /// A Spin runtime-config file pointing the `default` store here.
    pub runtime_config: PathBuf,
    dir: PathBuf,
    durable: bool,
}

impl Redis {
    /// Starts `redis-server` (from `PATH`, or `REDIS_SERVER`) writing its config beside `dir`.
    pub fn start(dir: &Path) -> Redis {
        Redis::start_in(dir, false)
    }

    /// Like [`Redis::start`], but the server writes every command to its append-only file and
    /// fsyncs it before answering, so that after [`Redis::kill`] and [`Redis::restart`] it
    /// holds everything it acknowledged.
    pub fn start_durable(dir: &Path) -> Redis {
        Redis::start_in(dir, true)
    }

    fn start_in(dir: &Path, durable: bool) -> Redis {
        for _attempt in 0..5 {
            let port = free_port();
            let runtime_config = dir.join(format!("runtime-config-redis-{port}.toml"));
            std::fs::write(
                &runtime_config,
                format!(
                    "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n"
                ),
            )
            .expect("write runtime config");
            let mut redis = Redis {
                child: spawn(dir, port, durable),
                port,
                runtime_config,
                dir: dir.to_path_buf(),
                durable,
            };
            if redis.wait_ready() {
                return redis;
            }
            // Exited: most likely the port was taken meanwhile; `redis` drops here.
        }
        panic!("redis-server did not start");
    }

    /// SIGKILL, as in a crash: the port stops answering at once.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and directory (after [`Redis::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.dir, self.port, self.durable);
        assert!(
            self.wait_ready(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// PING until PONG; false when the server exited.
    fn wait_ready(&mut self) -> bool {
        let started = Instant::now();
        while started.elapsed() < START_LIMIT {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer PING", self.port);
    }
}

/// `redis-server` on `port`, keeping its files in `dir`.
fn spawn(dir: &Path, port: u16, durable: bool) -> Child {
    let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let persistence: &[&str] = if durable {
        &[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ]
    } else {
        &["--save", "", "--appendonly", "no"]
    };
    Command::new(&binary)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(persistence)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start `{binary}` ({e}): these tests need a Redis server \
                 (e.g. `apt-get install redis-server`, or set REDIS_SERVER)"
            )
        })
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
