//! The side output: late items and records a stage failed, each with the
//! reason and where it came from, counted. Nothing is dropped silently.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, ThreadedProducer};

use super::SinkError;
use super::kafka::DeliveryFailures;

/// Why a record is a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    /// It arrived behind its key's watermark.
    Late,
    /// A stage failed it (an error, a trap, a timeout).
    Failed,
}

/// One dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// Late or failed.
    pub kind: DeadLetterKind,
    /// The stage that failed it, or `clock` for late items.
    pub stage: String,
    /// Why, in words.
    pub reason: String,
    /// The file, topic or `stdin` it came from.
    pub source: String,
    /// The Kafka partition, when it came from Kafka.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Its line (files) there.
    pub position: u64,
    /// The window key, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The record value (lossy UTF-8), or the window for a failed format.
    pub value: String,
}

enum Output {
    Log,
    File(BufWriter<File>, String),
    Memory(Arc<Mutex<Vec<DeadLetter>>>),
    Kafka { producer: ThreadedProducer<DeliveryFailures>, failures: DeliveryFailures, topic: String },
    /// Another output several workers write to.
    Shared(Arc<Mutex<DeadLetters>>),
}

/// The dead-letter output and its counts.
pub struct DeadLetters {
    output: Output,
    late: u64,
    failed: u64,
}

impl DeadLetters {
    /// Dead letters as warnings in the log.
    pub fn log() -> Self {
        DeadLetters { output: Output::Log, late: 0, failed: 0 }
    }

    /// Dead letters as JSON lines appended to `path` (created if missing):
    /// a restart never erases the letters of an earlier run.
    pub fn file(path: &Path) -> Result<Self, SinkError> {
        let target = path.display().to_string();
        let file = File::options().create(true).append(true).open(path).map_err(|source| SinkError::Io { target: target.clone(), source })?;
        Ok(DeadLetters { output: Output::File(BufWriter::new(file), target), late: 0, failed: 0 })
    }

    /// Dead letters as messages in a Kafka topic: the value is the record,
    /// the reason and origin are headers (`weir.kind`, `weir.stage`,
    /// `weir.reason`, `weir.source`, `weir.partition`, `weir.offset`,
    /// `weir.key`).
    pub fn kafka(brokers: &str, topic: &str) -> Result<Self, SinkError> {
        super::kafka::ensure_topic(brokers, topic, 1)?;
        let (producer, failures) = super::kafka::producer(brokers, &[], topic)?;
        Ok(DeadLetters { output: Output::Kafka { producer, failures, topic: topic.to_owned() }, late: 0, failed: 0 })
    }

    /// Dead letters kept in memory, shared with the returned handle.
    pub fn memory() -> (Self, Arc<Mutex<Vec<DeadLetter>>>) {
        let shared = Arc::new(Mutex::new(Vec::new()));
        (DeadLetters { output: Output::Memory(shared.clone()), late: 0, failed: 0 }, shared)
    }

    /// The output a manifest names.
    pub fn open(spec: &crate::manifest::DeadLetterSpec) -> Result<Self, SinkError> {
        match spec {
            crate::manifest::DeadLetterSpec::Log => Ok(DeadLetters::log()),
            crate::manifest::DeadLetterSpec::File(path) => DeadLetters::file(path),
            crate::manifest::DeadLetterSpec::Kafka { brokers, topic } => DeadLetters::kafka(brokers, topic),
        }
    }

    /// A handle on `shared` for one of several workers: letters go to it,
    /// and this handle counts its own.
    pub fn shared(shared: Arc<Mutex<DeadLetters>>) -> Self {
        DeadLetters { output: Output::Shared(shared), late: 0, failed: 0 }
    }

    /// Records one dead letter.
    pub fn send(&mut self, letter: DeadLetter) -> Result<(), SinkError> {
        match letter.kind {
            DeadLetterKind::Late => self.late += 1,
            DeadLetterKind::Failed => self.failed += 1,
        }
        match &mut self.output {
            Output::Log => {
                tracing::warn!(
                    kind = ?letter.kind, stage = %letter.stage, source = %letter.source, position = letter.position,
                    "dead letter: {} (value: {})", letter.reason, truncate(&letter.value, 200)
                );
                Ok(())
            }
            Output::File(out, target) => {
                let mut line = serde_json::to_vec(&letter).expect("a dead letter serializes");
                line.push(b'\n');
                out.write_all(&line).map_err(|source| SinkError::Io { target: target.clone(), source })
            }
            Output::Memory(shared) => {
                shared.lock().expect("not poisoned").push(letter);
                Ok(())
            }
            Output::Shared(shared) => shared.lock().expect("a worker panicked holding the dead-letter output").send(letter),
            Output::Kafka { producer, topic, .. } => {
                let kind = match letter.kind {
                    DeadLetterKind::Late => "late",
                    DeadLetterKind::Failed => "failed",
                };
                let position = letter.position.to_string();
                let mut headers = OwnedHeaders::new()
                    .insert(Header { key: "weir.kind", value: Some(kind) })
                    .insert(Header { key: "weir.stage", value: Some(&letter.stage) })
                    .insert(Header { key: "weir.reason", value: Some(&letter.reason) })
                    .insert(Header { key: "weir.source", value: Some(&letter.source) })
                    .insert(Header { key: "weir.offset", value: Some(&position) });
                if let Some(partition) = letter.partition {
                    headers = headers.insert(Header { key: "weir.partition", value: Some(&partition.to_string()) });
                }
                if let Some(key) = &letter.key {
                    headers = headers.insert(Header { key: "weir.key", value: Some(key) });
                }
                let record: BaseRecord<'_, str, str> = BaseRecord::to(topic).payload(letter.value.as_str()).headers(headers);
                super::kafka::send(producer, record).map_err(|err| SinkError::Kafka { topic: topic.clone(), message: err.to_string() })
            }
        }
    }

    /// Flushes a file output.
    pub fn flush(&mut self) -> Result<(), SinkError> {
        match &mut self.output {
            Output::File(out, target) => out.flush().map_err(|source| SinkError::Io { target: target.clone(), source }),
            Output::Kafka { producer, failures, topic } => super::kafka::flush(producer, failures, topic),
            Output::Shared(shared) => shared.lock().expect("a worker panicked holding the dead-letter output").flush(),
            Output::Log | Output::Memory(_) => Ok(()),
        }
    }

    /// Late items so far.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Failed records so far.
    pub fn failed(&self) -> u64 {
        self.failed
    }
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}
