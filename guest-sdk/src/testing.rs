//! Run a plugin's stages natively under `cargo test`, through the same
//! encoding and batching the component uses inside the host.
//!
//! ```
//! # use weir_guest_sdk::{testing, Timestamp};
//! let window = testing::window("sensor-1", "2022-01-01T00:00:00Z", "2022-01-01T00:00:05Z", 3);
//! assert_eq!(window.end, Timestamp::parse_rfc3339("2022-01-01T00:00:05Z").unwrap());
//! ```

use serde::Serialize;

use crate::__bindings::exports::weir::stream::{deserialize as wit_deserialize, fold as wit_fold, format as wit_format};
use crate::__bindings::weir::stream::types::{self as wit, Failure, Packed};
use crate::__rt;
use crate::{DeserializeStage, Error, Event, Events, FoldStage, FormatStage, Identity, KeyStage, Plugin, Timestamp, Value, Window};

fn packed<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Packed {
    let mut data = Vec::new();
    let mut ends = Vec::new();
    for item in items {
        data.extend_from_slice(item);
        ends.push(data.len() as u32);
    }
    Packed { data, ends }
}

fn first_failure(failures: Vec<Failure>) -> Result<(), Error> {
    match failures.into_iter().next() {
        Some(failure) => Err(Error::msg(failure.reason)),
        None => Ok(()),
    }
}

/// Events as the host sends them: columns, built from rows.
pub struct Batch(wit::Events);

impl Batch {
    /// The columns, as a key or fold stage reads them.
    pub fn view(&self) -> Events<'_> {
        Events::new(&self.0, 0, self.0.count as usize)
    }
}

/// Builds a batch of `rows` as columns: a field for each name any row
/// sets, typed by its first value; rows without it have it missing.
pub fn events(rows: &[Event]) -> Batch {
    let mut names: Vec<(String, Value)> = Vec::new();
    for row in rows {
        for (name, value) in row.values() {
            if !names.iter().any(|(n, _)| n == name) {
                names.push((name.clone(), value.clone()));
            }
        }
    }
    let fields = names
        .into_iter()
        .map(|(name, first)| {
            let mut missing = Vec::new();
            let mut column = match first {
                Value::Int(_) => wit::Column::Ints(vec![]),
                Value::Float(_) => wit::Column::Floats(vec![]),
                Value::Bool(_) => wit::Column::Bools(vec![]),
                Value::Text(_) => wit::Column::Texts(vec![]),
                Value::Time(_) => wit::Column::Times(vec![]),
                Value::Json(_) => wit::Column::Json(vec![]),
            };
            for (i, row) in rows.iter().enumerate() {
                let value = row.get(&name);
                if value.is_none() {
                    missing.push(i as u32);
                }
                match (&mut column, value) {
                    (wit::Column::Ints(v), Some(Value::Int(x))) => v.push(*x),
                    (wit::Column::Floats(v), Some(Value::Float(x))) => v.push(*x),
                    (wit::Column::Floats(v), Some(Value::Int(x))) => v.push(*x as f64),
                    (wit::Column::Bools(v), Some(Value::Bool(x))) => v.push(*x),
                    (wit::Column::Texts(v), Some(Value::Text(x))) | (wit::Column::Json(v), Some(Value::Json(x))) => v.push(x.clone()),
                    (wit::Column::Times(v), Some(Value::Time(x))) => v.push(x.micros()),
                    (wit::Column::Ints(v) | wit::Column::Times(v), _) => v.push(0),
                    (wit::Column::Floats(v), _) => v.push(0.0),
                    (wit::Column::Bools(v), _) => v.push(false),
                    (wit::Column::Texts(v) | wit::Column::Json(v), _) => v.push(String::new()),
                }
            }
            wit::Field { name, values: column, missing }
        })
        .collect();
    Batch(wit::Events { count: rows.len() as u32, fields })
}

// Event `i` of a batch as an owned row.
fn row(events: &wit::Events, i: usize) -> Event {
    let mut event = Event::new();
    for field in &events.fields {
        if field.missing.contains(&(i as u32)) {
            continue;
        }
        let value = match &field.values {
            wit::Column::Ints(v) => Value::Int(v[i]),
            wit::Column::Floats(v) => Value::Float(v[i]),
            wit::Column::Bools(v) => Value::Bool(v[i]),
            wit::Column::Texts(v) => Value::Text(v[i].clone()),
            wit::Column::Times(v) => Value::Time(Timestamp::from_micros(v[i])),
            wit::Column::Json(v) => Value::Json(v[i].clone()),
        };
        event = event.set(&field.name, value);
    }
    event
}

/// Builds a stage from a config given as JSON, as the host does from the
/// manifest's `config` table.
pub fn configure<T: Plugin>(config: serde_json::Value) -> Result<T, Error> {
    __rt::configure::<T>("test", &config.to_string()).map_err(Error::msg)
}

/// Deserializes one record value (timestamp: the epoch, no key) and returns
/// its events, checked against the stage's declared fields.
pub fn deserialize<D: DeserializeStage>(stage: &D, value: &[u8]) -> Result<Vec<Event>, Error> {
    let batch = wit_deserialize::SourceBatch {
        values: packed([value]),
        keys: packed([&[][..]]),
        timestamps: vec![0],
        partitions: vec![-1],
        offsets: vec![1],
        headers: vec![],
    };
    let decoded = __rt::deserialize(Some(stage), batch);
    first_failure(decoded.failures)?;
    Ok((0..decoded.events.count as usize).map(|i| row(&decoded.events, i)).collect())
}

/// Keys one event.
pub fn key<K: KeyStage>(stage: &K, event: &Event) -> Result<String, Error> {
    let keys = __rt::key(Some(stage), events(std::slice::from_ref(event)).0);
    first_failure(keys.failures)?;
    Ok(keys.keys.into_iter().next().unwrap_or_default())
}

/// Folds `rows` into a fresh accumulator in one call (one window's run of
/// events), through the JSON encoding the host keeps it in; the first
/// failure is the error.
pub fn fold<F: FoldStage>(stage: &F, rows: &[Event]) -> Result<F::Acc, Error> {
    fold_into(stage, None, rows)
}

/// Folds `rows` into `acc` (as a later batch of the same window would).
pub fn fold_into<F: FoldStage>(stage: &F, acc: Option<&F::Acc>, rows: &[Event]) -> Result<F::Acc, Error> {
    let acc = acc.map(__rt::encode).transpose()?;
    let batch = wit_fold::FoldBatch { groups: vec![wit_fold::Group { acc, end: rows.len() as u32 }], events: events(rows).0 };
    let folded = __rt::fold(Some(stage), batch);
    first_failure(folded.failures)?;
    __rt::decode(&folded.accs.into_iter().next().unwrap_or_default(), "accumulator")
}

/// Migrates an accumulator of an older shape (`old`, as a plugin with
/// identity `from` wrote it) through the same encoding the host uses on a
/// hot swap.
pub fn migrate<F: FoldStage>(stage: &F, from: Identity, old: &impl Serialize) -> Result<F::Acc, Error> {
    let encoded = __rt::encode(old)?;
    let migrated = __rt::migrate(Some(stage), wit::Identity { name: from.name, version: from.version }, vec![encoded]).map_err(Error::msg)?;
    __rt::decode(&migrated.into_iter().next().unwrap_or_default(), "accumulator")
}

/// Formats one window and parses the object back.
pub fn format<M>(stage: &M, window: &Window, acc: M::Acc) -> Result<serde_json::Value, Error>
where
    M: FormatStage,
    M::Acc: Serialize,
{
    let acc = __rt::encode(&acc)?;
    let input = wit_format::Window { key: window.key.clone(), id: window.id, start: window.start.micros(), end: window.end.micros(), count: window.count, acc };
    let formatted = __rt::format(Some(stage), vec![input]);
    first_failure(formatted.failures)?;
    let text = formatted.objects.into_iter().next().unwrap_or_default();
    serde_json::from_str(&text).map_err(Error::from)
}

/// A window with id 0 between two RFC 3339 times.
///
/// # Panics
/// When a time is not RFC 3339: this is for tests.
pub fn window(key: &str, start: &str, end: &str, count: u64) -> Window {
    Window { key: key.to_owned(), id: 0, start: Timestamp::parse_rfc3339(start).expect("start"), end: Timestamp::parse_rfc3339(end).expect("end"), count }
}
