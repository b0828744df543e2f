//! The Python side of the SDK tests (`tests/python/`): the official MCP Python SDK's client and a
//! protected MCP server on its `MCPServer`, run by the interpreter of the virtual environment
//! `scripts/test` prepares from `tests/python/requirements.txt` (`MCP_AUTH_PYTHON`, else
//! `target/venv`). Each script talks to the test in lines over stdin/stdout, binds 127.0.0.1
//! only, and is killed when its guard drops.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::Duration;

/// How long a script may stay silent before the test gives up: a guard against hanging, not a
/// measure of speed.
const SILENCE_LIMIT: Duration = Duration::from_secs(120);

/// A running script. Dropping it kills the process (and prints its stderr when a test panics).
pub struct Script {
    name: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    log: PathBuf,
}

impl Script {
    /// Starts `tests/python/<script>` with `args`, its stderr in a log file in `dir`.
    pub fn start(dir: &Path, script: &str, args: &[&str]) -> Script {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("python")
            .join(script);
        let mut command = Command::new(python());
        command.arg(&path).args(args).env("PYTHONUNBUFFERED", "1");
        Script::spawn(dir, script, command)
    }

    /// The next line the script prints.
    pub fn next_line(&mut self) -> String {
        match self.lines.recv_timeout(SILENCE_LIMIT) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => panic!(
                "{} said nothing for {SILENCE_LIMIT:?}:\n{}",
                self.name,
                self.log_text()
            ),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().ok();
                panic!(
                    "{} ended ({status:?}) before saying more:\n{}",
                    self.name,
                    self.log_text()
                )
            }
        }
    }

    /// The rest of the next line, which must start with `word` and a space.
    pub fn expect(&mut self, word: &str) -> String {
        let line = self.next_line();
        match line.strip_prefix(word).and_then(|r| r.strip_prefix(' ')) {
            Some(rest) => rest.to_string(),
            None if line == word => String::new(),
            None => panic!("{} said {line:?}, expected {word:?}", self.name),
        }
    }

    /// Writes one line to the script's stdin.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("writing to {}: {e}\n{}", self.name, self.log_text()));
    }

    /// What the script wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- stderr of {} ---\n{}", self.name, self.log_text());
        }
    }
}

/// How the MCP server checks a bearer token.
#[derive(Debug, Clone, Copy)]
pub enum Verify {
    /// Locally: an RFC 9068 JWT against mcp-auth's JWKS.
    Jwks,
    /// RFC 7662 introspection at mcp-auth, as resource server `rs`.
    Introspection,
}

/// `tests/python/mcp_server.py`: a protected MCP server with a `whoami` tool.
pub struct McpServer {
    script: Script,
    /// Its MCP endpoint, which is also its resource identifier (RFC 8707).
    pub url: String,
}

impl McpServer {
    /// Starts the server, bound but not serving until [`McpServer::trust`] names mcp-auth.
    pub fn start(dir: &Path, verify: Verify) -> McpServer {
        McpServer::start_with(dir, verify, &[])
    }

    /// [`McpServer::start`] with more arguments (`--taskmanager URL` adds the `tasks` tool).
    pub fn start_with(dir: &Path, verify: Verify, args: &[&str]) -> McpServer {
        let mode = match verify {
            Verify::Jwks => "jwks",
            Verify::Introspection => "introspection",
        };
        let mut all = vec!["--verify", mode];
        all.extend_from_slice(args);
        let mut script = Script::start(dir, "mcp_server.py", &all);
        let port = script.expect("port");
        McpServer {
            script,
            url: format!("http://127.0.0.1:{port}/mcp"),
        }
    }

    /// Makes the server trust the mcp-auth whose `MCP_AUTH_SERVER_URL` is `mcp_auth_server_url`
    /// (the string exactly as the operator configured it) and waits until it serves.
    pub fn trust(&mut self, mcp_auth_server_url: &str) {
        self.script.send(mcp_auth_server_url);
        self.script.expect("ready");
    }

    /// What the server wrote to stderr so far (refused tokens, with the reason).
    pub fn log_text(&self) -> String {
        self.script.log_text()
    }
}

/// The virtual environment's interpreter, checked once to have the SDK.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let python = std::env::var_os("MCP_AUTH_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/venv/bin/python")
            });
        let how = "scripts/test creates it (a virtual environment in target/venv with \
                   tests/python/requirements.txt) and sets MCP_AUTH_PYTHON";
        let check = Command::new(&python)
            .args(["-c", "import mcp, jwt, uvicorn, httpx2"])
            .output()
            .unwrap_or_else(|e| panic!("no Python at {}: {e}. {how}", python.display()));
        assert!(
            check.status.success(),
            "{} lacks the MCP SDK packages: {}. {how}",
            python.display(),
            String::from_utf8_lossy(&check.stderr)
        );
        python
    })
}

/// A number no other script of this test process has had.
fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Script {
    /// Starts `command` (a script of another language, e.g. `node tests/node/…`) under the same
    /// line protocol as [`Script::start`], its stderr in a log file in `dir` named after `name`.
    pub fn spawn(dir: &Path, name: &str, mut command: Command) -> Script {
        let log = dir.join(format!("{name}-{}.log", unique()));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("script log"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Script {
            name: name.to_string(),
            child,
            stdin,
            lines,
            log,
        }
    }
}
