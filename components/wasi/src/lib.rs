//! mcp-auth's WASI glue: the one place where the pure core meets the WIT imports.
//!
//! Every component (`discovery`, `registration`, `authorize`, `token`, `introspect`) is a
//! few lines that export `wasi:http/incoming-handler` through [`export!`] and call [`serve`]
//! with its [`Group`] and its outbound capability ([`outbound::Http`] for `authorize` and
//! `token`, [`outbound::Denied`] for the rest). The bindings for `wit/world.wit` are generated once, here, so the
//! components share one copy of the capability code:
//!
//! | core trait | WIT import |
//! |---|---|
//! | [`Store`](mcp_auth_core::Store) | `wasi:keyvalue/store` + `atomics.increment` ([`store`]) |
//! | [`Upstream`](mcp_auth_core::Upstream) | `wasi:http/outgoing-handler` ([`outbound`]) |
//! | [`Config`](mcp_auth_core::Config) | `wasi:config/store.get-all` ([`config`]) |
//! | [`Clock`](mcp_auth_core::Clock) | `wasi:clocks/wall-clock` ([`system`]) |
//! | [`Rng`](mcp_auth_core::Rng) | `wasi:random/random` ([`system`]) |
//!
//! A component:
//!
//! ```ignore
//! struct Discovery;
//!
//! impl mcp_auth_wasi::IncomingHandler for Discovery {
//!     fn handle(request: mcp_auth_wasi::IncomingRequest, out: mcp_auth_wasi::ResponseOutparam) {
//!         use mcp_auth_wasi::{outbound::Denied, serve, Group};
//!         serve(request, out, &Group::DISCOVERY, &Denied);
//!     }
//! }
//!
//! mcp_auth_wasi::export!(Discovery);
//! ```
//!
//! Expired records need no timer here: the core sweeps them itself, a bounded slice on some
//! of the requests that write records (`mcp_auth_core::records::maybe_sweep`), so the
//! components run the same under Spin and under our host.

// `export!` names `mcp_auth_wasi::…` paths; this makes them resolve inside this crate too.
extern crate self as mcp_auth_wasi;

pub mod config;
pub mod incoming;
mod message;
pub mod outbound;
pub mod store;
pub mod system;

/// Bindings for world `mcp-auth:components/component`, generated once for all components.
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "component",
        path: "../../wit",
        generate_all,
        // wit-parser 0.239 (under wit-bindgen 0.46) cannot resolve the feature-gated
        // `import wasi:clocks/timezone` in wit/deps/cli unless the gate is on. Our world
        // does not import timezone either way: this only lets the directory parse.
        features: ["clocks-timezone"],
        pub_export_macro: true,
        export_macro_name: "export_bindings",
        default_bindings_module: "mcp_auth_wasi::bindings",
        runtime_path: "mcp_auth_wasi::bindings::rt",
    });

    /// The runtime support the generated code and [`export!`](crate::export) refer to, so
    /// component crates need no `wit-bindgen` dependency of their own.
    #[doc(hidden)]
    pub use wit_bindgen::rt;
}

/// Exports `$component` (which implements [`IncomingHandler`]) as this crate's world: the
/// HTTP handler, and `wizer-initialize`, which runs `$initialize` when given (see
/// [`precompute_signing`]) and does nothing otherwise.
#[macro_export]
macro_rules! export {
    ($component:ident) => {
        $crate::export!($component, || {});
    };
    ($component:ident, $initialize:expr) => {
        impl $crate::bindings::Guest for $component {
            fn wizer_initialize() {
                ($initialize)();
                $crate::reserve_heap();
            }
        }
        $crate::bindings::export_bindings!($component);
    };
}

/// A `wizer-initialize` for the components that sign or publish keys (`token`, `discovery`):
/// builds what every instance would otherwise compute on its first signature
/// ([`mcp_auth_core::keys::precompute`]). Pure: it calls no import, as a host that snapshots
/// the result requires. The other components leave it out, and with it the code.
pub fn precompute_signing() {
    mcp_auth_core::keys::precompute();
}

/// What a request may allocate without growing the linear memory, reserved at
/// pre-initialization.
const HEAP_HEADROOM: usize = 1 << 20;

/// Part of every `wizer-initialize`: grows the heap by [`HEAP_HEADROOM`] and frees it again, so
/// that the snapshot starts with that much free heap. A request that grows the memory beyond
/// its initial size makes wasmtime shrink it back when the next instance takes the slot, an
/// `mprotect` that flushes the TLB of every core the process runs on; with the headroom
/// requests allocate from the heap they start with (`mcp_auth_guest_memory_grown_total` on the
/// host's metrics says whether they do). The freed pages are zero and untouched: they add
/// nothing to the snapshot's data. Without pre-initialization (Spin) this is never called.
pub fn reserve_heap() {
    let layout = std::alloc::Layout::new::<[u8; HEAP_HEADROOM]>();
    // SAFETY: the layout has a non-zero size; the block is freed at once, untouched, and only
    // when the allocation succeeded (a failure leaves the heap as it was, which is harmless).
    unsafe {
        // Kept opaque: an allocation that is freed unused may otherwise be optimised away.
        let block = std::hint::black_box(std::alloc::alloc(layout));
        if !block.is_null() {
            std::alloc::dealloc(block, layout);
        }
    }
}

pub use bindings::exports::wasi::http::incoming_handler::Guest as IncomingHandler;
pub use bindings::wasi::http::types::{IncomingRequest, ResponseOutparam};
pub use mcp_auth_core::Group;

use mcp_auth_core::{config_error_response, handle_group, Env, Settings, Upstream};

/// Serve one request for the endpoints of `group`: read it, build the capabilities and the
/// settings, let the core answer, log its audit events, and send the response.
///
/// Nothing here panics on bad input: an unreadable request, a bad configuration or a
/// failing store all end as a JSON error response.
pub fn serve(
    request: IncomingRequest,
    response_out: ResponseOutparam,
    group: &Group,
    upstream: &dyn Upstream,
) {
    let response = match incoming::read_request(request) {
        Ok(request) => answer(&request, group, upstream),
        Err(response) => response,
    };
    incoming::send_response(response_out, response);
}

thread_local! {
    /// Kept across the requests of a reused instance (see [`config::SettingsCache`]).
    static SETTINGS: config::SettingsCache = config::SettingsCache::default();
}

fn answer(
    request: &mcp_auth_core::Request,
    group: &Group,
    upstream: &dyn Upstream,
) -> mcp_auth_core::Response {
    let config = match config::Variables::load() {
        Ok(config) => config,
        Err(response) => return response,
    };
    let settings = match SETTINGS.with(|cache| cache.get(config, |v| Settings::from_config(v))) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("mcp-auth: {err}");
            return config_error_response(&err);
        }
    };
    let store = store::KeyValue::default();
    let env = Env::new(
        &store,
        upstream,
        &system::WallClock,
        &system::Random,
        settings,
    );
    let response = handle_group(&env, request, group);
    for event in env.take_audit() {
        eprintln!("{}", event.to_line());
    }
    response
}
