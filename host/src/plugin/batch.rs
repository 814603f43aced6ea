//! Batches as the host builds and reads them: the WIT records in the host's
//! own types, converted at the edge in `bindings`.

use super::bindings::{deserialize, fold, format, key, types};
use crate::event::{Column, Events, Field, FieldSpec, FieldType, Identity, Schema, Texts};

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
pub struct Decoded {
    /// The events, as columns.
    pub events: Events,
    /// Source record index of each event.
    pub origins: Vec<u32>,
    /// Records that failed.
    pub failures: Vec<RecordFailure>,
}

/// What the key stage said.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    /// One key per event, packed (a field's texts are taken whole, without
    /// a string per event).
    pub keys: Texts,
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
    pub accs: Vec<Vec<u8>>,
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

/// The events as the WIT carries them (texts unpacked into strings).
pub(super) fn lower_events(events: &Events) -> types::Events {
    let fields = events
        .fields
        .iter()
        .map(|f| {
            let values = match &f.values {
                Column::Ints(v) => types::Column::Ints(v.clone()),
                Column::Floats(v) => types::Column::Floats(v.clone()),
                Column::Bools(v) => types::Column::Bools(v.clone()),
                Column::Times(v) => types::Column::Times(v.clone()),
                Column::Texts(t) => types::Column::Texts(t.iter().map(str::to_owned).collect()),
                Column::Json(t) => types::Column::Json(t.iter().map(str::to_owned).collect()),
            };
            types::Field { name: f.name.clone(), values, missing: f.missing.clone() }
        })
        .collect();
    types::Events { count: events.count, fields }
}

/// The events a plugin returned, in the host's types; checked.
pub(super) fn lift_events(events: types::Events) -> Result<Events, String> {
    let fields = events
        .fields
        .into_iter()
        .map(|f| {
            let values = match f.values {
                types::Column::Ints(v) => Column::Ints(v),
                types::Column::Floats(v) => Column::Floats(v),
                types::Column::Bools(v) => Column::Bools(v),
                types::Column::Times(v) => Column::Times(v),
                types::Column::Texts(t) => Column::Texts(Texts::from_strings(t)),
                types::Column::Json(t) => Column::Json(Texts::from_strings(t)),
            };
            Field { name: f.name, values, missing: f.missing }
        })
        .collect();
    let events = Events { count: events.count, fields };
    events.check()?;
    Ok(events)
}

pub(super) fn lift_decoded(d: deserialize::Decoded) -> Result<Decoded, String> {
    Ok(Decoded { events: lift_events(d.events)?, origins: d.origins, failures: failures(d.failures) })
}

impl From<key::Keys> for Keys {
    fn from(k: key::Keys) -> Self {
        Keys { keys: Texts::from_strings(k.keys), failures: failures(k.failures) }
    }
}

impl From<FoldGroup> for fold::Group {
    fn from(g: FoldGroup) -> Self {
        fold::Group { acc: g.acc, end: g.end }
    }
}

impl From<fold::Folded> for Folded {
    fn from(f: fold::Folded) -> Self {
        Folded { accs: f.accs, failures: failures(f.failures) }
    }
}

impl From<&ClosedWindow> for format::Window {
    fn from(w: &ClosedWindow) -> Self {
        format::Window { key: w.key.clone(), id: w.id, start: w.start, end: w.end, count: w.count, acc: w.acc.clone() }
    }
}

impl From<format::Formatted> for Formatted {
    fn from(f: format::Formatted) -> Self {
        Formatted { objects: f.objects, failures: failures(f.failures) }
    }
}

impl From<types::Schema> for Schema {
    fn from(s: types::Schema) -> Self {
        let ty = |t: types::FieldType| match t {
            types::FieldType::Int => FieldType::Int,
            types::FieldType::Float => FieldType::Float,
            types::FieldType::Bool => FieldType::Bool,
            types::FieldType::Text => FieldType::Text,
            types::FieldType::Time => FieldType::Time,
            types::FieldType::Json => FieldType::Json,
        };
        Schema { name: s.name, version: s.version, fields: s.fields.into_iter().map(|f| FieldSpec { name: f.name, ty: ty(f.type_), optional: f.optional }).collect() }
    }
}

impl From<types::Identity> for Identity {
    fn from(i: types::Identity) -> Self {
        Identity { name: i.name, version: i.version }
    }
}

impl From<&Identity> for types::Identity {
    fn from(i: &Identity) -> Self {
        types::Identity { name: i.name.clone(), version: i.version }
    }
}
