//! The process phase: one wasmtime engine (pooling allocator, epoch interruption) and one
//! linker holding every host interface, shared by all applications and requests.

use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::Error;
use crate::state::HostState;
use crate::Limits;

/// How often the epoch advances; a request's wall-time limit is counted in these ticks, and a
/// running guest yields to the executor once per tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances, memories and tables one component instance may use. A Rust `wasm32-wasip2`
/// component has a handful of core instances (the program, shims, fixups), one memory and a few
/// tables; these leave room without letting one guest take the pool.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 8;

/// How much of each linear memory and table slot is reset in place (the pages a request
/// dirtied, found with Linux's `PAGEMAP_SCAN`) instead of being handed back with `madvise`.
/// An `madvise` that unmaps pages flushes the TLB of every core the process runs on: with one
/// fresh instance per request, that flush was the host's largest cost. Our components dirty
/// well under this per request, so their slots never `madvise`; a slot keeps at most this
/// much resident while it waits for its next request. On kernels without `PAGEMAP_SCAN`
/// (before 6.7) wasmtime resets the slot's used prefix with `memset` instead, which for memories
/// of a few MiB should still cost less than a shootdown; we have only measured 6.18.
const KEEP_RESIDENT: usize = 4 << 20;
/// Warm slots kept for reuse (each holds what its last request dirtied, up to
/// [`KEEP_RESIDENT`]).
const WARM_SLOTS: u32 = 32;

/// The engine and linker of this process.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
}

impl Runtime {
    pub(crate) fn new(limits: &Limits) -> Result<Self, Error> {
        let n = limits.max_concurrent_requests.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n * CORE_INSTANCES_PER_COMPONENT)
            .total_memories(n * MEMORIES_PER_COMPONENT)
            .total_tables(n * TABLES_PER_COMPONENT)
            .total_stacks(n)
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_memory_size(limits.max_memory_bytes)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT / 16)
            .pagemap_scan(Enabled::Auto)
            .max_unused_warm_slots(WARM_SLOTS.min(n));
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(Error::runtime)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(Error::runtime)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(Error::runtime)?;
        crate::keyvalue::add_to_linker(&mut linker).map_err(Error::runtime)?;
        crate::config::add_to_linker(&mut linker).map_err(Error::runtime)?;

        spawn_epoch_ticker(&engine)?;
        Ok(Runtime { engine, linker })
    }
}

/// Advances the engine's epoch every tick until the engine is dropped.
fn spawn_epoch_ticker(engine: &Engine) -> Result<(), Error> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("mcp-auth-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
        .map_err(Error::io("spawning the epoch thread"))
}
