//! Batches as the host builds and reads them: the WIT records in the host's
//! own types, converted at the edge in `bindings`.

use super::bindings::{deserialize, fold, format, key, types};

/// Many byte strings in one buffer; item `i` ends at `ends[i]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    /// All items, back to back.
    pub data: Vec<u8>,
    /// End offset of each item.
    pub ends: Vec<u32>,
}

impl Packed {
    /// An empty buffer with room for `items` items of about `bytes` bytes.
    pub fn with_capacity(items: usize, bytes: usize) -> Self {
        Packed { data: Vec::with_capacity(bytes), ends: Vec::with_capacity(items) }
    }

    /// Appends an item.
    pub fn push(&mut self, item: &[u8]) {
        self.data.extend_from_slice(item);
        self.ends.push(self.data.len() as u32);
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// No items.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Item `i`; empty when out of range or when the ends are malformed
    /// (plugins are untrusted).
    pub fn get(&self, i: usize) -> &[u8] {
        let Some(&end) = self.ends.get(i) else { return &[] };
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.data.get(start..end as usize).unwrap_or(&[])
    }

    /// Whether the ends are non-decreasing and inside the data.
    pub fn is_well_formed(&self) -> bool {
        self.ends.windows(2).all(|w| w[0] <= w[1]) && self.ends.last().is_none_or(|&e| e as usize <= self.data.len())
    }
}

/// A record a stage could not handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    /// Its index in the batch.
    pub index: u32,
    /// The plugin's reason.
    pub reason: String,
}

/// Raw records for the deserialize stage.
#[derive(Debug, Clone, Default)]
pub struct SourceBatch {
    /// Record values.
    pub values: Packed,
    /// Record keys (empty when none).
    pub keys: Packed,
    /// Source time of each record, in microseconds.
    pub timestamps: Vec<i64>,
    /// Kafka partition of each record; -1 when none.
    pub partitions: Vec<i32>,
    /// Kafka offset or line number of each record.
    pub offsets: Vec<i64>,
    /// Headers as (record index, name, value), in record order.
    pub headers: Vec<(u32, String, Vec<u8>)>,
}

/// What the deserialize stage made of a batch.
#[derive(Debug, Clone, Default)]
pub struct Events {
    /// Encoded events.
    pub payloads: Packed,
    /// Event time of each, in microseconds.
    pub times: Vec<i64>,
    /// Source record index of each.
    pub origins: Vec<u32>,
    /// Records that failed.
    pub failures: Vec<RecordFailure>,
}

/// What the key stage said.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// One key per event.
    pub keys: Packed,
    /// Events that failed.
    pub failures: Vec<RecordFailure>,
}

/// A run of events of one window and its accumulator.
#[derive(Debug, Clone)]
pub struct FoldGroup {
    /// The accumulator so far; `None` for a new window.
    pub acc: Option<Vec<u8>>,
    /// End (exclusive) of its events in the batch.
    pub end: u32,
}

/// What the fold stage returned.
#[derive(Debug, Clone, Default)]
pub struct Folded {
    /// One accumulator per group.
    pub accs: Packed,
    /// Events that failed.
    pub failures: Vec<RecordFailure>,
}

/// A closed window for the format stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedWindow {
    /// The key.
    pub key: String,
    /// Window index (see the WIT).
    pub id: i64,
    /// Start, microseconds.
    pub start: i64,
    /// Exclusive end, microseconds.
    pub end: i64,
    /// Events folded in.
    pub count: u64,
    /// The accumulator.
    pub acc: Vec<u8>,
}

/// What the format stage returned.
#[derive(Debug, Clone, Default)]
pub struct Formatted {
    /// One JSON object per window.
    pub objects: Vec<String>,
    /// Windows that failed.
    pub failures: Vec<RecordFailure>,
}

impl From<Packed> for types::Packed {
    fn from(p: Packed) -> Self {
        types::Packed { data: p.data, ends: p.ends }
    }
}

impl From<types::Packed> for Packed {
    fn from(p: types::Packed) -> Self {
        Packed { data: p.data, ends: p.ends }
    }
}

impl From<types::Failure> for RecordFailure {
    fn from(f: types::Failure) -> Self {
        RecordFailure { index: f.index, reason: f.reason }
    }
}

fn failures(list: Vec<types::Failure>) -> Vec<RecordFailure> {
    list.into_iter().map(RecordFailure::from).collect()
}

impl From<SourceBatch> for deserialize::SourceBatch {
    fn from(b: SourceBatch) -> Self {
        deserialize::SourceBatch {
            values: b.values.into(),
            keys: b.keys.into(),
            timestamps: b.timestamps,
            partitions: b.partitions,
            offsets: b.offsets,
            headers: b.headers.into_iter().map(|(index, name, value)| deserialize::Header { index, name, value }).collect(),
        }
    }
}

impl From<deserialize::Events> for Events {
    fn from(e: deserialize::Events) -> Self {
        Events { payloads: e.payloads.into(), times: e.times, origins: e.origins, failures: failures(e.failures) }
    }
}

impl From<key::Keys> for Keys {
    fn from(k: key::Keys) -> Self {
        Keys { keys: k.keys.into(), failures: failures(k.failures) }
    }
}

impl From<FoldGroup> for fold::Group {
    fn from(g: FoldGroup) -> Self {
        fold::Group { acc: g.acc, end: g.end }
    }
}

impl From<fold::Folded> for Folded {
    fn from(f: fold::Folded) -> Self {
        Folded { accs: f.accs.into(), failures: failures(f.failures) }
    }
}

impl From<ClosedWindow> for format::Window {
    fn from(w: ClosedWindow) -> Self {
        format::Window { key: w.key, id: w.id, start: w.start, end: w.end, count: w.count, acc: w.acc }
    }
}

impl From<format::Formatted> for Formatted {
    fn from(f: format::Formatted) -> Self {
        Formatted { objects: f.objects, failures: failures(f.failures) }
    }
}
