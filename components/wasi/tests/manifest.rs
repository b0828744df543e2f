//! `spin.toml` agrees with the code: every variable the core reads is declared and mapped
//! into every component (the upstream client secrets and `upstream_token_key` into `authorize`
//! and `token` only, the machine clients' into `token` and `introspect` only), with the core's
//! own defaults; secrets are marked; each route reaches an endpoint of the component it names;
//! only `authorize` may call out, and `token` to the provider's token endpoint.
//!
//! Native and quick: needs no built component.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

use mcp_auth_core::{route, Config, Endpoint, Group, Settings};

/// Variables the core never reads: only the manifest's `allowed_outbound_hosts` uses them.
const MANIFEST_ONLY: [&str; 3] = [
    "cimd_outbound_host",
    "oidc_outbound_host",
    "oidc_token_outbound_host",
];

const COMPONENTS: [(&str, Group); 5] = [
    ("discovery", Group::DISCOVERY),
    ("registration", Group::REGISTRATION),
    ("authorize", Group::AUTHORIZE),
    ("token", Group::TOKEN),
    ("introspect", Group::INTROSPECT),
];

fn manifest() -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../spin.toml");
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

fn table<'a>(value: &'a toml::Table, key: &str) -> &'a toml::Table {
    value[key]
        .as_table()
        .unwrap_or_else(|| panic!("`{key}` is not a table"))
}

/// Records every name `Settings::from_config` asks for, answering just enough for the
/// chosen provider to parse.
struct Recording {
    provider: &'static str,
    asked: RefCell<BTreeSet<String>>,
}

impl Config for Recording {
    fn get(&self, name: &str) -> Option<String> {
        self.asked.borrow_mut().insert(name.to_string());
        match name {
            "upstream_provider" => Some(self.provider.to_string()),
            "oidc_issuer" => Some("https://idp.example".to_string()),
            n if n.ends_with("_client_id") || n.ends_with("_client_secret") => Some("x".into()),
            _ => None,
        }
    }
}

/// Every variable name the core reads, under each upstream provider.
fn names_the_core_reads() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for provider in ["local", "taskmanager", "github", "oidc"] {
        let config = Recording {
            provider,
            asked: RefCell::default(),
        };
        Settings::from_config(&config).unwrap();
        names.extend(config.asked.into_inner());
    }
    names
}

#[test]
fn every_variable_is_declared_and_mapped_where_it_is_needed() {
    let manifest = manifest();
    let declared: BTreeSet<String> = table(&manifest, "variables")
        .keys()
        .filter(|name| !MANIFEST_ONLY.contains(&name.as_str()))
        .cloned()
        .collect();
    assert_eq!(declared, names_the_core_reads());
    let components = table(&manifest, "component");
    for (name, _) in COMPONENTS {
        let vars = table(table(components, name), "variables");
        for var in &declared {
            // Least privilege: the upstream client secrets and the key that seals the users'
            // upstream tokens reach only the components that redeem the provider's codes
            // and refresh its tokens; the machine clients' secrets only the components where
            // clients authenticate.
            let needed = if var.ends_with("_client_secret") || var == "upstream_token_key" {
                name == "authorize" || name == "token"
            } else if var == "machine_clients" {
                name == "token" || name == "introspect"
            } else {
                true
            };
            let mapped = needed.then(|| format!("{{{{ {var} }}}}"));
            assert_eq!(
                vars.get(var).and_then(|v| v.as_str()),
                mapped.as_deref(),
                "component {name}, variable `{var}`"
            );
        }
    }
}

/// The manifest's defaults must mean what the core's defaults mean.
struct Defaults(toml::Table);

impl Config for Defaults {
    fn get(&self, name: &str) -> Option<String> {
        self.0
            .get(name)?
            .get("default")?
            .as_str()
            .map(str::to_string)
    }
}

#[test]
fn manifest_defaults_are_the_core_defaults_and_secrets_are_secret() {
    let manifest = manifest();
    let variables = table(&manifest, "variables").clone();
    for (name, spec) in &variables {
        let secret = spec.get("secret").and_then(|s| s.as_bool()) == Some(true);
        let should_be = name.ends_with("_secret")
            || [
                "signing_keys",
                "local_users",
                "introspection_credentials",
                "machine_clients",
                "upstream_token_key",
            ]
            .contains(&&**name);
        assert_eq!(secret, should_be, "`{name}`: secret = {secret}");
        assert!(spec.get("default").is_some(), "`{name}` has no default");
    }
    let from_manifest = Settings::from_config(&Defaults(variables)).unwrap();
    let from_nothing = Settings::from_config(&Defaults(toml::Table::new())).unwrap();
    assert_eq!(format!("{from_manifest:?}"), format!("{from_nothing:?}"));
    assert_eq!(from_manifest.issuer, "http://127.0.0.1:3000/");
}

#[test]
fn routes_reach_their_components_endpoints_and_every_endpoint_is_routed() {
    let manifest = manifest();
    let triggers = manifest["trigger"]["http"].as_array().unwrap();
    let mut routed = BTreeSet::new();
    for trigger in triggers {
        let path = trigger["route"].as_str().unwrap();
        let component = trigger["component"].as_str().unwrap();
        let (_, group) = COMPONENTS
            .iter()
            .find(|(name, _)| *name == component)
            .unwrap_or_else(|| panic!("route {path} names unknown component {component}"));
        // A wildcard route is tried with a sample path below it.
        let sample = match path.strip_suffix("/...") {
            Some(prefix) => format!("{prefix}/sample"),
            None => path.to_string(),
        };
        let endpoint = route("", &sample).unwrap_or_else(|| panic!("{sample}: no endpoint"));
        assert!(
            group.endpoints.contains(&endpoint),
            "{path} → {endpoint:?}, not served by {component}"
        );
        routed.insert(format!("{endpoint:?}"));
    }
    for endpoint in Endpoint::ALL {
        assert!(
            routed.contains(&format!("{endpoint:?}")),
            "{endpoint:?} has no route"
        );
    }
}

#[test]
fn components_are_built_and_confined_as_the_issue_says() {
    let manifest = manifest();
    let components = table(&manifest, "component");
    assert_eq!(components.len(), COMPONENTS.len());
    for (name, _) in COMPONENTS {
        let component = table(components, name);
        assert_eq!(
            component["source"].as_str(),
            Some(format!("target/wasm32-wasip2/release/mcp_auth_{name}.wasm").as_str())
        );
        assert_eq!(
            component["build"]["command"].as_str(),
            Some(
                format!("cargo build --target wasm32-wasip2 --release -p mcp-auth-{name}").as_str()
            )
        );
        let stores = component["key_value_stores"].as_array().unwrap();
        assert_eq!(stores, &vec![toml::Value::from("default")], "{name}");
        assert_eq!(
            component.contains_key("allowed_outbound_hosts"),
            name == "authorize" || name == "token",
            "{name}: only authorize (and token, for the provider's token endpoint) may reach \
             other servers"
        );
    }
}

/// Token exchange (RFC 8693) refreshes the users' upstream tokens from `token`: it reaches the
/// hosts of the providers' token endpoints, and no userinfo, API or CIMD host.
#[test]
fn token_reaches_only_the_providers_token_endpoints() {
    let manifest = manifest();
    let hosts = |name: &str| -> Vec<String> {
        table(table(&manifest, "component"), name)["allowed_outbound_hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        hosts("token"),
        [
            "{{ taskmanager_oauth_host }}",
            "{{ github_url }}",
            "{{ oidc_outbound_host }}",
            "{{ oidc_token_outbound_host }}",
        ]
    );
    assert!(hosts("token")
        .iter()
        .all(|h| hosts("authorize").contains(h)));
}

#[test]
fn manifest_only_variables_are_declared_and_in_the_allow_list() {
    let manifest = manifest();
    let variables = table(&manifest, "variables");
    let authorize = table(table(&manifest, "component"), "authorize");
    let hosts = authorize["allowed_outbound_hosts"].as_array().unwrap();
    for var in MANIFEST_ONLY {
        assert!(variables.contains_key(var), "`{var}` is not declared");
        let template = format!("{{{{ {var} }}}}");
        assert!(
            hosts.iter().any(|h| h.as_str() == Some(template.as_str())),
            "`{var}` is in no allowed_outbound_hosts entry"
        );
    }
}

/// Issue 16 item 18: Spin does not re-check the addresses of hosts a wildcard allows, so the
/// default manifest lets `authorize` reach named hosts only, and every entry the defaults
/// produce is one Spin accepts: `scheme://host[:port]`, no path, not empty.
#[test]
fn by_default_authorize_reaches_no_wildcard_host() {
    let manifest = manifest();
    let variables = table(&manifest, "variables");
    let authorize = table(table(&manifest, "component"), "authorize");
    let default_of = |name: &str| {
        variables[name]["default"]
            .as_str()
            .unwrap_or_else(|| panic!("`{name}` has no string default"))
            .to_string()
    };
    for entry in authorize["allowed_outbound_hosts"].as_array().unwrap() {
        let template = entry.as_str().unwrap();
        let expanded = match template
            .strip_prefix("{{")
            .and_then(|t| t.strip_suffix("}}"))
        {
            Some(name) => default_of(name.trim()),
            None => template.to_string(),
        };
        let (scheme, authority) = expanded
            .split_once("://")
            .unwrap_or_else(|| panic!("{template} → {expanded:?}: no scheme"));
        assert!(
            ["http", "https"].contains(&scheme),
            "{template} → {expanded}"
        );
        assert!(
            !authority.is_empty() && !authority.contains('/'),
            "{template} → {expanded}: Spin wants scheme://host[:port]"
        );
        assert!(
            !authority.contains('*'),
            "{template} → {expanded}: a wildcard by default"
        );
    }
}
