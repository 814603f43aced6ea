//! The data path: source → deserialize → key → clock → window → fold →
//! (window closes) → format → sink, with late and failed records going to the
//! dead-letter output. This file is the batch's journey up to the fold:
//! decode, key, time, and placing each event in its partition's windows.
//! The fold of the batch is [`fold`]; the window state of a partition is
//! [`crate::operator`]; the end of the path [`crate::emitter`]. Owning
//! partitions (restore, checkpoint, revoke) is [`partitions`], hot swap
//! [`swap`], the control endpoint's requests [`control`].
//!
//! [`Pipeline`] is driven by batches and an explicit system time, so tests can
//! drive the clock by hand; [`Pipeline::run_source`] drives it from a real
//! source and the system clock.

mod control;
mod error;
mod fold;
mod held;
mod kept;
mod partitions;
mod swap;

use std::collections::hash_map::Entry;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::Timestamp;
use crate::emitter::Emitter;
use crate::fast::{FastMap, stable_hash};
use crate::keys::{KeyHash, KeyId};
use crate::manifest::{CheckpointStoreSpec, ClockSpec, Manifest, StageKind};
use crate::operator::WindowOperator;
use crate::plugin::PluginEngine;
use crate::sink::{self, DeadLetterKind, DeadLetters, Sink};
use crate::source::{self, Delivery, Source, SourceRecord};
use crate::state::checkpoint::{CheckpointStore, DynamoCheckpoints, FolderCheckpoints, Owner, PartitionId};
use crate::state::{OpenWindow, WindowId};
use crate::window::{Assignment, WindowIndex};

pub use crate::stages::{Stages, StagesError};
pub use control::{ControlRequest, PipelineStatus, StageStatus};
use control::StageCounters;
pub use error::{PipelineError, SwapError};
use fold::Group;
use held::{Held, Placed};
pub use swap::Swapped;

/// How long the pipeline waits for input before it lets system time close
/// windows anyway.
const IDLE_TICK: Duration = Duration::from_millis(100);
/// How often a long run logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Records skipped because a checkpoint had already absorbed them.
    pub skipped: u64,
    /// Times a key new to an input partition was last seen in another.
    pub key_partition_conflicts: u64,
    /// The most windows open at once (after a batch).
    pub open_windows_peak: u64,
    /// Session windows merged into another (an event closed their gap).
    pub sessions_merged: u64,
}

impl Stats {
    /// Adds another worker's counts to these (peaks add up too: each
    /// worker holds its own windows).
    pub fn add(&mut self, one: &Stats) {
        self.records += one.records;
        self.events += one.events;
        self.windows += one.windows;
        self.late += one.late;
        self.failed += one.failed;
        self.skipped += one.skipped;
        self.key_partition_conflicts += one.key_partition_conflicts;
        self.open_windows_peak += one.open_windows_peak;
        self.sessions_merged += one.sessions_merged;
    }
}

/// A running pipeline.
pub struct Pipeline {
    stages: Stages,
    clock_spec: ClockSpec,
    window_spec: crate::manifest::WindowSpec,
    partitions: FastMap<PartitionId, WindowOperator>,
    /// Where each key was last seen new (see [`KeyHomes`]): this
    /// pipeline's own, or the one every worker of the process shares.
    key_homes: KeyHomes,
    checkpoints: Option<Box<dyn CheckpointStore>>,
    owner: Owner,
    /// SHA-256 of each stage's component as the manifest named it (empty
    /// for a stage the host does).
    declared: [String; 4],
    engine: Option<std::sync::Arc<PluginEngine>>,
    /// The latest system time the clocks have seen (they never go back).
    clock_high: i64,
    emitter: Emitter,
    system_clock: bool,
    batch_size: usize,
    /// Placements held back from the fold (see [`held`]).
    held: Held,
    stats: Stats,
    counters: [StageCounters; 4],
    control: Option<std::sync::mpsc::Receiver<ControlRequest>>,
    /// What this pipeline has added to the process's metrics so far.
    reported: Reported,
}

// The figures a pipeline last added to the metrics (several workers add
// theirs to the same registry).
#[derive(Debug, Default, Clone, Copy)]
struct Reported {
    stats: Stats,
    open_windows: i64,
}

impl Pipeline {
    /// Loads the stages and opens the sink and dead-letter output the
    /// manifest names.
    pub fn load(manifest: &Manifest, engine: &PluginEngine) -> Result<Self, PipelineError> {
        let sink = sink::open(&manifest.sink)?;
        let dead = DeadLetters::open(&manifest.dead_letter)?;
        Self::load_onto(manifest, engine, sink, dead)
    }

    /// Loads the stages and the checkpoint store the manifest names, and
    /// writes to `sink` and `dead` (several workers share one of each).
    pub fn load_onto(manifest: &Manifest, engine: &PluginEngine, sink: Box<dyn Sink>, dead: DeadLetters) -> Result<Self, PipelineError> {
        let stages = Stages::load(manifest, engine)?;
        let pipeline = Self::new(manifest, stages, sink, dead);
        Ok(match &manifest.checkpoint {
            Some(spec) => match &spec.store {
                CheckpointStoreSpec::Folder(dir) => pipeline.with_checkpoints(FolderCheckpoints::open(dir)?),
                CheckpointStoreSpec::Dynamodb(table) => {
                    let prefix = match &manifest.source {
                        crate::manifest::SourceSpec::Kafka(k) => k.group_id.clone(),
                        _ => manifest.name.clone(),
                    };
                    pipeline.with_checkpoints(DynamoCheckpoints::connect(table, &prefix)?)
                }
            },
            None => pipeline,
        })
    }

    /// A pipeline over loaded stages, writing to `sink` and `dead`.
    pub fn new(manifest: &Manifest, stages: Stages, sink: Box<dyn Sink>, dead: DeadLetters) -> Self {
        let declared = StageKind::ALL.map(|kind| stages.get(kind).map(|p| p.hash().to_owned()).unwrap_or_default());
        Pipeline {
            stages,
            clock_spec: manifest.clock,
            window_spec: manifest.window,
            partitions: FastMap::default(),
            key_homes: KeyHomes::default(),
            checkpoints: None,
            owner: Owner::local(),
            declared,
            engine: None,
            clock_high: i64::MIN,
            emitter: Emitter::new(sink, dead),
            system_clock: manifest.clock == ClockSpec::System,
            batch_size: manifest.limits.batch_size,
            // Session windows move their bounds and merge as events arrive;
            // collect windows count events: both fold each batch.
            held: Held::new(match manifest.window {
                crate::manifest::WindowSpec::Tumbling { .. } | crate::manifest::WindowSpec::Sliding { .. } => manifest.limits.fold_buffer,
                _ => 0,
            }),
            stats: Stats::default(),
            counters: Default::default(),
            control: None,
            reported: Reported::default(),
        }
    }

    /// Checks keys against the partitions other workers saw them in too.
    pub fn with_key_homes(mut self, homes: KeyHomes) -> Self {
        self.key_homes = homes;
        self
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        let (late, failed) = self.emitter.dead_counts();
        Stats { late, failed, windows: self.emitter.written(), ..self.stats }
    }

    /// The stages, e.g. to read their hashes.
    pub fn stages(&self) -> &Stages {
        &self.stages
    }

    fn open_windows(&self) -> usize {
        self.partitions.values().map(WindowOperator::open_windows).sum()
    }

    fn partition(&mut self, id: &PartitionId) -> &mut WindowOperator {
        let (clock, window) = (self.clock_spec, self.window_spec);
        self.partitions.entry(id.clone()).or_insert_with(|| WindowOperator::new(clock, window))
    }

    /// Reads `source` to its end, processing each batch at the system time it
    /// arrives and letting idle time close windows; then closes every window.
    pub fn run_source(&mut self, source: Box<dyn Source>) -> Result<Stats, PipelineError> {
        self.run_deliveries(&source::spawn(source, self.batch_size), true)
    }

    /// Reads `source` on this thread, batch after batch, to its end, then
    /// closes every window: no reader thread, for workers that each read
    /// their own share of a file (one thread per core). A file never waits
    /// for input, so there are no idle ticks.
    pub fn run_inline(&mut self, mut source: Box<dyn Source>) -> Result<Stats, PipelineError> {
        let mut progress = Progress::new();
        loop {
            let batch = source.next_batch(self.batch_size)?;
            if batch.is_empty() {
                break;
            }
            self.process(batch, Timestamp::now())?;
            progress.report(self);
        }
        self.finish()
    }

    /// Processes the batches `deliveries` brings until it ends, as
    /// [`Pipeline::run_source`] does; logs progress when `progress_lines`.
    pub fn run_deliveries(&mut self, deliveries: &std::sync::mpsc::Receiver<Delivery>, progress_lines: bool) -> Result<Stats, PipelineError> {
        let mut progress = Progress::new();
        loop {
            match deliveries.recv_timeout(IDLE_TICK) {
                Ok(Delivery::Batch(batch)) => self.process(batch, Timestamp::now())?,
                Ok(Delivery::End) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Delivery::Failed(err)) => return Err(err.into()),
                Err(RecvTimeoutError::Timeout) => self.advance(Timestamp::now())?,
            }
            if progress_lines {
                progress.report(self);
            }
        }
        self.finish()
    }

    /// Processes one batch of records at system time `now`, then closes the
    /// windows that are due.
    pub fn process(&mut self, records: Vec<SourceRecord>, now: Timestamp) -> Result<(), PipelineError> {
        let now = self.clock_time(now);
        self.serve_control();
        let mut records = records;
        // Records a restored checkpoint has already absorbed are skipped;
        // the others move their partition's next offset.
        if records.iter().any(|r| r.origin.partition.is_some()) {
            let before = records.len();
            records.retain(|r| {
                let Some(partition) = r.origin.partition else { return true };
                let id = PartitionId { topic: r.origin.source.to_string(), partition };
                let offset = r.origin.position as i64;
                let state = self.partition(&id);
                state.unpause(now);
                if state.next_offset.is_some_and(|next| offset < next) {
                    return false;
                }
                state.next_offset = Some(offset + 1);
                true
            });
            self.stats.skipped += (before - records.len()) as u64;
        }
        if records.is_empty() {
            return self.close_due(now);
        }
        self.stats.records += records.len() as u64;
        self.counters[StageKind::Deserialize as usize].records += records.len() as u64;
        // Only the records that fail alone are dead.
        let decoded = self.stages.decode(&records);
        self.counters[StageKind::Deserialize as usize].errors += decoded.failures.len() as u64;
        for failure in &decoded.failures {
            self.emitter.dead_record(&records[failure.index as usize], DeadLetterKind::Failed, "deserialize", failure.reason.clone(), None)?;
        }
        self.stats.events += u64::from(decoded.events.count);
        if decoded.events.count == 0 {
            return self.close_due(now);
        }
        let origins = decoded.origins.as_slice();
        let times = if self.system_clock { Vec::new() } else { self.stages.times(&decoded, &records) };

        self.counters[StageKind::Key as usize].records += origins.len() as u64;
        let keys = self.stages.keys(&decoded.events);
        self.counters[StageKind::Key as usize].errors += keys.failures.len() as u64;
        let mut key_failed = vec![false; origins.len()];
        for failure in &keys.failures {
            key_failed[failure.index as usize] = true;
            self.emitter.dead_record(&records[origins[failure.index as usize] as usize], DeadLetterKind::Failed, "key", failure.reason.clone(), None)?;
        }

        // Clock and window: group the events by the partition and window
        // they fall in, in order of first appearance. Late and failed
        // events are sent on after the loop.
        let mut groups: Vec<Group> = Vec::new();
        // (group, event) for each event placed.
        let mut placed: Vec<(u32, u32)> = Vec::with_capacity(origins.len());
        // Sized for a group an event (many keys), not grown batch after batch.
        let mut group_of: FastMap<(usize, KeyId, WindowIndex), usize> = FastMap::with_capacity_and_hasher(origins.len(), Default::default());
        let mut dead: Vec<(usize, DeadLetterKind, &str, String, &str)> = Vec::new();
        // The batch's partitions, built once each rather than once per event.
        let mut batch_partitions: Vec<PartitionId> = Vec::new();
        let mut current: Option<(usize, &mut WindowOperator)> = None;
        let mut current_source: Option<&std::sync::Arc<str>> = None;
        let (clock_spec, window_spec) = (self.clock_spec, self.window_spec);
        let mut assigned: Vec<Assignment> = Vec::with_capacity(4);
        // Looking ahead: with many keys each event's key entry, clock entry
        // and windows miss the cache, so they are asked for (prefetched)
        // while earlier events are placed. Keys are hashed once, here; an
        // event's key gets its id `AHEAD` events early (in event order, so
        // ids come out as they would one at a time), and its entry is
        // asked for twice as early.
        let hashes: Vec<KeyHash> = (0..origins.len()).map(|event| KeyHash::of(keys.keys.get(event))).collect();
        let mut ids: Vec<Option<KeyId>> = vec![None; origins.len()];
        // Events before it have their ids (or need none).
        let mut next_id = 0;
        let placeable = |event: usize| !key_failed[event] && !matches!(times.get(event), Some(Err(_)));
        let same_partition = |a: usize, b: usize| {
            let (a, b) = (&records[origins[a] as usize].origin, &records[origins[b] as usize].origin);
            a.partition == b.partition && (std::sync::Arc::ptr_eq(&a.source, &b.source) || *a.source == *b.source)
        };
        for (event, origin) in origins.iter().map(|&o| o as usize).enumerate() {
            if key_failed[event] {
                continue;
            }
            let key = keys.keys.get(event);
            let time = match times.get(event) {
                None => now,
                Some(Ok(time)) => Timestamp(*time),
                Some(Err(reason)) => {
                    dead.push((origin, DeadLetterKind::Failed, "time", reason.clone(), key));
                    continue;
                }
            };
            let origin_of = &records[origin].origin;
            let partition = origin_of.partition.unwrap_or(-1);
            // The same source as the event before is most often the same `Arc`.
            let same_source = |slot: usize| current_source.is_some_and(|s| std::sync::Arc::ptr_eq(s, &origin_of.source)) || *batch_partitions[slot].topic == *origin_of.source;
            let slot = match current.as_ref().map(|(slot, _)| *slot).filter(|&slot| batch_partitions[slot].partition == partition && same_source(slot)) {
                Some(slot) => slot,
                None => {
                    let slot = match batch_partitions.iter().position(|p| p.partition == partition && *p.topic == *origin_of.source) {
                        Some(i) => i,
                        None => {
                            batch_partitions.push(PartitionId { topic: origin_of.source.to_string(), partition });
                            batch_partitions.len() - 1
                        }
                    };
                    let pid = &batch_partitions[slot];
                    let operator = self.partitions.entry(pid.clone()).or_insert_with(|| WindowOperator::new(clock_spec, window_spec));
                    current = Some((slot, operator));
                    current_source = Some(&origin_of.source);
                    slot
                }
            };
            let operator = &mut current.as_mut().expect("set above").1;
            let id = match ids[event] {
                Some(id) => id,
                None => {
                    let (id, new) = operator.key_id(key, hashes[event]);
                    if new {
                        note_home(&self.key_homes, &mut self.stats, key, &batch_partitions[slot]);
                    }
                    id
                }
            };
            // Ids ahead, in this partition only and never past another's
            // event (its ids are its operator's, given in event order too).
            next_id = next_id.max(event + 1);
            while next_id < origins.len() && next_id <= event + AHEAD && same_partition(next_id, event) {
                if placeable(next_id) {
                    let (ahead, new) = operator.key_id(keys.keys.get(next_id), hashes[next_id]);
                    if new {
                        note_home(&self.key_homes, &mut self.stats, keys.keys.get(next_id), &batch_partitions[slot]);
                    }
                    operator.prefetch_state(ahead);
                    ids[next_id] = Some(ahead);
                }
                next_id += 1;
            }
            if let Some(&hash) = hashes.get(event + 2 * AHEAD) {
                operator.prefetch_key(hash);
            }
            assigned.clear();
            if let Err(reason) = operator.place_id(id, key, time, now, &mut assigned) {
                dead.push((origin, DeadLetterKind::Late, "clock", reason, key));
                continue;
            }
            // One window, or several sliding ones: the event is folded into each.
            for &assignment in &assigned {
                let group = match group_of.entry((slot, id, assignment.index)) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        groups.push(Group { partition: slot, key: id, assignment, members: 0 });
                        *e.insert(groups.len() - 1)
                    }
                };
                groups[group].members += 1;
                placed.push((group as u32, event as u32));
            }
        }
        drop(current);
        for (origin, kind, stage, reason, key) in dead {
            self.emitter.dead_record(&records[origin], kind, stage, reason, Some(key))?;
        }
        // A window already due folds what is held at once (see
        // `close_due`): then there is nothing to gain in holding this batch.
        if self.held.room() == 0 || (self.held.is_empty() && self.any_due(now)) {
            self.fold(records.as_slice(), &decoded.events, origins, &batch_partitions, groups, placed, &mut Default::default())?;
        } else {
            self.hold(records, &decoded.events, origins, &batch_partitions, &groups, &placed)?;
        }
        self.stats.open_windows_peak = self.stats.open_windows_peak.max(self.open_windows() as u64);
        self.close_due(now)
    }

    // Holds a batch's placed events back from the fold (see [`held`]),
    // opening their windows; folds what is held when it is full.
    fn hold(&mut self, records: Vec<SourceRecord>, events: &crate::event::Events, origins: &[u32], partitions: &[PartitionId], groups: &[Group], placed: &[(u32, u32)]) -> Result<(), PipelineError> {
        if placed.is_empty() {
            return Ok(());
        }
        // The events placed at least once (sliding windows place one in
        // several), ascending: `placed` is in event order.
        let mut kept: Vec<u32> = placed.iter().map(|&(_, event)| event).collect();
        kept.dedup();
        let input = self.stages.fold_input(events, &kept);
        // Before this batch's windows are opened: a fold of what is held
        // drops the windows it leaves empty.
        if !self.held.takes(&input) {
            self.fold_held()?;
        }
        // Each window's held group: its number in this round, kept in the
        // window itself (one look-up for the window, none for the group).
        let round = self.held.round();
        let mut held_groups = vec![0u32; groups.len()];
        for (slot, pid) in partitions.iter().enumerate() {
            let operator = self.partitions.get_mut(pid).expect("placing an event opens its partition's operator");
            let held_partition = self.held.partition(pid);
            for (g, group) in groups.iter().enumerate().filter(|(_, g)| g.partition == slot) {
                prefetch_groups(operator, slot, groups, g);
                let number = operator.hold(group.key, group.assignment, round, self.held.next_group());
                held_groups[g] = self.held.group(number, held_partition, group);
            }
        }
        self.held.add(Placed { records, origins, placed, held_groups: &held_groups }, input, &kept);
        if self.held.is_full() {
            self.relieve_held()?;
        }
        Ok(())
    }

    /// Lets system time `now` pass with no input: answers control requests,
    /// then closes the windows due and writes them.
    pub fn advance(&mut self, now: Timestamp) -> Result<(), PipelineError> {
        let now = self.clock_time(now);
        self.serve_control();
        self.close_due(now)
    }

    fn close_due(&mut self, now: Timestamp) -> Result<(), PipelineError> {
        // Only the due windows' held events are folded: with many keys,
        // some window is due in almost every batch, and folding all that
        // is held each time would fold each event on its own.
        if !self.held.is_empty() && self.any_due(now) {
            let round = self.held.round();
            let mut due = Vec::new();
            for operator in self.partitions.values_mut() {
                due.extend(operator.due_held(now, round));
            }
            self.fold_held_groups(&due)?;
        }
        let mut closed = Vec::new();
        for operator in self.partitions.values_mut() {
            closed.extend(operator.close_due(now));
        }
        self.emit(sorted(closed))?;
        self.report();
        Ok(())
    }

    // Whether a partition may have a window due at `now`.
    fn any_due(&self, now: Timestamp) -> bool {
        self.partitions.values().any(|operator| operator.due_by(now))
    }

    // Adds what changed since the last report to the process's metrics.
    fn report(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let (now, open) = (self.stats(), self.open_windows() as i64);
        let (was, metrics) = (self.reported, crate::metrics::global());
        metrics.records.fetch_add(now.records - was.stats.records, Relaxed);
        metrics.events.fetch_add(now.events - was.stats.events, Relaxed);
        metrics.late.fetch_add(now.late - was.stats.late, Relaxed);
        metrics.windows_written.fetch_add(now.windows - was.stats.windows, Relaxed);
        metrics.sessions_merged.fetch_add(now.sessions_merged - was.stats.sessions_merged, Relaxed);
        metrics.open_windows.fetch_add(open - was.open_windows, Relaxed);
        self.reported = Reported { stats: now, open_windows: open };
    }

    /// Closes every open window (the input has ended), writes them, and
    /// flushes the sink and the dead-letter output.
    pub fn finish(&mut self) -> Result<Stats, PipelineError> {
        self.fold_held()?;
        let mut closed = Vec::new();
        for operator in self.partitions.values_mut() {
            closed.extend(operator.close_all());
        }
        self.emit(sorted(closed))?;
        self.emitter.flush(self.stages.accumulator())?;
        self.report();
        Ok(self.stats())
    }

    fn emit(&mut self, closed: Vec<(WindowId, OpenWindow)>) -> Result<(), PipelineError> {
        let (formatted, failed) = self.emitter.emit(&mut self.stages, closed, self.batch_size)?;
        let format = &mut self.counters[StageKind::Format as usize];
        format.records += formatted;
        format.errors += failed;
        Ok(())
    }

    // System time as the clocks see it: wall time less the sink stalls,
    // never going back (a window closed by system time stays closed).
    fn clock_time(&mut self, now: Timestamp) -> Timestamp {
        self.clock_high = self.clock_high.max(now.0 - self.emitter.stalled());
        Timestamp(self.clock_high)
    }

}

// How many events (or groups) ahead the per-key state is asked for: with
// many keys, each key's entry, clock entry and windows miss the cache, and
// a miss asked for early overlaps the work on the ones before it.
const AHEAD: usize = 8;

// Asks `operator` (partition `partition` of the batch) for the state of
// the group `2 * AHEAD` on and the windows of the one `AHEAD` on, when
// they are its own.
fn prefetch_groups(operator: &WindowOperator, partition: usize, groups: &[Group], g: usize) {
    if let Some(group) = groups.get(g + 2 * AHEAD).filter(|group| group.partition == partition) {
        operator.prefetch_state(group.key);
    }
    if let Some(group) = groups.get(g + AHEAD).filter(|group| group.partition == partition) {
        operator.prefetch_windows(group.key);
    }
}

/// The partition each key was last seen new in (the key had no state
/// there), shared by the workers of one process so that a key in two
/// partitions owned by different workers is noticed too. Consulted only
/// when a key is new to a partition, not for every event, and sixteen
/// bytes a key: a key's 64-bit hash ([`stable_hash`]) and its home's
/// topic (hashed) and number. Its entries go with their partitions (a
/// revoke, a fenced checkpoint).
#[derive(Debug, Clone, Default)]
pub struct KeyHomes(std::sync::Arc<std::sync::Mutex<FastMap<u64, u64>>>);

impl KeyHomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, FastMap<u64, u64>> {
        self.0.lock().expect("the key homes are never left half-changed")
    }

    /// Forgets the keys whose home is one of `gone`.
    fn forget(&self, gone: &[PartitionId]) {
        let gone: Vec<u64> = gone.iter().map(home_of).collect();
        self.lock().retain(|_, home| !gone.contains(home));
    }
}

// A partition as 64 bits: its topic's hash (32 bits) and its number.
fn home_of(pid: &PartitionId) -> u64 {
    (stable_hash(&pid.topic) << 32) | u64::from(pid.partition as u32)
}

// Windows must follow the input's partitioning: a key whose records
// arrive in two partitions gets two sets of windows, and in a keyed sink
// the later overwrites the earlier. Say so, when `key` is new to
// partition `pid`.
fn note_home(homes: &KeyHomes, stats: &mut Stats, key: &str, pid: &PartitionId) {
    if pid.partition < 0 {
        return;
    }
    let here = home_of(pid);
    let Some(home) = homes.lock().insert(stable_hash(key), here).filter(|&home| home != here) else { return };
    stats.key_partition_conflicts += 1;
    if stats.key_partition_conflicts <= 10 {
        let first = match home >> 32 == here >> 32 {
            true => format!("{}[{}]", pid.topic, home as u32 as i32),
            false => format!("partition {} of another topic", home as u32 as i32),
        };
        tracing::warn!(
            key, first = %first, now = %format!("{}[{}]", pid.topic, pid.partition),
            "key seen in more than one partition: its windows are split; key the Kafka messages the way the key stage keys events"
        );
    }
}

// Windows in a deterministic order: by start, key, index.
fn sorted(mut closed: Vec<(WindowId, OpenWindow)>) -> Vec<(WindowId, OpenWindow)> {
    closed.sort_unstable_by(|(a, wa), (b, wb)| (wa.start, &a.key, a.index).cmp(&(wb.start, &b.key, b.index)));
    closed
}

// A progress line every `PROGRESS_EVERY` while a run goes on.
struct Progress {
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new() -> Self {
        Progress { started: Instant::now(), last: Instant::now() }
    }

    fn report(&mut self, pipeline: &Pipeline) {
        if self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        let s = pipeline.stats();
        let rate = s.records as f64 / self.started.elapsed().as_secs_f64();
        tracing::info!("{} records ({rate:.0}/s), {} windows written, {} open, {} late, {} failed", s.records, s.windows, pipeline.open_windows(), s.late, s.failed);
        self.last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_partitions_of_two_workers_is_noticed_through_the_shared_homes() {
        let pid = |partition| PartitionId { topic: "t".into(), partition };
        let mut stats = Stats::default();
        // Alone, each worker sees the key in one partition only.
        let (a, b) = (KeyHomes::default(), KeyHomes::default());
        note_home(&a, &mut stats, "k", &pid(0));
        note_home(&b, &mut stats, "k", &pid(1));
        assert_eq!(stats.key_partition_conflicts, 0);
        let homes = KeyHomes::default();
        note_home(&homes, &mut stats, "k", &pid(0));
        note_home(&homes, &mut stats, "k", &pid(0));
        note_home(&homes, &mut stats, "j", &pid(1));
        assert_eq!(stats.key_partition_conflicts, 0);
        note_home(&homes, &mut stats, "k", &pid(1));
        assert_eq!(stats.key_partition_conflicts, 1);
        // A partition given up takes its keys' homes with it.
        homes.forget(&[pid(1)]);
        assert_eq!(homes.lock().len(), 0);
    }
}
