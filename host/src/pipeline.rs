//! The data path: source → deserialize → key → clock → window → fold →
//! (window closes) → format → sink, with late and failed records going to the
//! dead-letter output.
//!
//! [`Pipeline`] is driven by batches and an explicit system time, so tests can
//! drive the clock by hand; [`Pipeline::run_source`] drives it from a real
//! source and the system clock.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::Timestamp;
use crate::clock::{Arrival, Clock};
use crate::manifest::{ClockSpec, DeadLetterSpec, Manifest, StageKind};
use crate::plugin::{CallError, ClosedWindow, FoldGroup, Packed, PluginEngine, PluginError, SourceBatch, StagePlugin};
use crate::sink::{self, DeadLetter, DeadLetterKind, DeadLetters, Sink, SinkError, WindowResult};
use crate::source::{self, Delivery, Source, SourceError, SourceRecord};
use crate::state::{WindowId, WindowStore};
use crate::window::{Assignment, Windower};

/// How long the pipeline waits for input before it lets system time close
/// windows anyway.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// How often a long run logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A plugin could not be loaded or started.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink or the dead-letter output failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
}

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records read from the source.
    pub records: u64,
    /// Events the deserialize stage produced.
    pub events: u64,
    /// Windows written to the sink.
    pub windows: u64,
    /// Late items sent to the dead-letter output.
    pub late: u64,
    /// Records or windows a stage failed, sent to the dead-letter output.
    pub failed: u64,
}

/// The four stage plugins.
pub struct Stages {
    /// Raw record to events.
    pub deserialize: StagePlugin,
    /// Event to key.
    pub key: StagePlugin,
    /// Events into accumulators.
    pub fold: StagePlugin,
    /// Closed windows to objects.
    pub format: StagePlugin,
}

impl Stages {
    /// Loads and checks every stage of `manifest`: compiled, the right
    /// exports, instantiated under the limits, config accepted.
    pub fn load(manifest: &Manifest, engine: &PluginEngine) -> Result<Stages, PluginError> {
        let load = |kind| {
            let spec = manifest.stage(kind);
            StagePlugin::load(engine, kind, &spec.plugin, &spec.config, manifest.limits)
        };
        Ok(Stages {
            deserialize: load(StageKind::Deserialize)?,
            key: load(StageKind::Key)?,
            fold: load(StageKind::Fold)?,
            format: load(StageKind::Format)?,
        })
    }
}

// An event that made it through the key stage and the clock.
struct Placed {
    event: usize,
    origin: usize,
}

struct Group {
    id: WindowId,
    assignment: Assignment,
    members: Vec<Placed>,
}

/// A running pipeline.
pub struct Pipeline {
    stages: Stages,
    clock: Clock,
    windower: Windower,
    store: WindowStore,
    sink: Box<dyn Sink>,
    dead: DeadLetters,
    system_clock: bool,
    batch_size: usize,
    stats: Stats,
}

impl Pipeline {
    /// Loads the stages and opens the sink and dead-letter output the
    /// manifest names.
    pub fn load(manifest: &Manifest, engine: &PluginEngine) -> Result<Self, PipelineError> {
        let stages = Stages::load(manifest, engine)?;
        let sink = sink::open(&manifest.sink)?;
        let dead = match &manifest.dead_letter {
            DeadLetterSpec::Log => DeadLetters::log(),
            DeadLetterSpec::File(path) => DeadLetters::file(path)?,
        };
        Ok(Self::new(manifest, stages, sink, dead))
    }

    /// A pipeline over loaded stages, writing to `sink` and `dead`.
    pub fn new(manifest: &Manifest, stages: Stages, sink: Box<dyn Sink>, dead: DeadLetters) -> Self {
        Pipeline {
            stages,
            clock: Clock::from_spec(manifest.clock),
            windower: Windower::from_spec(manifest.window),
            store: WindowStore::new(),
            sink,
            dead,
            system_clock: manifest.clock == ClockSpec::System,
            batch_size: manifest.limits.batch_size,
            stats: Stats::default(),
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        Stats { late: self.dead.late(), failed: self.dead.failed(), ..self.stats }
    }

    /// The stages, e.g. to read their hashes.
    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    /// Reads `source` to its end, processing each batch at the system time it
    /// arrives and letting idle time close windows; then closes every window.
    pub fn run_source(&mut self, source: Box<dyn Source>) -> Result<Stats, PipelineError> {
        let deliveries = source::spawn(source, self.batch_size);
        let started = Instant::now();
        let mut last_report = Instant::now();
        loop {
            match deliveries.recv_timeout(IDLE_TICK) {
                Ok(Delivery::Batch(batch)) => self.process(batch, Timestamp::now())?,
                Ok(Delivery::End) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Delivery::Failed(err)) => return Err(err.into()),
                Err(RecvTimeoutError::Timeout) => self.advance(Timestamp::now())?,
            }
            if last_report.elapsed() >= PROGRESS_EVERY {
                let s = self.stats();
                let rate = s.records as f64 / started.elapsed().as_secs_f64();
                tracing::info!(
                    "{} records ({rate:.0}/s), {} windows written, {} open, {} late, {} failed",
                    s.records, s.windows, self.store.len(), s.late, s.failed
                );
                last_report = Instant::now();
            }
        }
        self.finish()
    }

    /// Processes one batch of records at system time `now`, then closes the
    /// windows that are due.
    pub fn process(&mut self, records: Vec<SourceRecord>, now: Timestamp) -> Result<(), PipelineError> {
        if records.is_empty() {
            return self.advance(now);
        }
        self.stats.records += records.len() as u64;
        let bytes: usize = records.iter().map(|r| r.value.len()).sum();
        let mut batch = SourceBatch {
            values: Packed::with_capacity(records.len(), bytes),
            keys: Packed::with_capacity(records.len(), 0),
            timestamps: Vec::with_capacity(records.len()),
        };
        for record in &records {
            batch.values.push(&record.value);
            batch.keys.push(record.key.as_deref().unwrap_or_default());
            batch.timestamps.push(record.timestamp.0);
        }

        let events = match self.stages.deserialize.deserialize(batch) {
            Ok(events) => events,
            Err(err) => return self.fail_records(&records, 0..records.len(), StageKind::Deserialize, &err),
        };
        for failure in &events.failures {
            self.dead_record(&records[failure.index as usize], DeadLetterKind::Failed, "deserialize", failure.reason.clone(), None)?;
        }
        self.stats.events += events.times.len() as u64;
        if events.payloads.is_empty() {
            return self.advance(now);
        }
        let origins: Vec<usize> = events.origins.iter().map(|&o| o as usize).collect();

        let keys = match self.stages.key.key(&events.payloads) {
            Ok(keys) => keys,
            Err(err) => return self.fail_records(&records, unique(&origins), StageKind::Key, &err),
        };
        let mut key_failed = vec![false; origins.len()];
        for failure in &keys.failures {
            key_failed[failure.index as usize] = true;
            self.dead_record(&records[origins[failure.index as usize]], DeadLetterKind::Failed, "key", failure.reason.clone(), None)?;
        }

        // Clock and window: group the events by the window they fall in,
        // in order of first appearance.
        let mut groups: Vec<Group> = Vec::new();
        let mut group_of: HashMap<WindowId, usize> = HashMap::new();
        for (event, &origin) in origins.iter().enumerate() {
            if key_failed[event] {
                continue;
            }
            let Ok(key) = std::str::from_utf8(keys.keys.get(event)) else {
                self.dead_record(&records[origin], DeadLetterKind::Failed, "key", "the key is not UTF-8".to_owned(), None)?;
                continue;
            };
            let time = if self.system_clock { now } else { Timestamp(events.times[event]) };
            let assignment = match &mut self.windower {
                Windower::Tumbling(w) => match self.clock.arrive(key, time, now) {
                    Arrival::OnTime(time) => w.assign(time),
                    Arrival::Late { time, watermark } => {
                        let reason = format!("late: event time {time} is before the watermark {watermark} of key `{key}`");
                        self.dead_record(&records[origin], DeadLetterKind::Late, "clock", reason, Some(key))?;
                        continue;
                    }
                },
                // Collect windows count and time out in system time.
                Windower::Collect(w) => w.assign(key, now),
            };
            let id = WindowId { key: key.to_owned(), index: assignment.index };
            let slot = match group_of.entry(id) {
                Entry::Occupied(e) => *e.get(),
                Entry::Vacant(e) => {
                    groups.push(Group { id: e.key().clone(), assignment, members: Vec::new() });
                    *e.insert(groups.len() - 1)
                }
            };
            groups[slot].members.push(Placed { event, origin });
        }
        self.fold(&records, &events.payloads, groups)?;
        self.advance(now)
    }

    fn fold(&mut self, records: &[SourceRecord], payloads: &Packed, groups: Vec<Group>) -> Result<(), PipelineError> {
        if groups.is_empty() {
            return Ok(());
        }
        let mut events = Packed::with_capacity(payloads.len(), payloads.data.len());
        let mut fold_groups = Vec::with_capacity(groups.len());
        let mut fold_origin = Vec::with_capacity(payloads.len());
        for group in &groups {
            for member in &group.members {
                events.push(payloads.get(member.event));
                fold_origin.push(member.origin);
            }
            let acc = self.store.get(&group.id).and_then(|w| w.acc.clone());
            fold_groups.push(FoldGroup { acc, end: events.len() as u32 });
        }
        let folded = match self.stages.fold.fold(fold_groups, &events) {
            Ok(folded) => folded,
            // Accumulators stay as they were: the store only takes what a
            // successful call returns.
            Err(err) => return self.fail_records(records, unique(&fold_origin), StageKind::Fold, &err),
        };
        let mut failed = vec![false; events.len()];
        for failure in &folded.failures {
            failed[failure.index as usize] = true;
            self.dead_record(&records[fold_origin[failure.index as usize]], DeadLetterKind::Failed, "fold", failure.reason.clone(), None)?;
        }
        let mut start = 0usize;
        for (i, group) in groups.into_iter().enumerate() {
            let end = start + group.members.len();
            let absorbed = failed[start..end].iter().filter(|f| !**f).count() as u64;
            start = end;
            if absorbed == 0 && self.store.get(&group.id).is_none() {
                continue;
            }
            let Assignment { start: from, end: to, .. } = group.assignment;
            self.store.absorb(group.id, from, to, folded.accs.get(i).to_vec(), absorbed);
        }
        Ok(())
    }

    /// Closes the windows due at system time `now` and writes them.
    pub fn advance(&mut self, now: Timestamp) -> Result<(), PipelineError> {
        let closed = match &self.windower {
            Windower::Tumbling(_) => {
                let clock = &self.clock;
                self.store.close_where(|id, w| clock.watermark(&id.key, now).is_some_and(|wm| wm >= w.end))
            }
            Windower::Collect(c) => self.store.close_where(|id, w| c.is_due(&id.key, id.index, w.start, now)),
        };
        if let Windower::Collect(c) = &mut self.windower {
            for (id, _) in &closed {
                c.closed(&id.key, id.index);
            }
        }
        self.emit(closed)
    }

    /// Closes every open window (the input has ended), writes them, and
    /// flushes the sink and the dead-letter output.
    pub fn finish(&mut self) -> Result<Stats, PipelineError> {
        let closed = self.store.close_where(|_, _| true);
        self.emit(closed)?;
        self.sink.flush()?;
        self.dead.flush()?;
        Ok(self.stats())
    }

    fn emit(&mut self, closed: Vec<(WindowId, crate::state::OpenWindow)>) -> Result<(), PipelineError> {
        let mut closed = closed.into_iter().peekable();
        while closed.peek().is_some() {
            let chunk: Vec<ClosedWindow> = closed
                .by_ref()
                .take(self.batch_size)
                .map(|(id, w)| ClosedWindow { key: id.key, id: id.index, start: w.start.0, end: w.end.0, count: w.count, acc: w.acc.unwrap_or_default() })
                .collect();
            let metas: Vec<(String, i64, i64, i64, u64)> = chunk.iter().map(|w| (w.key.clone(), w.id, w.start, w.end, w.count)).collect();
            let formatted = match self.stages.format.format(chunk) {
                Ok(formatted) => formatted,
                Err(err) => {
                    for meta in &metas {
                        self.dead_window(meta, err.to_string())?;
                    }
                    continue;
                }
            };
            let mut reasons: HashMap<usize, String> = formatted.failures.into_iter().map(|f| (f.index as usize, f.reason)).collect();
            for (i, (object, meta)) in formatted.objects.into_iter().zip(&metas).enumerate() {
                if let Some(reason) = reasons.remove(&i) {
                    self.dead_window(meta, reason)?;
                    continue;
                }
                if !object.trim_start().starts_with('{') || serde_json::from_str::<serde::de::IgnoredAny>(&object).is_err() {
                    self.dead_window(meta, format!("format returned something that is not a JSON object: {object}"))?;
                    continue;
                }
                let (key, id, start, end, count) = meta.clone();
                let result = WindowResult { key, id, start: Timestamp(start), end: Timestamp(end), count, object };
                match self.sink.write(&result) {
                    Ok(()) => self.stats.windows += 1,
                    Err(err @ SinkError::MissingField { .. }) => self.dead_window(meta, err.to_string())?,
                    Err(err) => return Err(err.into()),
                }
            }
        }
        Ok(())
    }

    fn fail_records(&mut self, records: &[SourceRecord], which: impl IntoIterator<Item = usize>, stage: StageKind, err: &CallError) -> Result<(), PipelineError> {
        for i in which {
            self.dead_record(&records[i], DeadLetterKind::Failed, stage.name(), err.to_string(), None)?;
        }
        Ok(())
    }

    fn dead_record(&mut self, record: &SourceRecord, kind: DeadLetterKind, stage: &str, reason: String, key: Option<&str>) -> Result<(), PipelineError> {
        self.dead.send(DeadLetter {
            kind,
            stage: stage.to_owned(),
            reason,
            source: record.origin.source.to_string(),
            position: record.origin.position,
            key: key.map(str::to_owned),
            value: String::from_utf8_lossy(&record.value).into_owned(),
        })?;
        Ok(())
    }

    fn dead_window(&mut self, (key, id, start, end, count): &(String, i64, i64, i64, u64), reason: String) -> Result<(), PipelineError> {
        let value = serde_json::json!({
            "key": key, "id": id, "start": Timestamp(*start).to_string(), "end": Timestamp(*end).to_string(), "count": count,
        });
        self.dead.send(DeadLetter {
            kind: DeadLetterKind::Failed,
            stage: "format".to_owned(),
            reason,
            source: "window".to_owned(),
            position: 0,
            key: Some(key.clone()),
            value: value.to_string(),
        })?;
        Ok(())
    }
}

// Distinct indices, in first-seen order.
fn unique(indices: &[usize]) -> Vec<usize> {
    let mut seen = std::collections::HashSet::new();
    indices.iter().copied().filter(|i| seen.insert(*i)).collect()
}
