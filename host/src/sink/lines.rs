use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{Rejection, Sink, SinkError, WindowResult};

/// Bytes of whole lines a sink keeps before writing them out in one call.
const CHUNK: usize = 64 << 10;

/// One line per result: the object as JSON, or one of its string fields as
/// raw text when `text_field` is set (for output meant for people).
///
/// Lines are kept in the sink's own buffer and written out whole, in one
/// call, when it holds [`CHUNK`] bytes, after each round of closed windows
/// (`poll`) and on `flush`. So several sinks can write one file or standard
/// output together ([`JsonLinesSink::shared`]): each takes the target for
/// a run of whole lines at a time, and no line is ever split by another's.
pub struct JsonLinesSink {
    out: Target,
    target: String,
    text_field: Option<String>,
    lines: Vec<u8>,
}

// Where the lines go: a writer of one sink's own, or one shared by several.
enum Target {
    Own(Box<dyn Write + Send>),
    Shared(Arc<Mutex<Box<dyn Write + Send>>>),
}

impl JsonLinesSink {
    /// Writes to standard output.
    pub fn stdout(text_field: Option<String>) -> Self {
        Self::new(Target::Own(Box::new(io::stdout())), "stdout".to_owned(), text_field)
    }

    /// Creates (or truncates) `path`.
    pub fn create(path: &Path, text_field: Option<String>) -> Result<Self, SinkError> {
        let (file, target) = create(path)?;
        Ok(Self::new(Target::Own(file), target, text_field))
    }

    /// Writes to any writer, for tests.
    pub fn to_writer(out: Box<dyn Write + Send>, text_field: Option<String>) -> Self {
        Self::new(Target::Own(out), "writer".to_owned(), text_field)
    }

    /// `count` sinks writing `path` (standard output when `None`) together,
    /// one per worker: each writes runs of whole lines under a lock, so
    /// the workers do not take turns a line at a time.
    pub fn shared(path: Option<&Path>, text_field: Option<String>, count: usize) -> Result<Vec<Self>, SinkError> {
        let (out, target): (Box<dyn Write + Send>, String) = match path {
            Some(path) => create(path)?,
            None => (Box::new(io::stdout()), "stdout".to_owned()),
        };
        let out = Arc::new(Mutex::new(out));
        Ok((0..count).map(|_| Self::new(Target::Shared(out.clone()), target.clone(), text_field.clone())).collect())
    }

    fn new(out: Target, target: String, text_field: Option<String>) -> Self {
        JsonLinesSink { out, target, text_field, lines: Vec::with_capacity(CHUNK + 1024) }
    }

    // Writes out the lines kept, in one call.
    fn write_out(&mut self) -> Result<(), SinkError> {
        if self.lines.is_empty() {
            return Ok(());
        }
        let written = match &mut self.out {
            Target::Own(out) => out.write_all(&self.lines).and_then(|()| out.flush()),
            Target::Shared(out) => {
                let mut out = out.lock().expect("a worker panicked holding the output");
                out.write_all(&self.lines).and_then(|()| out.flush())
            }
        };
        self.lines.clear();
        written.map_err(|source| SinkError::Io { target: self.target.clone(), source })
    }
}

fn create(path: &Path) -> Result<(Box<dyn Write + Send>, String), SinkError> {
    let target = path.display().to_string();
    let file = File::create(path).map_err(|source| SinkError::Io { target: target.clone(), source })?;
    Ok((Box::new(file), target))
}

impl Sink for JsonLinesSink {
    fn write(&mut self, result: &WindowResult) -> Result<(), SinkError> {
        match &self.text_field {
            None => self.lines.extend_from_slice(result.object.as_bytes()),
            Some(field) => {
                let object: serde_json::Value = serde_json::from_str(&result.object).unwrap_or_default();
                let Some(text) = object.get(field).and_then(|v| v.as_str()) else {
                    return Err(SinkError::Rejected(Rejection::of(result, format!("the object has no string field `{field}` to write"))));
                };
                self.lines.extend_from_slice(text.as_bytes());
            }
        }
        self.lines.push(b'\n');
        if self.lines.len() >= CHUNK {
            self.write_out()?;
        }
        Ok(())
    }

    fn poll(&mut self) -> Result<Vec<Rejection>, SinkError> {
        self.write_out()?;
        Ok(Vec::new())
    }

    fn flush(&mut self) -> Result<Vec<Rejection>, SinkError> {
        self.write_out()?;
        Ok(Vec::new())
    }
}

impl Drop for JsonLinesSink {
    // A sink dropped without a flush (a run stopped by an error) still
    // writes the lines it was given, as a buffered writer would.
    fn drop(&mut self) {
        let _ = self.write_out();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;

    fn result(object: String) -> WindowResult {
        WindowResult { key: "k".into(), id: 0, start: Timestamp(0), end: Timestamp(1_000), count: 1, object, acc: Vec::new(), closed_at: None }
    }

    #[test]
    fn workers_writing_one_file_never_split_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let sinks = JsonLinesSink::shared(Some(&path), None, 2).unwrap();
        // Lines of many lengths, so runs end anywhere against the chunk size.
        let threads: Vec<_> = sinks
            .into_iter()
            .enumerate()
            .map(|(worker, mut sink)| {
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        sink.write(&result(format!(r#"{{"w":{worker},"i":{i},"pad":"{}"}}"#, "x".repeat(i % 300)))).unwrap();
                        if i % 1_000 == 999 {
                            sink.poll().unwrap();
                        }
                    }
                    sink.flush().unwrap();
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        let mut next = [0u64; 2];
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("a split or mixed line ({e}): {line:.80}"));
            let (w, i) = (v["w"].as_u64().unwrap() as usize, v["i"].as_u64().unwrap());
            assert_eq!(i, next[w], "worker {w}'s lines in the order written");
            assert_eq!(v["pad"].as_str().unwrap().len() as u64, i % 300);
            next[w] += 1;
        }
        assert_eq!(next, [20_000, 20_000]);
    }

    #[test]
    fn lines_reach_the_file_after_each_round_and_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let mut sink = JsonLinesSink::create(&path, None).unwrap();
        sink.write(&result(r#"{"a":1}"#.into())).unwrap();
        sink.poll().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n", "written after the round of closed windows");
        sink.write(&result(r#"{"a":2}"#.into())).unwrap();
        drop(sink);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"a\":1}\n{\"a\":2}\n");
    }
}
