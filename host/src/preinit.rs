//! Pre-initialization (Wizer) at load: a component that exports `wizer-initialize` has it run
//! once, and every request's instance then starts from the memory and globals it left.
//!
//! One fresh instance per request keeps requests apart, but it also makes every request redo
//! whatever a program computes on first use. For the mcp-auth components that is p256's table
//! of base-point multiples, which took most of a `/token` request's CPU. wasmtime-wizer
//! instruments the component, we instantiate it with every import trapping (the initializer
//! may compute, never reach the outside: no request data, key or secret can end up in the
//! snapshot), call the initializer, and wasmtime-wizer rewrites the component with the
//! snapshot as its initial state. The compile cache stores the result, so this costs one extra
//! compile on a cold cache and nothing after.
//!
//! A component without the export loads unchanged. An initializer that fails (traps, calls an
//! import, runs past its time), or a snapshot that does not compile (see `cache::load`), is
//! logged and the component loads unchanged: slower, never different. Spin does not pre-initialize; the same components then compute on first use.

use std::borrow::Cow;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use wasmparser::{ComponentExternalKind, Parser, Payload};
use wasmtime::component::{Component, Instance, Lift, Linker, WasmList};
use wasmtime::{Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::engine::EPOCH_TICK;

/// The initializer's export: the name Wizer looks for by default.
pub(crate) const INIT_EXPORT: &str = "wizer-initialize";

/// Changes whenever what [`prepare`] produces for the same input may change; part of the
/// compile cache's key, so that entries compiled before a change are not reused.
pub(crate) const VERSION: u32 = 1;

/// How long the initializer may run.
const INIT_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// The component to compile for `wasm`: its pre-initialized snapshot when it exports
/// [`INIT_EXPORT`] and initializing succeeds, else `wasm` itself.
pub(crate) fn prepare<'a>(engine: &Engine, component: &str, wasm: &'a [u8]) -> Cow<'a, [u8]> {
    if !exports_initializer(wasm) {
        return Cow::Borrowed(wasm);
    }
    let started = std::time::Instant::now();
    match preinitialize(engine, wasm) {
        Ok(snapshot) => {
            tracing::info!(
                component,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "component pre-initialized"
            );
            Cow::Owned(snapshot)
        }
        Err(e) => {
            tracing::warn!(component, error = %format!("{e:#}"), "pre-initialization failed; loading the component as it is");
            Cow::Borrowed(wasm)
        }
    }
}

/// Does the outermost component export a function named [`INIT_EXPORT`]?
fn exports_initializer(wasm: &[u8]) -> bool {
    // Nested modules and components have exports of their own; only depth 0 counts.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let Ok(payload) = payload else {
            return false;
        };
        match payload {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 0 => {
                let found = exports.into_iter().flatten().any(|export| {
                    export.name.name == INIT_EXPORT && export.kind == ComponentExternalKind::Func
                });
                if found {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

fn preinitialize(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Vec<u8>> {
    let mut wizer = Wizer::new();
    // Dropping the export leaves the component's lifted function pointing at a core export
    // that is gone (wasmtime-wizer 48 rewrites the core module only). Kept, it is inert: our host
    // calls nothing but the HTTP handler.
    wizer.keep_init_func(true);
    let (context, instrumented) = wizer.instrument_component(wasm)?;
    let component = Component::new(engine, &instrumented)?;
    let mut linker = Linker::new(engine);
    linker.define_unknown_imports_as_traps(&component)?;
    let mut store = Store::new(engine, ());
    // The engine interrupts on epochs; without a deadline the first check would trap.
    store.set_epoch_deadline((INIT_TIME.as_millis() / EPOCH_TICK.as_millis()) as u64);
    let instance = linker.instantiate(&mut store, &component)?;
    instance
        .get_typed_func::<(), ()>(&mut store, INIT_EXPORT)?
        .call(&mut store, ())?;
    let mut state = Snapshotter {
        store: &mut store,
        instance,
        failure: None,
    };
    let snapshot = run_ready(wizer.snapshot_component(&context, &mut state))?;
    match state.failure {
        Some(e) => Err(e),
        None => snapshot,
    }
}

/// Polls `future` once: [`Snapshotter`]'s calls are synchronous, so the snapshot completes
/// without ever waiting.
fn run_ready<F: Future>(future: F) -> wasmtime::Result<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Ok(output),
        Poll::Pending => Err(wasmtime::format_err!(
            "the snapshot waited on something; pre-initialization is synchronous"
        )),
    }
}

/// Reads the instrumented instance's state through the accessors wasmtime-wizer added. The
/// trait cannot return errors: the first failure is kept and ends [`preinitialize`].
struct Snapshotter<'a> {
    store: &'a mut Store<()>,
    instance: Instance,
    failure: Option<wasmtime::Error>,
}

impl Snapshotter<'_> {
    fn call<R: Lift + 'static>(&mut self, instance: &str, func: &str) -> wasmtime::Result<R> {
        let parent = self
            .instance
            .get_export_index(&mut *self.store, None, instance)
            .ok_or_else(|| wasmtime::format_err!("no export `{instance}`"))?;
        let index = self
            .instance
            .get_export_index(&mut *self.store, Some(&parent), func)
            .ok_or_else(|| wasmtime::format_err!("no export `{instance}#{func}`"))?;
        let func = self
            .instance
            .get_typed_func::<(), (R,)>(&mut *self.store, index)?;
        Ok(func.call(&mut *self.store, ())?.0)
    }

    fn value<R: Lift + Default + 'static>(&mut self, instance: &str, func: &str) -> R {
        match self.call(instance, func) {
            Ok(value) => value,
            Err(e) => {
                self.failure.get_or_insert(e);
                R::default()
            }
        }
    }
}

impl ComponentInstanceState for Snapshotter<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.call::<WasmList<u8>>(instance, func) {
            Ok(list) => contents(list.as_le_slice(&*self.store)),
            Err(e) => {
                self.failure.get_or_insert(e);
            }
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.value(instance, func)
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.value(instance, func)
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.value::<f32>(instance, func).to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.value::<f64>(instance, func).to_bits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_outermost_function_export_counts() {
        // An empty component (preamble only): no exports.
        let empty = b"\0asm\x0d\0\x01\0";
        assert!(!exports_initializer(empty));
        assert!(!exports_initializer(b"not wasm at all"));
    }
}
