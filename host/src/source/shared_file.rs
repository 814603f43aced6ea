//! A file of lines read once by several workers together. The file is cut
//! into segments (1 MiB); whichever worker needs a segment that nobody has
//! read yet reads it, splits it into lines and tags each line (the driver's
//! `tag`: the hash of its key), and every worker then takes its own lines
//! from each segment, in file order. So the line split and the key scan are
//! done once for all workers rather than once by each, and no worker hands
//! records to another.
//!
//! Reading never waits for anything; a worker waits only for a segment
//! another worker is reading. A worker reads ahead of what it needs only
//! while the slowest worker is within [`LOOKAHEAD`] segments, which bounds
//! the memory held. The file's length is taken when it is opened.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use super::{Origin, Source, SourceError, SourceRecord};
use crate::Timestamp;

/// Bytes in a segment (a line belongs to the segment it starts in).
const SEGMENT: u64 = 1 << 20;
/// How many segments past the slowest worker a worker may read ahead.
const LOOKAHEAD: usize = 8;

/// What a line is tagged with, from its bytes (blank lines are not tagged).
pub type LineTag = Arc<dyn Fn(&[u8]) -> Option<u64> + Send + Sync>;

/// Which lines a worker keeps, from their tags, in file order.
pub type TagFilter = Box<dyn FnMut(Option<u64>) -> bool + Send>;

/// A file opened for several [`SharedLinesReader`]s.
pub struct SharedFile {
    shared: Arc<Shared>,
}

struct Shared {
    file: File,
    path: PathBuf,
    name: Arc<str>,
    len: u64,
    segment: u64,
    tag: LineTag,
    table: Mutex<Table>,
    ready: Condvar,
}

#[derive(Default)]
struct Table {
    /// Segments `first..`, `None` while being read.
    segments: VecDeque<Option<Arc<Segment>>>,
    first: usize,
    /// The next segment nobody has started to read.
    next: usize,
    /// Per reader, the next segment it needs (`usize::MAX` once dropped).
    needs: Vec<usize>,
    failed: Option<String>,
}

// The lines that start in one segment.
struct Segment {
    bytes: Vec<u8>,
    lines: Vec<Line>,
}

struct Line {
    start: u32,
    /// After any trailing `\r`.
    end: u32,
    /// `None` for a blank line (skipped, but counted for line numbers).
    tag: Option<Option<u64>>,
}

impl SharedFile {
    /// Opens the file at `path`, to be read by `readers` readers, each line
    /// tagged by `tag`.
    pub fn open(path: &Path, readers: usize, tag: LineTag) -> Result<Self, SourceError> {
        Self::with_segment(path, readers, tag, SEGMENT)
    }

    fn with_segment(path: &Path, readers: usize, tag: LineTag, segment: u64) -> Result<Self, SourceError> {
        let io = |source| SourceError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let table = Table { needs: vec![0; readers], ..Table::default() };
        let name = Arc::from(path.display().to_string());
        Ok(SharedFile { shared: Arc::new(Shared { file, path: path.to_owned(), name, len, segment, tag, table: Mutex::new(table), ready: Condvar::new() }) })
    }

    /// Reader number `reader` (below the number given to
    /// [`SharedFile::open`]), keeping the lines `keep` accepts. Every
    /// reader must read to the end or be dropped.
    pub fn reader(&self, reader: usize, keep: TagFilter) -> SharedLinesReader {
        SharedLinesReader { shared: self.shared.clone(), reader, keep, segment: None, index: 0, cursor: 0, line: 0 }
    }
}

/// One worker's reader of a [`SharedFile`]: its own lines, in file order,
/// numbered as in the file.
pub struct SharedLinesReader {
    shared: Arc<Shared>,
    reader: usize,
    keep: TagFilter,
    segment: Option<Arc<Segment>>,
    /// The index of `segment` (or of the next one to take).
    index: usize,
    cursor: usize,
    line: u64,
}

impl Shared {
    fn segments(&self) -> usize {
        self.len.div_ceil(self.segment) as usize
    }

    // Segment `index`, read by this thread if nobody has started it;
    // `None` past the end of the file.
    fn get(&self, index: usize) -> Result<Option<Arc<Segment>>, SourceError> {
        if index >= self.segments() {
            return Ok(None);
        }
        let mut table = self.table.lock().expect("the segment table is never left half-changed");
        loop {
            if let Some(message) = &table.failed {
                return Err(SourceError::Io { path: self.path.clone(), source: std::io::Error::other(message.clone()) });
            }
            if let Some(Some(segment)) = table.segments.get(index - table.first) {
                return Ok(Some(segment.clone()));
            }
            // Read the one needed, or one ahead while the slowest is near.
            let slowest = table.needs.iter().copied().min().unwrap_or(index);
            let claim = table.next < self.segments() && (table.next <= index || table.next < slowest.saturating_add(LOOKAHEAD));
            if !claim {
                table = self.ready.wait(table).expect("the segment table is never left half-changed");
                continue;
            }
            let claimed = table.next;
            table.next += 1;
            table.segments.push_back(None);
            drop(table);
            let read = self.read(claimed);
            table = self.table.lock().expect("the segment table is never left half-changed");
            match read {
                Ok(segment) => {
                    let at = claimed - table.first;
                    table.segments[at] = Some(Arc::new(segment));
                }
                Err(err) => table.failed = Some(err.to_string()),
            }
            self.ready.notify_all();
        }
    }

    // Reader `reader` needs segment `next` now: segments nobody needs go.
    fn advance(&self, reader: usize, next: usize) {
        let mut table = self.table.lock().expect("the segment table is never left half-changed");
        table.needs[reader] = next;
        let slowest = table.needs.iter().copied().min().unwrap_or(usize::MAX);
        while table.first < slowest && table.segments.front().is_some_and(Option::is_some) {
            table.segments.pop_front();
            table.first += 1;
        }
        self.ready.notify_all();
    }

    // Reads and splits segment `index`: the lines that start in it.
    fn read(&self, index: usize) -> std::io::Result<Segment> {
        let (lo, hi) = (index as u64 * self.segment, ((index as u64 + 1) * self.segment).min(self.len));
        // From the byte before, to see whether a line starts at `lo`.
        let from = lo.saturating_sub(1);
        let mut bytes = vec![0; (hi - from) as usize];
        self.file.read_exact_at(&mut bytes, from)?;
        let mut start = match index {
            0 => 0,
            _ => match memchr::memchr(b'\n', &bytes) {
                Some(at) => at + 1,
                None => bytes.len(),
            },
        };
        let owned = bytes.len();
        let mut lines = Vec::new();
        while start < owned {
            let end = loop {
                if let Some(at) = memchr::memchr(b'\n', &bytes[start..]) {
                    break start + at;
                }
                // The segment's last line goes on past it.
                let read_at = from + bytes.len() as u64;
                if read_at >= self.len {
                    break bytes.len();
                }
                let more = (self.len - read_at).min(1 << 16) as usize;
                let old = bytes.len();
                bytes.resize(old + more, 0);
                self.file.read_exact_at(&mut bytes[old..], read_at)?;
            };
            let mut line = &bytes[start..end];
            while let [rest @ .., b'\r'] = line {
                line = rest;
            }
            let tag = (!line.iter().all(u8::is_ascii_whitespace)).then(|| (self.tag)(line));
            let (line_start, line_end) = (u32::try_from(start), u32::try_from(start + line.len()));
            let (Ok(line_start), Ok(line_end)) = (line_start, line_end) else {
                return Err(std::io::Error::other(format!("a line of {} is longer than 4 GiB", self.path.display())));
            };
            lines.push(Line { start: line_start, end: line_end, tag });
            start = end + 1;
        }
        Ok(Segment { bytes, lines })
    }
}

impl Source for SharedLinesReader {
    fn next_batch(&mut self, max: usize) -> Result<Vec<SourceRecord>, SourceError> {
        let mut batch = Vec::with_capacity(max.min(4096));
        let now = Timestamp::now();
        while batch.len() < max {
            let segment = match &self.segment {
                Some(segment) => segment.clone(),
                None => match self.shared.get(self.index)? {
                    Some(segment) => {
                        self.segment = Some(segment.clone());
                        segment
                    }
                    None => break,
                },
            };
            while batch.len() < max && self.cursor < segment.lines.len() {
                let line = &segment.lines[self.cursor];
                self.cursor += 1;
                self.line += 1;
                let Some(tag) = line.tag else { continue };
                if (self.keep)(tag) {
                    batch.push(SourceRecord {
                        value: segment.bytes[line.start as usize..line.end as usize].to_vec(),
                        key: None,
                        timestamp: now,
                        headers: Vec::new(),
                        origin: Origin { source: self.shared.name.clone(), partition: None, position: self.line },
                    });
                }
            }
            if self.cursor == segment.lines.len() {
                (self.segment, self.cursor) = (None, 0);
                self.index += 1;
                self.shared.advance(self.reader, self.index);
            }
        }
        Ok(batch)
    }
}

impl Drop for SharedLinesReader {
    fn drop(&mut self) {
        // It needs nothing more: the others need not keep segments for it.
        self.shared.advance(self.reader, usize::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::LinesReader;

    fn all(source: &mut dyn Source) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        loop {
            let batch = source.next_batch(3).unwrap();
            if batch.is_empty() {
                return out;
            }
            out.extend(batch.into_iter().map(|r| (r.origin.position, String::from_utf8(r.value).unwrap())));
        }
    }

    #[test]
    fn readers_on_threads_share_out_every_line_of_tiny_segments_as_one_reader_reads_them() {
        let long = "y".repeat(40);
        let text = format!("a1\r\nb2\n\n  \nc3\n{long}\nd4\nb5\na6\r\n\nc7\nb8");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, &text).unwrap();
        let expected = all(&mut LinesReader::open(&path).unwrap());
        assert_eq!(expected.len(), 9);
        // Tag by first letter; reader r keeps tags that are r mod 3.
        let tag: LineTag = Arc::new(|line: &[u8]| Some(u64::from(line[0])));
        for segment in [1, 2, 3, 7, 64, 1 << 20] {
            let file = SharedFile::with_segment(&path, 3, tag.clone(), segment).unwrap();
            let threads: Vec<_> = (0..3)
                .map(|r| {
                    let mut reader = file.reader(r, Box::new(move |tag| tag.unwrap() % 3 == r as u64));
                    std::thread::spawn(move || all(&mut reader))
                })
                .collect();
            let mut got: Vec<(u64, String)> = Vec::new();
            for thread in threads {
                let lines = thread.join().unwrap();
                assert!(lines.windows(2).all(|w| w[0].0 < w[1].0), "each reader's lines in file order");
                got.extend(lines);
            }
            got.sort();
            assert_eq!(got, expected, "segments of {segment} bytes");
        }
    }

    #[test]
    fn a_dropped_reader_holds_nothing_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "x\n".repeat(1_000)).unwrap();
        let file = SharedFile::with_segment(&path, 2, Arc::new(|_: &[u8]| None), 4).unwrap();
        drop(file.reader(1, Box::new(|_| true)));
        let mut reader = file.reader(0, Box::new(|_| true));
        assert_eq!(all(&mut reader).len(), 1_000);
        assert_eq!(file.shared.table.lock().unwrap().segments.len(), 0, "every segment read is let go");
    }
}
