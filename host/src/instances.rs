//! Instances between requests: with [`Limits::instance_reuse`](crate::Limits::instance_reuse)
//! above 1, an instance whose request ended cleanly waits, idle, for the next request of its
//! component, up to that many requests; otherwise (and always with 1) it is dropped and the next
//! request instantiates afresh.
//!
//! A wasi:http 0.2 export may be called again once its call has returned, so reuse is only a
//! question of what an instance may carry from one request to the next. The host's side of a
//! request (the incoming request, its headers and body, the response outparam, outbound
//! requests) lives in the store's resource table, and an instance returns to the pool only when
//! the guest has dropped every resource of the request ([`Instance::is_clean`]); its
//! configuration, environment, stores and policy are the component's, the same for every
//! request. What the guest keeps in its own memory is the guest's to keep apart: the mcp-auth
//! components keep only what does not depend on the request (parsed settings, loaded signing
//! keys). An instance that trapped, ran out of time or memory, or left a resource behind is
//! never reused.
//!
//! Every live instance, busy or idle, holds one permit of the semaphore that bounds the pool,
//! so idle instances count against `max_concurrent_requests`; a request that finds no permit
//! evicts an idle instance (of any component) before it waits.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::DynOutputStream;

use crate::app::LoadedComponent;
use crate::state::HostState;

/// An instance with its store, between or during requests.
pub(crate) struct Instance {
    pub(crate) store: Store<HostState>,
    pub(crate) proxy: Proxy,
    /// Requests it has served.
    pub(crate) served: u32,
    /// Its place in the pool; released when the instance is dropped.
    _permit: OwnedSemaphorePermit,
}

/// What a request starts from: an idle instance, or a permit to instantiate one.
pub(crate) enum Checkout {
    Idle(Instance),
    Fresh(OwnedSemaphorePermit),
}

/// The idle instances of one component, most recently used last.
#[derive(Default)]
pub(crate) struct IdleInstances(Mutex<Vec<Instance>>);

impl IdleInstances {
    fn pop(&self) -> Option<Instance> {
        self.lock().pop()
    }

    fn push(&self, instance: Instance) {
        self.lock().push(instance);
    }

    /// Drops the longest-idle instance, if any; its permit returns to the semaphore.
    fn evict_one(&self) -> bool {
        let mut idle = self.lock();
        if idle.is_empty() {
            return false;
        }
        let oldest = idle.remove(0);
        drop(idle);
        drop(oldest);
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        // A panic while holding the lock left a list of whole instances: still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Instance {
    /// After a request that returned normally: has the guest dropped everything the request
    /// gave it or made? Between requests its table may hold only what a guest keeps for its
    /// whole life: the stdout and stderr streams it opened (Rust's standard library keeps
    /// them, with a pollable each) and pollables. Any other resource (an incoming request, its
    /// headers or body, a response, an outbound request or its future) is a request's, and so
    /// is an output stream beyond the stdio ones. A pollable is either a timer or the child of
    /// another resource, which then is still there too.
    pub(crate) fn is_clean(&mut self) -> bool {
        let state = self.store.data_mut();
        let stdio = state.output_streams.load(Ordering::Relaxed);
        let mut streams = 0;
        for entry in state.table.iter_mut() {
            if entry.is::<DynOutputStream>() {
                streams += 1;
            } else if !entry.is::<DynPollable>() {
                return false;
            }
        }
        streams <= stdio
    }
}

/// The instance a request runs in: an idle one, or a new store still to instantiate in.
pub(crate) enum Slot {
    Idle(Instance),
    Fresh {
        store: Store<HostState>,
        permit: OwnedSemaphorePermit,
    },
}

impl Slot {
    pub(crate) fn store(&mut self) -> &mut Store<HostState> {
        match self {
            Slot::Idle(instance) => &mut instance.store,
            Slot::Fresh { store, .. } => store,
        }
    }

    /// The instance, instantiated now if it is fresh.
    pub(crate) async fn instantiate(self, pre: &ProxyPre<HostState>) -> wasmtime::Result<Instance> {
        match self {
            Slot::Idle(instance) => Ok(instance),
            Slot::Fresh { mut store, permit } => {
                let proxy = pre.instantiate_async(&mut store).await?;
                Ok(Instance {
                    store,
                    proxy,
                    served: 0,
                    _permit: permit,
                })
            }
        }
    }
}

/// Takes an idle instance of `component`, or a permit to instantiate one: first a free permit,
/// then one freed by evicting an idle instance of any component, and only then waits.
/// `None`: the semaphore was closed.
pub(crate) async fn checkout<'a>(
    component: &LoadedComponent,
    all: impl Iterator<Item = &'a Arc<LoadedComponent>> + Clone,
    slots: &Arc<Semaphore>,
) -> Option<Checkout> {
    if let Some(instance) = component.idle.pop() {
        return Some(Checkout::Idle(instance));
    }
    loop {
        match slots.clone().try_acquire_owned() {
            Ok(permit) => return Some(Checkout::Fresh(permit)),
            Err(tokio::sync::TryAcquireError::Closed) => return None,
            Err(tokio::sync::TryAcquireError::NoPermits) => {}
        }
        // Prefer our own idle instances (another request may have just returned one).
        if let Some(instance) = component.idle.pop() {
            return Some(Checkout::Idle(instance));
        }
        if !all.clone().any(|other| other.idle.evict_one()) {
            return slots
                .clone()
                .acquire_owned()
                .await
                .ok()
                .map(Checkout::Fresh);
        }
    }
}

/// Returns `instance` to its component's idle list after a clean request, or drops it.
pub(crate) fn check_in(component: &LoadedComponent, instance: Instance, reusable: bool) {
    if reusable {
        component.idle.push(instance);
    }
}
