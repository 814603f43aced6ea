//! What the export macro calls: batches in binding types to and from the
//! plugin's typed trait methods. Not part of the API.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::exports::weir::stream::{deserialize, fold, format, key};
use crate::__bindings::weir::stream::types::{Failure, Packed};
use crate::{DeserializeStage, Emitter, Error, FoldStage, FormatStage, KeyStage, Plugin, Record, Timestamp, Window};

/// The type behind a stage `export_plugin!` was not given.
pub struct Unserved;

impl Plugin for Unserved {
    type Config = serde::de::IgnoredAny;
    fn new(_config: Self::Config) -> Result<Self, Error> {
        Err(Error::msg("this component does not serve this stage"))
    }
}

impl DeserializeStage for Unserved {
    type Event = ();
    fn deserialize(&self, _: &Record<'_>, _: &mut Emitter<'_, ()>) -> Result<(), Error> {
        Err(Error::msg("not served"))
    }
}

impl KeyStage for Unserved {
    type Event = ();
    fn key(&self, _: &()) -> Result<String, Error> {
        Err(Error::msg("not served"))
    }
}

impl FoldStage for Unserved {
    type Event = ();
    type Acc = ();
    fn init(&self) {}
    fn fold(&self, _: &mut (), _: ()) -> Result<(), Error> {
        Err(Error::msg("not served"))
    }
}

impl FormatStage for Unserved {
    type Acc = ();
    type Output = ();
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

/// Appends items to a packed buffer.
#[derive(Default)]
pub struct PackedBuf {
    data: Vec<u8>,
    ends: Vec<u32>,
}

impl PackedBuf {
    fn close_item(&mut self) {
        self.ends.push(self.data.len() as u32);
    }

    fn push(&mut self, item: &[u8]) {
        self.data.extend_from_slice(item);
        self.close_item();
    }

    fn push_encoded<T: Serialize>(&mut self, value: &T) -> Result<(), Error> {
        let mark = self.data.len();
        match postcard::to_extend(value, std::mem::take(&mut self.data)) {
            Ok(data) => self.data = data,
            Err(err) => {
                return Err(Error::msg(format!("cannot encode: {err}")).context(format!("at byte {mark}")));
            }
        }
        self.close_item();
        Ok(())
    }

    fn finish(self) -> Packed {
        Packed { data: self.data, ends: self.ends }
    }
}

/// Decodes a value this SDK encoded.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, Error> {
    postcard::from_bytes(bytes).map_err(|err| Error::msg(format!("cannot decode {what}: {err} (was it written by a plugin with another {what} type?)")))
}

/// Events emitted while deserializing a batch.
#[derive(Default)]
pub struct EventBuf {
    payloads: PackedBuf,
    times: Vec<i64>,
    origins: Vec<u32>,
}

impl EventBuf {
    pub(crate) fn push<E: Serialize>(&mut self, event: &E, time: Timestamp, origin: u32) -> Result<(), Error> {
        self.payloads.push_encoded(event)?;
        self.times.push(time.micros());
        self.origins.push(origin);
        Ok(())
    }

    fn len(&self) -> usize {
        self.times.len()
    }

    fn truncate(&mut self, len: usize) {
        if len < self.len() {
            let end = if len == 0 { 0 } else { self.payloads.ends[len - 1] as usize };
            self.payloads.data.truncate(end);
            self.payloads.ends.truncate(len);
            self.times.truncate(len);
            self.origins.truncate(len);
        }
    }
}

fn fail_all(count: usize, reason: &str) -> Vec<Failure> {
    (0..count as u32).map(|index| Failure { index, reason: reason.to_owned() }).collect()
}

/// Runs a deserialize stage over a batch.
pub fn deserialize<D: DeserializeStage>(stage: Option<&D>, batch: deserialize::SourceBatch) -> deserialize::Events {
    let mut buf = EventBuf::default();
    let mut failures = Vec::new();
    let Some(stage) = stage else {
        let failures = fail_all(batch.values.ends.len(), NOT_CONFIGURED);
        return deserialize::Events { payloads: buf.payloads.finish(), times: vec![], origins: vec![], failures };
    };
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
        let mark = buf.len();
        let mut out = Emitter::new(&mut buf, index as u32, timestamp);
        if let Err(err) = stage.deserialize(&record, &mut out) {
            buf.truncate(mark);
            failures.push(Failure { index: index as u32, reason: err.to_string() });
        }
    }
    deserialize::Events { payloads: buf.payloads.finish(), times: buf.times, origins: buf.origins, failures }
}

/// Runs a key stage over a batch of events.
pub fn key<K: KeyStage>(stage: Option<&K>, events: Packed) -> key::Keys {
    let mut keys = PackedBuf::default();
    let mut failures = Vec::new();
    for (index, payload) in items(&events).enumerate() {
        let result = match stage {
            Some(stage) => decode::<K::Event>(payload, "event").and_then(|event| stage.key(&event)),
            None => Err(Error::msg(NOT_CONFIGURED)),
        };
        match result {
            Ok(key) => keys.push(key.as_bytes()),
            Err(err) => {
                keys.push(b"");
                failures.push(Failure { index: index as u32, reason: err.to_string() });
            }
        }
    }
    key::Keys { keys: keys.finish(), failures }
}

/// Runs a fold stage over groups of events.
pub fn fold<F: FoldStage>(stage: Option<&F>, batch: fold::FoldBatch) -> fold::Folded {
    let mut accs = PackedBuf::default();
    let mut failures = Vec::new();
    let payloads: Vec<&[u8]> = items(&batch.events).collect();
    let mut start = 0usize;
    for group in &batch.groups {
        let end = (group.end as usize).clamp(start, payloads.len());
        let group_events = start..end;
        start = end;
        let Some(stage) = stage else {
            failures.extend(group_events.map(|i| Failure { index: i as u32, reason: NOT_CONFIGURED.to_owned() }));
            accs.push(group.acc.as_deref().unwrap_or_default());
            continue;
        };
        let mut acc = match group.acc.as_deref().map(|bytes| decode::<F::Acc>(bytes, "accumulator")) {
            None => stage.init(),
            Some(Ok(acc)) => acc,
            Some(Err(err)) => {
                // The window's state is unreadable: fail its events, keep the bytes.
                failures.extend(group_events.map(|i| Failure { index: i as u32, reason: err.to_string() }));
                accs.push(group.acc.as_deref().unwrap_or_default());
                continue;
            }
        };
        for index in group_events {
            let result = decode::<F::Event>(payloads[index], "event").and_then(|event| stage.fold(&mut acc, event));
            if let Err(err) = result {
                failures.push(Failure { index: index as u32, reason: err.to_string() });
            }
        }
        if let Err(err) = accs.push_encoded(&acc) {
            // Nothing sensible to keep: the host sees a failure for the
            // group's last event and an empty accumulator.
            failures.push(Failure { index: end.saturating_sub(1) as u32, reason: err.to_string() });
            accs.close_item();
        }
    }
    fold::Folded { accs: accs.finish(), failures }
}

/// Rewrites accumulators of another state version, all or nothing.
pub fn migrate<F: FoldStage>(stage: Option<&F>, from_version: u32, accs: Packed) -> Result<Packed, String> {
    let stage = stage.ok_or_else(|| NOT_CONFIGURED.to_owned())?;
    let mut out = PackedBuf::default();
    for (index, old) in items(&accs).enumerate() {
        let acc = stage.migrate(from_version, old).map_err(|err| format!("accumulator {index}: {err}"))?;
        out.push_encoded(&acc).map_err(|err| format!("accumulator {index}: {err}"))?;
    }
    Ok(out.finish())
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
