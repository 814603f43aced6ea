//! Events placed in their windows and held back from the fold, so that a
//! window's events are folded many at once. Each fold group costs a share
//! of a plugin call, and a decode and an encode of its accumulator; with
//! many keys a batch holds one or two events per window, and that cost is
//! paid per event. (Flink's mini-batch aggregation does the same.)
//!
//! The pipeline holds up to `limits.fold_buffer` placements (tumbling and
//! sliding windows; their bounds do not move) and folds them before
//! anything reads an accumulator: a window due, a checkpoint, a swap, a
//! partition taken or released, the end of the input. A held window is
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
    origins: Vec<usize>,
    partitions: Vec<PartitionId>,
    groups: Vec<Group>,
    /// (group, row) for each placement, in arrival order.
    placed: Vec<(u32, u32)>,
}

/// One batch's placed events, as the pipeline hands them to [`Held::add`].
pub(super) struct Placed<'a> {
    pub(super) records: Vec<SourceRecord>,
    pub(super) origins: &'a [usize],
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
        self.events = Events::default();
        self.origins.clear();
        self.partitions.clear();
        self.groups.clear();
        self.placed.clear();
        self.round = next_round();
    }

    /// Whether a batch's fold input `events` can be appended to the rows
    /// held: the same fields, of the same types.
    pub(super) fn takes(&self, events: &Events) -> bool {
        self.is_empty()
            || (self.events.fields.len() == events.fields.len()
                && self.events.fields.iter().zip(&events.fields).all(|(a, b)| a.name == b.name && a.values.field_type() == b.values.field_type()))
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
        let record_base = self.records.len();
        let row_base = self.events.count;
        for record in batch.records {
            self.records.push(record);
        }
        self.events.append(input);
        self.origins.extend(kept.iter().map(|&event| record_base + batch.origins[event as usize]));
        let mut row_of = vec![u32::MAX; batch.origins.len()];
        for (row, &event) in kept.iter().enumerate() {
            row_of[event as usize] = row_base + row as u32;
        }
        // Groups are counted when folded (`fold_held`): a round's groups
        // (one a window) outgrow the cache, their counts do not.
        for &(g, event) in batch.placed {
            self.placed.push((batch.held_groups[g as usize], row_of[event as usize]));
        }
    }
}

impl Pipeline {
    /// Folds every held event, window by window, in calls of at most
    /// `batch_size` events (a window with more is folded over several).
    pub(super) fn fold_held(&mut self) -> Result<(), PipelineError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut held = std::mem::take(&mut self.held);
        // The rows of each group, in arrival order (a counting sort).
        let mut next = vec![0usize; held.groups.len()];
        for &(group, _) in &held.placed {
            next[group as usize] += 1;
        }
        let mut end = 0usize;
        for (group, at) in held.groups.iter_mut().zip(&mut next) {
            group.members = *at as u32;
            (*at, end) = (end, end + *at);
        }
        let mut rows = vec![0u32; held.placed.len()];
        for &(group, row) in &held.placed {
            let at = &mut next[group as usize];
            rows[*at] = row;
            *at += 1;
        }
        let limit = self.batch_size.max(1);
        let (mut groups, mut placed) = (Vec::new(), Vec::with_capacity(limit.min(rows.len())));
        // An event in two sliding windows may be folded in two calls.
        let mut dead_events = FastSet::default();
        let mut start = 0usize;
        for group in &held.groups {
            let mut members = &rows[start..start + group.members as usize];
            start += group.members as usize;
            while !members.is_empty() {
                let take = members.len().min(limit - placed.len());
                groups.push(Group { members: take as u32, ..*group });
                let g = (groups.len() - 1) as u32;
                placed.extend(members[..take].iter().map(|&row| (g, row)));
                members = &members[take..];
                if placed.len() == limit {
                    self.fold(&held.records, &held.events, &held.origins, &held.partitions, std::mem::take(&mut groups), std::mem::take(&mut placed), &mut dead_events)?;
                }
            }
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
        let origins: Vec<usize> = (0..n).collect();
        let placed: Vec<(u32, u32)> = (0..n as u32).map(|i| (0, i)).collect();
        let kept: Vec<u32> = (0..n as u32).collect();
        let fields = match text {
            0 => Vec::new(),
            _ => vec![Field { name: "t".into(), values: Column::Texts(Texts::from_strings((0..n).map(|_| "y".repeat(text)))), missing: Vec::new() }],
        };
        held.add(Placed { records, origins: &origins, placed: &placed, held_groups: &[0] }, Events { count: n as u32, fields }, &kept);
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
