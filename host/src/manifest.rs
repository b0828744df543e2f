//! The subset of Spin's application manifest (`spin.toml`, `spin_manifest_version = 2`) that the
//! mcp-auth components use, so one file drives both Spin and this host.
//!
//! Reference: Spin's manifest v2 schema (`spin-manifest/src/schema/v2.rs`). Fields this host does
//! not implement are ignored, except those that would change behaviour silently (non-HTTP
//! triggers, remote sources, inline components), which are refused with a clear message.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;

/// A parsed manifest, with component sources made absolute.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// `[application] name`.
    pub name: String,
    /// Application variables (`[variables]`), by name.
    pub variables: BTreeMap<String, VariableSpec>,
    /// `[[trigger.http]]` entries in file order (Spin's duplicate rule: the last one wins).
    pub routes: Vec<HttpRoute>,
    /// `[component.<id>]` tables, by id.
    pub components: BTreeMap<String, ComponentSpec>,
    /// The manifest file (for messages).
    pub path: PathBuf,
    /// The directory the manifest lives in (relative paths are resolved against it).
    pub dir: PathBuf,
}

/// An application variable: `name = { default = "…" }` or `name = { required = true }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VariableSpec {
    /// The value when no provider sets one.
    #[serde(default)]
    pub default: Option<String>,
    /// Start-up fails when no provider sets it.
    #[serde(default)]
    pub required: bool,
    /// Never logged; Spin's flag, kept for parity.
    #[serde(default)]
    pub secret: bool,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// One `[[trigger.http]]` entry with a routable pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The pattern as written, e.g. `/register/...`.
    pub route: String,
    /// The component id it selects.
    pub component: String,
}

/// One `[component.<id>]` table.
#[derive(Debug, Clone, Default)]
pub struct ComponentSpec {
    /// The `.wasm` file, absolute.
    pub source: PathBuf,
    /// Store labels the component may open (`key_value_stores`).
    pub key_value_stores: Vec<String>,
    /// `allowed_outbound_hosts` entries, unexpanded (they may hold `{{ variable }}` templates).
    pub allowed_outbound_hosts: Vec<String>,
    /// `[component.<id>.variables]`: name → template over application variables.
    pub variables: BTreeMap<String, String>,
    /// `environment`: variables of the guest's process environment.
    pub environment: BTreeMap<String, String>,
}

impl Manifest {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Manifest {
            path: path.to_owned(),
            message: format!("cannot read it: {e} (pass --manifest PATH to choose another file)"),
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let mut manifest = Self::parse(&text, &dir).map_err(|message| Error::Manifest {
            path: path.to_owned(),
            message,
        })?;
        manifest.path = path.to_owned();
        Ok(manifest)
    }

    /// Parses manifest text; relative sources are resolved against `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<Self, String> {
        let raw: RawManifest = toml::from_str(text).map_err(|e| e.to_string())?;
        if raw.spin_manifest_version != 2 {
            return Err(format!(
                "spin_manifest_version {} is not supported (only 2)",
                raw.spin_manifest_version
            ));
        }
        for name in raw.variables.keys() {
            check_variable_name(name)?;
        }
        for (name, spec) in &raw.variables {
            if spec.required && spec.default.is_some() {
                return Err(format!(
                    "variable `{name}` is required and has a default: choose one"
                ));
            }
            if !spec.required && spec.default.is_none() {
                return Err(format!(
                    "variable `{name}` needs a `default` or `required = true`"
                ));
            }
        }
        let mut routes = Vec::new();
        if let Some(kind) = raw.trigger.other.keys().next() {
            return Err(format!(
                "trigger type `{kind}` is not supported by this host (only http)"
            ));
        }
        for trigger in raw.trigger.http {
            let component = match trigger.component {
                RawComponentRef::Id(id) => id,
                RawComponentRef::Inline(_) => {
                    return Err("inline components in triggers are not supported: \
                                declare them under [component.<id>]"
                        .to_owned())
                }
            };
            if !raw.component.contains_key(&component) {
                return Err(format!(
                    "trigger route {:?} names component `{component}`, which is not declared",
                    trigger.route
                ));
            }
            match trigger.route {
                RawRoute::Route(route) => routes.push(HttpRoute { route, component }),
                RawRoute::Private { private: true } => {}
                RawRoute::Private { private: false } => {
                    return Err(format!(
                        "route must be a string pattern or {{ private = true }}: \
                         `{component}` has {{ private = false }}"
                    ))
                }
            }
        }
        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let source = match c.source {
                RawSource::Path(p) => dir.join(p),
                RawSource::Remote(_) => {
                    return Err(format!(
                        "component `{id}`: only local file sources are supported"
                    ))
                }
            };
            for name in c.variables.keys() {
                check_variable_name(name).map_err(|e| format!("component `{id}`: {e}"))?;
            }
            components.insert(
                id,
                ComponentSpec {
                    source,
                    key_value_stores: c.key_value_stores,
                    allowed_outbound_hosts: c.allowed_outbound_hosts,
                    variables: c.variables,
                    environment: c.environment,
                },
            );
        }
        Ok(Manifest {
            name: raw.application.name,
            variables: raw.variables,
            routes,
            components,
            path: dir.join("spin.toml"),
            dir: dir.to_owned(),
        })
    }
}

/// Spin's rule for variable names: lower-case ASCII letters, digits and underscores, starting
/// with a letter (so that `FOO_BAR` maps back to exactly one name).
fn check_variable_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid variable name `{name}`: use lower-case letters, digits and `_`, \
             starting with a letter"
        ))
    }
}

#[derive(Deserialize)]
struct RawManifest {
    spin_manifest_version: u32,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, VariableSpec>,
    #[serde(default)]
    trigger: RawTriggers,
    #[serde(default)]
    component: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
struct RawApplication {
    name: String,
}

#[derive(Deserialize, Default)]
struct RawTriggers {
    #[serde(default)]
    http: Vec<RawHttpTrigger>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
struct RawHttpTrigger {
    route: RawRoute,
    component: RawComponentRef,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawRoute {
    Route(String),
    Private { private: bool },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawComponentRef {
    Id(String),
    Inline(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct RawComponent {
    source: RawSource,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawSource {
    Path(String),
    Remote(serde::de::IgnoredAny),
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
spin_manifest_version = 2

[application]
name = "demo"

[variables]
public_url = { default = "http://127.0.0.1:3000" }
signing_key = { required = true, secret = true }

[[trigger.http]]
route = "/..."
component = "discovery"

[[trigger.http]]
route = { private = true }
component = "token"

[component.discovery]
source = "target/discovery.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["https://{{ upstream_host }}"]
[component.discovery.variables]
issuer = "{{ public_url }}"

[component.discovery.build]
command = "cargo build"

[component.token]
source = "/abs/token.wasm"
"#;

    #[test]
    fn parses_the_subset_we_use() {
        let m = Manifest::parse(MANIFEST, Path::new("/app")).unwrap();
        assert_eq!(m.name, "demo");
        assert_eq!(
            m.routes,
            vec![HttpRoute {
                route: "/...".into(),
                component: "discovery".into()
            }]
        );
        let d = &m.components["discovery"];
        assert_eq!(d.source, Path::new("/app/target/discovery.wasm"));
        assert_eq!(d.key_value_stores, ["default"]);
        assert_eq!(d.variables["issuer"], "{{ public_url }}");
        assert_eq!(m.components["token"].source, Path::new("/abs/token.wasm"));
        assert!(m.variables["signing_key"].required);
        assert!(m.variables["signing_key"].secret);
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let unknown = MANIFEST.replace("component = \"discovery\"", "component = \"nope\"");
        assert!(Manifest::parse(&unknown, Path::new("/"))
            .unwrap_err()
            .contains("`nope`"));
        let v1 = MANIFEST.replace("spin_manifest_version = 2", "spin_manifest_version = 1");
        assert!(Manifest::parse(&v1, Path::new("/")).is_err());
        let bad_var = MANIFEST.replace("public_url =", "Public-URL =");
        assert!(Manifest::parse(&bad_var, Path::new("/"))
            .unwrap_err()
            .contains("Public-URL"));
        let redis =
            format!("{MANIFEST}\n[[trigger.redis]]\nchannel = \"x\"\ncomponent = \"token\"\n");
        assert!(Manifest::parse(&redis, Path::new("/"))
            .unwrap_err()
            .contains("redis"));
    }
}
