//! The data path: source → deserialize → key → clock → window → fold →
//! (window closes) → format → sink, with late and failed records going to the
//! dead-letter output. This file is the batch's journey; the window state of a
//! partition is [`crate::operator`], the end of the path [`crate::emitter`].
//!
//! [`Pipeline`] is driven by batches and an explicit system time, so tests can
//! drive the clock by hand; [`Pipeline::run_source`] drives it from a real
//! source and the system clock.

use std::collections::hash_map::Entry;

use crate::fast::{FastMap, FastSet};
use crate::emitter::Emitter;
use crate::operator::WindowOperator;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::Timestamp;
use crate::manifest::CheckpointStoreSpec;
use crate::manifest::{ClockSpec, Manifest, StageKind};
use crate::event::Identity;
use crate::plugin::{FoldGroup, PluginEngine, PluginError, StagePlugin};
use crate::sink::{self, DeadLetterKind, DeadLetters, Sink, SinkError};
use crate::source::{self, Delivery, Source, SourceError, SourceRecord};
use crate::state::checkpoint::{CheckpointError, CheckpointStore, Claim, ComponentRecord, DynamoCheckpoints, FolderCheckpoints, Owner, PartitionId};
use crate::state::{OpenWindow, WindowId};
use crate::window::{Assignment, WindowIndex};

pub use crate::stages::{Stages, StagesError};

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
    /// The stages do not fit together.
    #[error(transparent)]
    Stages(#[from] StagesError),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink or the dead-letter output failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint holds accumulators of another identity that the fold
    /// plugin cannot migrate.
    #[error(
        "checkpoint of {partition} holds accumulators `{found}`, but the fold plugin writes `{expected}` and cannot migrate them ({reason}); run the plugin that wrote it, or move the checkpoint away"
    )]
    Accumulator {
        /// The plugin's refusal.
        reason: String,
        /// The partition.
        partition: String,
        /// In the checkpoint.
        found: Identity,
        /// The plugin's.
        expected: Identity,
    },
    /// The components a checkpoint was written with could not be put back.
    #[error("cannot resume the components {partition} was checkpointed with: {reason}")]
    Resume {
        /// The partition.
        partition: String,
        /// Why.
        reason: String,
    },
    /// A checkpoint was written by a component that was swapped in, and
    /// that component is no longer where it was loaded from.
    #[error(
        "checkpoint of {partition} was written while the {stage} stage ran {running} (sha256 {running_hash}, swapped in for the manifest's {declared_hash}), and that file is gone or changed ({detail}); put it back, or change the manifest's {stage} plugin to say which component to run"
    )]
    SwappedComponent {
        /// The partition.
        partition: String,
        /// The stage.
        stage: StageKind,
        /// The component that was running.
        running: String,
        /// Its hash.
        running_hash: String,
        /// The manifest's component then (and now).
        declared_hash: String,
        /// What went wrong loading it.
        detail: String,
    },
}

/// Why a hot swap was refused; the old component keeps running.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The new component failed validation (compile, exports, start, config).
    #[error("swap refused: {0}")]
    Invalid(#[from] PluginError),
    /// The new component does not fit the other stages (fields read,
    /// accumulator identity).
    #[error("swap refused: {}", .0.join("; "))]
    Contract(Vec<String>),
    /// The new fold plugin writes another accumulator and could not
    /// migrate the open windows' accumulators.
    #[error("swap refused: the new fold plugin writes accumulator `{new}`, the open windows hold `{old}`, and it could not migrate them: {reason}")]
    Migration {
        /// The running plugin's accumulator.
        old: Identity,
        /// The new plugin's.
        new: Identity,
        /// The plugin's refusal or failure.
        reason: String,
    },
    /// The running pipeline did not take the new component in time.
    #[error("swap refused: {0}")]
    Unavailable(String),
}

/// What the control endpoint asks of a running pipeline; answered between
/// batches by [`Pipeline::serve_control`].
pub enum ControlRequest {
    /// Counts and each stage's component.
    Status(std::sync::mpsc::Sender<PipelineStatus>),
    /// Put loaded, configured components in place, all at once (see
    /// [`Pipeline::install_all`]); the reply says how long the pipeline
    /// spent on it.
    Install(Vec<StagePlugin>, std::sync::mpsc::Sender<Result<(Vec<Swapped>, Duration), String>>),
    /// A swap refused before it reached the pipeline: count it.
    Refused(StageKind, SwapError, std::sync::mpsc::Sender<String>),
}

/// A running pipeline's counts and stages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineStatus {
    /// Counts so far.
    pub stats: Stats,
    /// Windows open now.
    pub open_windows: usize,
    /// One entry per stage, in data-path order.
    pub stages: Vec<StageStatus>,
}

/// One stage as `weir status` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageStatus {
    /// The stage's name.
    pub stage: String,
    /// The component file, or the host's built-in (`built-in json`,
    /// `field \`device\``).
    pub plugin: String,
    /// SHA-256 of the component, hex (empty for a built-in).
    pub sha256: String,
    /// When the component was loaded (RFC 3339; empty for a built-in).
    pub loaded_at: String,
    /// The accumulator a fold plugin writes or a format plugin reads.
    pub accumulator: Option<Identity>,
    /// Items handed to the stage (records, events or windows).
    pub records: u64,
    /// Items the stage failed (sent to the dead-letter output).
    pub errors: u64,
    /// Swaps that took place.
    pub swaps: u64,
    /// Swaps refused.
    pub refused_swaps: u64,
    /// Why the last refused swap was refused.
    pub last_refusal: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct StageCounters {
    records: u64,
    errors: u64,
    swaps: u64,
    refused_swaps: u64,
    last_refusal: Option<String>,
}

/// A swap that took place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Swapped {
    /// The stage.
    pub stage: StageKind,
    /// SHA-256 of the component replaced.
    pub old_hash: String,
    /// SHA-256 of the component now running.
    pub new_hash: String,
}

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
    /// Keys seen in more than one input partition.
    pub key_partition_conflicts: u64,
    /// The most windows open at once (after a batch).
    pub open_windows_peak: u64,
    /// Session windows merged into another (an event closed their gap).
    pub sessions_merged: u64,
}

// The events of one batch that go to one window.
struct Group<'k> {
    /// Index into the batch's partitions.
    partition: usize,
    key: &'k str,
    assignment: Assignment,
    members: u32,
}

/// A running pipeline.
pub struct Pipeline {
    stages: Stages,
    clock_spec: ClockSpec,
    window_spec: crate::manifest::WindowSpec,
    partitions: FastMap<PartitionId, WindowOperator>,
    key_home: FastMap<String, PartitionId>,
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
        let stages = Stages::load(manifest, engine)?;
        let sink = sink::open(&manifest.sink)?;
        let dead = DeadLetters::open(&manifest.dead_letter)?;
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
            key_home: FastMap::default(),
            checkpoints: None,
            owner: Owner::local(),
            declared,
            engine: None,
            clock_high: i64::MIN,
            emitter: Emitter::new(sink, dead),
            system_clock: manifest.clock == ClockSpec::System,
            batch_size: manifest.limits.batch_size,
            stats: Stats::default(),
            counters: Default::default(),
            control: None,
            reported: Reported::default(),
        }
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

    /// Replaces the component of stage `kind` with the one at `path`, with
    /// the stage's config and limits: [`StagePlugin::load`] then
    /// [`Pipeline::install`].
    pub fn swap_stage(&mut self, kind: StageKind, path: &std::path::Path, engine: &PluginEngine) -> Result<Swapped, SwapError> {
        let Some(old) = self.stages.get(kind) else {
            let err = SwapError::Contract(vec![format!("the host does the {kind} stage ({}): there is no plugin to swap", self.stages.describe(kind))]);
            return Err(self.refused(kind, err));
        };
        match StagePlugin::load(engine, kind, path, old.config(), old.limits()) {
            Ok(new) => self.install(new),
            Err(err) => Err(self.refused(kind, SwapError::Invalid(err))),
        }
    }

    /// Replaces the component of every stage that runs a plugin with the
    /// one at `path` (each with its stage's config and limits), all between
    /// the same two batches: [`Pipeline::install_all`].
    pub fn swap_all(&mut self, path: &std::path::Path, engine: &PluginEngine) -> Result<Vec<Swapped>, SwapError> {
        let mut new = Vec::new();
        for kind in StageKind::ALL {
            let Some(old) = self.stages.get(kind) else { continue };
            match StagePlugin::load(engine, kind, path, old.config(), old.limits()) {
                Ok(plugin) => new.push(plugin),
                Err(err) => return Err(self.refused(kind, SwapError::Invalid(err))),
            }
        }
        self.install_all(new)
    }

    /// Puts a loaded, configured component in place of its stage's one.
    /// Called between batches (the pipeline is single-threaded), so no
    /// record is processed twice or lost, and open windows keep their
    /// accumulators. A fold plugin of another state version must migrate
    /// every open accumulator first; if it cannot, the swap is refused and
    /// the old plugin and its windows are untouched.
    pub fn install(&mut self, new: StagePlugin) -> Result<Swapped, SwapError> {
        let mut swapped = self.install_all(vec![new])?;
        Ok(swapped.remove(0))
    }

    /// Like [`Pipeline::install`] for several stages at once (one component
    /// serving several stages changed): all are replaced between the same
    /// two batches, or none is.
    pub fn install_all(&mut self, mut new: Vec<StagePlugin>) -> Result<Vec<Swapped>, SwapError> {
        if let Err(problems) = self.stages.check_replacing(&new.iter().collect::<Vec<_>>()) {
            let kind = new.first().map_or(StageKind::Fold, StagePlugin::kind);
            return Err(self.refused(kind, SwapError::Contract(problems)));
        }
        for plugin in &mut new {
            let kind = plugin.kind();
            if kind != StageKind::Fold {
                continue;
            }
            let from = self.stages.accumulator().clone();
            let to = plugin.accumulator().cloned().expect("a fold plugin declares its accumulator");
            if from != to
                && let Err(err) = self.migrate_open_windows(plugin, &from, &to)
            {
                return Err(self.refused(kind, err));
            }
        }
        let mut swapped = Vec::with_capacity(new.len());
        let incoming: Vec<(StageKind, String, std::path::PathBuf)> = new.iter().map(|p| (p.kind(), p.hash().to_owned(), p.path().to_owned())).collect();
        let old = self.stages.replace(new);
        for ((kind, new_hash, path), old) in incoming.into_iter().zip(old) {
            let old_hash = old.hash().to_owned();
            self.counters[kind as usize].swaps += 1;
            crate::metrics::global().swaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(stage = %kind, plugin = %path.display(), "swapped {} -> {}", &old_hash[..12], &new_hash[..12]);
            swapped.push(Swapped { stage: kind, old_hash, new_hash });
        }
        Ok(swapped)
    }

    /// Counts a refused swap and says why in the log.
    pub fn refused(&mut self, kind: StageKind, err: SwapError) -> SwapError {
        let counters = &mut self.counters[kind as usize];
        counters.refused_swaps += 1;
        counters.last_refusal = Some(err.to_string());
        tracing::warn!(stage = %kind, "{err}; the running plugin stays");
        err
    }

    // Rewrites every open accumulator with `new`, all or nothing.
    fn migrate_open_windows(&mut self, new: &mut StagePlugin, from: &Identity, to: &Identity) -> Result<(), SwapError> {
        let mut accs: Vec<&mut Vec<u8>> = self.partitions.values_mut().flat_map(|p| p.accs_mut()).collect();
        let old: Vec<Vec<u8>> = accs.iter().map(|a| a.to_vec()).collect();
        let count = accs.len();
        let migrated = match new.migrate(from, old) {
            Ok(Ok(migrated)) => migrated,
            Ok(Err(reason)) => return Err(SwapError::Migration { old: from.clone(), new: to.clone(), reason }),
            Err(err) => return Err(SwapError::Migration { old: from.clone(), new: to.clone(), reason: err.to_string() }),
        };
        for (acc, new) in accs.iter_mut().zip(migrated) {
            **acc = new;
        }
        tracing::info!("migrated {count} open accumulators from `{from}` to `{to}`");
        Ok(())
    }

    /// Each stage's component and counts, for `weir status`.
    pub fn status(&self) -> Vec<StageStatus> {
        StageKind::ALL
            .into_iter()
            .map(|kind| {
                let plugin = self.stages.get(kind);
                let c = &self.counters[kind as usize];
                StageStatus {
                    stage: kind.name().to_owned(),
                    plugin: self.stages.describe(kind),
                    sha256: plugin.map(|p| p.hash().to_owned()).unwrap_or_default(),
                    loaded_at: plugin.map(|p| Timestamp::from(p.loaded_at()).to_string()).unwrap_or_default(),
                    accumulator: plugin.and_then(|p| p.accumulator().cloned()),
                    records: c.records,
                    errors: c.errors,
                    swaps: c.swaps,
                    refused_swaps: c.refused_swaps,
                    last_refusal: c.last_refusal.clone(),
                }
            })
            .collect()
    }

    /// Answers control requests waiting in the channel (status, swaps).
    /// Runs between batches.
    pub fn serve_control(&mut self) {
        let Some(control) = self.control.take() else { return };
        while let Ok(request) = control.try_recv() {
            match request {
                ControlRequest::Status(reply) => {
                    let _ = reply.send(PipelineStatus { stats: self.stats(), open_windows: self.open_windows(), stages: self.status() });
                }
                ControlRequest::Install(new, reply) => {
                    let started = Instant::now();
                    let result = self.install_all(new).map_err(|e| e.to_string());
                    let _ = reply.send(result.map(|swapped| (swapped, started.elapsed())));
                }
                ControlRequest::Refused(kind, err, reply) => {
                    let _ = reply.send(self.refused(kind, err).to_string());
                }
            }
        }
        self.control = Some(control);
    }

    /// Takes control requests from `requests` between batches.
    pub fn with_control(mut self, requests: std::sync::mpsc::Receiver<ControlRequest>) -> Self {
        self.control = Some(requests);
        self
    }

    /// Keeps checkpoints in `store`: [`Pipeline::checkpoint`] writes them and
    /// [`Pipeline::take_partition`] reads them.
    pub fn with_checkpoints(mut self, store: impl CheckpointStore + 'static) -> Self {
        tracing::debug!("checkpoints in {}", store.describe());
        self.checkpoints = Some(Box::new(store));
        self
    }

    /// Loads components with `engine` when a restore must bring back a
    /// component that was swapped in before the checkpoint.
    pub fn with_engine(mut self, engine: std::sync::Arc<PluginEngine>) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Who takes partitions from now on (the Kafka driver sets its member
    /// id and group generation on every assignment).
    pub fn set_owner(&mut self, owner: Owner) {
        self.owner = owner;
    }

    fn components(&self) -> Vec<ComponentRecord> {
        StageKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let plugin = self.stages.get(kind)?;
                Some(ComponentRecord {
                    stage: kind.name().to_owned(),
                    declared: self.declared[kind as usize].clone(),
                    running: plugin.hash().to_owned(),
                    running_path: plugin.path().to_owned(),
                })
            })
            .collect()
    }

    // A checkpoint written after a swap names the component that ran: while
    // the manifest still names what it named then, run that component
    // again (a restart must not silently undo a swap); when the manifest
    // now names another, the user changed it on purpose.
    fn resume_components(&mut self, id: &PartitionId, records: &[ComponentRecord]) -> Result<(), PipelineError> {
        let mut bring_back = Vec::new();
        for record in records {
            let Some(kind) = StageKind::ALL.into_iter().find(|k| k.name() == record.stage) else { continue };
            let Some(running) = self.stages.get(kind) else { continue };
            if record.running == running.hash() {
                continue;
            }
            if record.declared != self.declared[kind as usize] {
                tracing::info!(stage = %kind, "the manifest names another component than when {id} was checkpointed ({} then, {} now): running the manifest's", short(&record.declared), short(&self.declared[kind as usize]));
                continue;
            }
            let refuse = |detail: String| PipelineError::SwappedComponent {
                partition: id.to_string(),
                stage: kind,
                running: record.running_path.display().to_string(),
                running_hash: record.running.clone(),
                declared_hash: record.declared.clone(),
                detail,
            };
            let Some(engine) = &self.engine else { return Err(refuse("this pipeline cannot load components".into())) };
            let plugin = StagePlugin::load(engine, kind, &record.running_path, running.config(), running.limits()).map_err(|e| refuse(e.to_string()))?;
            if plugin.hash() != record.running {
                return Err(refuse(format!("the file's sha256 is now {}", plugin.hash())));
            }
            bring_back.push(plugin);
        }
        if !bring_back.is_empty() {
            let installed = self.install_all(bring_back).map_err(|e| PipelineError::Resume { partition: id.to_string(), reason: e.to_string() })?;
            for swapped in installed {
                tracing::info!(stage = %swapped.stage, "resumed the component that was swapped in before {id} was checkpointed ({})", short(&swapped.new_hash));
            }
        }
        Ok(())
    }

    // The partition's claim, taken now if it has none yet (files, tests).
    fn claim_of(&mut self, id: &PartitionId) -> Result<Option<Claim>, PipelineError> {
        let Some(store) = &self.checkpoints else { return Ok(None) };
        if let Some(claim) = self.partitions.get(id).and_then(|p| p.claim.clone()) {
            return Ok(Some(claim));
        }
        let claim = store.claim(id, &self.owner)?;
        self.partition(id).claim = Some(claim.clone());
        Ok(Some(claim))
    }

    fn open_windows(&self) -> usize {
        self.partitions.values().map(WindowOperator::open_windows).sum()
    }

    fn partition(&mut self, id: &PartitionId) -> &mut WindowOperator {
        let (clock, window) = (self.clock_spec, self.window_spec);
        self.partitions.entry(id.clone()).or_insert_with(|| WindowOperator::new(clock, window))
    }

    /// Starts owning `id` (a Kafka assignment): restores its checkpoint if
    /// there is one. Returns the checkpoint's next offset.
    pub fn take_partition(&mut self, id: &PartitionId, now: Timestamp) -> Result<Option<i64>, PipelineError> {
        let now = self.clock_time(now);
        let (claim, snapshot) = match &self.checkpoints {
            Some(store) => {
                // Claim first: from here on no former owner can write it.
                let claim = store.claim(id, &self.owner)?;
                (Some(claim), store.read(id)?)
            }
            None => (None, None),
        };
        let (clock, window) = (self.clock_spec, self.window_spec);
        let Some(mut snapshot) = snapshot else {
            let state = self.partition(id);
            *state = WindowOperator::new(clock, window);
            state.claim = claim;
            return Ok(None);
        };
        if let Some(claim) = &claim {
            tracing::info!(partition = %id, "claimed at epoch {} (last written by {} at epoch {})", claim.epoch, snapshot.claim.owner, snapshot.claim.epoch);
        }
        self.resume_components(id, &snapshot.components)?;
        let expected = self.stages.accumulator().clone();
        let found = snapshot.accumulator.clone();
        // A checkpoint of contract 0.1 names only a version.
        let same = found == expected || (found.name.is_empty() && found.version == expected.version);
        if !same {
            // The fold plugin changed since the checkpoint: it may read the
            // old accumulators; if not, stop rather than misread them.
            let refuse = |reason: String| PipelineError::Accumulator { partition: format!("{}[{}]", id.topic, id.partition), found: found.clone(), expected: expected.clone(), reason };
            let old: Vec<Vec<u8>> = snapshot.windows.iter().filter_map(|w| w.acc.clone()).collect();
            let migrated = match self.stages.fold.migrate(&found, old) {
                Ok(Ok(migrated)) => migrated,
                Ok(Err(reason)) => return Err(refuse(reason)),
                Err(err) => return Err(refuse(err.to_string())),
            };
            for (acc, new) in snapshot.windows.iter_mut().filter_map(|w| w.acc.as_mut()).zip(migrated) {
                *acc = new;
            }
            tracing::info!(topic = %id.topic, partition = id.partition, "migrated the checkpoint's accumulators from `{found}` to `{expected}`");
        }
        let state = self.partition(id);
        let windows = snapshot.windows.len();
        *state = WindowOperator::new(clock, window);
        state.restore(snapshot, now);
        state.claim = claim;
        tracing::info!(topic = %id.topic, partition = id.partition, next_offset = ?state.next_offset, "restored {windows} open windows from the checkpoint");
        Ok(state.next_offset)
    }

    /// Flushes the sink and the dead-letter output, then writes a checkpoint
    /// of each partition in `which` (all when `None`). Returns each
    /// partition's next offset, which is now safe to commit.
    pub fn checkpoint(&mut self, which: Option<&[PartitionId]>, now: Timestamp) -> Result<Vec<(PartitionId, i64)>, PipelineError> {
        self.emitter.flush(self.stages.accumulator())?;
        let now = self.clock_time(now);
        let version = self.stages.accumulator().clone();
        let components = self.components();
        let mut offsets = Vec::new();
        let mut ids: Vec<PartitionId> = self.partitions.keys().filter(|id| which.is_none_or(|w| w.contains(id))).cloned().collect();
        ids.sort();
        for id in ids {
            if let Some(claim) = self.claim_of(&id)? {
                let (Some(store), Some(state)) = (&self.checkpoints, self.partitions.get(&id)) else { continue };
                match store.write(&id, &claim, &state.snapshot(now, version.clone(), claim.clone(), components.clone())) {
                    Ok(()) => crate::metrics::global().checkpointed(),
                    Err(err @ CheckpointError::Fenced { .. }) => {
                        // Another member owns it now: its state here is
                        // stale, and so are its offsets.
                        tracing::error!("{err}; dropping the partition's state here");
                        self.partitions.remove(&id);
                        self.key_home.retain(|_, home| *home != id);
                        continue;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            if let Some(next) = self.partitions.get(&id).and_then(|s| s.next_offset) {
                offsets.push((id, next));
            }
        }
        Ok(offsets)
    }

    /// Records of `id` below `offset` were absorbed before (a committed
    /// offset without a checkpoint): skip them if they come again.
    pub fn skip_below(&mut self, id: &PartitionId, offset: i64) {
        let state = self.partition(id);
        if state.next_offset.is_none() {
            state.next_offset = Some(offset);
        }
    }

    /// The source has read every record of partition `partition` (of any
    /// topic) there is for now: a restored partition's clock, paused until
    /// its records flow again, runs from here.
    pub fn caught_up(&mut self, partition: i32, now: Timestamp) {
        let now = self.clock_time(now);
        for (_, state) in self.partitions.iter_mut().filter(|(id, _)| id.partition == partition) {
            state.unpause(now);
        }
    }

    /// Stops owning partitions (a Kafka revoke): checkpoints them, then drops
    /// their state. Returns the offsets to commit.
    pub fn release_partitions(&mut self, which: &[PartitionId], now: Timestamp) -> Result<Vec<(PartitionId, i64)>, PipelineError> {
        let offsets = self.checkpoint(Some(which), now)?;
        for id in which {
            self.partitions.remove(id);
        }
        self.key_home.retain(|_, home| !which.contains(home));
        Ok(offsets)
    }

    /// Reads `source` to its end, processing each batch at the system time it
    /// arrives and letting idle time close windows; then closes every window.
    pub fn run_source(&mut self, source: Box<dyn Source>) -> Result<Stats, PipelineError> {
        self.run_deliveries(&source::spawn(source, self.batch_size), true)
    }

    /// Processes the batches `deliveries` brings until it ends, as
    /// [`Pipeline::run_source`] does; logs progress when `progress`.
    pub fn run_deliveries(&mut self, deliveries: &std::sync::mpsc::Receiver<Delivery>, progress: bool) -> Result<Stats, PipelineError> {
        let started = Instant::now();
        let mut last_report = Instant::now();
        loop {
            match deliveries.recv_timeout(IDLE_TICK) {
                Ok(Delivery::Batch(batch)) => self.process(batch, Timestamp::now())?,
                Ok(Delivery::End) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Delivery::Failed(err)) => return Err(err.into()),
                Err(RecvTimeoutError::Timeout) => self.advance(Timestamp::now())?,
            }
            if progress && last_report.elapsed() >= PROGRESS_EVERY {
                let s = self.stats();
                let rate = s.records as f64 / started.elapsed().as_secs_f64();
                tracing::info!(
                    "{} records ({rate:.0}/s), {} windows written, {} open, {} late, {} failed",
                    s.records,
                    s.windows,
                    self.open_windows(),
                    s.late,
                    s.failed
                );
                last_report = Instant::now();
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
        let origins: Vec<usize> = decoded.origins.iter().map(|&o| o as usize).collect();
        let times = if self.system_clock { Vec::new() } else { self.stages.times(&decoded, &records) };

        self.counters[StageKind::Key as usize].records += origins.len() as u64;
        let keys = self.stages.keys(&decoded.events);
        self.counters[StageKind::Key as usize].errors += keys.failures.len() as u64;
        let mut key_failed = vec![false; origins.len()];
        for failure in &keys.failures {
            key_failed[failure.index as usize] = true;
            self.emitter.dead_record(&records[origins[failure.index as usize]], DeadLetterKind::Failed, "key", failure.reason.clone(), None)?;
        }

        // Clock and window: group the events by the partition and window
        // they fall in, in order of first appearance. Late and failed
        // events are sent on after the loop.
        let mut groups: Vec<Group> = Vec::new();
        // (group, event) for each event placed.
        let mut placed: Vec<(u32, u32)> = Vec::with_capacity(origins.len());
        let mut group_of: FastMap<(usize, &str, WindowIndex), usize> = FastMap::default();
        let mut dead: Vec<(usize, DeadLetterKind, &str, String, &str)> = Vec::new();
        // The batch's partitions, built once each rather than once per event.
        let mut batch_partitions: Vec<PartitionId> = Vec::new();
        let mut current: Option<(usize, &mut WindowOperator)> = None;
        let (clock_spec, window_spec) = (self.clock_spec, self.window_spec);
        let mut assigned: Vec<Assignment> = Vec::with_capacity(4);
        for (event, &origin) in origins.iter().enumerate() {
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
            let slot = match current.as_ref().map(|(slot, _)| *slot).filter(|&slot| batch_partitions[slot].partition == partition && *batch_partitions[slot].topic == *origin_of.source) {
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
                    slot
                }
            };
            note_home(&mut self.key_home, &mut self.stats, key, &batch_partitions[slot]);
            let operator = &mut current.as_mut().expect("set above").1;
            assigned.clear();
            if let Err(reason) = operator.place(key, time, now, &mut assigned) {
                dead.push((origin, DeadLetterKind::Late, "clock", reason, key));
                continue;
            }
            // One window, or several sliding ones: the event is folded into each.
            for &assignment in &assigned {
                let group = match group_of.entry((slot, key, assignment.index)) {
                    Entry::Occupied(e) => *e.get(),
                    Entry::Vacant(e) => {
                        groups.push(Group { partition: slot, key, assignment, members: 0 });
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
        self.fold(&records, &decoded.events, &origins, &batch_partitions, groups, placed)?;
        self.stats.open_windows_peak = self.stats.open_windows_peak.max(self.open_windows() as u64);
        self.close_due(now)
    }

    // Folds each group's events into its window, one call for the batch.
    fn fold(
        &mut self,
        records: &[SourceRecord],
        events: &crate::event::Events,
        origins: &[usize],
        partitions: &[PartitionId],
        groups: Vec<Group>,
        placed: Vec<(u32, u32)>,
    ) -> Result<(), PipelineError> {
        if groups.is_empty() {
            return Ok(());
        }
        // The events in group order (a counting sort; stable within a group).
        let mut next = Vec::with_capacity(groups.len());
        let mut fold_groups = Vec::with_capacity(groups.len());
        let mut end = 0u32;
        for group in &groups {
            next.push(end);
            end += group.members;
            let acc = self.partitions.get(&partitions[group.partition]).and_then(|p| p.acc(group.key, group.assignment.index)).cloned();
            fold_groups.push(FoldGroup { acc, end });
        }
        let mut rows = vec![0u32; placed.len()];
        for (group, event) in placed {
            let at = &mut next[group as usize];
            rows[*at as usize] = event;
            *at += 1;
        }
        let fold_origin: Vec<usize> = rows.iter().map(|&event| origins[event as usize]).collect();
        let input = self.stages.fold_input(events, &rows);
        let mut failed = vec![false; rows.len()];
        let fold_counters = StageKind::Fold as usize;
        self.counters[fold_counters].records += fold_origin.len() as u64;
        let folded = self.stages.fold(fold_groups, &input);
        self.counters[fold_counters].errors += folded.failures.len() as u64;
        // An event in several (sliding) windows is dead-lettered once.
        let mut dead_events: FastSet<u32> = FastSet::default();
        for failure in &folded.failures {
            failed[failure.index as usize] = true;
            if dead_events.insert(rows[failure.index as usize]) {
                self.emitter.dead_record(&records[fold_origin[failure.index as usize]], DeadLetterKind::Failed, "fold", failure.reason.clone(), None)?;
            }
        }
        let mut accs = folded.accs.into_iter();
        let mut start = 0usize;
        let mut unfolded = Vec::new();
        for group in &groups {
            let acc = accs.next().unwrap_or_default();
            let end = start + group.members as usize;
            let absorbed = failed[start..end].iter().filter(|f| !**f).count() as u64;
            start = end;
            let Some(operator) = self.partitions.get_mut(&partitions[group.partition]) else { continue };
            if absorbed == 0 && !operator.is_open(group.key, group.assignment.index) {
                operator.reschedule(group.key);
                unfolded.push(group);
                continue;
            }
            operator.absorb(group.key, group.assignment, acc, absorbed);
        }
        self.merge_sessions(partitions)?;
        for group in unfolded {
            if let Some(operator) = self.partitions.get_mut(&partitions[group.partition]) {
                operator.forget(group.key, group.assignment.index);
            }
        }
        Ok(())
    }

    // Session windows: sessions that an event of the batch brought within
    // the gap of each other become one, their accumulators merged by the
    // fold's `merge` (a refused merge dead-letters the later window).
    fn merge_sessions(&mut self, partitions: &[PartitionId]) -> Result<(), PipelineError> {
        for pid in partitions {
            let Some(operator) = self.partitions.get_mut(pid) else { continue };
            for merge in operator.take_merges() {
                self.stats.sessions_merged += 1;
                let stages = &mut self.stages;
                if let Err((id, window, reason)) = operator.merge(&merge, |into, from| stages.merge(into, from)) {
                    self.counters[StageKind::Fold as usize].errors += 1;
                    self.emitter.dead_unmerged(self.stages.accumulator(), id, window, reason)?;
                }
            }
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
        let mut closed = Vec::new();
        for operator in self.partitions.values_mut() {
            closed.extend(operator.close_due(now));
        }
        self.emit(sorted(closed))?;
        self.report();
        Ok(())
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

// Windows must follow the input's partitioning: a key whose records
// arrive in two partitions gets two sets of windows, and in a keyed sink
// the later overwrites the earlier. Say so, once per key.
fn note_home(key_home: &mut FastMap<String, PartitionId>, stats: &mut Stats, key: &str, pid: &PartitionId) {
    if pid.partition < 0 {
        return;
    }
    match key_home.get(key) {
        Some(home) if home != pid => {
            stats.key_partition_conflicts += 1;
            if stats.key_partition_conflicts <= 10 {
                tracing::warn!(
                    key, first = %format!("{}[{}]", home.topic, home.partition), now = %format!("{}[{}]", pid.topic, pid.partition),
                    "key seen in more than one partition: its windows are split; key the Kafka messages the way the key stage keys events"
                );
            }
            key_home.insert(key.to_owned(), pid.clone());
        }
        Some(_) => {}
        None => {
            key_home.insert(key.to_owned(), pid.clone());
        }
    }
}

// Windows in a deterministic order: by start, key, index.
fn sorted(mut closed: Vec<(WindowId, OpenWindow)>) -> Vec<(WindowId, OpenWindow)> {
    closed.sort_unstable_by(|(a, wa), (b, wb)| (wa.start, &a.key, a.index).cmp(&(wb.start, &b.key, b.index)));
    closed
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
