//! `mcp-auth admin`: the operator's operations on the store a host serves from, run by the same
//! core functions the components use, natively.
//!
//! [`Admin::open`] finds the configuration and the store as `mcp-auth serve` does (the manifest,
//! `.env`, the environment, the runtime config, the data directory) and feeds the core the
//! variables of one component (`token` by default: the one that signs tokens, so lifetimes and
//! keys match) as the host would. Each operation then builds a core [`Env`] over that store, so
//! no record format is implemented twice. Listing is the one thing the core cannot do (its
//! store has no list, as under Spin, whose `list-keys` ignores cursors): it uses the backend's
//! `list_keys`, filtered by key prefix.
//!
//! Safe beside a running server: every step is one the components themselves take
//! concurrently (atomic `increment` claims, single-key writes). The embedded SQLite file is
//! opened with the host's own backend: WAL journaling lets this process read while the server
//! writes, writes wait for the other process's lock up to the busy timeout, and
//! [`Admin::finish`] flushes the WAL before reporting success, as the host does before
//! answering. Nothing here is cached by the host: components read clients, tokens and the
//! signing key from the store on every request.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use mcp_auth_core::audit::{AuditEvent, AuditKind};
use mcp_auth_core::client::{self, Client, ClientSource};
use mcp_auth_core::keys::{self, KeyInfo, Rotation};
use mcp_auth_core::{registration, tokens, OAuthError, Settings};
use mcp_auth_core::{Clock, Config, Env, Rng, StoreError, Upstream, UpstreamError};
use serde::Serialize;

use crate::manifest::Manifest;
use crate::variables::{self, Variables};

/// Where the configuration and the store are: the options of `mcp-auth serve` that say so.
#[derive(Debug, Clone)]
pub struct Location {
    /// The Spin manifest.
    pub manifest: PathBuf,
    /// The runtime-config file (none: the embedded store in `data_dir`).
    pub runtime_config: Option<PathBuf>,
    /// The embedded store's directory.
    pub data_dir: PathBuf,
    /// The `.env` file (none: `.env` beside the manifest).
    pub env_file: Option<PathBuf>,
    /// The component whose variables configure the core.
    pub component: String,
    /// The environment variables are read from (none: the process environment).
    pub environment: Option<HashMap<String, String>>,
}

/// The store and settings of one deployment, ready for operations.
pub struct Admin {
    store: BlockingStore,
    settings: Settings,
}

/// A client as the operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct ClientView {
    /// Its identifier.
    pub client_id: String,
    /// `registered`, `metadata_document`, `provisioned`, or `configured` (a `machine_clients`
    /// entry: it lives in the variable, not in the store).
    pub source: String,
    /// Its registered name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// Whether it authenticates with a secret.
    pub confidential: bool,
    /// The grants it may use (RFC 7591 §2).
    pub grant_types: Vec<String>,
    /// The scopes it is limited to; none: any supported scope (the defaults when it asks
    /// for none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Where authorization responses may go.
    pub redirect_uris: Vec<String>,
    /// The one resource its tokens are for (set by the operator); none: any served one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Seconds since the epoch; 0 for configured clients.
    pub client_id_issued_at: u64,
}

/// A new machine client and its secret, shown this once.
#[derive(Debug, Clone, Serialize)]
pub struct NewClient {
    /// Its identifier.
    pub client_id: String,
    /// Its secret, in plain text only here.
    pub client_secret: String,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The scopes it may get; none: the default scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The one resource its tokens are for; none: any served resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// Whose tokens to revoke.
#[derive(Debug, Clone)]
pub enum Holder {
    /// A user: matched against the tokens' `sub` and their display name (the provider's login).
    User(String),
    /// A client, by `client_id`.
    Client(String),
}

/// What a revocation did.
#[derive(Debug, Clone, Serialize)]
pub struct Revocation {
    /// The token families (grants) revoked.
    pub families: usize,
    /// Live access and refresh tokens among them.
    pub tokens: usize,
}

impl Admin {
    /// Reads the configuration and opens the store as `mcp-auth serve` would.
    pub fn open(location: &Location) -> Result<Admin, String> {
        let config = component_config(location)?;
        let settings = Settings::from_config(&MapConfig(config)).map_err(|e| e.to_string())?;
        let store = open_store(location)?;
        Ok(Admin { store, settings })
    }

    /// The core settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `operation` with a core [`Env`] over the store, printing its audit events on
    /// stderr as the components do. The store's own failure, when there was one, replaces
    /// the core's deliberately vague "storage is temporarily unavailable".
    pub fn with_env<T>(
        &self,
        operation: impl FnOnce(&Env) -> Result<T, OAuthError>,
    ) -> Result<T, String> {
        self.store.failure.borrow_mut().take();
        let result = {
            let env = Env::new(
                &self.store,
                &NoUpstream,
                &SystemClock,
                &SystemRng,
                self.settings.clone(),
            );
            // The core holds a request's writes until its next read or its end: send them
            // now, so that a store failure is reported rather than lost in `Env`'s drop.
            let result = operation(&env).and_then(|value| {
                env.flush()?;
                Ok(value)
            });
            for event in env.take_audit() {
                eprintln!("{}", event.to_line());
            }
            result
        };
        result.map_err(|e| self.store.explain(e.description))
    }

    /// Every key with `prefix`, sorted.
    fn keys(&self, prefix: &str) -> Result<Vec<String>, String> {
        let mut keys = self
            .store
            .run(self.store.inner.list_keys())
            .map_err(|e| format!("store error: {}", e.0))?;
        keys.retain(|k| k.starts_with(prefix));
        keys.sort();
        Ok(keys)
    }

    /// Makes every write durable (the embedded store's WAL reaches the disk); call it before
    /// telling the operator that something was done.
    pub fn finish(&self) -> Result<(), String> {
        self.store
            .run(self.store.inner.sync())
            .map_err(|e| format!("store error: {}", e.0))
    }

    /// Every client: those in the store, then the `machine_clients` of the configuration.
    pub fn clients(&self) -> Result<Vec<ClientView>, String> {
        let prefix = client::key("");
        let mut views = Vec::new();
        for key in self.keys(&prefix)? {
            let id = &key[prefix.len()..];
            if let Some(client) = self.stored_client(id)? {
                views.push(view(&client, false));
            }
        }
        let configured = self.settings.machine_clients.iter().map(|m| &m.client_id);
        for id in configured {
            if let Some(client) = self.with_env(|env| client::find(env, id))? {
                views.push(view(&client, true));
            }
        }
        Ok(views)
    }

    /// One client, stored or configured.
    pub fn client(&self, client_id: &str) -> Result<ClientView, String> {
        if self.is_configured(client_id) {
            let client = self.with_env(|env| client::find(env, client_id))?;
            return client
                .map(|c| view(&c, true))
                .ok_or_else(|| unknown(client_id));
        }
        self.stored_client(client_id)?
            .map(|c| view(&c, false))
            .ok_or_else(|| unknown(client_id))
    }

    /// Deletes a stored client as RFC 7592 DELETE does: it and every token issued to it stop
    /// working at once.
    pub fn delete_client(&self, client_id: &str) -> Result<(), String> {
        if self.is_configured(client_id) {
            return Err(format!(
                "client `{client_id}` comes from the `machine_clients` variable: remove it there"
            ));
        }
        if self.stored_client(client_id)?.is_none() {
            return Err(unknown(client_id));
        }
        self.with_env(|env| Ok(registration::delete(env, client_id, None)?))
    }

    /// Provisions a machine client for `client_credentials`.
    pub fn add_client(
        &self,
        name: Option<String>,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<NewClient, String> {
        let (client, secret) =
            self.with_env(|env| registration::provision(env, name, scope, resource))?;
        Ok(NewClient {
            client_id: client.client_id.clone(),
            client_secret: secret.expose().to_string(),
            client_name: client.metadata.client_name.clone(),
            scope: client.metadata.scope.clone(),
            resource: client.metadata.resource.clone(),
        })
    }

    /// Revokes every grant of a user or a client: each family with a live token of theirs,
    /// through the core's `revoke_family`, so the tokens are inactive at once and whatever the
    /// core keeps with a family goes with it.
    pub fn revoke(&self, holder: &Holder) -> Result<Revocation, String> {
        let mut candidates = self.keys("access/")?;
        candidates.extend(self.keys("refresh/")?);
        candidates.retain(|k| tokens::is_token_key(k));
        let (families, count) = self.with_env(|env| {
            let mut families = BTreeSet::new();
            let mut count = 0;
            for key in &candidates {
                let Some(found) = tokens::holder(env, key)? else {
                    continue;
                };
                let matches = match holder {
                    Holder::User(name) => {
                        found.sub == *name || found.username.as_deref() == Some(name.as_str())
                    }
                    Holder::Client(id) => found.client_id == *id,
                };
                if matches {
                    count += 1;
                    families.insert(found.family);
                }
            }
            for family in &families {
                tokens::revoke_family(env, family)?;
            }
            if !families.is_empty() {
                let event = AuditEvent::new(AuditKind::TokenRevoked, env.now()).reason("admin");
                env.audit(match holder {
                    Holder::User(name) => event.sub(name),
                    Holder::Client(id) => event.client(id),
                });
            }
            Ok((families.len(), count))
        })?;
        Ok(Revocation {
            families,
            tokens: count,
        })
    }

    /// The published signing keys, the signing one first.
    pub fn keys_list(&self) -> Result<Vec<KeyInfo>, String> {
        self.with_env(keys::list)
    }

    /// A new signing key; the old one stays published until its tokens have expired.
    pub fn rotate_key(&self) -> Result<Rotation, String> {
        self.with_env(keys::rotate)
    }

    fn stored_client(&self, client_id: &str) -> Result<Option<Client>, String> {
        let key = client::key(client_id);
        self.with_env(|env| Ok(mcp_auth_core::records::get::<Client>(env, &key)?))
    }

    fn is_configured(&self, client_id: &str) -> bool {
        self.settings
            .machine_clients
            .iter()
            .any(|m| m.client_id == client_id)
    }
}

fn unknown(client_id: &str) -> String {
    format!("no client `{client_id}`")
}

fn view(client: &Client, configured: bool) -> ClientView {
    let source = match (configured, client.source) {
        (true, _) => "configured",
        (false, ClientSource::Registered) => "registered",
        (false, ClientSource::MetadataDocument) => "metadata_document",
        (false, ClientSource::Provisioned) => "provisioned",
    };
    ClientView {
        client_id: client.client_id.clone(),
        source: source.to_string(),
        client_name: client.metadata.client_name.clone(),
        confidential: client.is_confidential(),
        grant_types: client.metadata.grant_types.clone(),
        scope: client.metadata.scope.clone(),
        redirect_uris: client.metadata.redirect_uris.clone(),
        resource: client.metadata.resource.clone(),
        client_id_issued_at: client.client_id_issued_at,
    }
}

/// The variables of `location.component`, resolved as `mcp-auth serve` resolves them.
fn component_config(location: &Location) -> Result<BTreeMap<String, String>, String> {
    let manifest = Manifest::load(&location.manifest).map_err(|e| e.to_string())?;
    let environment = location
        .environment
        .clone()
        .unwrap_or_else(|| std::env::vars().collect());
    let env_file = location
        .env_file
        .clone()
        .unwrap_or_else(|| manifest.dir.join(".env"));
    let dotenv = variables::read_dotenv(&env_file).map_err(|e| e.to_string())?;
    let variables = Variables::resolve(
        &manifest.variables,
        &environment,
        &dotenv,
        &crate::Options::default().variable_defaults,
    )
    .map_err(|e| e.to_string())?;
    let spec = manifest
        .components
        .get(&location.component)
        .ok_or_else(|| {
            format!(
                "{} has no component `{}` (choose one with --component)",
                location.manifest.display(),
                location.component
            )
        })?;
    variables
        .expand_all(&spec.variables)
        .map_err(|e| format!("component `{}`: {e}", location.component))
}

/// The `default` store, as `mcp-auth serve` opens it. The embedded file must exist already:
/// an admin command that created an empty store in a mistyped directory would report an
/// empty deployment instead of the mistake.
fn open_store(location: &Location) -> Result<BlockingStore, String> {
    if location.runtime_config.is_none() {
        let file = location.data_dir.join(mcp_auth_kv::DEFAULT_SQLITE_FILE);
        if !file.exists() {
            return Err(format!(
                "no store at {}: is --data-dir the one `mcp-auth serve` uses?",
                file.display()
            ));
        }
    }
    let mut stores = mcp_auth_kv::open_from_runtime_config(
        location.runtime_config.as_deref(),
        &location.data_dir,
    )
    .map_err(|e| format!("cannot open the store: {e}"))?;
    let inner = stores
        .remove(mcp_auth_kv::DEFAULT_LABEL)
        .ok_or("the runtime config defines no `default` store")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(BlockingStore {
        runtime,
        inner,
        failure: RefCell::new(None),
    })
}

/// The core's synchronous [`mcp_auth_core::Store`] over the host's async backend: each call
/// runs to completion on a current-thread runtime of its own.
struct BlockingStore {
    runtime: tokio::runtime::Runtime,
    inner: Arc<dyn mcp_auth_kv::Store>,
    /// The first backend error, to name the cause of a failed operation.
    failure: RefCell<Option<String>>,
}

impl BlockingStore {
    fn run<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, mcp_auth_kv::Error>>,
    ) -> Result<T, StoreError> {
        self.runtime.block_on(operation).map_err(|e| {
            self.failure.borrow_mut().get_or_insert_with(|| e.0.clone());
            StoreError(e.0)
        })
    }

    /// The message for a failed operation: the store's error when it failed.
    fn explain(&self, description: String) -> String {
        match self.failure.borrow().as_ref() {
            Some(failure) => format!("store error: {failure}"),
            None => description,
        }
    }
}

impl mcp_auth_core::Store for BlockingStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.run(self.inner.get(key))
    }

    fn set(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.run(self.inner.set(key, value))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.run(self.inner.delete(key))
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.run(self.inner.increment(key, delta))
    }
}

/// A component's resolved variables as the core's [`Config`].
struct MapConfig(BTreeMap<String, String>);

impl Config for MapConfig {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// The admin reaches no other server.
struct NoUpstream;

impl Upstream for NoUpstream {
    fn send(
        &self,
        _: &mcp_auth_core::OutgoingRequest,
    ) -> Result<mcp_auth_core::UpstreamResponse, UpstreamError> {
        Err(UpstreamError(
            "the admin command makes no outbound requests".into(),
        ))
    }
}

struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// The operating system's random source, as `wasi:random` is the host's.
struct SystemRng;

impl Rng for SystemRng {
    fn fill(&self, buf: &mut [u8]) {
        use rand_core::RngCore;
        rand_core::OsRng.fill_bytes(buf);
    }
}
