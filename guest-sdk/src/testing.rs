//! Run a plugin's stages natively under `cargo test`, through the same
//! encoding and batching the component uses inside the host.
//!
//! ```
//! # use weir_guest_sdk::{testing, Timestamp};
//! let window = testing::window("sensor-1", "2022-01-01T00:00:00Z", "2022-01-01T00:00:05Z", 3);
//! assert_eq!(window.end, Timestamp::parse_rfc3339("2022-01-01T00:00:05Z").unwrap());
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::exports::weir::stream::{deserialize as wit_deserialize, fold as wit_fold, format as wit_format};
use crate::__bindings::weir::stream::types::{Failure, Packed};
use crate::__rt;
use crate::{DeserializeStage, Error, FoldStage, FormatStage, KeyStage, Plugin, Timestamp, Window};

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

/// Builds a stage from a config given as JSON, as the host does from the
/// manifest's `config` table.
pub fn configure<T: Plugin>(config: serde_json::Value) -> Result<T, Error> {
    __rt::configure::<T>("test", &config.to_string()).map_err(Error::msg)
}

/// Deserializes one record value (timestamp: the epoch, no key) and returns
/// each event with its event time.
pub fn deserialize<D>(stage: &D, value: &[u8]) -> Result<Vec<(D::Event, Timestamp)>, Error>
where
    D: DeserializeStage,
    D::Event: DeserializeOwned,
{
    let batch = wit_deserialize::SourceBatch {
        values: packed([value]),
        keys: packed([&[][..]]),
        timestamps: vec![0],
        partitions: vec![-1],
        offsets: vec![1],
        headers: vec![],
    };
    let events = __rt::deserialize(Some(stage), batch);
    first_failure(events.failures)?;
    __rt::items(&events.payloads).zip(events.times).map(|(payload, time)| Ok((__rt::decode(payload, "event")?, Timestamp::from_micros(time)))).collect()
}

/// Keys one event.
pub fn key<K>(stage: &K, event: &K::Event) -> Result<String, Error>
where
    K: KeyStage,
    K::Event: Serialize,
{
    let encoded = postcard::to_allocvec(event).map_err(Error::from)?;
    let keys = __rt::key(Some(stage), packed([&encoded[..]]));
    first_failure(keys.failures)?;
    let key = __rt::items(&keys.keys).next().unwrap_or_default();
    Ok(String::from_utf8_lossy(key).into_owned())
}

/// Folds `events` into a fresh accumulator, one call per event, passing the
/// encoded accumulator back each time as the host does.
pub fn fold<F>(stage: &F, events: impl IntoIterator<Item = F::Event>) -> Result<F::Acc, Error>
where
    F: FoldStage,
    F::Event: Serialize,
{
    let mut acc: Option<Vec<u8>> = None;
    for event in events {
        let encoded = postcard::to_allocvec(&event).map_err(Error::from)?;
        let batch = wit_fold::FoldBatch { groups: vec![wit_fold::Group { acc: acc.take(), end: 1 }], events: packed([&encoded[..]]) };
        let folded = __rt::fold(Some(stage), batch);
        first_failure(folded.failures)?;
        acc = Some(__rt::items(&folded.accs).next().unwrap_or_default().to_vec());
    }
    match acc {
        Some(bytes) => __rt::decode(&bytes, "accumulator"),
        None => Ok(stage.init()),
    }
}

/// Migrates an accumulator of an older shape (`old`, as a plugin with state
/// version `from_version` wrote it) through the same encoding the host uses
/// on a hot swap.
pub fn migrate<F: FoldStage>(stage: &F, from_version: u32, old: &impl Serialize) -> Result<F::Acc, Error> {
    let encoded = postcard::to_allocvec(old).map_err(Error::from)?;
    let packed_old = packed([&encoded[..]]);
    let migrated = __rt::migrate(Some(stage), from_version, packed_old).map_err(Error::msg)?;
    __rt::decode(__rt::items(&migrated).next().unwrap_or_default(), "accumulator")
}

/// Formats one window and parses the object back.
pub fn format<M>(stage: &M, window: &Window, acc: M::Acc) -> Result<serde_json::Value, Error>
where
    M: FormatStage,
    M::Acc: Serialize,
{
    let acc = postcard::to_allocvec(&acc).map_err(Error::from)?;
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
