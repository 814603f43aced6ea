//! The partitions a pipeline owns: taking one (claim, restore, migrate a
//! checkpoint's accumulators, resume swapped-in components), checkpointing,
//! skipping what a checkpoint absorbed, and letting go (a revoke).

use super::{Pipeline, PipelineError};
use crate::Timestamp;
use crate::manifest::StageKind;
use crate::operator::WindowOperator;
use crate::plugin::{PluginEngine, StagePlugin};
use crate::state::checkpoint::{CheckpointError, CheckpointStore, Claim, ComponentRecord, Owner, PartitionId};

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

impl Pipeline {
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

    pub(super) fn components(&self) -> Vec<ComponentRecord> {
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
    pub(super) fn resume_components(&mut self, id: &PartitionId, records: &[ComponentRecord]) -> Result<(), PipelineError> {
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
    pub(super) fn claim_of(&mut self, id: &PartitionId) -> Result<Option<Claim>, PipelineError> {
        let Some(store) = &self.checkpoints else { return Ok(None) };
        if let Some(claim) = self.partitions.get(id).and_then(|p| p.claim.clone()) {
            return Ok(Some(claim));
        }
        let claim = store.claim(id, &self.owner)?;
        self.partition(id).claim = Some(claim.clone());
        Ok(Some(claim))
    }

    /// Starts owning `id` (a Kafka assignment): restores its checkpoint if
    /// there is one. Returns the checkpoint's next offset.
    pub fn take_partition(&mut self, id: &PartitionId, now: Timestamp) -> Result<Option<i64>, PipelineError> {
        self.fold_held()?;
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
        let next_offset = state.next_offset;
        // Its keys are not new when next seen: their homes are noted now.
        if let Some(state) = self.partitions.get(id) {
            for key in state.key_names() {
                super::note_home(&self.key_homes, &mut self.stats, key, id);
            }
        }
        tracing::info!(topic = %id.topic, partition = id.partition, next_offset = ?next_offset, "restored {windows} open windows from the checkpoint");
        Ok(next_offset)
    }

    /// Flushes the sink and the dead-letter output, then writes a checkpoint
    /// of each partition in `which` (all when `None`). Returns each
    /// partition's next offset, which is now safe to commit.
    pub fn checkpoint(&mut self, which: Option<&[PartitionId]>, now: Timestamp) -> Result<Vec<(PartitionId, i64)>, PipelineError> {
        self.fold_held()?;
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
                        self.key_homes.forget(std::slice::from_ref(&id));
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
        self.key_homes.forget(which);
        Ok(offsets)
    }
}
