//! Which certificate authorities outbound HTTPS trusts, per component and host.
//!
//! By default a connection trusts the web PKI roots (Mozilla's, built in: the same on every
//! machine), as wasmtime-wasi-http's own sender does. An OIDC provider, TaskManager or Client ID
//! Metadata Document host behind a company CA needs more, from three places:
//!
//! - `[[client_tls]]` tables of the Spin runtime-config file (`--runtime-config`), read exactly
//!   as Spin 4 reads them (`crates/factor-outbound-networking`), so one file configures both
//!   hosts:
//!
//!   ```toml
//!   [[client_tls]]
//!   component_ids = ["authorize", "token"]   # Spin component ids (spin.toml)
//!   hosts = ["idp.corp.example"]             # host names, no port: every port of the host
//!   ca_roots_file = "certs/corp-ca.pem"      # PEM, relative to this file's directory
//!   # ca_use_webpki_roots = true             # default: false when ca_roots_file is given
//!   # ca_use_platform_roots = true           # the system store; default: only when neither
//!   #                                        # ca_roots_file nor ca_use_webpki_roots is given
//!   # client_cert_file = "certs/client.pem"  # mutual TLS: both or neither
//!   # client_private_key_file = "certs/client.key"
//!   ```
//!
//!   An entry replaces the default trust for its components' requests to its hosts; the first
//!   entry naming a (component, host) pair wins. Unknown keys, a port in a host, an empty list
//!   and an unreadable or empty PEM file stop the start-up, as they stop Spin.
//! - [`Options::outbound_ca_files`](crate::Options::outbound_ca_files) (`mcp-auth serve
//!   --outbound-ca-file`): certificate authorities added to every outbound HTTPS connection,
//!   entries included.
//! - [`Options::outbound_system_roots`](crate::Options::outbound_system_roots) (`mcp-auth serve
//!   --outbound-system-roots`): the system store (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set,
//!   else the distribution's bundle) for hosts that no entry names. Off by default, so that what
//!   is trusted does not depend on the machine.
//!
//! Spin trusts the system store by default; this host does not unless asked (above).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use serde::Deserialize;

/// The TLS client configurations of the process: one per `[[client_tls]]` entry, and the
/// default for everything else. Built once at start-up.
pub(crate) struct Trust {
    default: Arc<ClientConfig>,
    by_component: HashMap<String, Arc<HostConfigs>>,
}

/// Host name (lower case, as in the request's URL) → its configuration.
type HostConfigs = HashMap<String, Arc<ClientConfig>>;

/// Where the roots come from; see the module documentation.
pub(crate) struct TrustSources<'a> {
    /// The Spin runtime-config file, whose `[[client_tls]]` tables are read.
    pub(crate) runtime_config: Option<&'a Path>,
    /// PEM files trusted by every connection.
    pub(crate) ca_files: &'a [PathBuf],
    /// DER certificates trusted by every connection (embedders, tests).
    pub(crate) extra_roots: &'a [Vec<u8>],
    /// The system store, for hosts no entry names.
    pub(crate) system_roots: bool,
}

impl Trust {
    /// Reads every file named by `sources`; errors name the file or key at fault.
    pub(crate) fn load(sources: &TrustSources<'_>) -> Result<Self, String> {
        let mut extra = Vec::new();
        for path in sources.ca_files {
            extra.extend(read_certificates(path)?);
        }
        for (i, der) in sources.extra_roots.iter().enumerate() {
            let der = CertificateDer::from(der.clone());
            // Checked here so that a bad one is named, not lost among the others.
            RootCertStore::empty()
                .add(der.clone())
                .map_err(|e| format!("extra outbound root certificate {}: {e}", i + 1))?;
            extra.push(der);
        }
        let entries = match sources.runtime_config {
            Some(path) => read_client_tls(path)?,
            None => Vec::new(),
        };
        let mut system = SystemRoots::default();
        let default = Roots {
            webpki: true,
            platform: sources.system_roots,
            files: Vec::new(),
        };
        let default = client_config(&default, &extra, None, &mut system)?;
        let mut by_component: HashMap<String, HostConfigs> = HashMap::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let config = client_config(&entry.roots, &extra, entry.client_cert, &mut system)
                .map_err(|e| {
                    let file = sources.runtime_config.unwrap_or(Path::new("")).display();
                    format!("{file}: [[client_tls]] entry {}: {e}", i + 1)
                })?;
            for component in &entry.component_ids {
                let hosts = by_component.entry(component.clone()).or_default();
                for host in &entry.hosts {
                    hosts.entry(host.clone()).or_insert_with(|| config.clone());
                }
            }
        }
        Ok(Trust {
            default,
            by_component: by_component
                .into_iter()
                .map(|(component, hosts)| (component, Arc::new(hosts)))
                .collect(),
        })
    }

    /// What `component`'s requests trust.
    pub(crate) fn for_component(&self, component: &str) -> ComponentTrust {
        ComponentTrust {
            by_host: self.by_component.get(component).cloned(),
            default: self.default.clone(),
        }
    }

    /// The component ids that entries name, for a warning about ones the manifest lacks.
    pub(crate) fn components(&self) -> impl Iterator<Item = &str> {
        self.by_component.keys().map(String::as_str)
    }
}

/// The TLS client configurations one component's requests use.
pub(crate) struct ComponentTrust {
    by_host: Option<Arc<HostConfigs>>,
    default: Arc<ClientConfig>,
}

impl ComponentTrust {
    /// The configuration for a request to `host` (the URL's host, any port).
    pub(crate) fn config(&self, host: &str) -> &Arc<ClientConfig> {
        self.by_host
            .as_ref()
            .and_then(|hosts| hosts.get(&host.to_ascii_lowercase()))
            .unwrap_or(&self.default)
    }
}

/// One `[[client_tls]]` table, its files read.
struct Entry {
    component_ids: Vec<String>,
    hosts: Vec<String>,
    roots: Roots,
    client_cert: Option<ClientCert>,
}

/// The roots a configuration trusts, before the process-wide extra ones.
struct Roots {
    webpki: bool,
    platform: bool,
    files: Vec<CertificateDer<'static>>,
}

struct ClientCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A `[[client_tls]]` table as written; unknown keys are refused, as Spin refuses them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryToml {
    component_ids: Vec<String>,
    hosts: Vec<String>,
    ca_use_platform_roots: Option<bool>,
    ca_use_webpki_roots: Option<bool>,
    ca_roots_file: Option<PathBuf>,
    client_cert_file: Option<PathBuf>,
    client_private_key_file: Option<PathBuf>,
}

/// The `[[client_tls]]` entries of the runtime-config file at `path`, files resolved against
/// its directory. Other tables belong to other parts of the host (or of Spin).
fn read_client_tls(path: &Path) -> Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let base_dir = path.parent().unwrap_or(Path::new(""));
    parse_client_tls(&text, base_dir).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_client_tls(text: &str, base_dir: &Path) -> Result<Vec<Entry>, String> {
    let document: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    let Some(tables) = document.get("client_tls") else {
        return Ok(Vec::new());
    };
    let tables = tables
        .as_array()
        .ok_or("`client_tls` must be an array of tables ([[client_tls]])")?;
    tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let entry: EntryToml = table.clone().try_into().map_err(|e: toml::de::Error| {
                format!("[[client_tls]] entry {}: {}", i + 1, e.message())
            })?;
            load_entry(entry, base_dir).map_err(|e| format!("[[client_tls]] entry {}: {e}", i + 1))
        })
        .collect()
}

fn load_entry(entry: EntryToml, base_dir: &Path) -> Result<Entry, String> {
    if entry.component_ids.is_empty() {
        return Err("`component_ids` may not be empty".into());
    }
    if entry.hosts.is_empty() {
        return Err("`hosts` may not be empty".into());
    }
    if let Some(bad) = entry.component_ids.iter().find(|id| !is_component_id(id)) {
        return Err(format!(
            "invalid component id {bad:?} in `component_ids`: use Spin's kebab-case ids"
        ));
    }
    let hosts = entry
        .hosts
        .iter()
        .map(|host| host_name(host))
        .collect::<Result<_, _>>()?;
    // Spin 4's defaults: naming one source of roots turns the unnamed built-in ones off.
    let (platform, webpki) = match (entry.ca_use_platform_roots, entry.ca_use_webpki_roots) {
        (Some(platform), Some(webpki)) => (platform, webpki),
        (Some(platform), None) => (platform, false),
        (None, Some(webpki)) => (false, webpki),
        (None, None) => (entry.ca_roots_file.is_none(), false),
    };
    let files = match &entry.ca_roots_file {
        Some(file) => read_certificates(&base_dir.join(file))?,
        None => Vec::new(),
    };
    let client_cert = match (&entry.client_cert_file, &entry.client_private_key_file) {
        (Some(chain), Some(key)) => Some(ClientCert {
            chain: read_certificates(&base_dir.join(chain))?,
            key: read_private_key(&base_dir.join(key))?,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err("`client_cert_file` needs `client_private_key_file`".into());
        }
        (None, Some(_)) => {
            return Err("`client_private_key_file` needs `client_cert_file`".into());
        }
    };
    if !platform && !webpki && files.is_empty() {
        return Err(
            "trusts nothing: set `ca_roots_file`, `ca_use_webpki_roots` or \
                    `ca_use_platform_roots`"
                .into(),
        );
    }
    Ok(Entry {
        component_ids: entry.component_ids,
        hosts,
        roots: Roots {
            webpki,
            platform,
            files,
        },
        client_cert,
    })
}

/// Spin's rule for component ids (its `KebabId`): `-`-separated words of ASCII letters and
/// digits (and `:` inside a word), each all lower or all upper case, the first word starting
/// with a letter.
fn is_component_id(id: &str) -> bool {
    id.split('-').enumerate().all(|(i, word)| {
        let mut chars = word.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        let chars_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == ':');
        let one_case = !word.chars().any(|c| c.is_ascii_uppercase())
            || !word.chars().any(|c| c.is_ascii_lowercase());
        first_ok && chars_ok && one_case
    })
}

/// A `hosts` item: a URL authority without user info or port (Spin matches the request's host
/// alone and refuses ports), lower-cased.
fn host_name(host: &str) -> Result<String, String> {
    let authority: http::uri::Authority = host
        .parse()
        .map_err(|_| format!("invalid host {host:?} in `hosts`"))?;
    if authority.port().is_some() {
        return Err(format!(
            "host {host:?} in `hosts` has a port: name the host only (Spin matches any port)"
        ));
    }
    if authority.as_str() != authority.host() {
        return Err(format!("invalid host {host:?} in `hosts`"));
    }
    Ok(host.to_ascii_lowercase())
}

/// Every certificate in the PEM file at `path`; none is an error (a key file or a typo).
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certificates.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file",
            path.display()
        ));
    }
    Ok(certificates)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a private key from {}: {e}", path.display()))
}

/// The system store, read at most once per start-up.
#[derive(Default)]
struct SystemRoots(Option<Vec<CertificateDer<'static>>>);

impl SystemRoots {
    fn get(&mut self) -> Result<&[CertificateDer<'static>], String> {
        if self.0.is_none() {
            let found = rustls_native_certs::load_native_certs();
            for error in &found.errors {
                tracing::warn!(%error, "part of the system certificate store is unreadable");
            }
            if found.certs.is_empty() {
                return Err("the system certificate store has no certificates (set \
                            SSL_CERT_FILE or SSL_CERT_DIR, or install ca-certificates)"
                    .into());
            }
            self.0 = Some(found.certs);
        }
        Ok(self.0.as_deref().unwrap_or_default())
    }
}

fn client_config(
    roots: &Roots,
    extra: &[CertificateDer<'static>],
    client_cert: Option<ClientCert>,
    system: &mut SystemRoots,
) -> Result<Arc<ClientConfig>, String> {
    let mut store = RootCertStore::empty();
    if roots.webpki {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if roots.platform {
        // Some distributions ship a few certificates rustls cannot parse: skip those.
        store.add_parsable_certificates(system.get()?.iter().cloned());
    }
    for certificate in roots.files.iter().chain(extra) {
        store
            .add(certificate.clone())
            .map_err(|e| format!("unusable root certificate: {e}"))?;
    }
    let builder = ClientConfig::builder().with_root_certificates(store);
    let config = match client_cert {
        Some(ClientCert { chain, key }) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("unusable client certificate or key: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with a CA certificate (`ca.pem`), a key (`key.pem`) and a file with no PEM
    /// in it (`empty.pem`).
    fn files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.path().join("empty.pem"), "nothing here\n").unwrap();
        dir
    }

    fn parse(text: &str, dir: &Path) -> Result<Vec<Entry>, String> {
        parse_client_tls(text, dir)
    }

    #[test]
    fn reads_spin_client_tls_entries() {
        let dir = files();
        let entries = parse(
            r#"
            [key_value_store.default]
            type = "spin"
            [outbound_networking]
            block_networks = ["private"]

            [[client_tls]]
            component_ids = ["authorize", "token"]
            hosts = ["IdP.corp.example", "[::1]", "127.0.0.1"]
            ca_roots_file = "ca.pem"

            [[client_tls]]
            component_ids = ["token"]
            hosts = ["tm.corp.example"]
            ca_use_webpki_roots = true
            ca_roots_file = "ca.pem"
            client_cert_file = "ca.pem"
            client_private_key_file = "key.pem"

            [[client_tls]]
            component_ids = ["token"]
            hosts = ["plain.example"]
            "#,
            dir.path(),
        )
        .unwrap();
        assert_eq!(entries.len(), 3);
        let [first, second, third] = &entries[..] else {
            unreachable!()
        };
        assert_eq!(first.component_ids, ["authorize", "token"]);
        assert_eq!(first.hosts, ["idp.corp.example", "[::1]", "127.0.0.1"]);
        assert!(!first.roots.webpki && !first.roots.platform);
        assert_eq!(first.roots.files.len(), 1);
        assert!(first.client_cert.is_none());
        assert!(second.roots.webpki && !second.roots.platform);
        assert!(second.client_cert.is_some());
        // Neither roots key nor a file: the system store, as in Spin 4.
        assert!(third.roots.platform && !third.roots.webpki);
        assert!(third.roots.files.is_empty());
    }

    #[test]
    fn component_ids_follow_spins_kebab_case() {
        for good in [
            "authorize",
            "my-component",
            "api-v2",
            "API-v2",
            "a1",
            "ns:x",
        ] {
            assert!(is_component_id(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a--b", "1a", "my_component", "Mixed", "a.b"] {
            assert!(!is_component_id(bad), "{bad}");
        }
    }

    #[test]
    fn no_client_tls_means_no_entries() {
        assert!(parse("[variables]\na = 1\n", Path::new(""))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn refuses_what_spin_refuses_naming_the_key_or_file() {
        let dir = files();
        let entry = |body: &str| {
            format!("[[client_tls]]\ncomponent_ids = [\"token\"]\nhosts = [\"h.example\"]\n{body}")
        };
        let cases = [
            (
                entry("ca_root_file = \"ca.pem\"\n"),
                "unknown field `ca_root_file`",
            ),
            (entry("ca_roots_file = \"absent.pem\"\n"), "absent.pem"),
            (
                entry("ca_roots_file = \"empty.pem\"\n"),
                "empty.pem: no PEM certificate",
            ),
            (
                entry("ca_roots_file = \"key.pem\"\n"),
                "key.pem: no PEM certificate",
            ),
            (
                entry("client_cert_file = \"ca.pem\"\n"),
                "`client_cert_file` needs `client_private_key_file`",
            ),
            (
                entry("client_cert_file = \"ca.pem\"\nclient_private_key_file = \"ca.pem\"\n"),
                "cannot read a private key from",
            ),
            (entry("ca_use_webpki_roots = false\n"), "trusts nothing"),
            (entry("ca_use_webpki_roots = \"yes\"\n"), "invalid type"),
            (
                "[[client_tls]]\ncomponent_ids = [\"token\"]\nhosts = [\"h.example:8443\"]\n"
                    .to_owned(),
                "has a port",
            ),
            (
                "[[client_tls]]\ncomponent_ids = [\"token\"]\nhosts = [\"https://h.example\"]\n"
                    .to_owned(),
                "invalid host",
            ),
            (
                "[[client_tls]]\ncomponent_ids = [\"my_component\"]\nhosts = [\"h.example\"]\n"
                    .to_owned(),
                "invalid component id \"my_component\"",
            ),
            (
                "[[client_tls]]\ncomponent_ids = []\nhosts = [\"h.example\"]\n".to_owned(),
                "`component_ids` may not be empty",
            ),
            (
                "[[client_tls]]\ncomponent_ids = [\"token\"]\nhosts = []\n".to_owned(),
                "`hosts` may not be empty",
            ),
            (
                "[[client_tls]]\nhosts = [\"h.example\"]\n".to_owned(),
                "missing field `component_ids`",
            ),
            ("[client_tls]\nhosts = []\n".to_owned(), "array of tables"),
        ];
        for (text, expected) in cases {
            let error = parse(&text, dir.path()).err().unwrap_or_default();
            assert!(error.contains(expected), "{text:?} gave {error:?}");
            if !expected.contains("array") {
                assert!(error.contains("[[client_tls]] entry 1"), "{error}");
            }
        }
    }

    #[test]
    fn the_first_entry_for_a_component_and_host_wins() {
        let dir = files();
        let config = dir.path().join("runtime-config.toml");
        std::fs::write(
            &config,
            "[[client_tls]]\ncomponent_ids = [\"a\"]\nhosts = [\"h.example\"]\n\
             ca_roots_file = \"ca.pem\"\n\
             [[client_tls]]\ncomponent_ids = [\"a\", \"b\"]\nhosts = [\"h.example\"]\n\
             ca_use_webpki_roots = true\n",
        )
        .unwrap();
        let trust = Trust::load(&TrustSources {
            runtime_config: Some(&config),
            ca_files: &[],
            extra_roots: &[],
            system_roots: false,
        })
        .unwrap();
        let a = trust.for_component("a");
        let b = trust.for_component("b");
        let c = trust.for_component("c");
        let roots = |config: &Arc<ClientConfig>| Arc::as_ptr(config);
        assert!(!std::ptr::eq(
            roots(a.config("h.example")),
            roots(b.config("h.example"))
        ));
        assert!(std::ptr::eq(
            roots(a.config("H.Example")),
            roots(a.config("h.example"))
        ));
        assert!(std::ptr::eq(
            roots(a.config("other.example")),
            roots(c.config("h.example"))
        ));
        assert!(std::ptr::eq(
            roots(b.config("other.example")),
            roots(&trust.default)
        ));
    }
}
