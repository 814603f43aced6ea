//! Source records kept while their events wait to be folded, for the
//! dead-letter output should the fold fail one: their bytes in one buffer
//! and a small entry each, rather than a [`SourceRecord`] (112 bytes) with
//! its own heap allocation. Held events number in the hundreds of
//! thousands; the records' own allocations go back to the reader at once.

use std::borrow::Cow;
use std::sync::Arc;

use crate::Timestamp;
use crate::fast::FastMap;
use crate::source::{Origin, SourceRecord};

/// Records by index, as the fold reads them to dead-letter a failed event.
pub(super) trait Records {
    /// Record `i`.
    fn record(&self, i: usize) -> Cow<'_, SourceRecord>;
}

impl Records for [SourceRecord] {
    fn record(&self, i: usize) -> Cow<'_, SourceRecord> {
        Cow::Borrowed(&self[i])
    }
}

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

struct Entry {
    start: usize,
    value: u32,
    /// `u32::MAX`: no key.
    key: u32,
    timestamp: Timestamp,
    position: u64,
    partition: Option<i32>,
    source: u32,
}

impl KeptRecords {
    /// Records kept.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
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
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&record.value);
        let key = match &record.key {
            Some(key) => {
                self.bytes.extend_from_slice(key);
                u32::try_from(key.len()).unwrap_or(u32::MAX - 1)
            }
            None => u32::MAX,
        };
        if !record.headers.is_empty() {
            self.headers.insert(self.entries.len(), record.headers);
        }
        self.entries.push(Entry {
            start,
            value: u32::try_from(record.value.len()).expect("a record's value is under 4 GiB"),
            key,
            timestamp: record.timestamp,
            position: record.origin.position,
            partition: record.origin.partition,
            source: source as u32,
        });
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
    fn record(&self, i: usize) -> Cow<'_, SourceRecord> {
        let e = &self.entries[i];
        let value_end = e.start + e.value as usize;
        let key = (e.key != u32::MAX).then(|| self.bytes[value_end..value_end + e.key as usize].to_vec());
        Cow::Owned(SourceRecord {
            value: self.bytes[e.start..value_end].to_vec(),
            key,
            timestamp: e.timestamp,
            headers: self.headers.get(&i).cloned().unwrap_or_default(),
            origin: Origin { source: self.sources[e.source as usize].clone(), partition: e.partition, position: e.position },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_record_comes_back_whole() {
        let topic: Arc<str> = "t".into();
        let records = [
            SourceRecord { value: b"{\"a\":1}".to_vec(), key: Some(b"k".to_vec()), timestamp: Timestamp(7), headers: vec![("h".into(), b"v".to_vec())], origin: Origin { source: topic.clone(), partition: Some(2), position: 40 } },
            SourceRecord { value: Vec::new(), key: None, timestamp: Timestamp(-1), headers: Vec::new(), origin: Origin { source: "file.jsonl".into(), partition: None, position: 3 } },
            SourceRecord { value: b"x".to_vec(), key: Some(Vec::new()), timestamp: Timestamp(0), headers: Vec::new(), origin: Origin { source: topic, partition: Some(0), position: 41 } },
        ];
        let mut kept = KeptRecords::default();
        for record in records.clone() {
            kept.push(record);
        }
        assert_eq!(kept.len(), 3);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(*kept.record(i), *record);
        }
        kept.clear();
        assert_eq!(kept.len(), 0);
    }
}
