//! Where records come from: files (CSV, JSON lines), standard input, or
//! memory. Each source reads on its own thread and hands over batches.

mod csv;
mod lines;
mod shared_file;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

pub use self::csv::CsvReader;
pub use lines::LinesReader;
pub use shared_file::{LineRoute, LineTag, SharedFile, SharedLinesReader};

use crate::Timestamp;
use crate::manifest::SourceSpec;

/// Where a record came from, for dead letters, errors and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file, topic or `stdin`.
    pub source: Arc<str>,
    /// The Kafka partition; `None` for files and stdin.
    pub partition: Option<i32>,
    /// The Kafka offset, or the line number in a file (from 1).
    pub position: u64,
    /// Where the record's value starts in its file, when it is a regular
    /// file's line and can be read back from there (so a record held for
    /// the fold need not be copied: see `pipeline::kept`).
    pub offset: Option<u64>,
}

/// A record as a source read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The key, when the source has one.
    pub key: Option<Vec<u8>>,
    /// The source's time for the record.
    pub timestamp: Timestamp,
    /// Kafka headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Where it came from.
    pub origin: Origin,
}

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The source is not read in plain batches (Kafka runs its own loop).
    #[error("{what} is read by the Kafka driver, not as a batch source")]
    NotBatch {
        /// Which source.
        what: String,
    },
    /// A CSV file's structure is broken (not a single bad row, which is a
    /// dead letter).
    #[error("{}: {message}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
}

/// Reads records in batches until the input ends.
pub trait Source: Send {
    /// Up to `max` records; an empty vector means the input has ended.
    fn next_batch(&mut self, max: usize) -> Result<Vec<SourceRecord>, SourceError>;
}

/// A fixed list of records, for tests and benchmarks.
pub struct MemorySource {
    records: std::vec::IntoIter<SourceRecord>,
}

impl MemorySource {
    /// A source that yields `records` in order, then ends.
    pub fn new(records: Vec<SourceRecord>) -> Self {
        MemorySource { records: records.into_iter() }
    }

    /// Records from JSON values, one per line of an imaginary file `name`.
    pub fn from_values<'a>(name: &str, values: impl IntoIterator<Item = &'a str>) -> Self {
        let source: Arc<str> = Arc::from(name);
        let records = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| SourceRecord {
                value: v.as_bytes().to_vec(),
                key: None,
                timestamp: Timestamp(0),
                headers: Vec::new(),
                origin: Origin { source: source.clone(), partition: None, position: i as u64 + 1, offset: None },
            })
            .collect();
        MemorySource::new(records)
    }
}

impl Source for MemorySource {
    fn next_batch(&mut self, max: usize) -> Result<Vec<SourceRecord>, SourceError> {
        Ok(self.records.by_ref().take(max).collect())
    }
}

/// Opens the source a manifest names.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn Source>, SourceError> {
    Ok(match spec {
        SourceSpec::Csv(path) => Box::new(CsvReader::open(path)?),
        SourceSpec::Jsonl(path) => Box::new(LinesReader::open(path)?),
        SourceSpec::Stdin => Box::new(LinesReader::stdin()),
        SourceSpec::Kafka(spec) => {
            return Err(SourceError::NotBatch { what: format!("kafka topics {}", spec.topics.join(", ")) });
        }
    })
}

/// A batch from the reader thread, or how it ended.
pub enum Delivery {
    /// Records.
    Batch(Vec<SourceRecord>),
    /// The input ended.
    End,
    /// The source failed.
    Failed(SourceError),
}

/// Runs `source` on its own thread, sending batches of up to `batch_size`
/// into a bounded channel so reading overlaps processing but never runs far
/// ahead of it.
pub fn spawn(mut source: Box<dyn Source>, batch_size: usize) -> Receiver<Delivery> {
    let (tx, rx): (SyncSender<Delivery>, Receiver<Delivery>) = sync_channel(4);
    thread::Builder::new()
        .name("weir-source".into())
        .spawn(move || {
            loop {
                let delivery = match source.next_batch(batch_size) {
                    Ok(batch) if batch.is_empty() => Delivery::End,
                    Ok(batch) => Delivery::Batch(batch),
                    Err(err) => Delivery::Failed(err),
                };
                let last = !matches!(delivery, Delivery::Batch(_));
                if tx.send(delivery).is_err() || last {
                    break;
                }
            }
        })
        .expect("spawn the source thread");
    rx
}
