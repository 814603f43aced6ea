//! Where window results go (stdout, a JSON-lines file, memory) and where
//! late and failed records go ([`dead_letter`]).

pub mod dead_letter;
mod lines;
mod memory;

use std::io;

pub use dead_letter::{DeadLetter, DeadLetterKind, DeadLetters};
pub use lines::JsonLinesSink;
pub use memory::MemorySink;

use crate::Timestamp;
use crate::manifest::SinkSpec;

/// A closed window, formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowResult {
    /// The key.
    pub key: String,
    /// The window index.
    pub id: i64,
    /// First instant in the window.
    pub start: Timestamp,
    /// First instant after it.
    pub end: Timestamp,
    /// Events folded in.
    pub count: u64,
    /// The format stage's JSON object, as text.
    pub object: String,
}

/// Why a sink failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Writing failed.
    #[error("cannot write {target}: {source}")]
    Io {
        /// The file or `stdout`.
        target: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The object has no string field the sink was told to write.
    #[error("window {key} [{start}, {end}): the object has no string field `{field}` to write")]
    MissingField {
        /// The window key.
        key: String,
        /// Window start.
        start: Timestamp,
        /// Window end.
        end: Timestamp,
        /// The field.
        field: String,
    },
}

/// Receives window results.
pub trait Sink: Send {
    /// Writes one result.
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError>;
    /// Makes everything written so far durable or visible.
    fn flush(&mut self) -> Result<(), SinkError>;
}

/// Opens the sink a manifest names.
pub fn open(spec: &SinkSpec) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match &spec.path {
        None => Box::new(JsonLinesSink::stdout(spec.text_field.clone())),
        Some(path) => Box::new(JsonLinesSink::create(path, spec.text_field.clone())?),
    })
}
