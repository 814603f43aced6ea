//! Source records kept while their events wait to be folded, for the
//! dead-letter output should the fold fail one: their bytes in one buffer
//! and a small entry each, rather than a [`SourceRecord`] (112 bytes) with
//! its own heap allocation. Held events number in the hundreds of
//! thousands; the records' own allocations go back to the reader at once.
//!
//! A line of a regular file is not copied at all: its entry says where it
//! is in the file (and a hash of it), and a dead letter reads it back from
//! there. That halves what a held event costs (~70 bytes instead of ~150
//! for a telemetry line), so the buffer holds twice the events in the
//! same memory, and a window with many keys open is folded in half the
//! calls.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, LazyLock};

use crate::Timestamp;
use crate::fast::FastMap;
use crate::source::{Origin, SourceRecord};

/// Records by index, as the fold reads them to dead-letter a failed event.
pub(super) trait Records {
    /// Record `i`; an error (with the record's value left empty) when it
    /// had to be read back from its file and could not be.
    fn record(&self, i: usize) -> Result<Cow<'_, SourceRecord>, (SourceRecord, String)>;
}

impl Records for [SourceRecord] {
    fn record(&self, i: usize) -> Result<Cow<'_, SourceRecord>, (SourceRecord, String)> {
        Ok(Cow::Borrowed(&self[i]))
    }
}

// What a line kept in its file is checked against when read back.
fn check(value: &[u8]) -> u32 {
    static HASHER: LazyLock<foldhash::quality::RandomState> = LazyLock::new(Default::default);
    HASHER.hash_one(value) as u32
}

/// Where `record` is in its file, when it is kept as that rather than
/// copied: a line of a regular file, with no key or headers of its own.
pub(super) fn file_offset(record: &SourceRecord) -> Option<u64> {
    record.origin.offset.filter(|_| record.key.is_none() && record.headers.is_empty())
}

/// In [`Entry::source`]: the record's value is in its file, at `start`.
const IN_FILE: u32 = 1 << 31;

/// Records, packed.
#[derive(Default)]
pub(super) struct KeptRecords {
    /// Each record's value, then its key.
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    /// The sources the records came from (a few).
    sources: Vec<Arc<str>>,
    /// Kafka headers, by record, for the records that have any.
    headers: FastMap<usize, Vec<(String, Vec<u8>)>>,
}

// 40 bytes: a held event costs its entry, and a full buffer holds a
// million of them.
struct Entry {
    /// In `bytes`, or in the file (see [`IN_FILE`]).
    start: u64,
    position: u64,
    timestamp: Timestamp,
    value: u32,
    /// The key's length after the value in `bytes` ([`NO_KEY`]: no
    /// key); for a value kept in its file, [`check`] of it.
    extra: u32,
    /// [`NO_PARTITION`]: none.
    partition: i32,
    source: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 40);

/// In [`Entry::extra`] of a copied record: it has no key.
const NO_KEY: u32 = u32::MAX;
/// In [`Entry::partition`]: the record came from no partition (Kafka's
/// are never negative).
const NO_PARTITION: i32 = i32::MIN;

impl Entry {
    // In place of an entry moved out.
    const EMPTY: Entry = Entry { start: 0, position: 0, timestamp: Timestamp(0), value: 0, extra: NO_KEY, partition: NO_PARTITION, source: 0 };

    fn partition(&self) -> Option<i32> {
        (self.partition != NO_PARTITION).then_some(self.partition)
    }

    // The key's length, for a copied record that has one.
    fn key(&self) -> Option<usize> {
        (self.source & IN_FILE == 0 && self.extra != NO_KEY).then_some(self.extra as usize)
    }
}

impl KeptRecords {
    /// Records kept.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes of the records it copied (not those left in their file).
    pub(super) fn copied_bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Makes room for `records` more records of about `bytes` bytes each.
    pub(super) fn reserve(&mut self, records: usize, bytes: usize) {
        self.entries.reserve(records);
        self.bytes.reserve(records.saturating_mul(bytes));
    }

    /// Keeps `record`.
    pub(super) fn push(&mut self, record: SourceRecord) {
        let source = match self.sources.iter().position(|s| Arc::ptr_eq(s, &record.origin.source) || **s == *record.origin.source) {
            Some(i) => i,
            None => {
                self.sources.push(record.origin.source.clone());
                self.sources.len() - 1
            }
        };
        let value = u32::try_from(record.value.len()).expect("a record's value is under 4 GiB");
        debug_assert_ne!(record.origin.partition, Some(NO_PARTITION), "a partition number kept as none");
        let partition = record.origin.partition.unwrap_or(NO_PARTITION);
        if let Some(offset) = file_offset(&record) {
            self.entries.push(Entry {
                start: offset,
                position: record.origin.position,
                timestamp: record.timestamp,
                value,
                extra: check(&record.value),
                partition,
                source: source as u32 | IN_FILE,
            });
            return;
        }
        let start = self.bytes.len() as u64;
        self.bytes.extend_from_slice(&record.value);
        let key = match &record.key {
            Some(key) => {
                self.bytes.extend_from_slice(key);
                u32::try_from(key.len()).ok().filter(|&len| len != NO_KEY).expect("a record's key is under 4 GiB")
            }
            None => NO_KEY,
        };
        if !record.headers.is_empty() {
            self.headers.insert(self.entries.len(), record.headers);
        }
        self.entries.push(Entry { start, position: record.origin.position, timestamp: record.timestamp, value, extra: key, partition, source: source as u32 });
    }

    /// Keeps only records `keep` (ascending), renumbered 0, 1, … in that
    /// order; the bytes of the others are given back to the buffer's room.
    pub(super) fn keep(&mut self, keep: &[usize]) {
        let mut end = 0usize;
        let mut headers = FastMap::default();
        for (new, &old) in keep.iter().enumerate() {
            debug_assert!(new <= old && (new == 0 || keep[new - 1] < old), "ascending");
            let mut entry = std::mem::replace(&mut self.entries[old], Entry::EMPTY);
            if entry.source & IN_FILE == 0 {
                let len = entry.value as usize + entry.key().unwrap_or(0);
                let start = entry.start as usize;
                self.bytes.copy_within(start..start + len, end);
                entry.start = end as u64;
                end += len;
            }
            self.entries[new] = entry;
            if let Some(h) = self.headers.remove(&old) {
                headers.insert(new, h);
            }
        }
        self.entries.truncate(keep.len());
        self.bytes.truncate(end);
        self.headers = headers;
    }

    /// Forgets every record, keeping the room.
    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
        self.sources.clear();
        self.headers.clear();
    }
}

impl Records for KeptRecords {
    fn record(&self, i: usize) -> Result<Cow<'_, SourceRecord>, (SourceRecord, String)> {
        let e = &self.entries[i];
        let source = self.sources[(e.source & !IN_FILE) as usize].clone();
        let mut record = SourceRecord {
            value: Vec::new(),
            key: None,
            timestamp: e.timestamp,
            headers: self.headers.get(&i).cloned().unwrap_or_default(),
            origin: Origin { source, partition: e.partition(), position: e.position, offset: None },
        };
        if e.source & IN_FILE != 0 {
            record.origin.offset = Some(e.start);
            return match read_back(&record.origin.source, e.start, e.value as usize, e.extra) {
                Ok(value) => {
                    record.value = value;
                    Ok(Cow::Owned(record))
                }
                Err(why) => Err((record, why)),
            };
        }
        let (start, value_end) = (e.start as usize, e.start as usize + e.value as usize);
        record.value = self.bytes[start..value_end].to_vec();
        record.key = e.key().map(|key| self.bytes[value_end..value_end + key].to_vec());
        Ok(Cow::Owned(record))
    }
}

// A line's `len` bytes at `offset` in the file at `path`, as they were
// when read (`check`).
fn read_back(path: &str, offset: u64, len: usize, expected: u32) -> Result<Vec<u8>, String> {
    let why = |err: std::io::Error| format!("its line could not be read back from {path} at byte {offset}: {err}");
    let file = std::fs::File::open(path).map_err(why)?;
    let mut value = vec![0; len];
    file.read_exact_at(&mut value, offset).map_err(why)?;
    if check(&value) != expected {
        return Err(format!("its line in {path} (at byte {offset}) changed after it was read"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_record_comes_back_whole() {
        let topic: Arc<str> = "t".into();
        let records = [
            SourceRecord { value: b"{\"a\":1}".to_vec(), key: Some(b"k".to_vec()), timestamp: Timestamp(7), headers: vec![("h".into(), b"v".to_vec())], origin: Origin { source: topic.clone(), partition: Some(2), position: 40, offset: None } },
            SourceRecord { value: Vec::new(), key: None, timestamp: Timestamp(-1), headers: Vec::new(), origin: Origin { source: "file.jsonl".into(), partition: None, position: 3, offset: None } },
            SourceRecord { value: b"x".to_vec(), key: Some(Vec::new()), timestamp: Timestamp(0), headers: Vec::new(), origin: Origin { source: topic, partition: Some(0), position: 41, offset: None } },
        ];
        let mut kept = KeptRecords::default();
        for record in records.clone() {
            kept.push(record);
        }
        assert_eq!(kept.len(), 3);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(*kept.record(i).unwrap(), *record);
        }
        kept.clear();
        assert_eq!(kept.len(), 0);
    }

    // Records dropped from the middle: the others come back whole, under
    // their new numbers, headers included.
    #[test]
    fn records_kept_after_others_are_dropped_come_back_whole() {
        let topic: Arc<str> = "t".into();
        let record = |i: u8, key: Option<&[u8]>, headers: bool, offset: Option<u64>| SourceRecord {
            value: vec![b'a' + i; 3 + i as usize],
            key: key.map(<[u8]>::to_vec),
            timestamp: Timestamp(i as i64),
            headers: if headers { vec![(format!("h{i}"), vec![i])] } else { Vec::new() },
            origin: Origin { source: topic.clone(), partition: Some(i as i32), position: 100 + i as u64, offset },
        };
        let records = [record(0, Some(b"k0"), true, None), record(1, None, false, None), record(2, Some(b"key2"), true, None), record(3, None, false, None), record(4, Some(b""), true, None)];
        let mut kept = KeptRecords::default();
        for r in records.clone() {
            kept.push(r);
        }
        kept.keep(&[2, 4]);
        assert_eq!(kept.len(), 2);
        assert_eq!(*kept.record(0).unwrap(), records[2]);
        assert_eq!(*kept.record(1).unwrap(), records[4]);
        assert_eq!(kept.copied_bytes(), 5 + 4 + 7, "the dropped records' bytes are given back");
        kept.push(records[1].clone());
        assert_eq!(*kept.record(2).unwrap(), records[1]);
    }

    // A regular file's lines are kept as where they are, and read back.
    #[test]
    fn a_line_left_in_its_file_is_read_back_whole_or_reported_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":22}\n").unwrap();
        let name: Arc<str> = path.display().to_string().into();
        let line = |value: &[u8], position, offset| SourceRecord { value: value.to_vec(), key: None, timestamp: Timestamp(5), headers: Vec::new(), origin: Origin { source: name.clone(), partition: None, position, offset: Some(offset) } };
        let records = [line(b"{\"a\":1}", 1, 0), line(b"{\"b\":22}", 2, 8)];
        let mut kept = KeptRecords::default();
        for record in records.clone() {
            kept.push(record);
        }
        assert_eq!(kept.copied_bytes(), 0, "nothing copied");
        for (i, record) in records.iter().enumerate() {
            assert_eq!(*kept.record(i).unwrap(), *record);
        }
        // Rewritten while held: the second line is now other bytes.
        std::fs::write(&path, "{\"a\":1}\n{\"b\":23}\n").unwrap();
        assert_eq!(*kept.record(0).unwrap(), records[0]);
        let (record, why) = kept.record(1).unwrap_err();
        assert!(why.contains("in.jsonl") && why.contains("changed after it was read"), "{why}");
        assert_eq!((record.origin.position, record.value.len()), (2, 0), "named by its line, with no other bytes in its place");
        std::fs::remove_file(&path).unwrap();
        let (_, why) = kept.record(0).unwrap_err();
        assert!(why.contains("could not be read back from") && why.contains("in.jsonl"), "{why}");
    }
}
