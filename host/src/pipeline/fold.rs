//! The fold of one batch: events regrouped by window (a counting sort),
//! one fold call for the batch, accumulators absorbed, failed events
//! dead-lettered once, then session merges applied.

use super::kept::Records;
use super::{Pipeline, PipelineError};
use crate::fast::{FastMap, FastSet};
use crate::keys::KeyId;
use crate::manifest::StageKind;
use crate::operator::WindowOperator;
use crate::plugin::FoldGroup;
use crate::sink::DeadLetterKind;
use crate::state::checkpoint::PartitionId;
use crate::window::Assignment;

// The events of one batch that go to one window.
#[derive(Debug, Clone, Copy)]
pub(super) struct Group {
    /// Index into the batch's partitions.
    pub(super) partition: usize,
    /// The key's id in its partition's operator.
    pub(super) key: KeyId,
    pub(super) assignment: Assignment,
    pub(super) members: u32,
}

impl Pipeline {
    // Folds each group's events into its window, one call for the batch.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn fold(
        &mut self,
        records: &(impl Records + ?Sized),
        events: &crate::event::Events,
        origins: &[u32],
        partitions: &[PartitionId],
        groups: Vec<Group>,
        placed: Vec<(u32, u32)>,
        dead_events: &mut FastSet<u32>,
    ) -> Result<(), PipelineError> {
        if groups.is_empty() {
            return Ok(());
        }
        let mut operators = operators_of(&mut self.partitions, partitions);
        // The events in group order (a counting sort; stable within a group).
        let mut next = Vec::with_capacity(groups.len());
        let mut fold_groups = Vec::with_capacity(groups.len());
        let mut had_acc = Vec::with_capacity(groups.len());
        let mut end = 0u32;
        for (g, group) in groups.iter().enumerate() {
            if let Some(operator) = operators[group.partition].as_deref() {
                super::prefetch_groups(operator, group.partition, &groups, g);
            }
            next.push(end);
            end += group.members;
            // Lent to the call, not copied: every group's window gets the
            // accumulator the call gives back for it (its events that
            // failed left out), or is dropped if it never had one.
            let acc = operators[group.partition].as_mut().and_then(|op| op.take_acc(group.key, group.assignment.index));
            had_acc.push(acc.is_some());
            fold_groups.push(FoldGroup { acc, end });
        }
        let mut rows = vec![0u32; placed.len()];
        for (group, event) in placed {
            let at = &mut next[group as usize];
            rows[*at as usize] = event;
            *at += 1;
        }
        let input = self.stages.fold_input(events, &rows);
        let mut failed = vec![false; rows.len()];
        let fold_counters = StageKind::Fold as usize;
        self.counters[fold_counters].records += rows.len() as u64;
        let folded = self.stages.fold(fold_groups, &input);
        self.counters[fold_counters].errors += folded.failures.len() as u64;
        for failure in &folded.failures {
            failed[failure.index as usize] = true;
        }
        let mut accs = folded.accs.into_iter();
        let mut start = 0usize;
        let mut unfolded = Vec::new();
        for (g, (group, had_acc)) in groups.iter().zip(had_acc).enumerate() {
            if let Some(operator) = operators[group.partition].as_deref() {
                super::prefetch_groups(operator, group.partition, &groups, g);
            }
            let acc = accs.next().unwrap_or_default();
            let end = start + group.members as usize;
            let absorbed = failed[start..end].iter().filter(|f| !**f).count() as u64;
            start = end;
            let Some(operator) = operators[group.partition].as_mut() else { continue };
            // A window that no fold has filled (every event failed) does
            // not open; one opened to hold events is dropped.
            if absorbed == 0 && !had_acc {
                operator.drop_unfolded(group.key, group.assignment.index);
                operator.reschedule(group.key);
                unfolded.push(group);
                continue;
            }
            operator.absorb(group.key, group.assignment, acc, absorbed);
        }
        drop(operators);
        // An event in several (sliding) windows is dead-lettered once
        // (`dead_events` spans the calls that fold one batch's events).
        for failure in &folded.failures {
            let row = rows[failure.index as usize];
            if dead_events.insert(row) {
                // Its record looked up only now, not every row's gathered
                // for the few that fail (rows lie scattered over the held
                // buffer when there are many keys).
                match records.record(origins[row as usize] as usize) {
                    Ok(record) => self.emitter.dead_record(&record, DeadLetterKind::Failed, "fold", failure.reason.clone(), None)?,
                    // Its source and position still name it, to replay from.
                    Err((record, why)) => self.emitter.dead_record(&record, DeadLetterKind::Failed, "fold", format!("{}; the record's value is missing: {why}", failure.reason), None)?,
                }
            }
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
    pub(super) fn merge_sessions(&mut self, partitions: &[PartitionId]) -> Result<(), PipelineError> {
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
}

// The operators of `partitions`, by position (`None` for one not held),
// looked up once for a whole call rather than twice a group.
pub(super) fn operators_of<'a>(all: &'a mut FastMap<PartitionId, WindowOperator>, partitions: &[PartitionId]) -> Vec<Option<&'a mut WindowOperator>> {
    let mut found: Vec<Option<&mut WindowOperator>> = partitions.iter().map(|_| None).collect();
    for (id, operator) in all.iter_mut() {
        if let Some(i) = partitions.iter().position(|p| p == id) {
            found[i] = Some(operator);
        }
    }
    found
}
