use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::bindings::log;

/// What a plugin's store holds: an empty WASI context (no preopened
/// folders, no sockets, no environment, no arguments; stderr kept in a small
/// buffer so a panic message can explain a trap), its memory budget, the
/// current call's deadline, and the stage name for its log lines.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: MemoryBudget,
    pub(crate) stderr: StderrTail,
    /// When the current call must end; waits the plugin asks for (sleep,
    /// poll) end there too, so a blocking call cannot outlive the limit.
    pub(crate) deadline: Option<Instant>,
    /// Set when the plugin asked to wait past its deadline: the call fails
    /// as timed out, whatever the epoch ticker says by then.
    pub(crate) doomed: bool,
    log: LogBudget,
    stage: Arc<str>,
}

impl HostState {
    pub(crate) fn new(stage: Arc<str>, memory: u64) -> Self {
        let stderr = StderrTail::default();
        HostState {
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            stderr,
            table: ResourceTable::new(),
            limits: MemoryBudget { limit: memory, used: 0 },
            deadline: None,
            doomed: false,
            log: LogBudget::default(),
            stage,
        }
    }

    /// Says how many log lines were dropped since the last report; called
    /// after every call, so a flood that ends is still reported.
    pub(crate) fn report_dropped_logs(&mut self) {
        self.log.report(&self.stage);
    }

    /// How long a wait of `requested` may last: never past the deadline. A
    /// wait that would outlast it dooms the call.
    pub(crate) fn capped_wait(&mut self, requested: Duration) -> Duration {
        let Some(deadline) = self.deadline else { return requested };
        let left = deadline.saturating_duration_since(Instant::now());
        if requested > left {
            self.doomed = true;
            return left;
        }
        requested
    }
}

/// Bytes a table element is counted as against the memory budget.
const TABLE_ELEMENT_BYTES: u64 = 16;

/// One budget for all of a component's linear memories and tables
/// together (a component may hold several core instances, each with its
/// own): growing past it traps with "memory limit".
pub(crate) struct MemoryBudget {
    pub(crate) limit: u64,
    used: u64,
}

impl MemoryBudget {
    fn grow(&mut self, current: u64, desired: u64, what: &str) -> wasmtime::Result<bool> {
        let used = self.used - current.min(self.used) + desired;
        if used > self.limit {
            return Err(wasmtime::Error::msg(format!("memory limit of {} bytes reached: {what} would bring the component to {used} bytes", self.limit)));
        }
        self.used = used;
        Ok(true)
    }
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current as u64, desired as u64, "growing a memory")
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current as u64 * TABLE_ELEMENT_BYTES, desired as u64 * TABLE_ELEMENT_BYTES, "growing a table")
    }
}

/// A plugin's log lines: each cut to [`LOG_LINE_MAX`] bytes, at most
/// [`LOG_LINES_PER_SECOND`] a second; the rest are counted and reported.
#[derive(Default)]
struct LogBudget {
    second: Option<Instant>,
    lines: u32,
    dropped: u64,
}

/// Longest plugin log line kept, in bytes.
pub(crate) const LOG_LINE_MAX: usize = 4096;
/// Plugin log lines per second per stage instance.
pub(crate) const LOG_LINES_PER_SECOND: u32 = 100;

impl LogBudget {
    // Whether a line may be written now; reports lines dropped before.
    fn admit(&mut self, stage: &str) -> bool {
        let now = Instant::now();
        if self.second.is_none_or(|s| now.duration_since(s) >= Duration::from_secs(1)) {
            self.report(stage);
            self.second = Some(now);
            self.lines = 0;
        }
        self.lines += 1;
        if self.lines > LOG_LINES_PER_SECOND {
            self.dropped += 1;
            return false;
        }
        true
    }
}

impl LogBudget {
    fn report(&mut self, stage: &str) {
        if self.dropped > 0 {
            tracing::warn!(target: "weir::plugin", stage, "{} log lines dropped: over {LOG_LINES_PER_SECOND} a second", self.dropped);
            self.dropped = 0;
        }
    }
}

/// `text` cut to at most `max` bytes on a character boundary, marked when cut.
pub(crate) fn bounded(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return text.into();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &text[..end], text.len() - end).into()
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl log::Host for HostState {
    fn log(&mut self, level: log::Level, message: String) {
        let stage = &*self.stage;
        if !self.log.admit(stage) {
            return;
        }
        let message = bounded(&message, LOG_LINE_MAX);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_budget_covers_every_memory_and_table() {
        let mut budget = MemoryBudget { limit: 10 << 20, used: 0 };
        // Two memories of 4 MiB each fit; a third does not, though each
        // alone is under the cap.
        assert!(budget.memory_growing(0, 4 << 20, None).unwrap());
        assert!(budget.memory_growing(0, 4 << 20, None).unwrap());
        let err = budget.memory_growing(0, 4 << 20, None).unwrap_err().to_string();
        assert!(err.contains("memory limit of 10485760 bytes"), "{err}");
        // Tables count too.
        assert!(budget.table_growing(0, 1000, None).unwrap());
        assert!(budget.table_growing(1000, 200_000, None).is_err());
        // Growing one memory counts only the growth.
        assert!(budget.memory_growing(4 << 20, (5 << 20) + (1 << 19), None).unwrap());
    }

    #[test]
    fn log_lines_are_cut_on_a_character_boundary() {
        let line = "é".repeat(3000);
        let cut = bounded(&line, 4095);
        assert!(cut.len() < 4200 && cut.ends_with("bytes cut)"), "{}", cut.len());
        assert_eq!(bounded("short", 10), "short");
    }
}
