//! The stage set: the plugins a manifest names and what the host does for
//! them (the built-in JSON decoder, keying and timing by field), checked
//! against each other once — every field a stage reads is written upstream
//! with its type, fold and format name the same accumulator — and called
//! per batch, each failed call retried in parts so only what fails alone is
//! dead.

use std::collections::HashMap;

use crate::Timestamp;
use crate::event::{Column, Events, FieldSpec, FieldType, Identity, JsonDecoder, Schema, Texts, TimeFormat};
use crate::manifest::{EventsSpec, Manifest, StageKind};
use crate::plugin::{CallError, ClosedWindow, Decoded, FoldGroup, Folded, Formatted, Keys, Packed, PluginEngine, PluginError, RecordFailure, SourceBatch, StagePlugin, narrow};
use crate::source::SourceRecord;

/// Why a stage set cannot run.
#[derive(Debug, thiserror::Error)]
pub enum StagesError {
    /// A plugin could not be loaded.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The stages do not fit together; every mismatch, each naming both
    /// sides.
    #[error("the stages do not fit together: {}", .0.join("; "))]
    Contract(Vec<String>),
}

/// Where event time comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TimeSource {
    /// A field, read with a format when it is not already a `time`.
    Field(String, TimeFormat),
    /// The record's own time (Kafka timestamp, or when it was read).
    Record,
}

/// What the host does between the plugins, worked out from the manifest
/// and what each plugin declared.
#[derive(Debug, Clone)]
struct Plan {
    decoder: Option<JsonDecoder>,
    key_field: Option<String>,
    key_reads: Vec<String>,
    fold_reads: Vec<String>,
    time: TimeSource,
}

/// The stages of a pipeline.
pub struct Stages {
    /// Raw records to events; `None`: the built-in JSON decoder.
    pub deserialize: Option<StagePlugin>,
    /// Events to keys; `None`: keyed by a field.
    pub key: Option<StagePlugin>,
    /// Events into accumulators.
    pub fold: StagePlugin,
    /// Closed windows to objects.
    pub format: StagePlugin,
    spec: EventsSpec,
    plan: Plan,
    // Session windows: the fold must export `merge`.
    needs_merge: bool,
}

impl Stages {
    /// Loads every plugin of `manifest` (compiled, the right exports,
    /// instantiated under the limits, config accepted) and checks that
    /// they fit together.
    pub fn load(manifest: &Manifest, engine: &PluginEngine) -> Result<Stages, StagesError> {
        let load = |kind| -> Result<Option<StagePlugin>, PluginError> {
            manifest.stage(kind).map(|spec| StagePlugin::load(engine, kind, &spec.plugin, &spec.config, manifest.limits)).transpose()
        };
        let deserialize = load(StageKind::Deserialize)?;
        let key = load(StageKind::Key)?;
        let fold = load(StageKind::Fold)?.expect("a checked manifest has a fold plugin");
        let format = load(StageKind::Format)?.expect("a checked manifest has a format plugin");
        let plan = plan(&manifest.events, deserialize.as_ref(), key.as_ref(), &fold, &format).map_err(StagesError::Contract)?;
        let needs_merge = matches!(manifest.window, crate::manifest::WindowSpec::Session { .. });
        if needs_merge && !fold.merges() {
            return Err(StagesError::Contract(vec![merge_missing(&fold)]));
        }
        Ok(Stages { deserialize, key, fold, format, spec: manifest.events.clone(), plan, needs_merge })
    }

    /// The plugin of stage `kind`; `None` when the host does it.
    pub fn get(&self, kind: StageKind) -> Option<&StagePlugin> {
        match kind {
            StageKind::Deserialize => self.deserialize.as_ref(),
            StageKind::Key => self.key.as_ref(),
            StageKind::Fold => Some(&self.fold),
            StageKind::Format => Some(&self.format),
        }
    }

    /// What runs stage `kind`, for messages and status: the plugin's path,
    /// or the host's built-in.
    pub fn describe(&self, kind: StageKind) -> String {
        match (kind, self.get(kind)) {
            (_, Some(plugin)) => plugin.path().display().to_string(),
            (StageKind::Deserialize, None) => "built-in json".to_owned(),
            (StageKind::Key, None) => format!("field `{}`", self.plan.key_field.as_deref().unwrap_or_default()),
            _ => unreachable!("fold and format are always plugins"),
        }
    }

    /// Whether `new` plugins, put in place of the running ones of their
    /// stages, fit the rest: the same check as at start.
    pub fn check_replacing(&self, new: &[&StagePlugin]) -> Result<(), Vec<String>> {
        let pick = |kind: StageKind| new.iter().find(|p| p.kind() == kind).copied().or_else(|| self.get(kind));
        for plugin in new {
            if self.get(plugin.kind()).is_none() {
                return Err(vec![format!("the host does the {} stage ({}): there is no plugin to swap", plugin.kind(), self.describe(plugin.kind()))]);
            }
        }
        let (fold, format) = (pick(StageKind::Fold).expect("always a plugin"), pick(StageKind::Format).expect("always a plugin"));
        if self.needs_merge && !fold.merges() {
            return Err(vec![merge_missing(fold)]);
        }
        plan(&self.spec, pick(StageKind::Deserialize), pick(StageKind::Key), fold, format).map(|_| ())
    }

    /// Puts each of `plugins` in place of its stage's one (after
    /// [`Stages::check_replacing`] said they fit); returns the old ones.
    pub fn replace(&mut self, plugins: Vec<StagePlugin>) -> Vec<StagePlugin> {
        let mut old = Vec::with_capacity(plugins.len());
        for plugin in plugins {
            let slot = match plugin.kind() {
                StageKind::Deserialize => self.deserialize.as_mut().expect("checked"),
                StageKind::Key => self.key.as_mut().expect("checked"),
                StageKind::Fold => &mut self.fold,
                StageKind::Format => &mut self.format,
            };
            old.push(std::mem::replace(slot, plugin));
        }
        // Only the whole set is checked to fit: one at a time, a new fold
        // does not fit the old format.
        self.plan = plan(&self.spec, self.deserialize.as_ref(), self.key.as_ref(), &self.fold, &self.format).expect("checked before the swap");
        old
    }

    /// The accumulator the fold writes.
    pub fn accumulator(&self) -> &Identity {
        self.fold.accumulator().expect("a fold plugin declares its accumulator")
    }

    /// Decodes a batch of records into events: the built-in decoder, or
    /// the deserialize plugin (a failed call retried by halves).
    pub fn decode(&mut self, records: &[SourceRecord]) -> Decoded {
        if let Some(decoder) = &self.plan.decoder {
            let d = decoder.decode(records.iter().map(|r| r.value.as_slice()));
            return Decoded { events: d.events, origins: d.origins, failures: d.failures.into_iter().map(|(index, reason)| RecordFailure { index, reason }).collect() };
        }
        let plugin = self.deserialize.as_mut().expect("a plan without a decoder has a deserialize plugin");
        match plugin.deserialize(source_batch(records)) {
            Ok(decoded) => decoded,
            Err(err) => deserialize_narrowed(plugin, records, err),
        }
    }

    /// Each event's time in microseconds, or why it has none.
    pub fn times(&self, decoded: &Decoded, records: &[SourceRecord]) -> Vec<Result<i64, String>> {
        let record_time = |i: usize| records[decoded.origins[i] as usize].timestamp.0;
        let TimeSource::Field(name, format) = &self.plan.time else {
            return (0..decoded.events.count as usize).map(|i| Ok(record_time(i))).collect();
        };
        let Some(field) = decoded.events.field(name) else {
            return vec![Err(format!("no field `{name}` for event time")); decoded.events.count as usize];
        };
        (0..decoded.events.count)
            .map(|i| {
                if !Events::has(field, i) {
                    return Err(format!("field `{name}` (event time) is missing"));
                }
                let i = i as usize;
                let at = match &field.values {
                    Column::Times(v) => Ok(Timestamp(v[i])),
                    Column::Ints(v) => format.from_number(v[i] as f64),
                    Column::Floats(v) => format.from_number(v[i]),
                    Column::Texts(t) => format.parse_text(t.get(i)),
                    other => Err(format!("a {} cannot hold a time", other.field_type())),
                };
                at.map(|t| t.0).map_err(|why| format!("field `{name}` (event time): {why}"))
            })
            .collect()
    }

    /// One key per event (empty for one that failed, with its failure): by
    /// field, or the key plugin (a failed call retried by halves).
    pub fn keys(&mut self, events: &Events) -> Keys {
        if let Some(name) = &self.plan.key_field {
            return keys_of_field(events, name);
        }
        let names: Vec<&str> = self.plan.key_reads.iter().map(String::as_str).collect();
        let rows: Vec<u32> = (0..events.count).collect();
        let input = events.gather(&rows, &names);
        let plugin = self.key.as_mut().expect("a plan without a key field has a key plugin");
        match plugin.key(&input) {
            Ok(keys) => keys,
            Err(err) => key_narrowed(plugin, &input, err),
        }
    }

    /// The fields of `events` the fold reads, at `rows`, in that order.
    pub fn fold_input(&self, events: &Events, rows: &[u32]) -> Events {
        let names: Vec<&str> = self.plan.fold_reads.iter().map(String::as_str).collect();
        events.gather(rows, &names)
    }

    /// Folds groups of events (a failed call retried by halves of its
    /// groups, then event by event).
    pub fn fold(&mut self, groups: Vec<FoldGroup>, events: &Events) -> Folded {
        let (groups, result) = self.fold.fold(groups, events);
        match result {
            Ok(folded) => folded,
            Err(err) => fold_narrowed(&mut self.fold, &groups, events, err),
        }
    }

    /// Merges accumulator `from` into `into` (two session windows became
    /// one); `Err` says why not, for the dead-letter output.
    pub fn merge(&mut self, into: &[u8], from: &[u8]) -> Result<Vec<u8>, String> {
        match self.fold.merge(into, from) {
            Ok(Ok(merged)) => Ok(merged),
            Ok(Err(reason)) => Err(format!("merge refused: {reason}")),
            Err(err) => Err(format!("merge failed: {err}")),
        }
    }

    /// One object or reason per closed window (a failed call retried by
    /// halves).
    pub fn format(&mut self, windows: &[ClosedWindow]) -> Vec<Result<String, String>> {
        format_narrowed(&mut self.format, windows)
    }
}

fn merge_missing(fold: &StagePlugin) -> String {
    format!(
        "session windows merge when an event closes the gap between two: the fold plugin {} does not export weir:stream/merge (implement FoldStage::merge with the Rust SDK; the Python SDK and JavaScript plugins cannot merge yet)",
        fold.path().display()
    )
}

// Works out the plan, or every way the stages do not fit.
fn plan(spec: &EventsSpec, deserialize: Option<&StagePlugin>, key: Option<&StagePlugin>, fold: &StagePlugin, format: &StagePlugin) -> Result<Plan, Vec<String>> {
    let mut problems = Vec::new();
    let fold_reads = fold.reads().cloned().unwrap_or_else(|| empty_schema("fold"));
    let key_reads = key.and_then(StagePlugin::reads).cloned();
    let (written, writer, decoder) = match deserialize {
        Some(d) => (d.writes().cloned().unwrap_or_else(|| empty_schema("deserialize")), d.describe(), None),
        None => {
            // The built-in decoder writes what the later stages read.
            let mut fields: Vec<FieldSpec> = Vec::new();
            let mut readers: HashMap<String, String> = HashMap::new();
            let mut want = |field: FieldSpec, reader: String, problems: &mut Vec<String>| match fields.iter_mut().find(|f| f.name == field.name) {
                Some(seen) if seen.ty != field.ty => problems.push(format!("{reader} reads `{field}`, but {} reads it as `{seen}`", readers[&field.name])),
                Some(seen) => seen.optional &= field.optional,
                None => {
                    readers.insert(field.name.clone(), reader);
                    fields.push(field);
                }
            };
            if let Some(name) = &spec.key_field {
                want(FieldSpec::required(name, FieldType::Text), "the key (stages.key.field)".to_owned(), &mut problems);
            }
            if let Some(name) = &spec.time_field {
                want(FieldSpec::required(name, FieldType::Time), "the clock (clock.time_field)".to_owned(), &mut problems);
            }
            for field in key_reads.iter().flat_map(|s| s.fields.clone()) {
                want(field, key.expect("reads come from a plugin").describe(), &mut problems);
            }
            for field in fold_reads.fields.clone() {
                want(field, fold.describe(), &mut problems);
            }
            let schema = Schema { name: "json".into(), version: 1, fields: fields.clone() };
            (schema, "deserialize (built-in json)".to_owned(), Some(JsonDecoder::new(fields, spec.time_format)))
        }
    };
    if deserialize.is_some() {
        problems.extend(written.check_reader(&writer, &fold_reads, &fold.describe()).iter().map(ToString::to_string));
        if let (Some(reads), Some(k)) = (&key_reads, key) {
            problems.extend(written.check_reader(&writer, reads, &k.describe()).iter().map(ToString::to_string));
        }
        if let Some(name) = &spec.key_field {
            match written.fields.iter().find(|f| &f.name == name) {
                None => problems.push(format!("the key (stages.key.field) is `{name}`, but {writer} writes no such field")),
                Some(f) if !matches!(f.ty, FieldType::Text | FieldType::Int) => {
                    problems.push(format!("the key (stages.key.field) must be text or int, but {writer} writes `{f}`"))
                }
                Some(_) => {}
            }
        }
    }
    let time = match (&spec.time_field, deserialize) {
        (Some(name), Some(_)) => match written.fields.iter().find(|f| &f.name == name) {
            None => {
                problems.push(format!("the clock (clock.time_field) reads `{name}`, but {writer} writes no such field"));
                TimeSource::Record
            }
            Some(f) if matches!(f.ty, FieldType::Bool | FieldType::Json) => {
                problems.push(format!("the clock (clock.time_field) reads `{name}` as a time, but {writer} writes `{f}`"));
                TimeSource::Record
            }
            Some(_) => TimeSource::Field(name.clone(), spec.time_format),
        },
        (Some(name), None) => TimeSource::Field(name.clone(), spec.time_format),
        (None, _) => {
            let times: Vec<&FieldSpec> = written.fields.iter().filter(|f| f.ty == FieldType::Time).collect();
            match times.as_slice() {
                [one] => TimeSource::Field(one.name.clone(), spec.time_format),
                [] => TimeSource::Record,
                _ => {
                    problems.push(format!(
                        "{writer} writes several times ({}): say which is event time with clock.time_field",
                        times.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                    TimeSource::Record
                }
            }
        }
    };
    match (fold.accumulator(), format.accumulator()) {
        (Some(written), Some(read)) if written != read => {
            problems.push(format!("{} reads accumulator `{read}`, but {} writes `{written}`", format.describe(), fold.describe()))
        }
        _ => {}
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Plan {
        decoder,
        key_field: spec.key_field.clone(),
        key_reads: key_reads.map(|s| s.fields.into_iter().map(|f| f.name).collect()).unwrap_or_default(),
        fold_reads: fold_reads.fields.into_iter().map(|f| f.name).collect(),
        time,
    })
}

fn empty_schema(name: &str) -> Schema {
    Schema { name: name.to_owned(), version: 0, fields: Vec::new() }
}

// Keys from a field: its texts as they are (one copy of the column), or
// its whole numbers as text; a missing key fails its event.
fn keys_of_field(events: &Events, name: &str) -> Keys {
    let count = events.count;
    let fail_all = |reason: String| Keys {
        keys: Texts::from_strings(std::iter::repeat_n("", count as usize)),
        failures: (0..count).map(|index| RecordFailure { index, reason: reason.clone() }).collect(),
    };
    let Some(field) = events.field(name) else { return fail_all(format!("no key field `{name}`")) };
    let keys = match &field.values {
        Column::Texts(t) => t.clone(),
        Column::Ints(v) => Texts::from_strings(v.iter().map(i64::to_string)),
        other => return fail_all(format!("key field `{name}` is a {}", other.field_type())),
    };
    let failures = field.missing.iter().map(|&index| RecordFailure { index, reason: format!("key field `{name}` is missing") }).collect();
    Keys { keys, failures }
}

// The deserialize plugin's view of `records`.
fn source_batch(records: &[SourceRecord]) -> SourceBatch {
    let bytes: usize = records.iter().map(|r| r.value.len()).sum();
    let mut batch = SourceBatch {
        values: Packed::with_capacity(records.len(), bytes),
        keys: Packed::with_capacity(records.len(), 0),
        timestamps: Vec::with_capacity(records.len()),
        partitions: Vec::with_capacity(records.len()),
        offsets: Vec::with_capacity(records.len()),
        headers: Vec::new(),
    };
    for (i, record) in records.iter().enumerate() {
        batch.values.push(&record.value);
        batch.keys.push(record.key.as_deref().unwrap_or_default());
        batch.timestamps.push(record.timestamp.0);
        batch.partitions.push(record.origin.partition.unwrap_or(-1));
        batch.offsets.push(record.origin.position as i64);
        for (name, value) in &record.headers {
            batch.headers.push((i as u32, name.clone(), value.clone()));
        }
    }
    batch
}

// A deserialize call that failed as a whole, retried by halves of its
// records; the events of the parts, and a failure per record that fails alone.
fn deserialize_narrowed(deserialize: &mut StagePlugin, records: &[SourceRecord], err: CallError) -> Decoded {
    let narrowed = narrow(records.len(), err, &mut |r| deserialize.deserialize(source_batch(&records[r])));
    let mut decoded = Decoded::default();
    for (range, part) in narrowed.done {
        decoded.events.append(part.events);
        decoded.origins.extend(part.origins.iter().map(|o| o + range.start as u32));
        decoded.failures.extend(part.failures.into_iter().map(|f| RecordFailure { index: f.index + range.start as u32, reason: f.reason }));
    }
    decoded.failures.extend(narrowed.failed.into_iter().map(|(i, e)| RecordFailure { index: i as u32, reason: e.to_string() }));
    decoded.failures.sort_by_key(|f| f.index);
    decoded
}

// A key call that failed as a whole, retried by halves of its events; one
// key per event (empty for an event that fails alone, with its failure).
fn key_narrowed(key: &mut StagePlugin, events: &Events, err: CallError) -> Keys {
    let count = events.count as usize;
    let narrowed = narrow(count, err, &mut |r| key.key(&events.slice(r)));
    let mut all = vec![""; count];
    let mut failures = Vec::new();
    for (range, part) in &narrowed.done {
        for (j, k) in part.keys.iter().enumerate() {
            all[range.start + j] = k;
        }
        failures.extend(part.failures.iter().map(|f| RecordFailure { index: f.index + range.start as u32, reason: f.reason.clone() }));
    }
    failures.extend(narrowed.failed.iter().map(|(i, e)| RecordFailure { index: *i as u32, reason: e.to_string() }));
    failures.sort_by_key(|f| f.index);
    Keys { keys: Texts::from_strings(all), failures }
}

// A fold call that failed as a whole, retried by halves of its groups; a
// group that fails alone is folded one event at a time, so only the events
// that fail alone are dead and its accumulator keeps the rest.
fn fold_narrowed(fold: &mut StagePlugin, groups: &[FoldGroup], events: &Events, err: CallError) -> Folded {
    let start_of = |g: usize| if g == 0 { 0 } else { groups[g - 1].end as usize };
    let narrowed = narrow(groups.len(), err, &mut |r| {
        let base = start_of(r.start);
        let part: Vec<FoldGroup> = groups[r.clone()].iter().map(|g| FoldGroup { acc: g.acc.clone(), end: g.end - base as u32 }).collect();
        fold.fold(part, &events.slice(base..groups[r.end - 1].end as usize)).1
    });
    let mut accs: Vec<Option<Vec<u8>>> = groups.iter().map(|g| g.acc.clone()).collect();
    let mut failures = Vec::new();
    for (range, part) in narrowed.done {
        let base = start_of(range.start) as u32;
        for (g, acc) in range.clone().zip(part.accs) {
            accs[g] = Some(acc);
        }
        failures.extend(part.failures.into_iter().map(|f| RecordFailure { index: f.index + base, reason: f.reason }));
    }
    for (g, _) in narrowed.failed {
        let mut acc = groups[g].acc.clone();
        for e in start_of(g)..groups[g].end as usize {
            match fold.fold(vec![FoldGroup { acc: acc.clone(), end: 1 }], &events.slice(e..e + 1)).1 {
                Ok(one) if one.failures.is_empty() => acc = one.accs.into_iter().next(),
                Ok(one) => failures.extend(one.failures.into_iter().map(|f| RecordFailure { index: e as u32, reason: f.reason })),
                Err(err) => failures.push(RecordFailure { index: e as u32, reason: err.to_string() }),
            }
        }
        accs[g] = acc;
    }
    Folded { accs: accs.into_iter().map(Option::unwrap_or_default).collect(), failures }
}

// One object or reason per window; a call that fails as a whole is retried
// by halves, so only the windows that fail alone are dead.
fn format_narrowed(format: &mut StagePlugin, windows: &[ClosedWindow]) -> Vec<Result<String, String>> {
    let mut objects: Vec<Result<String, String>> = vec![Err(String::new()); windows.len()];
    let take = |objects: &mut Vec<Result<String, String>>, base: usize, formatted: Formatted| {
        let mut reasons: HashMap<usize, String> = formatted.failures.into_iter().map(|f| (f.index as usize, f.reason)).collect();
        for (i, object) in formatted.objects.into_iter().enumerate() {
            objects[base + i] = match reasons.remove(&i) {
                Some(reason) => Err(reason),
                None => Ok(object),
            };
        }
    };
    match format.format(windows) {
        Ok(formatted) => take(&mut objects, 0, formatted),
        Err(err) => {
            let narrowed = narrow(windows.len(), err, &mut |r| format.format(&windows[r]));
            for (range, formatted) in narrowed.done {
                take(&mut objects, range.start, formatted);
            }
            for (i, err) in narrowed.failed {
                objects[i] = Err(err.to_string());
            }
        }
    }
    objects
}
