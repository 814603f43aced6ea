//! A file of lines read once by several workers together. The file is cut
//! into segments (1 MiB); whichever worker needs a segment that nobody has
//! read yet reads it, splits it into lines and tags each line (the driver's
//! `tag`: the hash of its key). Segments are then routed in file order,
//! each line to one worker (the driver's `route`, which may depend on the
//! lines before), and every worker copies its own lines from each segment,
//! in file order. So the line split, the key scan and the routing are done
//! once for all workers rather than once by each, and no worker hands
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

use super::lines::record_text;
use super::{Origin, Source, SourceError, SourceRecord};
use crate::Timestamp;

/// Bytes in a segment (a line belongs to the segment it starts in). 64 KiB
/// (to stay in cache between its reading and its readers) cost two
/// workers 0.1–0.3 s more system time on 1,000,000 lines than 1 MiB, and
/// 8–25% more wall time (docs/performance.md, session 16).
const SEGMENT: u64 = 1 << 20;
/// How many segments past the slowest worker a worker may read ahead.
const LOOKAHEAD: usize = 8;

/// What a line is tagged with, from its bytes (blank lines are not tagged).
pub type LineTag = Arc<dyn Fn(&[u8]) -> Option<u64> + Send + Sync>;

/// Which reader a line goes to, from its tag; called once a line, in file
/// order.
pub type LineRoute = Box<dyn FnMut(Option<u64>) -> usize + Send>;

/// A file opened for several [`SharedLinesReader`]s.
pub struct SharedFile {
    shared: Arc<Shared>,
}

struct Shared {
    file: File,
    path: PathBuf,
    len: u64,
    segment: u64,
    tag: LineTag,
    table: Mutex<Table>,
    ready: Condvar,
}

struct Table {
    /// Segments `first..`.
    segments: VecDeque<Slot>,
    first: usize,
    /// The next segment nobody has started to read.
    next: usize,
    /// The next segment to route (the ones before are ready).
    routed: usize,
    /// Lines in the segments routed.
    lines_routed: u64,
    route: LineRoute,
    /// Per reader, the next segment it needs (`usize::MAX` once dropped).
    needs: Vec<usize>,
    failed: Option<String>,
    /// Segments every reader is done with, to read into again: fresh
    /// buffers would cost the kernel a zeroed page for every 4 KiB read,
    /// and the thread that allocated them would free them only later.
    spare: Vec<Segment>,
}

enum Slot {
    Reading,
    Read(Segment),
    Ready(Arc<Segment>),
}

// The lines that start in one segment.
#[derive(Default)]
struct Segment {
    bytes: Vec<u8>,
    lines: Vec<Line>,
    /// The number in the file of the line before its first (from 0).
    line_before: u64,
    /// The file offset of `bytes[0]`.
    from: u64,
    /// Per reader, the indices of its lines, once routed.
    mine: Vec<Vec<u32>>,
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
    /// tagged by `tag` and sent to the reader `route` says.
    pub fn open(path: &Path, readers: usize, tag: LineTag, route: LineRoute) -> Result<Self, SourceError> {
        Self::with_segment(path, readers, tag, route, SEGMENT)
    }

    fn with_segment(path: &Path, readers: usize, tag: LineTag, route: LineRoute, segment: u64) -> Result<Self, SourceError> {
        let io = |source| SourceError::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let table = Table { segments: VecDeque::new(), first: 0, next: 0, routed: 0, lines_routed: 0, route, needs: vec![0; readers], failed: None, spare: Vec::new() };
        Ok(SharedFile { shared: Arc::new(Shared { file, path: path.to_owned(), len, segment, tag, table: Mutex::new(table), ready: Condvar::new() }) })
    }

    /// Reader number `reader` (below the number given to
    /// [`SharedFile::open`]). Every reader must read to the end or be
    /// dropped.
    pub fn reader(&self, reader: usize) -> SharedLinesReader {
        // Each reader names its records with its own copy of the name:
        // one shared `Arc` would have its count bumped by every record on
        // every core, a cache line the workers pass back and forth.
        let name = Arc::from(self.shared.path.display().to_string());
        SharedLinesReader { shared: self.shared.clone(), name, reader, segment: None, index: 0, cursor: 0 }
    }
}

/// One worker's reader of a [`SharedFile`]: its own lines, in file order,
/// numbered as in the file.
pub struct SharedLinesReader {
    shared: Arc<Shared>,
    name: Arc<str>,
    reader: usize,
    segment: Option<Arc<Segment>>,
    /// The index of `segment` (or of the next one to take).
    index: usize,
    /// Into the segment's lines for this reader.
    cursor: usize,
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
            if let Some(Slot::Ready(segment)) = table.segments.get(index - table.first) {
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
            table.segments.push_back(Slot::Reading);
            let spare = table.spare.pop().unwrap_or_default();
            drop(table);
            let read = self.read(claimed, spare);
            table = self.table.lock().expect("the segment table is never left half-changed");
            match read {
                Ok(segment) => {
                    let at = claimed - table.first;
                    table.segments[at] = Slot::Read(segment);
                    route_ready(&mut table);
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
        while table.first < slowest && matches!(table.segments.front(), Some(Slot::Ready(_))) {
            if let Some(Slot::Ready(segment)) = table.segments.pop_front()
                && let Ok(segment) = Arc::try_unwrap(segment)
                && table.spare.len() < LOOKAHEAD
            {
                table.spare.push(segment);
            }
            table.first += 1;
        }
        self.ready.notify_all();
    }

    // Fills `out` from `at`; the file may not shrink under its readers.
    fn read_at(&self, out: &mut [u8], at: u64) -> std::io::Result<()> {
        self.file.read_exact_at(out, at).map_err(|err| match err.kind() {
            std::io::ErrorKind::UnexpectedEof => std::io::Error::other(format!("the file got shorter while it was read (it had {} bytes when opened)", self.len)),
            _ => err,
        })
    }

    // Reads and splits segment `index`: the lines that start in it.
    fn read(&self, index: usize, spare: Segment) -> std::io::Result<Segment> {
        let Segment { mut bytes, mut lines, mine, .. } = spare;
        lines.clear();
        let (lo, hi) = (index as u64 * self.segment, ((index as u64 + 1) * self.segment).min(self.len));
        // From the byte before, to see whether a line starts at `lo`.
        let from = lo.saturating_sub(1);
        // Overwritten by the read: a reused buffer is not zeroed again.
        bytes.resize((hi - from) as usize, 0);
        self.read_at(&mut bytes, from)?;
        let mut start = match index {
            0 => 0,
            _ => match memchr::memchr(b'\n', &bytes) {
                Some(at) => at + 1,
                None => bytes.len(),
            },
        };
        let owned = bytes.len();

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
                self.read_at(&mut bytes[old..], read_at)?;
            };
            let text = record_text(&bytes[start..end]);
            let tag = text.map(|line| (self.tag)(line));
            let (line_start, line_end) = (u32::try_from(start), u32::try_from(start + text.map_or(0, <[u8]>::len)));
            let (Ok(line_start), Ok(line_end)) = (line_start, line_end) else {
                return Err(std::io::Error::other(format!("a line of {} is longer than 4 GiB", self.path.display())));
            };
            lines.push(Line { start: line_start, end: line_end, tag });
            start = end + 1;
        }
        Ok(Segment { bytes, lines, line_before: 0, from, mine })
    }
}

// Routes the segments read, in file order, as far as the next one not read
// yet: each line to its reader.
fn route_ready(table: &mut Table) {
    let readers = table.needs.len();
    while let Some(slot) = table.segments.get_mut(table.routed - table.first) {
        let Slot::Read(segment) = slot else { break };
        segment.mine.resize_with(readers, Vec::new);
        segment.mine.iter_mut().for_each(Vec::clear);
        for (index, line) in segment.lines.iter().enumerate() {
            if let Some(tag) = line.tag {
                segment.mine[(table.route)(tag).min(readers - 1)].push(index as u32);
            }
        }
        segment.line_before = table.lines_routed;
        table.lines_routed += segment.lines.len() as u64;
        let Slot::Read(segment) = std::mem::replace(slot, Slot::Reading) else { unreachable!("matched above") };
        *slot = Slot::Ready(Arc::new(segment));
        table.routed += 1;
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
            let mine = &segment.mine[self.reader];
            let take = (mine.len() - self.cursor).min(max - batch.len());
            for &index in &mine[self.cursor..self.cursor + take] {
                let line = &segment.lines[index as usize];
                batch.push(SourceRecord {
                    value: segment.bytes[line.start as usize..line.end as usize].to_vec(),
                    key: None,
                    timestamp: now,
                    headers: Vec::new(),
                    origin: Origin { source: self.name.clone(), partition: None, position: segment.line_before + u64::from(index) + 1, offset: Some(segment.from + u64::from(line.start)) },
                });
            }
            self.cursor += take;
            if self.cursor == mine.len() {
                // Let go of it first, so the last reader done can reuse its buffer.
                drop(segment);
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

    // A file `in.jsonl` holding `text`, in a directory kept while the
    // returned guard lives.
    fn input(text: impl AsRef<[u8]>) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

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
        let (_dir, path) = input(&text);
        let expected = all(&mut LinesReader::open(&path).unwrap());
        assert_eq!(expected.len(), 9);
        // Tag by first letter; a letter goes to reader (its number mod 3).
        let tag: LineTag = Arc::new(|line: &[u8]| Some(u64::from(line[0])));
        let route = || -> LineRoute { Box::new(|tag| (tag.unwrap() % 3) as usize) };
        for segment in [1, 2, 3, 7, 64, 1 << 20] {
            let file = SharedFile::with_segment(&path, 3, tag.clone(), route(), segment).unwrap();
            let threads: Vec<_> = (0..3)
                .map(|r| {
                    let mut reader = file.reader(r);
                    std::thread::spawn(move || (r, all(&mut reader)))
                })
                .collect();
            let mut got: Vec<(u64, String)> = Vec::new();
            for thread in threads {
                let (r, lines) = thread.join().unwrap();
                assert!(lines.windows(2).all(|w| w[0].0 < w[1].0), "each reader's lines in file order");
                assert!(lines.iter().all(|(_, line)| usize::from(line.as_bytes()[0]) % 3 == r), "reader {r} got another's line");
                got.extend(lines);
            }
            got.sort();
            assert_eq!(got, expected, "segments of {segment} bytes");
        }
    }

    // A held record is read back from its file by its offset
    // (`pipeline::kept`), whichever reader read it.
    #[test]
    fn every_line_says_where_it_starts_in_its_file() {
        let text = "a1\r\nb2\n\n  \nc3\nlonger line\nd4";
        let (_dir, path) = input(text);
        let at = |batch: Vec<SourceRecord>| -> Vec<(u64, String)> {
            batch.into_iter().map(|r| {
                let offset = r.origin.offset.expect("a regular file's line has an offset") as usize;
                assert_eq!(&text.as_bytes()[offset..offset + r.value.len()], r.value.as_slice(), "line {}", r.origin.position);
                (r.origin.position, String::from_utf8(r.value).unwrap())
            }).collect()
        };
        let one = at(LinesReader::open(&path).unwrap().next_batch(100).unwrap());
        assert_eq!(one.len(), 5);
        for segment in [1, 3, 7, 1 << 20] {
            let file = SharedFile::with_segment(&path, 1, Arc::new(|_: &[u8]| None), Box::new(|_| 0), segment).unwrap();
            let mut reader = file.reader(0);
            assert_eq!(at(reader.next_batch(100).unwrap()), one, "segments of {segment} bytes");
        }
        // Past what one read of the lone reader's buffer takes.
        let big: String = (0..40_000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let (_dir, path) = input(&big);
        let mut reader = LinesReader::open(&path).unwrap();
        let mut lines = 0;
        loop {
            let batch = reader.next_batch(1_000).unwrap();
            if batch.is_empty() {
                break;
            }
            for r in batch {
                let offset = r.origin.offset.unwrap() as usize;
                assert_eq!(&big.as_bytes()[offset..offset + r.value.len()], r.value.as_slice(), "line {}", r.origin.position);
                lines += 1;
            }
        }
        assert_eq!(lines, 40_000);
    }

    #[test]
    fn a_file_that_shrinks_under_its_readers_is_an_error_naming_it() {
        let (_dir, path) = input("x\n".repeat(100));
        let file = SharedFile::with_segment(&path, 1, Arc::new(|_: &[u8]| None), Box::new(|_| 0), 16).unwrap();
        std::fs::write(&path, "x\n").unwrap();
        let err = file.reader(0).next_batch(1_000).unwrap_err().to_string();
        assert!(err.contains("in.jsonl") && err.contains("got shorter while it was read (it had 200 bytes"), "{err}");
    }

    // Every record holds its source's name. Readers run on different
    // cores, and a count that both bump for every record is a cache line
    // they pass back and forth (it was most of `next_batch`'s time with
    // two workers), so each reader has its own.
    #[test]
    fn readers_do_not_share_the_name_their_records_hold() {
        let (_dir, path) = input("a\nb\n");
        let file = SharedFile::open(&path, 2, Arc::new(|line: &[u8]| Some(u64::from(line[0]))), Box::new(|tag| (tag.unwrap() % 2) as usize)).unwrap();
        let (mut first, mut second) = (file.reader(0), file.reader(1));
        let (a, b) = (second.next_batch(10).unwrap(), first.next_batch(10).unwrap());
        assert_eq!((a.len(), b.len()), (1, 1));
        assert_eq!(a[0].origin.source, b[0].origin.source);
        assert!(!Arc::ptr_eq(&a[0].origin.source, &b[0].origin.source), "the two readers' records share one name");
    }

    #[test]
    fn a_dropped_reader_holds_nothing_back() {
        let (_dir, path) = input("x\n".repeat(1_000));
        let file = SharedFile::with_segment(&path, 2, Arc::new(|_: &[u8]| None), Box::new(|_| 0), 4).unwrap();
        drop(file.reader(1));
        let mut reader = file.reader(0);
        assert_eq!(all(&mut reader).len(), 1_000);
        let table = file.shared.table.lock().unwrap();
        assert_eq!(table.segments.len(), 0, "every segment read is let go");
        assert!(!table.spare.is_empty(), "and its buffer kept to read into again");
    }
}
