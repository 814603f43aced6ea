use std::sync::Arc;

use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::bindings::log;

/// What a plugin's store holds: an empty WASI context (no preopened
/// folders, no sockets, no environment, no arguments), its memory limits, and
/// the stage name for its log lines.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    stage: Arc<str>,
}

impl HostState {
    pub(crate) fn new(stage: Arc<str>, memory: u64) -> Self {
        HostState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(usize::try_from(memory).unwrap_or(usize::MAX))
                .trap_on_grow_failure(true)
                .build(),
            stage,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let stage = &*self.stage;
        match level {
            log::Level::Trace => tracing::trace!(target: "weir::plugin", stage, "{message}"),
            log::Level::Debug => tracing::debug!(target: "weir::plugin", stage, "{message}"),
            log::Level::Info => tracing::info!(target: "weir::plugin", stage, "{message}"),
            log::Level::Warn => tracing::warn!(target: "weir::plugin", stage, "{message}"),
            log::Level::Error => tracing::error!(target: "weir::plugin", stage, "{message}"),
        }
    }
}
