//! The peer baseline: oidc-provider (`bench/oidc-provider/`, exact versions in its
//! `package-lock.json`) on node, with the same scenarios as far as it has them.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use http::StatusCode;

use crate::load::Fixed;
use crate::mcp_auth::{self, basic, get, json_answer, post_form, text, Refresh, RESOURCE};
use crate::process::{free_addr, Process};

const CLIENT: (&str, &str) = ("bench", "bench-secret");

/// Installs the pinned packages when `node_modules` is missing (`npm ci`), then starts the
/// server on an ephemeral port.
pub async fn start(dir: &Path, log_dir: &Path) -> Result<Process, String> {
    if !dir.join("node_modules").exists() {
        let status = Command::new("npm")
            .arg("ci")
            .arg("--no-audit")
            .arg("--no-fund")
            .current_dir(dir)
            .status()
            .map_err(|e| format!("cannot run npm (install node and npm): {e}"))?;
        if !status.success() {
            return Err(format!("npm ci in {} failed", dir.display()));
        }
    }
    let addr = free_addr();
    let mut command = Command::new("node");
    command
        .arg("server.js")
        .current_dir(dir)
        .env("PORT", addr.port().to_string())
        .env("RESOURCE", RESOURCE)
        .env("NODE_ENV", "production");
    Process::start(
        "oidc-provider",
        command,
        addr,
        &log_dir.join("oidc-provider.log"),
        "/.well-known/openid-configuration",
    )
    .await
}

/// What its scenarios start from.
pub struct State {
    access_token: String,
    refresh_tokens: Vec<String>,
}

/// An opaque client-credentials access token (what its introspection can look up) and
/// `chains` seeded refresh tokens.
pub async fn set_up(addr: SocketAddr, chains: usize) -> Result<State, String> {
    let issued = json_answer(
        addr,
        post_form(
            "/token",
            &[("grant_type", "client_credentials")],
            Some(&basic(CLIENT.0, CLIENT.1)),
        ),
        StatusCode::OK,
    )
    .await?;
    let seeded = json_answer(
        addr,
        post_form(&format!("/bench/refresh-tokens?n={chains}"), &[], None),
        StatusCode::OK,
    )
    .await?;
    let refresh_tokens = mcp_auth::seeded_refresh_tokens(&seeded)?;
    Ok(State {
        access_token: text(&issued, "access_token")?,
        refresh_tokens,
    })
}

pub fn discovery() -> Fixed {
    Fixed {
        request: get("/.well-known/openid-configuration", &[]),
        expect: StatusCode::OK,
        contains: None,
    }
}

/// Its registration endpoint (`/reg`), with the same body as ours.
pub fn registration() -> Fixed {
    mcp_auth::registration_at("/reg")
}

pub fn introspection(state: &State) -> Fixed {
    Fixed {
        request: post_form(
            "/token/introspection",
            &[("token", &state.access_token)],
            Some(&basic(CLIENT.0, CLIENT.1)),
        ),
        expect: StatusCode::OK,
        contains: Some("\"active\":true"),
    }
}

pub fn refresh(state: &State, connection: usize) -> Refresh {
    Refresh {
        path: "/token",
        basic: basic(CLIENT.0, CLIENT.1),
        token: state.refresh_tokens[connection].clone(),
    }
}
