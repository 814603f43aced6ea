use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Origin, Source, SourceError, SourceRecord};
use crate::Timestamp;

/// A buffered reader that says how much it holds already.
trait Buffered: BufRead + Send {
    fn buffered(&self) -> usize;
}

impl<R: io::Read + Send> Buffered for BufReader<R> {
    fn buffered(&self) -> usize {
        self.buffer().len()
    }
}

/// Which lines a reader keeps (the others are counted and skipped before
/// any copy is made).
pub type LineFilter = Box<dyn Fn(&[u8]) -> bool + Send>;

/// One record per line (JSON lines, or any text on stdin). Blank lines are
/// skipped; a trailing `\r` is dropped. Standard input is a stream: a batch
/// ends when no more input is waiting, so a slow writer's lines are
/// processed as they come, not when a batch fills.
pub struct LinesReader {
    input: Box<dyn Buffered>,
    streaming: bool,
    path: PathBuf,
    name: Arc<str>,
    line: u64,
    buf: Vec<u8>,
    keep: Option<LineFilter>,
}

impl LinesReader {
    /// Reads the file at `path`.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let file = File::open(path).map_err(|source| SourceError::Io { path: path.to_owned(), source })?;
        Ok(Self::new(Box::new(BufReader::with_capacity(1 << 16, file)), path.to_owned(), false))
    }

    /// Reads standard input.
    pub fn stdin() -> Self {
        Self::new(Box::new(BufReader::with_capacity(1 << 16, io::stdin())), PathBuf::from("stdin"), true)
    }

    fn new(input: Box<dyn Buffered>, path: PathBuf, streaming: bool) -> Self {
        let name = Arc::from(path.display().to_string());
        LinesReader { input, streaming, path, name, line: 0, buf: Vec::new(), keep: None }
    }

    /// Keeps only the lines `keep` accepts (a worker reading the whole
    /// file for its own keys); the others still count for line numbers.
    pub fn keeping(mut self, keep: LineFilter) -> Self {
        self.keep = Some(keep);
        self
    }
}

impl Source for LinesReader {
    fn next_batch(&mut self, max: usize) -> Result<Vec<SourceRecord>, SourceError> {
        let mut batch = Vec::with_capacity(max.min(4096));
        let now = Timestamp::now();
        while batch.len() < max {
            if self.streaming && !batch.is_empty() && self.input.buffered() == 0 {
                break;
            }
            self.buf.clear();
            let read = self.input.read_until(b'\n', &mut self.buf).map_err(|source| SourceError::Io { path: self.path.clone(), source })?;
            if read == 0 {
                break;
            }
            self.line += 1;
            let mut line = &self.buf[..];
            while let [rest @ .., b'\n' | b'\r'] = line {
                line = rest;
            }
            if line.iter().all(u8::is_ascii_whitespace) || self.keep.as_ref().is_some_and(|keep| !keep(line)) {
                continue;
            }
            batch.push(SourceRecord {
                value: line.to_vec(),
                key: None,
                timestamp: now,
                headers: Vec::new(),
                origin: Origin { source: self.name.clone(), partition: None, position: self.line },
            });
        }
        Ok(batch)
    }
}
