//! Events placed in their windows and held back from the fold, so that a
//! window's events are folded many at once. Each fold group costs a share
//! of a plugin call, and a decode and an encode of its accumulator; with
//! many keys a batch holds one or two events per window, and that cost is
//! paid per event. (Flink's mini-batch aggregation does the same.)
//!
//! The pipeline holds up to `limits.fold_buffer` placements (tumbling and
//! sliding windows; their bounds do not move) and folds them before
//! anything reads an accumulator: a window due (its own events only), a
//! checkpoint, a swap, a partition taken or released, the end of the
//! input. Once most of what it holds is folded it drops that and keeps
//! the rest; a full buffer first folds its largest windows until half is
//! folded. With many keys windows fall due a few at a time while the next
//! windows fill, and folding those early would fold each window twice or
//! more. A held window is
//! open in its operator ([`crate::operator::WindowOperator::hold`]), so it
//! falls due on time. Folding groups a window's held events in the order
//! they arrived, in calls of at most `batch_size` events. The records stay
//! here until then ([`KeptRecords`]): a failed event goes to the
//! dead-letter output whole.

use super::fold::Group;
use super::kept::{KeptRecords, file_offset};
use super::{Pipeline, PipelineError};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::event::Events;
use crate::fast::FastSet;
use crate::source::SourceRecord;
use crate::state::checkpoint::PartitionId;

/// A hold round never used before in this process (never 0): the windows
/// number their held groups by round (see
/// [`WindowStore::hold`](crate::state::WindowStore::hold)), and an
/// operator may move between pipelines.
fn next_round() -> u32 {
    static ROUNDS: AtomicU32 = AtomicU32::new(1);
    loop {
        let round = ROUNDS.fetch_add(1, Ordering::Relaxed);
        if round != 0 {
            return round;
        }
    }
}

/// Bytes that grow with the values a held placement may take on average
/// (see [`Held::is_full`]): records read from Kafka, stdin or CSV are
/// copied whole, lines of a regular file are not (~70 bytes a placement
/// of fixed size), so a buffer of the default size takes about the same
/// memory either way (~70 MiB; records of ~80 bytes fill it at ~400,000
/// placements). Text fields the fold reads count too.
const COPIED_PER_PLACEMENT: usize = 32;

/// Placed events whose fold waits, with the records they came from.
#[derive(Default)]
pub(super) struct Held {
    /// Placements it is made to hold: its vectors are reserved for that
    /// many when first used, and kept from one fold to the next (grown by
    /// doubling, they were copied into fresh pages: `finish_grow` was ~18%
    /// of a 100,000-key run's profile).
    room: usize,
    /// This filling's round: each window held keeps its group's number
    /// under it, so no map from windows to groups is needed.
    round: u32,
    records: KeptRecords,
    /// The fold's input: one row per held event.
    events: Events,
    /// The record of each row.
    origins: Vec<u32>,
    partitions: Vec<PartitionId>,
    groups: Vec<Group>,
    /// (group, row) for each placement, in arrival order.
    placed: Vec<(u32, u32)>,
    /// Whether `chain` and `ends` list each group's placements: built at
    /// this filling's first fold of due windows, kept up from then on (a
    /// run whose windows are only due at the end never builds them).
    indexed: bool,
    /// Per placement, the one before it in its group ([`NONE`] for none)
    /// and its row (a walk along a group reads nothing else). Linked
    /// backwards, a placement is linked by reading its group's last and
    /// writing its own, not by writing into the last one as well.
    chain: Vec<(u32, u32)>,
    /// Per group, its last placement, or [`GONE`] once folded (a group is
    /// folded whole). A folded group takes no placement
    /// before the buffer drops its placements: a window due leaves the
    /// round (see [`WindowStore::due_held`](crate::state::WindowStore::due_held)),
    /// and the buffer drops what a full buffer folds at once.
    ends: Vec<u32>,
    /// Placements folded already (their groups are [`GONE`]).
    folded: usize,
    /// Rows a fold failed this filling: an event placed in two sliding
    /// windows folded at different times is dead-lettered once.
    dead_rows: FastSet<u32>,
    scratch: Scratch,
}

/// What a compaction works in (see [`Held::compact`]), kept for the next.
#[derive(Default)]
struct Scratch {
    /// Each group's new number, or [`NONE`].
    renumber: Vec<u32>,
    /// The rows still placed, by their new numbers.
    rows: Vec<u32>,
    /// The records still used, by their new numbers.
    records: Vec<usize>,
}

/// No placement.
const NONE: u32 = u32::MAX;
/// In [`Held::ends`]: the group is folded.
const GONE: u32 = u32::MAX - 1;
/// Groups whose chains are walked at once, each step of one asked for
/// ahead while the others' are read: a group's placements lie far apart.
const LANES: usize = 16;

/// One batch's placed events, as the pipeline hands them to [`Held::add`].
pub(super) struct Placed<'a> {
    pub(super) records: Vec<SourceRecord>,
    pub(super) origins: &'a [u32],
    /// (group, event) for each placement.
    pub(super) placed: &'a [(u32, u32)],
    /// The held group of each of the batch's groups (see [`Held::group`]).
    pub(super) held_groups: &'a [u32],
}

impl Held {
    /// A buffer for `room` placements.
    pub(super) fn new(room: usize) -> Self {
        Held { room, round: next_round(), ..Held::default() }
    }

    /// The round of this filling (see [`Held::group`]).
    pub(super) fn round(&self) -> u32 {
        self.round
    }

    /// The position of `partition` among the partitions it holds events
    /// of (added if new), for [`Held::group`].
    pub(super) fn partition(&mut self, partition: &PartitionId) -> usize {
        match self.partitions.iter().position(|p| p == partition) {
            Some(i) => i,
            None => {
                self.partitions.push(partition.clone());
                self.partitions.len() - 1
            }
        }
    }

    /// The held group of a batch's group of the partition at `partition`
    /// (see [`Held::partition`]): `number`, the window's number in this
    /// round (see [`WindowStore::hold`](crate::state::WindowStore::hold)),
    /// is an existing group, or the next one, opened for it here.
    pub(super) fn group(&mut self, number: u32, partition: usize, group: &Group) -> u32 {
        if number as usize == self.groups.len() {
            if self.groups.capacity() == 0 {
                self.groups.reserve(self.room.min(1 << 20) + 1);
            }
            self.groups.push(Group { partition, members: 0, ..*group });
        }
        number
    }

    /// The number the next new group gets.
    pub(super) fn next_group(&self) -> u32 {
        u32::try_from(self.groups.len()).expect("fewer than 2^32 groups held")
    }

    /// Placements it holds at most before they are folded (0: it holds
    /// none, and each batch is folded at once).
    pub(super) fn room(&self) -> usize {
        self.room
    }

    /// Whether it holds what it is made to: `room` placements, or the
    /// bytes that grow with the values (records it copied, not lines of a
    /// regular file; text the fold reads) reach
    /// [`COPIED_PER_PLACEMENT`] a placement of room.
    pub(super) fn is_full(&self) -> bool {
        self.placed.len() >= self.room || self.records.copied_bytes() + self.events.text_bytes() >= self.room.saturating_mul(COPIED_PER_PLACEMENT)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.placed.is_empty()
    }

    // Empties it, keeping its vectors' room.
    fn clear(&mut self) {
        self.records.clear();
        // Its fields stay, with their room, for the next batch's if it
        // has the same (see `add`).
        self.events.keep_rows(&[]);
        self.origins.clear();
        self.partitions.clear();
        self.groups.clear();
        self.placed.clear();
        self.indexed = false;
        self.chain.clear();
        self.ends.clear();
        self.folded = 0;
        self.dead_rows.clear();
        self.round = next_round();
    }

    // Whether group `group` is folded.
    fn gone(&self, group: u32) -> bool {
        self.indexed && self.ends.get(group as usize).is_some_and(|&last| last == GONE)
    }

    // Lists placements `from..` last in their groups' chains, each
    // group's last asked for a few placements ahead.
    fn link_from(&mut self, from: usize) {
        let groups = self.groups.len();
        if self.ends.len() < groups {
            self.ends.resize(groups, NONE);
        }
        for at in from..self.placed.len() {
            if let Some(&(ahead, _)) = self.placed.get(at + 8) {
                crate::fast::prefetch(&self.ends[ahead as usize]);
            }
            let (group, row) = self.placed[at];
            let at = u32::try_from(at).expect("fewer than 2^32 placements held");
            // A folded group taking a placement is one a full buffer folded
            // (see `relieve_held`), whose placements the buffer dropped
            // right after: it starts afresh. (A window due leaves the
            // round when folded, so its group takes none.)
            let last = std::mem::replace(&mut self.ends[group as usize], at);
            self.chain.push((if last == GONE { NONE } else { last }, row));
        }
    }

    // Lists every placement in its group's chain (none is folded yet).
    fn index(&mut self) {
        self.chain.reserve(self.placed.capacity());
        self.ends.reserve(self.groups.len());
        self.indexed = true;
        self.link_from(0);
    }

    // Groups holding `at_least` unfolded placements between them, the
    // largest first (by a count of their sizes: groups of 256 or more
    // count as one size), in group order.
    fn largest_groups(&mut self, at_least: usize) -> Vec<u32> {
        const SIZES: usize = 256;
        if !self.indexed {
            self.index();
        }
        let mut members = vec![0u32; self.groups.len()];
        for &(group, _) in &self.placed {
            members[group as usize] += 1;
        }
        for (g, m) in members.iter_mut().enumerate() {
            if self.gone(g as u32) {
                *m = 0;
            }
        }
        let mut by_size = [0usize; SIZES + 1];
        for &m in &members {
            by_size[(m as usize).min(SIZES)] += m as usize;
        }
        let (mut smallest, mut total) = (SIZES, 0);
        while smallest > 1 && total + by_size[smallest] < at_least {
            total += by_size[smallest];
            smallest -= 1;
        }
        (0..members.len() as u32).filter(|&g| members[g as usize] as usize >= smallest.max(1)).collect()
    }

    // Drops the placements folded already, and the rows and records only
    // they used; what is still held stays, in arrival order. Groups keep
    // their numbers (a folded one stays folded) unless most of them are
    // folded: then the rest are numbered afresh (0, 1, … in their old
    // order) in a new round, and it says so (the pipeline gives their
    // windows the new numbers: a look-up a window, so not every time).
    fn compact(&mut self) -> bool {
        if !self.indexed {
            self.index();
        }
        // Scratch kept from one compaction to the next: a compaction's
        // vectors made afresh were a quarter of the fresh memory a
        // 100,000-key run touches, and fresh memory is zeroed by the kernel.
        let mut scratch = std::mem::take(&mut self.scratch);
        let renumber = &mut scratch.renumber;
        renumber.clear();
        renumber.resize(self.groups.len(), NONE);
        let mut kept_groups = 0;
        for (g, number) in renumber.iter_mut().enumerate() {
            if !self.gone(g as u32) {
                *number = kept_groups;
                kept_groups += 1;
            }
        }
        if kept_groups == 0 {
            // Nothing held: it starts afresh.
            self.scratch = scratch;
            self.clear();
            return false;
        }
        let afresh = self.groups.len() - kept_groups as usize > 3 * kept_groups as usize + 64;
        if afresh {
            let mut g = 0;
            self.groups.retain(|_| {
                g += 1;
                renumber[g - 1] != NONE
            });
        } else {
            // Each group keeps its number.
            for (g, number) in renumber.iter_mut().enumerate() {
                if *number != NONE {
                    *number = g as u32;
                }
            }
        }
        // The rows still placed, ascending: placements are held in row
        // order, an event placed in several windows all at once.
        let (rows, mut kept, mut last) = (&mut scratch.rows, 0, NONE);
        rows.clear();
        for at in 0..self.placed.len() {
            let (group, row) = self.placed[at];
            if renumber[group as usize] == NONE {
                continue;
            }
            debug_assert!(last == NONE || last <= row, "placements are held in row order");
            if row != last {
                rows.push(row);
                last = row;
            }
            self.placed[kept] = (renumber[group as usize], rows.len() as u32 - 1);
            kept += 1;
        }
        self.placed.truncate(kept);
        // Their records, ascending too (rows are appended in record order).
        let (records, mut last) = (&mut scratch.records, u32::MAX);
        records.clear();
        for (new, &row) in rows.iter().enumerate() {
            let old = self.origins[row as usize];
            if old != last {
                records.push(old as usize);
                last = old;
            }
            self.origins[new] = records.len() as u32 - 1;
        }
        self.origins.truncate(rows.len());
        self.records.keep(records);
        self.events.keep_rows(rows);
        self.dead_rows = self.dead_rows.iter().filter_map(|row| rows.binary_search(row).ok().map(|new| new as u32)).collect();
        self.scratch = scratch;
        self.chain.clear();
        if afresh {
            self.ends.clear();
            self.round = next_round();
        } else {
            for last in self.ends.iter_mut().filter(|last| **last != GONE) {
                *last = NONE;
            }
        }
        self.index();
        self.folded = 0;
        afresh
    }

    /// Whether a batch's fold input `events` can be appended to the rows
    /// held: the same fields, of the same types.
    pub(super) fn takes(&self, events: &Events) -> bool {
        self.is_empty() || self.events.same_fields(events)
    }

    /// Holds a batch's placed events; `input` is the fold's input for the
    /// events placed at least once (`kept`, ascending), row by row.
    pub(super) fn add(&mut self, batch: Placed<'_>, input: Events, kept: &[u32]) {
        if self.placed.capacity() == 0 {
            // Room for what it holds, up to a million at first.
            let room = self.room.min(1 << 20) + batch.placed.len();
            // Lines of a regular file are not copied (see `KeptRecords`).
            let bytes = batch.records.iter().filter(|r| file_offset(r).is_none()).map(|r| r.value.len() + r.key.as_ref().map_or(0, Vec::len)).sum::<usize>() / batch.records.len().max(1);
            self.records.reserve(room, bytes + bytes / 4);
            self.origins.reserve(room);
            self.placed.reserve(room);
        }
        let record_base = u32::try_from(self.records.len()).expect("fewer than 2^32 records held");
        let row_base = self.events.count;
        for record in batch.records {
            self.records.push(record);
        }
        if row_base == 0 && !self.events.same_fields(&input) {
            self.events = Events::default();
        }
        // Room for what it holds, once: grown by doubling, each field was
        // copied into fresh memory again and again.
        let fresh = self.events.fields.is_empty();
        self.events.append(input);
        if fresh {
            self.events.reserve(self.room.min(1 << 20));
        }
        self.origins.extend(kept.iter().map(|&event| record_base + batch.origins[event as usize]));
        let mut row_of = vec![u32::MAX; batch.origins.len()];
        for (row, &event) in kept.iter().enumerate() {
            row_of[event as usize] = row_base + row as u32;
        }
        // Groups are counted when folded (`fold_held`): a round's groups
        // (one a window) outgrow the cache, their counts do not.
        let from = self.placed.len();
        for &(g, event) in batch.placed {
            self.placed.push((batch.held_groups[g as usize], row_of[event as usize]));
        }
        if self.indexed {
            self.link_from(from);
        }
    }
}

impl Pipeline {
    /// Folds the held events of the groups `due` (their windows are due),
    /// and only those, in calls of at most `batch_size` events; the rest
    /// stay held. Once most of what the buffer holds is folded, it drops
    /// that (see [`Held::compact`]), so its room is not taken by
    /// placements folded long ago.
    pub(super) fn fold_held_groups(&mut self, due: &[u32]) -> Result<(), PipelineError> {
        if due.is_empty() || self.held.is_empty() {
            return Ok(());
        }
        self.fold_these(due)?;
        if self.held.folded * 2 > self.held.placed.len() {
            self.compact_held();
        }
        Ok(())
    }

    /// Makes room in a full buffer: folds the groups holding the most
    /// events until half of what it holds is folded, and drops that. The
    /// largest are most often the oldest windows, nearest their end; a
    /// window just opened keeps its few events held. Folds it all only if
    /// that leaves it full (a batch larger than its room).
    pub(super) fn relieve_held(&mut self) -> Result<(), PipelineError> {
        let half = self.held.placed.len() / 2;
        if self.held.folded < half {
            let largest = self.held.largest_groups(half - self.held.folded);
            self.fold_these(&largest)?;
        }
        self.compact_held();
        if self.held.is_full() {
            return self.fold_held();
        }
        Ok(())
    }

    // Folds the held events of groups `these` (each once, in that order),
    // in calls of at most `batch_size`: many groups by one pass over what
    // is held, a few by walking their chains.
    fn fold_these(&mut self, these: &[u32]) -> Result<(), PipelineError> {
        let mut held = std::mem::take(&mut self.held);
        if !held.indexed {
            held.index();
        }
        let (mut groups, mut placed) = (Vec::new(), Vec::new());
        let mut dead_rows = std::mem::take(&mut held.dead_rows);
        let result = if these.len() > held.groups.len() / 8 {
            self.fold_scanned(&mut held, these, &mut groups, &mut placed, &mut dead_rows)
        } else {
            self.fold_walked(&mut held, these, &mut groups, &mut placed, &mut dead_rows)
        };
        let result = result.and_then(|()| match placed.is_empty() {
            true => Ok(()),
            false => self.fold(&held.records, &held.events, &held.origins, &held.partitions, groups, placed, &mut dead_rows),
        });
        held.dead_rows = dead_rows;
        self.held = held;
        result
    }

    // `fold_these` by walking the groups' chains, `LANES` at a time.
    fn fold_walked(&mut self, held: &mut Held, these: &[u32], groups: &mut Vec<Group>, placed: &mut Vec<(u32, u32)>, dead: &mut FastSet<u32>) -> Result<(), PipelineError> {
        let mut rows: Vec<Vec<u32>> = (0..LANES).map(|_| Vec::new()).collect();
        for chunk in these.chunks(LANES) {
            let mut at = [NONE; LANES];
            for (lane, &g) in chunk.iter().enumerate() {
                rows[lane].clear();
                let last = held.ends.get(g as usize).map_or(NONE, |&last| last);
                if last < GONE {
                    at[lane] = last;
                    crate::fast::prefetch(&held.chain[last as usize]);
                }
            }
            let mut walking = true;
            while walking {
                walking = false;
                for lane in 0..chunk.len() {
                    if at[lane] == NONE {
                        continue;
                    }
                    let (before, row) = held.chain[at[lane] as usize];
                    rows[lane].push(row);
                    if before != NONE {
                        crate::fast::prefetch(&held.chain[before as usize]);
                        walking = true;
                    }
                    at[lane] = before;
                }
            }
            for (lane, &g) in chunk.iter().enumerate() {
                if rows[lane].is_empty() {
                    continue;
                }
                // Walked from the last; folded in arrival order.
                rows[lane].reverse();
                held.folded += rows[lane].len();
                held.ends[g as usize] = GONE;
                self.fold_rows(held, &held.groups[g as usize], &rows[lane], groups, placed, dead)?;
            }
        }
        Ok(())
    }

    // `fold_these` by one pass over every placement held (a counting sort
    // of the chosen groups' rows).
    fn fold_scanned(&mut self, held: &mut Held, these: &[u32], groups: &mut Vec<Group>, placed: &mut Vec<(u32, u32)>, dead: &mut FastSet<u32>) -> Result<(), PipelineError> {
        let mut slot = vec![NONE; held.groups.len()];
        let mut chosen = Vec::new();
        for &g in these {
            if (g as usize) < slot.len() && slot[g as usize] == NONE && !held.gone(g) {
                slot[g as usize] = chosen.len() as u32;
                chosen.push(g);
            }
        }
        let mut next = vec![0usize; chosen.len() + 1];
        for &(group, _) in &held.placed {
            let s = slot[group as usize];
            if s != NONE {
                next[s as usize + 1] += 1;
            }
        }
        for i in 1..next.len() {
            next[i] += next[i - 1];
        }
        let starts = next.clone();
        let mut rows = vec![0u32; next[chosen.len()]];
        for &(group, row) in &held.placed {
            let s = slot[group as usize];
            if s != NONE {
                rows[next[s as usize]] = row;
                next[s as usize] += 1;
            }
        }
        held.folded += rows.len();
        for &g in &chosen {
            held.ends[g as usize] = GONE;
        }
        for (i, &g) in chosen.iter().enumerate() {
            self.fold_rows(held, &held.groups[g as usize], &rows[starts[i]..starts[i + 1]], groups, placed, dead)?;
        }
        Ok(())
    }

    // Drops the held placements folded already (see [`Held::compact`])
    // and gives the windows still held their new numbers, if any.
    fn compact_held(&mut self) {
        if !self.held.compact() {
            return;
        }
        let round = self.held.round();
        let held = &self.held;
        let mut operators = super::fold::operators_of(&mut self.partitions, &held.partitions);
        for (number, group) in held.groups.iter().enumerate() {
            if let Some(operator) = operators[group.partition].as_deref_mut() {
                operator.renumber_held(group.key, group.assignment.index, round, number as u32);
            }
        }
    }

    // Adds `group`'s held `rows` to the call being made up (`groups`,
    // `placed`), folding it each time it reaches `batch_size` events.
    fn fold_rows(&mut self, held: &Held, group: &Group, mut rows: &[u32], groups: &mut Vec<Group>, placed: &mut Vec<(u32, u32)>, dead: &mut FastSet<u32>) -> Result<(), PipelineError> {
        let limit = self.batch_size.max(1);
        while !rows.is_empty() {
            let take = rows.len().min(limit - placed.len());
            groups.push(Group { members: take as u32, ..*group });
            let at = (groups.len() - 1) as u32;
            placed.extend(rows[..take].iter().map(|&row| (at, row)));
            rows = &rows[take..];
            if placed.len() == limit {
                self.fold(&held.records, &held.events, &held.origins, &held.partitions, std::mem::take(groups), std::mem::take(placed), dead)?;
            }
        }
        Ok(())
    }

    /// Folds every held event, window by window, in calls of at most
    /// `batch_size` events (a window with more is folded over several).
    pub(super) fn fold_held(&mut self) -> Result<(), PipelineError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut held = std::mem::take(&mut self.held);
        // The rows of each group, in arrival order (a counting sort).
        let gone: Vec<bool> = (0..held.groups.len() as u32).map(|g| held.gone(g)).collect();
        let mut next = vec![0usize; held.groups.len()];
        for &(group, _) in held.placed.iter().filter(|(group, _)| !gone[*group as usize]) {
            next[group as usize] += 1;
        }
        let mut end = 0usize;
        for (group, at) in held.groups.iter_mut().zip(&mut next) {
            group.members = *at as u32;
            (*at, end) = (end, end + *at);
        }
        let mut rows = vec![0u32; end];
        for &(group, row) in held.placed.iter().filter(|(group, _)| !gone[*group as usize]) {
            let at = &mut next[group as usize];
            rows[*at] = row;
            *at += 1;
        }
        let limit = self.batch_size.max(1);
        let (mut groups, mut placed) = (Vec::new(), Vec::with_capacity(limit.min(rows.len())));
        // An event in two sliding windows may be folded in two calls.
        let mut dead_events = std::mem::take(&mut held.dead_rows);
        let mut start = 0usize;
        for group in &held.groups {
            let members = &rows[start..start + group.members as usize];
            start += group.members as usize;
            self.fold_rows(&held, group, members, &mut groups, &mut placed, &mut dead_events)?;
        }
        if !placed.is_empty() {
            self.fold(&held.records, &held.events, &held.origins, &held.partitions, groups, placed, &mut dead_events)?;
        }
        held.clear();
        self.held = held;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Timestamp;
    use crate::event::{Column, Field, Texts};
    use crate::source::Origin;

    // `n` records of `len` bytes, left in their file or not, each placed
    // once in one group; the fold reads a text of `text` bytes of each.
    fn hold(held: &mut Held, n: usize, len: usize, in_file: bool, text: usize) {
        let records: Vec<SourceRecord> = (0..n)
            .map(|i| SourceRecord {
                value: vec![b'x'; len],
                key: None,
                timestamp: Timestamp(0),
                headers: Vec::new(),
                origin: Origin { source: "in.jsonl".into(), partition: None, position: i as u64 + 1, offset: in_file.then_some((i * (len + 1)) as u64) },
            })
            .collect();
        let origins: Vec<u32> = (0..n as u32).collect();
        let placed: Vec<(u32, u32)> = (0..n as u32).map(|i| (0, i)).collect();
        let kept: Vec<u32> = (0..n as u32).collect();
        let fields = match text {
            0 => Vec::new(),
            _ => vec![Field { name: "t".into(), values: Column::Texts(Texts::from_strings((0..n).map(|_| "y".repeat(text)))), missing: Vec::new() }],
        };
        held.add(Placed { records, origins: &origins, placed: &placed, held_groups: &[0] }, Events { count: n as u32, fields }, &kept);
    }

    // A buffer whose every group was folded keeps its rows' fields (with
    // their room) only for a batch with the same: the next batch's fields
    // may be others, and `takes` lets any batch into an empty buffer.
    #[test]
    fn a_buffer_left_empty_by_a_drop_takes_other_fields() {
        let mut held = Held::new(100);
        let window = crate::window::Assignment { index: 0, start: Timestamp(0), end: Timestamp(10) };
        held.group(0, 0, &Group { partition: 0, key: crate::keys::KeyId(0), assignment: window, members: 0 });
        hold(&mut held, 3, 10, true, 4);
        held.index();
        held.ends[0] = GONE;
        held.folded = 3;
        held.compact();
        assert!(held.is_empty() && held.events.count == 0);
        hold(&mut held, 2, 10, true, 0);
        assert_eq!(held.events.count, 2);
        assert!(held.events.fields.is_empty(), "the new batch's fields (none), not the old");
    }

    // Room for 100 placements is also room for 3,200 bytes that grow with
    // the values: 10 copied records of 400 bytes fill it, 10 lines left
    // in their file do not, unless the fold reads as much text of them.
    #[test]
    fn the_buffer_is_full_at_its_placements_or_at_the_bytes_it_copied() {
        let mut copied = Held::new(100);
        hold(&mut copied, 10, 400, false, 0);
        assert!(copied.is_full(), "4,000 bytes copied for 10 placements");
        let mut in_file = Held::new(100);
        hold(&mut in_file, 10, 400, true, 0);
        assert!(!in_file.is_full(), "lines left in their file cost no bytes");
        hold(&mut in_file, 90, 400, true, 0);
        assert!(in_file.is_full(), "100 placements");
        let mut read_text = Held::new(100);
        hold(&mut read_text, 10, 400, true, 400);
        assert!(read_text.is_full(), "4,000 bytes of text for the fold");
    }
}
