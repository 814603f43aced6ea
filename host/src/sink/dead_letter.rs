//! The side output: late items and records a stage failed, each with the
//! reason and where it came from, counted. Nothing is dropped silently.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use rdkafka::message::Header;
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

/// One dead letter: why, where from, and the record as it was read, so
/// that it can be replayed — its value and key byte for byte, its own
/// time (the event time when the manifest names no time field) and its
/// Kafka headers.
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
    /// Its line (files) or offset (Kafka) there.
    pub position: u64,
    /// The window key, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The record's value, or the window for a failed format or sink. In
    /// JSON a string when it is UTF-8, else `{"base64": "..."}`.
    #[serde(serialize_with = "text_or_base64")]
    pub value: Vec<u8>,
    /// The record's own time in microseconds since the Unix epoch (its
    /// Kafka timestamp, or when it was read); none for a window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_us: Option<i64>,
    /// The record's Kafka key, when it had one (as `value` in JSON).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "maybe_text_or_base64")]
    pub record_key: Option<Vec<u8>>,
    /// The record's Kafka headers, in order: `[name, value]` pairs in JSON
    /// (each value as `value` is).
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "header_pairs")]
    pub headers: Vec<(String, Vec<u8>)>,
}

impl DeadLetter {
    /// The value as text, with any bytes that are not UTF-8 replaced (for
    /// reading, not for replaying).
    pub fn value_text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.value)
    }
}

// Bytes as a JSON string when they are UTF-8 (nearly always: JSON, CSV),
// else as `{"base64": "..."}`, so that no byte is lost either way.
fn text_or_base64<S: serde::Serializer>(bytes: &[u8], out: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    use serde::ser::SerializeMap;
    match std::str::from_utf8(bytes) {
        Ok(text) => out.serialize_str(text),
        Err(_) => {
            let mut map = out.serialize_map(Some(1))?;
            map.serialize_entry("base64", &base64::engine::general_purpose::STANDARD.encode(bytes))?;
            map.end()
        }
    }
}

/// Bytes from their JSON form in a dead letter (see [`DeadLetter::value`]):
/// a string, or `{"base64": "..."}`.
pub fn bytes_from_json(value: &serde_json::Value) -> Result<Vec<u8>, String> {
    use base64::Engine as _;
    let not = || "neither a string nor {\"base64\": \"...\"}".to_owned();
    match value {
        serde_json::Value::String(text) => Ok(text.clone().into_bytes()),
        serde_json::Value::Object(o) => match o.get("base64").and_then(serde_json::Value::as_str) {
            Some(encoded) => base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|err| format!("bad base64: {err}")),
            None => Err(not()),
        },
        _ => Err(not()),
    }
}

fn maybe_text_or_base64<S: serde::Serializer>(bytes: &Option<Vec<u8>>, out: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(bytes) => text_or_base64(bytes, out),
        None => out.serialize_none(),
    }
}

fn header_pairs<S: serde::Serializer>(headers: &[(String, Vec<u8>)], out: S) -> Result<S::Ok, S::Error> {
    use serde::ser::{SerializeSeq, SerializeTuple};
    struct Pair<'a>(&'a str, &'a [u8]);
    impl Serialize for Pair<'_> {
        fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
            struct Value<'a>(&'a [u8]);
            impl Serialize for Value<'_> {
                fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
                    text_or_base64(self.0, out)
                }
            }
            let mut pair = out.serialize_tuple(2)?;
            pair.serialize_element(self.0)?;
            pair.serialize_element(&Value(self.1))?;
            pair.end()
        }
    }
    let mut seq = out.serialize_seq(Some(headers.len()))?;
    for (name, value) in headers {
        seq.serialize_element(&Pair(name, value))?;
    }
    seq.end()
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

    /// Dead letters as messages in a Kafka topic: the record as it was
    /// read (value, key, timestamp and headers), with the reason and origin
    /// in headers after its own (`weir.kind`, `weir.stage`, `weir.reason`,
    /// `weir.source`, `weir.partition`, `weir.offset`, `weir.key`).
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
                    "dead letter: {} (value: {})", letter.reason, truncate(&letter.value_text(), 200)
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
                let mut headers = super::kafka::headers(&letter.headers, 7)
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
                let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(letter.value.as_slice()).headers(headers);
                if let Some(key) = &letter.record_key {
                    record = record.key(key.as_slice());
                }
                if let Some(at) = letter.timestamp_us {
                    record = record.timestamp(at.div_euclid(1000));
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn letter(value: &[u8], record_key: Option<&[u8]>, headers: Vec<(String, Vec<u8>)>) -> DeadLetter {
        DeadLetter {
            kind: DeadLetterKind::Failed,
            stage: "deserialize".into(),
            reason: "not the expected JSON".into(),
            source: "topic".into(),
            partition: Some(2),
            position: 41,
            key: None,
            value: value.to_vec(),
            timestamp_us: Some(1_700_000_000_123_000),
            record_key: record_key.map(<[u8]>::to_vec),
            headers,
        }
    }

    fn written(letter: DeadLetter) -> serde_json::Value {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let mut out = DeadLetters::file(&path).unwrap();
        out.send(letter).unwrap();
        out.flush().unwrap();
        serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap()
    }

    fn unbase64(value: &serde_json::Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD.decode(value["base64"].as_str().unwrap_or_else(|| panic!("not base64: {value}"))).unwrap()
    }

    #[test]
    fn a_letter_in_a_file_keeps_the_record_whole() {
        let binary: &[u8] = &[0x0a, 0xff, 0x00, 0xc3];
        let got = written(letter(binary, Some(b"dev-\xff"), vec![("trace".into(), b"abc".to_vec()), ("raw".into(), vec![0xfe])]));
        assert_eq!(unbase64(&got["value"]), binary, "{got}");
        assert_eq!(unbase64(&got["record_key"]), b"dev-\xff", "{got}");
        assert_eq!(got["headers"][0], serde_json::json!(["trace", "abc"]), "{got}");
        assert_eq!(got["headers"][1][0], "raw");
        assert_eq!(unbase64(&got["headers"][1][1]), [0xfe]);
        assert_eq!(got["timestamp_us"], 1_700_000_000_123_000i64);
        assert_eq!((got["partition"].as_i64(), got["position"].as_u64()), (Some(2), Some(41)));
    }

    #[test]
    fn text_stays_text_and_what_a_record_lacks_is_left_out() {
        let got = written(letter(b"{\"temp\": \"caf\xc3\xa9\"}", None, Vec::new()));
        assert_eq!(got["value"], "{\"temp\": \"café\"}");
        for absent in ["record_key", "headers", "key"] {
            assert!(got.get(absent).is_none(), "{absent} in {got}");
        }
    }
}
