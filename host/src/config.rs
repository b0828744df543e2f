//! `wasi:config/store@0.2.0-draft-2024-09-27`, the interface Spin 4 maps its variables onto
//! (wasmtime-wasi-config implements another pre-release that does not link; DESIGN.md §5).
//!
//! A component sees only its own `[component.<id>.variables]`, resolved at start-up; `get` of
//! any other name is `none`, as under Spin.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::state::HostState;

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasi:config/imports@0.2.0-draft-2024-09-27",
        imports: { default: trappable },
    });
}

use generated::wasi::config::store;

/// One component's resolved variables.
pub type ComponentConfig = Arc<BTreeMap<String, String>>;

/// Registers the interface on `linker`.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<HostState>) -> wasmtime::Result<()> {
    store::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(linker, |s| s)
}

impl store::Host for HostState {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        Ok(Ok(self.config.get(&key).cloned()))
    }

    fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        Ok(Ok(self
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()))
    }
}
