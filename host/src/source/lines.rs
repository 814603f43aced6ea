use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Origin, Source, SourceError, SourceRecord};
use crate::Timestamp;

/// How much a reader asks the input for at a time.
const READ_SIZE: usize = 1 << 17;

/// One record per line (JSON lines, or any text on stdin). Blank lines are
/// skipped; a trailing `\r` is dropped. Lines are found with `memchr` in a
/// large buffer. Standard input is a stream: a batch ends when no whole line is
/// waiting, so a slow writer's lines are processed as they come, not when
/// a batch fills.
pub struct LinesReader {
    input: Box<dyn Read + Send>,
    streaming: bool,
    path: PathBuf,
    name: Arc<str>,
    line: u64,
    /// For a regular file, the file offset of `buf[0]` (records can be
    /// read back from the file); `None` for a stream.
    base: Option<u64>,
    /// Zeroed once when it grows; the bytes read and not yet split are
    /// `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    ended: bool,
}

impl LinesReader {
    /// Reads the file at `path`.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let io = |source| SourceError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        let regular = file.metadata().map_err(io)?.is_file();
        let mut reader = Self::new(Box::new(file), path.to_owned(), false);
        // A pipe or a device cannot be read again at an offset.
        reader.base = regular.then_some(0);
        Ok(reader)
    }

    /// Reads standard input.
    pub fn stdin() -> Self {
        Self::new(Box::new(io::stdin()), PathBuf::from("stdin"), true)
    }

    fn new(input: Box<dyn Read + Send>, path: PathBuf, streaming: bool) -> Self {
        let name = Arc::from(path.display().to_string());
        LinesReader { input, streaming, path, name, line: 0, base: None, buf: Vec::new(), start: 0, end: 0, ended: false }
    }

    // Moves what is left to the front and reads more after it (the
    // buffer doubles when one line fills it); false at the end of the input.
    fn fill(&mut self) -> Result<bool, SourceError> {
        if self.ended {
            return Ok(false);
        }
        self.buf.copy_within(self.start..self.end, 0);
        if let Some(base) = &mut self.base {
            *base += self.start as u64;
        }
        self.end -= self.start;
        self.start = 0;
        if self.buf.len() - self.end < READ_SIZE / 2 {
            let len = (self.buf.len() * 2).max(READ_SIZE);
            self.buf.resize(len, 0);
        }
        let read = loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(SourceError::Io { path: self.path.clone(), source }),
            }
        };
        self.end += read;
        if read == 0 {
            self.ended = true;
        }
        Ok(read > 0)
    }
}

/// A line's record: the line without any trailing `\r`; `None` for a
/// blank line (skipped, but counted for line numbers).
pub(super) fn record_text(line: &[u8]) -> Option<&[u8]> {
    let mut line = line;
    while let [rest @ .., b'\r'] = line {
        line = rest;
    }
    (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
}

impl Source for LinesReader {
    fn next_batch(&mut self, max: usize) -> Result<Vec<SourceRecord>, SourceError> {
        let mut batch = Vec::with_capacity(max.min(4096));
        let now = Timestamp::now();
        while batch.len() < max {
            let (from, to, next) = match memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                Some(at) => (self.start, self.start + at, self.start + at + 1),
                // No whole line waiting: a stream's batch ends here rather
                // than wait for more; otherwise read on (the last line of
                // the input needs no newline).
                None if self.streaming && !batch.is_empty() => break,
                None if self.fill()? => continue,
                None if self.start == self.end => break,
                None => (self.start, self.end, self.end),
            };
            self.line += 1;
            if let Some(line) = record_text(&self.buf[from..to]) {
                batch.push(SourceRecord {
                    value: line.to_vec(),
                    key: None,
                    timestamp: now,
                    headers: Vec::new(),
                    origin: Origin { source: self.name.clone(), partition: None, position: self.line, offset: self.base.map(|base| base + from as u64) },
                });
            }
            self.start = next;
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A reader over `chunks`, handed out one read at a time (as a pipe
    // does), with `streaming` as for stdin.
    fn reader(chunks: &[&str], streaming: bool) -> LinesReader {
        struct Chunks(std::collections::VecDeque<Vec<u8>>);
        impl Read for Chunks {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let Some(chunk) = self.0.pop_front() else { return Ok(0) };
                out[..chunk.len()].copy_from_slice(&chunk);
                Ok(chunk.len())
            }
        }
        let chunks = Chunks(chunks.iter().map(|c| c.as_bytes().to_vec()).collect());
        LinesReader::new(Box::new(chunks), PathBuf::from("test"), streaming)
    }

    fn lines(batch: &[SourceRecord]) -> Vec<(u64, &str)> {
        batch.iter().map(|r| (r.origin.position, std::str::from_utf8(&r.value).unwrap())).collect()
    }

    #[test]
    fn lines_split_across_reads_keep_their_numbers_and_blank_lines_count() {
        let mut r = reader(&["a\r\nb", "c\n\n  \n", "d"], false);
        let batch = r.next_batch(10).unwrap();
        assert_eq!(lines(&batch), [(1, "a"), (2, "bc"), (5, "d")]);
        assert!(r.next_batch(10).unwrap().is_empty());
    }

    #[test]
    fn a_batch_stops_at_max_and_the_next_goes_on() {
        let mut r = reader(&["1\n2\n3\n"], false);
        assert_eq!(lines(&r.next_batch(2).unwrap()), [(1, "1"), (2, "2")]);
        assert_eq!(lines(&r.next_batch(2).unwrap()), [(3, "3")]);
        assert!(r.next_batch(2).unwrap().is_empty());
    }

    #[test]
    fn a_stream_hands_over_what_has_come_without_waiting_for_a_full_batch() {
        let mut r = reader(&["1\n2\n3", "\n4\n"], true);
        assert_eq!(lines(&r.next_batch(100).unwrap()), [(1, "1"), (2, "2")], "the partial line waits for the next read");
        assert_eq!(lines(&r.next_batch(100).unwrap()), [(3, "3"), (4, "4")]);
        assert!(r.next_batch(100).unwrap().is_empty());
    }

    #[test]
    fn a_line_longer_than_the_buffer_comes_whole() {
        let long = "x".repeat(3 * READ_SIZE + 17);
        let text = format!("a\n{long}\nb\n");
        let chunks: Vec<&str> = text.as_bytes().chunks(READ_SIZE / 3).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let mut r = reader(&chunks, false);
        let batch = r.next_batch(10).unwrap();
        assert_eq!(lines(&batch), [(1, "a"), (2, long.as_str()), (3, "b")]);
    }
}
