//! `mcp-auth admin` beside a running `mcp-auth serve` of the real components on the same
//! store (the embedded SQLite file, and a real redis-server): what the operator does takes
//! effect at the running server at once.
//!
//! User tokens are seeded through the core's own `tokens::issue`, run on the admin's `Env`
//! over the same store (the built-in login is driven end to end elsewhere, in `tests/`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use jwt_simple::prelude::{ECDSAP256PublicKeyLike, ES256PublicKey, Token};
use mcp_auth_core::tokens::{self, Grant, Refresh};
use mcp_auth_host::admin::{Admin, Location};
use serde_json::Value;

use crate::cli::Serving;
use crate::support;

#[path = "../../kv/tests/all/support.rs"]
#[allow(dead_code)]
mod redis_support;

const BIN: &str = env!("CARGO_BIN_EXE_mcp-auth");
const RESOURCE: &str = "https://mcp.example.com/mcp";

#[test]
fn admin_on_the_embedded_store_while_serving() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::new(dir.path(), None);
    deployment.operate();
}

#[test]
fn admin_on_redis_while_serving() {
    let redis = redis_support::RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("runtime-config.toml");
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{}\"\n",
            redis.url()
        ),
    )
    .unwrap();
    let deployment = Deployment::new(dir.path(), Some(config));
    deployment.operate();
}

/// Wrong arguments, unknown clients, an absent or unreachable store, a refused rotation:
/// one line on stderr and a non-zero exit.
#[test]
fn admin_errors_are_one_line_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let deployment = Deployment::new(dir.path(), None);
    // No store yet in the data directory: not silently created.
    let (ok, _, err) = deployment.admin(&["clients", "list"]);
    assert!(!ok);
    assert!(err.contains("no store at"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let serving = deployment.serve(&[]);
    for (args, expected) in [
        (vec!["clients", "show", "nope"], "no client `nope`"),
        (vec!["clients", "delete", "nope"], "no client `nope`"),
        (vec!["clients", "add", "--scope", "admin:all"], "admin:all"),
        (
            vec![
                "clients",
                "add",
                "--resource",
                "https://elsewhere.example/mcp",
            ],
            "elsewhere.example",
        ),
        (vec!["tokens", "revoke"], "--user"),
    ] {
        let (ok, out, err) = deployment.admin(&args);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([7u8; 32]);
    let (ok, _, err) = deployment
        .with_variable("SIGNING_KEYS", &key)
        .admin(&["keys", "rotate"]);
    assert!(!ok);
    assert!(err.contains("`signing_keys`"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    serving.terminate();

    // Redis that does not answer: a store error, not a hang or a panic.
    let config = dir.path().join("nowhere.toml");
    let port = redis_support::free_port();
    std::fs::write(
        &config,
        format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let nowhere = Deployment::new(dir.path(), Some(config));
    let (ok, _, err) = nowhere.admin(&["clients", "list"]);
    assert!(!ok);
    assert!(err.contains("store error"), "{err}");
}

/// One deployment: the repository's manifest and components, a data directory, maybe a
/// runtime config, and the variables both the server and the admin get.
#[derive(Clone)]
struct Deployment {
    data_dir: PathBuf,
    runtime_config: Option<PathBuf>,
    variables: HashMap<String, String>,
}

impl Deployment {
    fn new(dir: &Path, runtime_config: Option<PathBuf>) -> Deployment {
        let components = repository().join("target/wasm32-wasip2/release/mcp_auth_token.wasm");
        assert!(
            components.exists(),
            "build the components first (cargo build --target wasm32-wasip2 --release)"
        );
        let variables = HashMap::from([
            ("MCP_SERVER".to_string(), RESOURCE.to_string()),
            (
                "INTROSPECTION_CREDENTIALS".to_string(),
                "rs:rs-secret".to_string(),
            ),
        ]);
        Deployment {
            data_dir: dir.join("data"),
            runtime_config,
            variables,
        }
    }

    fn with_variable(&self, name: &str, value: &str) -> Deployment {
        let mut changed = self.clone();
        changed.variables.insert(name.into(), value.into());
        changed
    }

    /// `mcp-auth serve` on port 0 (the `serving` line says where).
    fn serve(&self, args: &[&str]) -> Serving {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .arg("--cache-dir")
            .arg(repository().join("target/test-guests/cache"))
            .args(args);
        self.locate(&mut command);
        command.env("RUST_LOG", "info,wasmtime=warn,cranelift=warn");
        Serving::start_app(command)
    }

    /// `mcp-auth admin ARGS`: success, stdout, stderr.
    fn admin(&self, args: &[&str]) -> (bool, String, String) {
        let mut command = Command::new(BIN);
        command.arg("admin").args(args);
        self.locate(&mut command);
        let out = command.output().unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    /// `mcp-auth admin ARGS --json`, which must succeed and print JSON.
    fn admin_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let (ok, out, err) = self.admin(&all);
        assert!(ok, "admin {args:?} failed: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    /// The options and environment that find this deployment, for `serve` and `admin` alike.
    fn locate(&self, command: &mut Command) {
        command
            .arg("--manifest")
            .arg(repository().join("spin.toml"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--env-file")
            .arg(self.data_dir.join("absent.env"));
        if let Some(config) = &self.runtime_config {
            command.arg("--runtime-config").arg(config);
        }
        command.env_clear().envs(&self.variables);
    }

    fn location(&self) -> Location {
        Location {
            manifest: repository().join("spin.toml"),
            runtime_config: self.runtime_config.clone(),
            data_dir: self.data_dir.clone(),
            env_file: Some(self.data_dir.join("absent.env")),
            component: "token".into(),
            environment: Some(self.variables.clone()),
        }
    }

    /// Access and refresh tokens of user `sub` for client `client_id`, issued by the core on
    /// the admin's `Env`.
    fn seed_user_tokens(&self, sub: &str, client_id: &str) -> String {
        let admin = Admin::open(&self.location()).unwrap();
        let issued = admin
            .with_env(|env| {
                let grant = Grant {
                    client_id: client_id.into(),
                    sub: sub.into(),
                    scope: "mcp:read".into(),
                    resource: RESOURCE.into(),
                    auth_time: Some(env.now()),
                    family: tokens::new_family(env),
                    username: Some(format!("{sub}-login")),
                };
                tokens::issue(env, &grant, Refresh::New)
            })
            .unwrap();
        admin.finish().unwrap();
        issued.access_token
    }

    /// Everything an operator does, each checked at the running server.
    fn operate(&self) {
        let serving = self.serve(&[]);
        let at = Server(serving.addr);

        // A machine client added by the CLI gets client_credentials tokens at once.
        let added = self.admin_json(&[
            "clients",
            "add",
            "--name",
            "nightly",
            "--scope",
            "mcp:read",
            "--resource",
            RESOURCE,
        ]);
        let id = added["client_id"].as_str().unwrap().to_string();
        let secret = added["client_secret"].as_str().unwrap().to_string();
        let machine_token = at.client_credentials(&id, &secret).unwrap();
        assert!(at.active(&machine_token));
        let listed = self.admin_json(&["clients", "list"]);
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["client_id"] == id.as_str()),
            "{listed}"
        );
        let shown = self.admin_json(&["clients", "show", &id]);
        assert_eq!(shown["source"], "provisioned");
        assert_eq!(shown["client_name"], "nightly");
        assert_eq!(shown["grant_types"][0], "client_credentials");
        assert_eq!(shown["resource"], RESOURCE);
        assert!(shown.get("client_secret").is_none(), "{shown}");
        let (ok, table, _) = self.admin(&["clients", "list"]);
        assert!(
            ok && table.starts_with("CLIENT ID") && table.contains(&id),
            "{table}"
        );

        // A user's tokens: all of them inactive after one command, others untouched.
        let alice = self.seed_user_tokens("alice", "cli");
        let alice_again = self.seed_user_tokens("alice", "other-cli");
        let bob = self.seed_user_tokens("bob", "cli");
        assert!(at.active(&alice) && at.active(&alice_again) && at.active(&bob));
        let done = self.admin_json(&["tokens", "revoke", "--user", "alice"]);
        assert_eq!(done["families"], 2, "{done}");
        assert!(!at.active(&alice) && !at.active(&alice_again));
        assert!(at.active(&bob) && at.active(&machine_token));
        // By the name at the provider too.
        let done = self.admin_json(&["tokens", "revoke", "--user", "bob-login"]);
        assert_eq!(done["families"], 1, "{done}");
        assert!(!at.active(&bob));

        // A client's tokens: revoked, while the client keeps working.
        let done = self.admin_json(&["tokens", "revoke", "--client", &id]);
        assert_eq!(done["families"], 1, "{done}");
        assert!(!at.active(&machine_token));
        let before_rotation = at.client_credentials(&id, &secret).unwrap();
        assert!(at.active(&before_rotation));

        // Key rotation: the new key signs at once, the old one is still published and
        // verifies the tokens it signed.
        let keys = self.admin_json(&["keys", "list"]);
        assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
        let old_kid = keys[0]["kid"].as_str().unwrap().to_string();
        assert_eq!(kid_of(&before_rotation), old_kid);
        let rotation = self.admin_json(&["keys", "rotate"]);
        let new_kid = rotation["kid"].as_str().unwrap().to_string();
        assert_eq!(rotation["replaced"], old_kid.as_str());
        let jwks = at.jwks();
        let kids: Vec<&str> = jwks.iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, [new_kid.as_str(), old_kid.as_str()]);
        let after_rotation = at.client_credentials(&id, &secret).unwrap();
        assert_eq!(kid_of(&after_rotation), new_kid);
        assert!(verifies(&jwks[1], &before_rotation));
        assert!(verifies(&jwks[0], &after_rotation));
        assert!(!verifies(&jwks[0], &before_rotation));
        assert!(at.active(&before_rotation));
        let keys = self.admin_json(&["keys", "list"]);
        assert_eq!(keys[1]["state"], "retiring");

        // Deleting the client: its tokens and its secret stop working.
        let deleted = self.admin_json(&["clients", "delete", &id]);
        assert_eq!(deleted["deleted"], id.as_str());
        assert!(!at.active(&after_rotation));
        assert_eq!(at.client_credentials(&id, &secret), Err(401));
        let (ok, _, err) = self.admin(&["clients", "show", &id]);
        assert!(!ok && err.contains("no client"), "{err}");

        let (status, log) = serving.terminate();
        assert!(status.success(), "{log}");
    }
}

/// The running server, over HTTP.
struct Server(SocketAddr);

impl Server {
    fn call(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(support::request(
            self.0,
            method,
            path,
            body.as_bytes().to_vec(),
            headers,
        ))
    }

    /// A `client_credentials` access token, or the status that refused it.
    fn client_credentials(&self, id: &str, secret: &str) -> Result<String, u16> {
        let (status, body) = self.call(
            "POST",
            "/token",
            "grant_type=client_credentials",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic(id, secret)),
            ],
        );
        if status != 200 {
            return Err(status);
        }
        let body: Value = serde_json::from_str(&body).unwrap();
        Ok(body["access_token"].as_str().unwrap().to_string())
    }

    /// Is `token` active at `/introspect` (as the resource server)?
    fn active(&self, token: &str) -> bool {
        let (status, body) = self.call(
            "POST",
            "/introspect",
            &format!("token={token}"),
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("authorization", &basic("rs", "rs-secret")),
            ],
        );
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["active"] == true
    }

    fn jwks(&self) -> Vec<Value> {
        let (status, body) = self.call("GET", "/jwks", "", &[]);
        assert_eq!(status, 200, "{body}");
        let jwks: Value = serde_json::from_str(&body).unwrap();
        jwks["keys"].as_array().unwrap().clone()
    }
}

fn basic(id: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    format!("Basic {encoded}")
}

fn kid_of(token: &str) -> String {
    Token::decode_metadata(token)
        .unwrap()
        .key_id()
        .unwrap()
        .to_string()
}

/// Does `token`'s signature verify with the published (ES256) `jwk`?
fn verifies(jwk: &Value, token: &str) -> bool {
    let key = ES256PublicKey::from_jwk(&jwk.to_string()).unwrap();
    key.verify_token::<Value>(token, None).is_ok()
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}
