use super::{Rejection, Sink, SinkError, WindowResult};

/// Drops every result; for benchmarks that measure the data path alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink;

impl Sink for NullSink {
    fn write(&mut self, _: &WindowResult) -> Result<(), SinkError> {
        Ok(())
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        Ok(Vec::new())
    }
}
