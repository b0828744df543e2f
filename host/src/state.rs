//! The per-request store data: one fresh WASI context, resource table and policy per request
//! (the request phase of the host).

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::config::ComponentConfig;
use crate::keyvalue::KeyValueAccess;
use crate::metrics::Metrics;
use crate::outbound::OutboundHooks;

/// The `T` of `Store<T>` for one request.
pub struct HostState {
    pub(crate) component: Arc<str>,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: OutboundHooks,
    pub(crate) limits: GuestLimits,
    pub(crate) kv: KeyValueAccess,
    pub(crate) config: ComponentConfig,
    pub(crate) metrics: Arc<Metrics>,
    /// Streams the guest opened on its stdout and stderr (see [`GuestOutput::opened`]).
    pub(crate) output_streams: Arc<AtomicUsize>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The store's resource limiter: the memory bound of [`StoreLimits`], and whether a linear
/// memory grew past the size it was created with during the current request.
///
/// Growth is what makes the next instance in the same pool slot expensive: wasmtime then
/// shrinks the slot's accessible memory back with an `mprotect`, which flushes the TLB of
/// every core the process runs on. The components start with heap to spare (see
/// `mcp_auth_wasi::reserve_heap`), and `mcp_auth_guest_memory_grown_total` shows whether they
/// stay within it.
pub(crate) struct GuestLimits {
    limits: StoreLimits,
    pub(crate) grew: bool,
}

impl GuestLimits {
    pub(crate) fn new(limits: StoreLimits) -> Self {
        GuestLimits {
            limits,
            grew: false,
        }
    }
}

impl ResourceLimiter for GuestLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        // A memory being created is "grown" from 0 to its initial size: not a growth.
        self.grew |= allowed && current > 0 && desired > current;
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// A guest's stdout or stderr, forwarded line by line to the host's stderr with the component's
/// name, so interleaved requests stay readable.
#[derive(Clone)]
pub struct GuestOutput {
    pub(crate) component: Arc<str>,
    /// How many streams the guest has opened on it: a guest keeps its stdio streams for its
    /// whole life, so a reused instance's resource table holds them between requests (see
    /// `instances`).
    pub(crate) opened: Arc<AtomicUsize>,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        self.opened.fetch_add(1, Ordering::Relaxed);
        Box::new(LineWriter {
            component: self.component.clone(),
            buf: Vec::new(),
        })
    }
}

/// Longest line kept before it is forwarded anyway, so a guest cannot grow host memory.
const MAX_LINE: usize = 16 * 1024;

struct LineWriter {
    component: Arc<str>,
    buf: Vec<u8>,
}

impl LineWriter {
    fn emit(&self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim_end_matches(['\r', '\n']);
        // Losing a log line is better than failing the guest's write.
        let _ = writeln!(std::io::stderr().lock(), "[{}] {line}", self.component);
    }

    fn flush_lines(&mut self) {
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            self.emit(&line);
        }
        if self.buf.len() >= MAX_LINE {
            let line = std::mem::take(&mut self.buf);
            self.emit(&line);
        }
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.buf.extend_from_slice(buf);
        self.flush_lines();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            self.emit(&rest);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.emit(&self.buf);
        }
    }
}
