use std::sync::{Arc, Mutex};

use super::{Rejection, Sink, SinkError, WindowResult};

/// Keeps results in memory, shared with whoever holds a clone; for tests.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    results: Arc<Mutex<Vec<WindowResult>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn results(&self) -> Vec<WindowResult> {
        self.results.lock().expect("not poisoned").clone()
    }
}

impl Sink for MemorySink {
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError> {
        self.results.lock().expect("not poisoned").push(result.clone());
        Ok(())
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        Ok(Vec::new())
    }
}
