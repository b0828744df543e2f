//! The app phase: once per manifest, validate it, resolve variables, precompile and
//! pre-instantiate every component, and bind each one's capabilities (stores, allowed hosts,
//! variables) so that a request only has to instantiate.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use mcp_auth_kv::Store;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::config::ComponentConfig;
use crate::engine::Runtime;
use crate::error::Error;
use crate::instances::IdleInstances;
use crate::keyvalue::{AllowedStore, KeyValueAccess};
use crate::manifest::{ComponentSpec, Manifest};
use crate::outbound::{AllowList, Outbound, OutboundPolicy};
use crate::routing::Router;
use crate::state::HostState;
use crate::variables::Variables;

/// A loaded application.
pub(crate) struct App {
    pub(crate) router: Router,
    pub(crate) components: HashMap<String, Arc<LoadedComponent>>,
}

/// One component, ready to serve.
pub(crate) struct LoadedComponent {
    pub(crate) id: Arc<str>,
    pub(crate) pre: ProxyPre<HostState>,
    pub(crate) allow: Arc<OutboundPolicy>,
    pub(crate) kv: KeyValueAccess,
    pub(crate) config: ComponentConfig,
    pub(crate) environment: Vec<(String, String)>,
    /// Instances waiting for this component's next request (see [`crate::instances`]).
    pub(crate) idle: IdleInstances,
}

impl App {
    pub(crate) fn load(
        runtime: &Runtime,
        manifest: &Manifest,
        variables: &Variables,
        stores: &HashMap<String, Arc<dyn Store>>,
        cache_dir: Option<&Path>,
        outbound: &Outbound,
    ) -> Result<Self, Error> {
        let router = Router::build(&manifest.routes).map_err(|message| Error::Manifest {
            path: manifest.path.clone(),
            message,
        })?;
        let mut components = HashMap::new();
        for (id, spec) in &manifest.components {
            let loaded = load_component(runtime, id, spec, variables, stores, cache_dir, outbound)?;
            components.insert(id.clone(), Arc::new(loaded));
        }
        Ok(App { router, components })
    }
}

fn load_component(
    runtime: &Runtime,
    id: &str,
    spec: &ComponentSpec,
    variables: &Variables,
    stores: &HashMap<String, Arc<dyn Store>>,
    cache_dir: Option<&Path>,
    outbound: &Outbound,
) -> Result<LoadedComponent, Error> {
    let component_error = |message: String| Error::Component {
        component: id.to_owned(),
        message,
    };
    let mut config = std::collections::BTreeMap::new();
    for (name, template) in &spec.variables {
        let value = variables
            .expand(template, None)
            .map_err(|e| component_error(format!("variable `{name}`: {e}")))?;
        config.insert(name.clone(), value);
    }
    let hosts = spec
        .allowed_outbound_hosts
        .iter()
        .map(|t| variables.expand(t, Some(&config)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(component_error)?;
    let allow = outbound.policy(id, AllowList::parse(&hosts).map_err(component_error)?);
    // Spin refuses at start-up a label that no runtime config defines; so do we.
    let mut kv = KeyValueAccess {
        allowed: Vec::new(),
        known: Arc::new(stores.keys().cloned().collect()),
    };
    for label in &spec.key_value_stores {
        let store = stores.get(label).cloned().ok_or_else(|| {
            component_error(format!(
                "key-value store `{label}` is not defined (only `default` is, \
                 unless the runtime config adds more)"
            ))
        })?;
        kv.allowed.push(AllowedStore {
            label: Arc::from(label.as_str()),
            store,
        });
    }

    let source_error = |message: String| Error::Source {
        component: id.to_owned(),
        path: spec.source.clone(),
        message,
    };
    let wasm = std::fs::read(&spec.source).map_err(|e| {
        source_error(if e.kind() == std::io::ErrorKind::NotFound {
            "the file does not exist: build the components first \
             (cargo build --target wasm32-wasip2 --release)"
                .to_owned()
        } else {
            e.to_string()
        })
    })?;
    let started = std::time::Instant::now();
    let (component, cached) = crate::cache::load(&runtime.engine, &wasm, cache_dir, |wasm| {
        crate::preinit::prepare(&runtime.engine, id, wasm)
    })
    .map_err(|e| source_error(format!("not a valid component: {e:#}")))?;
    tracing::info!(
        component = id,
        cached,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "component loaded"
    );
    let pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(|e| source_error(format!("its imports cannot be satisfied: {e:#}")))?;
    let pre = ProxyPre::new(pre).map_err(|e| {
        source_error(format!(
            "it does not export wasi:http/incoming-handler: {e:#}"
        ))
    })?;
    Ok(LoadedComponent {
        id: Arc::from(id),
        pre,
        allow: Arc::new(allow),
        kv,
        config: Arc::new(config),
        environment: spec.environment.clone().into_iter().collect(),
        idle: IdleInstances::default(),
    })
}
