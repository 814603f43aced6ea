//! What the export macro calls: batches in binding types to and from the
//! plugin's typed trait methods. Not part of the API.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::exports::weir::stream::{deserialize, fold, format, key};
use crate::__bindings::weir::stream::types::{self as wit, Failure, Packed};
use crate::event::Columns;
use crate::{DeserializeStage, Emitter, Error, Events, FoldStage, FormatStage, Identity, KeyStage, Plugin, Record, Row, Schema, Timestamp, Window};

/// The type behind a stage `export_plugin!` was not given.
pub struct Unserved;

impl Plugin for Unserved {
    type Config = serde::de::IgnoredAny;
    fn new(_config: Self::Config) -> Result<Self, Error> {
        Err(Error::msg("this component does not serve this stage"))
    }
}

impl DeserializeStage for Unserved {
    fn writes(&self) -> Schema {
        Schema::new("unserved", 0)
    }
    fn deserialize(&self, _: &Record<'_>, _: &mut Emitter<'_>) -> Result<(), Error> {
        Err(Error::msg("not served"))
    }
}

impl KeyStage for Unserved {
    fn reads(&self) -> Schema {
        Schema::new("unserved", 0)
    }
    fn key(&self, _: &Row<'_>) -> Result<String, Error> {
        Err(Error::msg("not served"))
    }
}

impl FoldStage for Unserved {
    type Acc = ();
    fn reads(&self) -> Schema {
        Schema::new("unserved", 0)
    }
    fn accumulator(&self) -> Identity {
        Identity::new("unserved", 0)
    }
    fn init(&self) {}
    fn fold(&self, _: &mut (), _: &Row<'_>) -> Result<(), Error> {
        Err(Error::msg("not served"))
    }
}

impl FormatStage for Unserved {
    type Acc = ();
    type Output = ();
    fn accumulator(&self) -> Identity {
        Identity::new("unserved", 0)
    }
    fn format(&self, _: &Window, _: ()) -> Result<(), Error> {
        Err(Error::msg("not served"))
    }
}

const NOT_CONFIGURED: &str = "stage used before its config was accepted";

/// Builds a stage from its config text (JSON).
pub fn configure<T: Plugin>(stage: &str, config: &str) -> Result<T, String> {
    let config: T::Config = serde_json::from_str(config).map_err(|err| format!("{stage} config: {err}"))?;
    T::new(config).map_err(|err| format!("{stage} config: {err}"))
}

/// Items of a packed buffer, in order.
pub fn items(packed: &Packed) -> impl Iterator<Item = &[u8]> {
    let mut start = 0usize;
    packed.ends.iter().map(move |&end| {
        let end = (end as usize).clamp(start, packed.data.len());
        let item = &packed.data[start..end];
        start = end;
        item
    })
}

/// Encodes an accumulator as the SDKs do: JSON.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|err| Error::msg(format!("cannot encode the accumulator as JSON: {err}")))
}

/// Decodes an accumulator the SDKs encoded.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|err| Error::msg(format!("cannot decode {what}: {err} (was it written by a plugin with another {what}?)")))
}

/// The schema a stage declares, in binding types.
pub fn schema(schema: Option<Schema>) -> wit::Schema {
    schema.unwrap_or_else(|| Schema::new("unconfigured", 0)).to_wit()
}

/// An identity in binding types.
pub fn identity(identity: Option<Identity>) -> wit::Identity {
    let i = identity.unwrap_or_else(|| Identity::new("unconfigured", 0));
    wit::Identity { name: i.name, version: i.version }
}

fn fail_all(count: usize, reason: &str) -> Vec<Failure> {
    (0..count as u32).map(|index| Failure { index, reason: reason.to_owned() }).collect()
}

/// Runs a deserialize stage over a batch.
pub fn deserialize<D: DeserializeStage>(stage: Option<&D>, batch: deserialize::SourceBatch) -> deserialize::Decoded {
    let Some(stage) = stage else {
        let failures = fail_all(batch.values.ends.len(), NOT_CONFIGURED);
        return deserialize::Decoded { events: wit::Events { count: 0, fields: vec![] }, origins: vec![], failures };
    };
    let mut columns = Columns::new(stage.writes());
    let mut origins = Vec::new();
    let mut failures = Vec::new();
    let deserialize::SourceBatch { values, keys, timestamps, partitions, offsets, headers } = batch;
    // Headers arrive in record order; each record gets its run of them.
    let header_of: Vec<u32> = headers.iter().map(|h| h.index).collect();
    let headers: Vec<crate::Header> = headers.into_iter().map(|h| crate::Header { name: h.name, value: h.value }).collect();
    let mut next_header = 0usize;
    let mut keys = items(&keys);
    for (index, value) in items(&values).enumerate() {
        let key = keys.next().filter(|k| !k.is_empty());
        let timestamp = Timestamp::from_micros(timestamps.get(index).copied().unwrap_or(0));
        let first = next_header;
        while header_of.get(next_header).is_some_and(|&i| i as usize == index) {
            next_header += 1;
        }
        let partition = partitions.get(index).copied().filter(|p| *p >= 0);
        let offset = offsets.get(index).copied().unwrap_or(0);
        let record = Record { value, key, timestamp, partition, offset, headers: &headers[first..next_header] };
        // A record's events go to a scratch set first, so a failure half-way
        // takes back what it emitted.
        let mut scratch = Columns::new(stage.writes());
        let mut emitted = 0u32;
        let mut out = Emitter::new(&mut scratch, &mut emitted);
        match stage.deserialize(&record, &mut out) {
            Ok(()) => {
                columns.append(scratch);
                origins.extend(std::iter::repeat_n(index as u32, emitted as usize));
            }
            Err(err) => failures.push(Failure { index: index as u32, reason: err.to_string() }),
        }
    }
    deserialize::Decoded { events: columns.finish(), origins, failures }
}

/// Runs a key stage over a batch of events.
pub fn key<K: KeyStage>(stage: Option<&K>, events: wit::Events) -> key::Keys {
    let view = Events::new(&events, 0, events.count as usize);
    let mut keys = Vec::with_capacity(view.len());
    let mut failures = Vec::new();
    for (index, row) in view.rows().enumerate() {
        let result = match stage {
            Some(stage) => stage.key(&row),
            None => Err(Error::msg(NOT_CONFIGURED)),
        };
        match result {
            Ok(key) => keys.push(key),
            Err(err) => {
                keys.push(String::new());
                failures.push(Failure { index: index as u32, reason: err.to_string() });
            }
        }
    }
    key::Keys { keys, failures }
}

/// Runs a fold stage over groups of events.
pub fn fold<F: FoldStage>(stage: Option<&F>, batch: fold::FoldBatch) -> fold::Folded {
    let mut accs = Vec::with_capacity(batch.groups.len());
    let mut failures = Vec::new();
    let count = batch.events.count as usize;
    let mut start = 0usize;
    for group in batch.groups {
        let end = (group.end as usize).clamp(start, count);
        let range = start..end;
        start = end;
        let Some(stage) = stage else {
            failures.extend(range.map(|i| Failure { index: i as u32, reason: NOT_CONFIGURED.to_owned() }));
            accs.push(group.acc.unwrap_or_default());
            continue;
        };
        let mut acc = match group.acc.as_deref().map(|bytes| decode::<F::Acc>(bytes, "accumulator")) {
            None => stage.init(),
            Some(Ok(acc)) => acc,
            Some(Err(err)) => {
                // The window's state is unreadable: fail its events, keep the bytes.
                failures.extend(range.map(|i| Failure { index: i as u32, reason: err.to_string() }));
                accs.push(group.acc.unwrap_or_default());
                continue;
            }
        };
        let view = Events::new(&batch.events, range.start, range.end);
        for (i, err) in stage.fold_events(&mut acc, &view) {
            failures.push(Failure { index: (range.start + i) as u32, reason: err.to_string() });
        }
        match encode(&acc) {
            Ok(bytes) => accs.push(bytes),
            Err(err) => {
                // Nothing sensible to keep: every event of the group fails
                // and the window keeps what it had.
                failures.extend(range.map(|i| Failure { index: i as u32, reason: err.to_string() }));
                accs.push(group.acc.unwrap_or_default());
            }
        }
    }
    failures.sort_by_key(|f| f.index);
    failures.dedup_by_key(|f| f.index);
    fold::Folded { accs, failures }
}

/// Rewrites accumulators of another identity, all or nothing.
pub fn migrate<F: FoldStage>(stage: Option<&F>, from: wit::Identity, accs: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
    let stage = stage.ok_or_else(|| NOT_CONFIGURED.to_owned())?;
    let from = Identity { name: from.name, version: from.version };
    accs.iter()
        .enumerate()
        .map(|(index, old)| {
            let acc = stage.migrate(&from, old).map_err(|err| format!("accumulator {index}: {err}"))?;
            encode(&acc).map_err(|err| format!("accumulator {index}: {err}"))
        })
        .collect()
}

/// Merges two accumulators of this fold (session windows).
pub fn merge<F: FoldStage>(stage: Option<&F>, into: &[u8], from: &[u8]) -> Result<Vec<u8>, String> {
    let stage = stage.ok_or_else(|| NOT_CONFIGURED.to_owned())?;
    let mut acc = decode::<F::Acc>(into, "accumulator").map_err(|err| err.to_string())?;
    let other = decode::<F::Acc>(from, "accumulator").map_err(|err| err.to_string())?;
    stage.merge(&mut acc, other).map_err(|err| err.to_string())?;
    encode(&acc).map_err(|err| err.to_string())
}

/// Runs a format stage over closed windows.
pub fn format<M: FormatStage>(stage: Option<&M>, windows: Vec<format::Window>) -> format::Formatted {
    let mut objects = Vec::with_capacity(windows.len());
    let mut failures = Vec::new();
    for (index, window) in windows.into_iter().enumerate() {
        let meta = Window {
            key: window.key,
            id: window.id,
            start: Timestamp::from_micros(window.start),
            end: Timestamp::from_micros(window.end),
            count: window.count,
        };
        let result = match stage {
            Some(stage) => decode::<M::Acc>(&window.acc, "accumulator")
                .and_then(|acc| stage.format(&meta, acc))
                .and_then(|output| serde_json::to_string(&output).map_err(Error::from))
                .and_then(|text| if text.starts_with('{') { Ok(text) } else { Err(Error::msg(format!("format must return a JSON object, got `{text}`"))) }),
            None => Err(Error::msg(NOT_CONFIGURED)),
        };
        match result {
            Ok(text) => objects.push(text),
            Err(err) => {
                objects.push(String::new());
                failures.push(Failure { index: index as u32, reason: err.to_string() });
            }
        }
    }
    format::Formatted { objects, failures }
}

#[cfg(test)]
mod tests {
    /// An accumulator must come back from its JSON bit for bit: otherwise a
    /// running sum drifts with where batches happen to end, and two runs of
    /// the same input (one worker or two, before or after a restart)
    /// disagree in the last digits.
    #[test]
    fn floats_in_accumulators_come_back_bit_for_bit() {
        let mut sum = 0.0f64;
        let mut changed = Vec::new();
        for i in 0..100_000u64 {
            sum += 20.0 + ((i * 7919) % 1000) as f64 * 0.001;
            let back: f64 = super::decode(&super::encode(&sum).unwrap(), "accumulator").unwrap();
            if back.to_bits() != sum.to_bits() {
                changed.push(sum);
            }
        }
        assert!(changed.is_empty(), "{} of 100,000 sums changed on the way through JSON, the first {:?}", changed.len(), changed.first());
    }
}
