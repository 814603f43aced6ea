//! Where window results go (stdout, a JSON-lines file, memory) and where
//! late and failed records go ([`dead_letter`]).

pub mod dead_letter;
pub mod dynamodb;
pub mod kafka;
mod lines;
mod memory;
mod null;

use std::io;

pub use dead_letter::{DeadLetter, DeadLetterKind, DeadLetters, bytes_from_json};
pub use dynamodb::DynamoSink;
pub use kafka::KafkaSink;
pub use lines::JsonLinesSink;
pub use memory::MemorySink;
pub use null::NullSink;

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
    /// The accumulator it was formatted from (kept so a refused result can
    /// be replayed).
    pub acc: Vec<u8>,
    /// When the window closed, when the pipeline knows (a sink that writes
    /// in the background measures close → item from it).
    pub closed_at: Option<std::time::Instant>,
}

/// A window result a sink refused; it goes to the dead-letter output whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The result.
    pub result: WindowResult,
    /// Why.
    pub reason: String,
}

impl Rejection {
    /// The rejection of `result` for `reason`.
    pub fn of(result: &WindowResult, reason: String) -> Self {
        Rejection { result: result.clone(), reason }
    }
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
    /// DynamoDB failed past retries.
    #[error("DynamoDB table {table}: {message}")]
    Dynamo {
        /// The table.
        table: String,
        /// What happened.
        message: String,
    },
    /// Kafka failed past retries.
    #[error("Kafka topic {topic}: {message}")]
    Kafka {
        /// The topic.
        topic: String,
        /// What happened.
        message: String,
    },
    /// This one result cannot be written (too large, no such field); the
    /// pipeline dead-letters it and goes on.
    #[error("window {} [{}]: {}", .0.result.key, .0.result.start, .0.reason)]
    Rejected(Rejection),
    /// Results refused while writing a batch; dead-lettered likewise.
    #[error("{} window results refused", .0.len())]
    RejectedMany(Vec<Rejection>),
}

/// Receives window results.
pub trait Sink: Send {
    /// Writes one result.
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError>;
    /// Lets a sink that writes in the background start on what it holds
    /// without waiting, and returns what the destination refused since the
    /// last call (the pipeline calls it after each round of closed
    /// windows). Most sinks write as they go: nothing to do.
    fn poll(&mut self) -> Result<Vec<Rejection>, SinkError> {
        Ok(Vec::new())
    }
    /// Makes everything written so far durable or visible; returns what
    /// the destination refused, for the dead-letter output.
    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError>;
}

/// One sink written by several workers, a window at a time.
pub struct SharedSink(pub std::sync::Arc<std::sync::Mutex<Box<dyn Sink>>>);

impl Sink for SharedSink {
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError> {
        self.0.lock().expect("a worker panicked holding the sink").write(result)
    }

    fn poll(&mut self) -> Result<Vec<Rejection>, SinkError> {
        self.0.lock().expect("a worker panicked holding the sink").poll()
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        self.0.lock().expect("a worker panicked holding the sink").flush()
    }
}

/// Opens the sink a manifest names for `workers` workers, one sink each.
/// A file or standard output is written by every worker together in runs
/// of whole lines ([`JsonLinesSink::shared`]); any other sink is one sink
/// the workers take turns at, a window at a time ([`SharedSink`]).
pub fn open_for_workers(spec: &SinkSpec, workers: usize) -> Result<Vec<Box<dyn Sink>>, SinkError> {
    if let SinkSpec::Lines { path, text_field } = spec {
        let sinks = JsonLinesSink::shared(path.as_deref(), text_field.clone(), workers)?;
        return Ok(sinks.into_iter().map(|sink| Box::new(sink) as Box<dyn Sink>).collect());
    }
    let sink = std::sync::Arc::new(std::sync::Mutex::new(open(spec)?));
    Ok((0..workers).map(|_| Box::new(SharedSink(sink.clone())) as Box<dyn Sink>).collect())
}

/// Opens the sink a manifest names.
pub fn open(spec: &SinkSpec) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match spec {
        SinkSpec::Lines { path: None, text_field } => Box::new(JsonLinesSink::stdout(text_field.clone())),
        SinkSpec::Lines { path: Some(path), text_field } => Box::new(JsonLinesSink::create(path, text_field.clone())?),
        SinkSpec::Dynamodb(spec) => Box::new(DynamoSink::connect(spec)?),
        SinkSpec::Kafka(spec) => Box::new(KafkaSink::connect(spec)?),
    })
}
