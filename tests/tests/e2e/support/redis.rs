//! A real `redis-server` on an ephemeral loopback port, without persistence, stopped when the
//! guard drops.

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
}

impl Redis {
    /// Starts `redis-server` (from `PATH`, or `REDIS_SERVER`) writing its config beside `dir`.
    pub fn start(dir: &Path) -> Redis {
        let binary = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        for _attempt in 0..5 {
            let port = free_port();
            let child = Command::new(&binary)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
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
                });
            let runtime_config = dir.join(format!("runtime-config-redis-{port}.toml"));
            std::fs::write(
                &runtime_config,
                format!(
                    "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n"
                ),
            )
            .expect("write runtime config");
            let mut redis = Redis {
                child,
                port,
                runtime_config,
            };
            if redis.wait_ready() {
                return redis;
            }
            // Exited: most likely the port was taken meanwhile; `redis` drops here.
        }
        panic!("redis-server did not start");
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
