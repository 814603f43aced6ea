//! A dead-letter file (`[dead_letter] kind = "file"`) read back as the
//! records it holds, to send them again once what failed them is fixed:
//! each as it was read — value and key byte for byte, its own time, its
//! headers (see [`DeadLetter`](crate::sink::DeadLetter)). Windows that
//! could not be formatted or written are not records and are skipped.

use std::io::BufRead;
use std::path::Path;

use serde_json::Value;

use crate::sink::bytes_from_json as bytes;

/// A record of a dead letter, to send again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resend {
    /// The value, as it was read.
    pub value: Vec<u8>,
    /// The Kafka key, when it had one.
    pub key: Option<Vec<u8>>,
    /// Its own time, milliseconds since the Unix epoch (a Kafka timestamp).
    pub timestamp_ms: Option<i64>,
    /// Its Kafka headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Why a dead-letter file cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterFileError {
    /// The file could not be read.
    #[error("cannot read the dead-letter file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a dead letter.
    #[error("{path}:{line}: {reason}")]
    Letter {
        /// The file.
        path: String,
        /// The line, from 1.
        line: usize,
        /// What is wrong with it, naming the field.
        reason: String,
    },
}

/// The records of the dead-letter file at `path`, in order, and how many
/// of its letters were windows (skipped). Stops at the first line that is
/// not a dead letter, naming it: nothing is sent from a file half
/// understood.
pub fn read(path: &Path) -> Result<(Vec<Resend>, usize), DeadLetterFileError> {
    let name = path.display().to_string();
    let io = |source| DeadLetterFileError::Io { path: name.clone(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    let (mut records, mut windows) = (Vec::new(), 0);
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        match letter(&line).map_err(|reason| DeadLetterFileError::Letter { path: name.clone(), line: n + 1, reason })? {
            Some(record) => records.push(record),
            None => windows += 1,
        }
    }
    Ok((records, windows))
}

/// The record in one dead letter's JSON line; `None` for a window's.
pub fn letter(line: &str) -> Result<Option<Resend>, String> {
    let letter: Value = serde_json::from_str(line).map_err(|err| format!("not a dead letter (JSON): {err}"))?;
    let Some(object) = letter.as_object() else { return Err("not a dead letter (a JSON object)".into()) };
    // A window's letter names no source of its own and has no record time;
    // a record read from a topic or file named `window` has its time.
    if object.get("source").and_then(Value::as_str) == Some("window") && object.get("timestamp_us").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let value = bytes(object.get("value").ok_or("no field `value`")?).map_err(|e| format!("field `value`: {e}"))?;
    let key = match object.get("record_key") {
        None | Some(Value::Null) => None,
        Some(key) => Some(bytes(key).map_err(|e| format!("field `record_key`: {e}"))?),
    };
    let timestamp_ms = match object.get("timestamp_us") {
        None | Some(Value::Null) => None,
        Some(at) => Some(at.as_i64().ok_or("field `timestamp_us`: not a whole number of microseconds")?.div_euclid(1000)),
    };
    let headers = match object.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .enumerate()
            .map(|(i, pair)| match pair.as_array().map(Vec::as_slice) {
                Some([Value::String(name), value]) => Ok((name.clone(), bytes(value).map_err(|e| format!("field `headers` [{i}]: {e}"))?)),
                _ => Err(format!("field `headers` [{i}]: not a [name, value] pair")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("field `headers`: not a list of [name, value] pairs".into()),
    };
    Ok(Some(Resend { value, key, timestamp_ms, headers }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{DeadLetter, DeadLetterKind, DeadLetters};

    // What the file output writes comes back as it went in.
    #[test]
    fn letters_written_read_back_as_their_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        let mut out = DeadLetters::file(&path).unwrap();
        let record = |value: &[u8], key: Option<&[u8]>, headers: Vec<(String, Vec<u8>)>, source: &str| DeadLetter {
            kind: DeadLetterKind::Failed,
            stage: "deserialize".into(),
            reason: "bad".into(),
            source: source.into(),
            partition: Some(0),
            position: 7,
            key: None,
            value: value.to_vec(),
            timestamp_us: Some(1_700_000_000_123_456),
            record_key: key.map(<[u8]>::to_vec),
            headers,
        };
        out.send(record(b"{\"a\":1}", None, Vec::new(), "in")).unwrap();
        out.send(record(&[0xff, 0x00, 0x41], Some(b"k\xfe"), vec![("h".into(), vec![0x80]), ("t".into(), b"x".to_vec())], "in")).unwrap();
        out.send(DeadLetter { timestamp_us: None, ..record(b"{\"key\":\"w\"}", None, Vec::new(), "window") }).unwrap();
        // A record from a topic named `window` is a record.
        out.send(record(b"from a topic named window", None, Vec::new(), "window")).unwrap();
        out.flush().unwrap();
        let (records, windows) = read(&path).unwrap();
        assert_eq!(windows, 1);
        assert_eq!(
            records,
            [
                Resend { value: b"{\"a\":1}".to_vec(), key: None, timestamp_ms: Some(1_700_000_000_123), headers: Vec::new() },
                Resend { value: vec![0xff, 0x00, 0x41], key: Some(b"k\xfe".to_vec()), timestamp_ms: Some(1_700_000_000_123), headers: vec![("h".into(), vec![0x80]), ("t".into(), b"x".to_vec())] },
                Resend { value: b"from a topic named window".to_vec(), key: None, timestamp_ms: Some(1_700_000_000_123), headers: Vec::new() },
            ]
        );
    }

    #[test]
    fn a_line_that_is_not_a_letter_is_named_with_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.jsonl");
        std::fs::write(&path, "{\"source\":\"in\",\"value\":\"ok\"}\n\n{\"source\":\"in\",\"value\":{\"base64\":\"@@\"}}\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.ends_with("dead.jsonl:3: field `value`: bad base64: Invalid symbol 64, offset 0."), "{err}");
        for (line, field) in [("{\"source\":\"in\"}", "no field `value`"), ("{\"value\":\"v\",\"timestamp_us\":\"x\"}", "field `timestamp_us`"), ("{\"value\":\"v\",\"headers\":[[1,2]]}", "field `headers` [0]"), ("[1]", "a JSON object")] {
            let err = letter(line).unwrap_err();
            assert!(err.contains(field), "{line}: {err}");
        }
    }
}
