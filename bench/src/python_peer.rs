//! The second peer: an authorization server on the official MCP Python SDK's auth routes
//! (`bench/python-sdk-peer/`, exact versions in its `requirements.txt`), in the design of the
//! SDK's "simple-auth" example (in-memory provider, opaque tokens), served by uvicorn with
//! uvloop and httptools; with the same scenarios as far as it has them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use crate::load::{expect_status, Fixed, Script};
use crate::mcp_auth::{self, basic, json_answer, post_form, text, RESOURCE};
use crate::process::{free_addr, Process};

/// The stamp in the virtual environment: the `requirements.txt` it was installed from.
const STAMP: &str = "bench-requirements.txt";

/// Installs the pinned packages into the virtual environment `venv` unless it was installed
/// from the same `requirements.txt` already, then starts uvicorn with `workers` processes on
/// an ephemeral port. One worker is the example's design: its provider keeps every client and
/// token in the memory of one process, which a second worker would not see.
pub async fn start(
    dir: &Path,
    venv: &Path,
    workers: usize,
    log_dir: &Path,
) -> Result<Process, String> {
    install(dir, venv)?;
    let addr = free_addr();
    let mut command = Command::new(venv.join("bin/python"));
    command
        .args(["-m", "uvicorn", "--factory", "server:create_app"])
        .args(["--loop", "uvloop", "--http", "httptools"])
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
        .args(["--workers", &workers.to_string()])
        // Nothing else measured logs each request.
        .args(["--no-access-log", "--log-level", "warning"])
        .current_dir(dir)
        .env("PORT", addr.port().to_string())
        .env("RESOURCE", RESOURCE)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    Process::start(
        &system(workers),
        command,
        addr,
        &log_dir.join(format!("python-sdk-{workers}.log")),
        "/.well-known/oauth-authorization-server",
    )
    .await
}

/// The name of its rows: `python-sdk`, or `python-sdk ×N` with N uvicorn workers.
pub fn system(workers: usize) -> String {
    match workers {
        1 => "python-sdk".to_owned(),
        n => format!("python-sdk ×{n}"),
    }
}

/// `python3 -m venv` and `pip install -r requirements.txt`, skipped when the stamp says the
/// environment holds exactly these pins.
fn install(dir: &Path, venv: &Path) -> Result<(), String> {
    let requirements = dir.join("requirements.txt");
    let wanted =
        std::fs::read(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = venv.join(STAMP);
    if std::fs::read(&stamp).is_ok_and(|had| had == wanted) {
        return Ok(());
    }
    if !venv.join("bin/python").exists() {
        run(Command::new("python3").arg("-m").arg("venv").arg(venv))
            .map_err(|e| format!("{e} (install python3 and python3-venv)"))?;
    }
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "--quiet", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, wanted).map_err(|e| format!("{}: {e}", stamp.display()))
}

fn run(command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    match status.success() {
        true => Ok(()),
        false => Err(format!("{command:?} failed ({status})")),
    }
}

/// What its scenarios start from.
pub struct State {
    client_id: String,
    basic: String,
    access_token: String,
    refresh_tokens: Vec<String>,
}

/// Registers a confidential client through the SDK's registration endpoint, then seeds
/// `chains` refresh tokens (sign-ins and code exchanges through the provider's own methods,
/// `POST /bench/refresh-tokens`) and an access token of that client to introspect.
pub async fn set_up(addr: SocketAddr, chains: usize) -> Result<State, String> {
    let (client_id, client_secret) =
        mcp_auth::register_confidential(addr, "mcp:read mcp:write").await?;
    let seeded = json_answer(
        addr,
        post_form(
            &format!("/bench/refresh-tokens?client_id={client_id}&n={chains}"),
            &[],
            None,
        ),
        StatusCode::OK,
    )
    .await?;
    let refresh_tokens = mcp_auth::seeded_refresh_tokens(&seeded)?;
    Ok(State {
        basic: basic(&client_id, &client_secret),
        client_id,
        access_token: text(&seeded, "access_token")?,
        refresh_tokens,
    })
}

/// The SDK's metadata (RFC 8414) and registration routes are where ours are, and take the
/// same requests.
pub use mcp_auth::{discovery, registration};

/// The example's introspection endpoint, which asks no credentials of the resource server.
pub fn introspection(state: &State) -> Fixed {
    Fixed {
        request: post_form("/introspect", &[("token", &state.access_token)], None),
        expect: StatusCode::OK,
        contains: Some("\"active\":true"),
    }
}

/// `POST /token` with `grant_type=refresh_token`, rotating like ours; the SDK's token
/// endpoint also wants the `client_id` in the form beside the Basic credentials.
pub struct Refresh {
    client_id: String,
    basic: String,
    token: String,
}

impl Refresh {
    pub fn new(state: &State, connection: usize) -> Refresh {
        Refresh {
            client_id: state.client_id.clone(),
            basic: state.basic.clone(),
            token: state.refresh_tokens[connection].clone(),
        }
    }
}

impl Script for Refresh {
    fn request(&mut self) -> Request<Full<Bytes>> {
        let fields = [
            ("grant_type", "refresh_token"),
            ("refresh_token", self.token.as_str()),
            ("client_id", self.client_id.as_str()),
        ];
        post_form("/token", &fields, Some(&self.basic))
    }

    fn answer(&mut self, status: StatusCode, body: &Bytes) -> Result<(), String> {
        expect_status(StatusCode::OK, status, body)?;
        let value: Value =
            serde_json::from_slice(body).map_err(|e| format!("token answer is not JSON: {e}"))?;
        self.token = text(&value, "refresh_token")?;
        Ok(())
    }
}
