use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::bindings::log;

/// What a plugin's store holds: an empty WASI context (no preopened
/// folders, no sockets, no environment, no arguments; stderr kept in a small
/// buffer so a panic message can explain a trap), its memory limits, and the
/// stage name for its log lines.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) stderr: StderrTail,
    stage: Arc<str>,
}

impl HostState {
    pub(crate) fn new(stage: Arc<str>, memory: u64) -> Self {
        let stderr = StderrTail::default();
        HostState {
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            stderr,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new().memory_size(usize::try_from(memory).unwrap_or(usize::MAX)).trap_on_grow_failure(true).build(),
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

/// How much of a plugin's stderr is kept: enough for a panic message.
const STDERR_TAIL: usize = 4096;

/// A plugin's stderr: keeps the last few KiB and never refuses a write (a
/// refused write would make Rust's `eprintln!` panic inside the plugin).
#[derive(Clone, Default)]
pub(crate) struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tail.extend_from_slice(bytes);
        if tail.len() > STDERR_TAIL {
            let cut = tail.len() - STDERR_TAIL;
            tail.drain(..cut);
        }
    }

    /// What was written since the last call, as text.
    pub(crate) fn take(&self) -> String {
        let mut tail = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        String::from_utf8_lossy(&std::mem::take(&mut *tail)).into_owned()
    }
}

impl IsTerminal for StderrTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for StderrTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for StderrTail {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for StderrTail {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for StderrTail {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
