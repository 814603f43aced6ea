//! The window operator of one input partition: its clock, its windower and
//! its open windows. It places each keyed event in a window (or calls it
//! late), keeps the folded accumulators, and closes windows as their timers
//! come due. It moves with its partition: checkpoint, restore, handover.
//!
//! Cost follows the work done, not the state held: a batch re-sets the
//! timers of the keys it touched, closing pops due timers off a heap, and a
//! key left with no open window is retired from the clock (see
//! [`EventClock::retire`](crate::clock::EventClock::retire)) and loses its
//! id. Keys are looked up once per event ([`place`](WindowOperator::place)
//! gives the key's id); the clock and the store hold their per-key state
//! by id.

use crate::Timestamp;
use crate::clock::{Arrival, Clock};
use crate::event::Identity;
use crate::keys::{KeyHash, KeyId, KeyIds};
use crate::manifest::{ClockSpec, WindowSpec};
use crate::state::checkpoint::{Claim, CollectSnapshot, ComponentRecord, FORMAT_VERSION, PartitionSnapshot, WindowSnapshot};
use crate::state::{OpenWindow, WindowId, WindowStore};
use crate::window::{Assignment, Merge, WindowIndex, Windower};

/// How much one operator holds (for progress lines and benchmarks).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Open windows.
    pub windows: usize,
    /// Keys the clock holds by name.
    pub keys: usize,
    /// Keys retired to a 16-byte watermark.
    pub retired: usize,
    /// Timers in the heap, live and stale.
    pub timers: usize,
}

/// The state of one input partition's windows.
#[derive(Debug)]
pub struct WindowOperator {
    keys: KeyIds,
    clock: Clock,
    windower: Windower,
    store: WindowStore,
    /// The first offset not yet absorbed (Kafka).
    pub next_offset: Option<i64>,
    /// The right to write its checkpoint, once taken.
    pub claim: Option<Claim>,
    /// Restored from a checkpoint at this (clock) time and no record of it
    /// read since: its clock stands still until its records flow again or
    /// the source says it has none, so a slow start after a handover does
    /// not close the restored windows before their records are replayed.
    paused_since: Option<Timestamp>,
}

impl WindowOperator {
    /// An empty operator with the manifest's clock and windows.
    pub fn new(clock: ClockSpec, window: WindowSpec) -> Self {
        WindowOperator {
            keys: KeyIds::default(),
            clock: Clock::from_spec(clock),
            windower: Windower::from_spec(window),
            store: WindowStore::new(),
            next_offset: None,
            claim: None,
            paused_since: None,
        }
    }

    /// The system time its clock sees: frozen while it is paused.
    pub fn clock_now(&self, now: Timestamp) -> Timestamp {
        self.paused_since.unwrap_or(now)
    }

    /// Its records flow again (or the source has none): the clock runs on
    /// from `now` where it stood.
    pub fn unpause(&mut self, now: Timestamp) {
        if let Some(paused_at) = self.paused_since.take() {
            self.clock.resume(paused_at, now);
        }
    }

    /// Places an event of `key` with time `time` (system time for a system
    /// clock) arriving at system time `now`: pushes the windows it goes to
    /// onto `out` (one, or several sliding windows) and gives the key's id
    /// (for the other calls), or says why it is late.
    pub fn place(&mut self, key: &str, time: Timestamp, now: Timestamp, out: &mut Vec<Assignment>) -> Result<KeyId, String> {
        let id = self.keys.intern(key);
        self.place_id(id, key, time, now, out).map(|()| id)
    }

    /// The id of `key` (hash `hash`), given it one if it has none: what
    /// [`WindowOperator::place`] does first, for a caller that looks ahead.
    /// Says too whether the key is new here (it had no id).
    pub fn key_id(&mut self, key: &str, hash: KeyHash) -> (KeyId, bool) {
        self.keys.intern_new(key, hash)
    }

    /// The keys it holds state for (an open window or a watermark), in no
    /// particular order.
    pub fn key_names(&self) -> impl Iterator<Item = &str> {
        self.keys.names()
    }

    /// Asks the memory for what [`WindowOperator::key_id`] reads for a
    /// key of hash `hash`. A hint: it changes nothing.
    pub fn prefetch_key(&self, hash: KeyHash) {
        self.keys.prefetch(hash);
    }

    /// Asks the memory for the clock's entry of key `id` and where its
    /// windows are listed. A hint: it changes nothing.
    pub fn prefetch_state(&self, id: KeyId) {
        self.clock.prefetch(id);
        self.store.prefetch(id);
    }

    /// Asks the memory for key `id`'s open windows (best a little after
    /// [`WindowOperator::prefetch_state`]). A hint: it changes nothing.
    pub fn prefetch_windows(&self, id: KeyId) {
        self.store.prefetch_windows(id);
    }

    /// [`WindowOperator::place`] for key `key` whose id is `id`.
    pub fn place_id(&mut self, id: KeyId, key: &str, time: Timestamp, now: Timestamp, out: &mut Vec<Assignment>) -> Result<(), String> {
        if let Windower::Collect(w) = &mut self.windower {
            // Collect windows count and time out in system time.
            out.push(w.assign(key, now));
            return Ok(());
        }
        let time = match self.clock.arrive(id, key, time, now) {
            Arrival::OnTime(time) => time,
            Arrival::Late { time, watermark } => return Err(format!("late: event time {time} is before the watermark {watermark} of key `{key}`")),
        };
        match &mut self.windower {
            Windower::Tumbling(w) => out.push(w.assign(time)),
            Windower::Sliding(w) => w.assign(time, out),
            Windower::Session(w) => out.push(w.assign(key, time)),
            Windower::Collect(_) => unreachable!("handled above"),
        }
        Ok(())
    }

    /// Sessions that became one since the last call (session windows),
    /// in the order they merged: apply each with [`WindowOperator::merge`]
    /// after the batch's folds are absorbed.
    pub fn take_merges(&mut self) -> Vec<Merge> {
        match &mut self.windower {
            Windower::Session(w) => w.take_merges(),
            _ => Vec::new(),
        }
    }

    /// Merges the window of session `merge.from` into `merge.into`,
    /// combining their accumulators with `combine(into, from)`. When
    /// `combine` fails, `into` stays as it was and the `from` window is
    /// returned with the reason (for the dead-letter output).
    pub fn merge(&mut self, merge: &Merge, combine: impl FnOnce(&[u8], &[u8]) -> Result<Vec<u8>, String>) -> Result<(), (WindowId, OpenWindow, String)> {
        let Windower::Session(sessions) = &self.windower else { return Ok(()) };
        let Some(id) = self.keys.get(&merge.key) else { return Ok(()) };
        let bounds = sessions.bounds(&merge.key, merge.into);
        let Some(from) = self.store.remove(id, merge.from) else { return Ok(()) };
        let Some(from_acc) = from.acc.as_deref() else { return Ok(()) };
        let (start, end) = bounds.unwrap_or((from.start, from.end));
        let merged = match self.store.get(id, merge.into).and_then(|w| w.acc.as_deref()) {
            None => from_acc.to_vec(),
            Some(into_acc) => match combine(into_acc, from_acc) {
                Ok(merged) => merged,
                Err(reason) => return Err((WindowId { key: merge.key.clone(), index: merge.from }, from, reason)),
            },
        };
        let window = Assignment { index: merge.into, start, end };
        self.absorb(id, window, merged, from.count);
        Ok(())
    }

    /// A window that got no event folded in (all failed) and is not open:
    /// a session opened for it is forgotten.
    pub fn forget(&mut self, key: KeyId, index: WindowIndex) {
        if let Windower::Session(w) = &mut self.windower
            && self.store.get(key, index).is_none()
        {
            w.closed(self.keys.name(key), index);
        }
    }

    /// Takes an open window's accumulator out, to lend it to a fold call;
    /// [`WindowOperator::absorb`] puts the one the call returns.
    pub fn take_acc(&mut self, key: KeyId, index: WindowIndex) -> Option<Vec<u8>> {
        self.store.take_acc(key, index)
    }

    /// Stores the accumulator a fold of `folded` events returned, and
    /// re-sets the timers of the key's windows (its clock has moved).
    pub fn absorb(&mut self, key: KeyId, window: Assignment, acc: Vec<u8>, folded: u64) {
        let (keys, clock, windower) = (&self.keys, &self.clock, &self.windower);
        // A session's bounds move as events join it: take them as they are now.
        let (start, end) = match windower {
            Windower::Session(w) => w.bounds(keys.name(key), window.index).unwrap_or((window.start, window.end)),
            _ => (window.start, window.end),
        };
        self.store.absorb(key, window.index, start, end, acc, folded, |index, window| due(keys, clock, windower, key, index, window));
    }

    /// Opens the window an event was placed in while its fold waits (the
    /// pipeline folds held events later, many to a window), and re-sets the
    /// timers of the key's windows, so that it is due when it would be had
    /// the events been folded at once. Tumbling and sliding windows only:
    /// their bounds do not move. Gives the window's number in hold round
    /// `round`, `next` if it had none (see [`WindowStore::hold`]).
    pub fn hold(&mut self, key: KeyId, window: Assignment, round: u32, next: u32) -> u32 {
        let (keys, clock, windower) = (&self.keys, &self.clock, &self.windower);
        self.store.hold(key, window.index, window.start, window.end, round, next, |index, window| due(keys, clock, windower, key, index, window))
    }

    /// Gives a held window a new number in a new hold round (see
    /// [`WindowStore::renumber_held`]).
    pub fn renumber_held(&mut self, key: KeyId, index: WindowIndex, round: u32, number: u32) {
        self.store.renumber_held(key, index, round, number);
    }

    /// Whether a window may be due at system time `now` (`false` means
    /// none is; `true` may be a timer whose window has closed or moved).
    pub fn due_by(&self, now: Timestamp) -> bool {
        self.store.earliest_due() <= self.clock_now(now).0
    }

    /// Removes a window that [`WindowOperator::hold`] opened and no fold
    /// filled (every event of it failed): it never opened.
    pub fn drop_unfolded(&mut self, key: KeyId, index: WindowIndex) {
        if self.store.get(key, index).is_some_and(|w| w.acc.is_none()) {
            self.store.remove(key, index);
        }
    }

    /// Re-sets the timers of `key`'s open windows: after its events were
    /// placed, as its clock (or its collect window's size) has moved.
    /// [`WindowOperator::absorb`] does it; call it for a key whose events
    /// were placed but none folded.
    pub fn reschedule(&mut self, key: KeyId) {
        let (keys, clock, windower) = (&self.keys, &self.clock, &self.windower);
        self.store.schedule(key, |index, window| due(keys, clock, windower, key, index, window));
    }

    /// The held groups of round `round` whose windows are due at system
    /// time `now`: to fold before [`WindowOperator::close_due`] (see
    /// [`WindowStore::due_held`](crate::state::WindowStore::due_held)).
    pub fn due_held(&mut self, now: Timestamp, round: u32) -> Vec<u32> {
        let now = self.clock_now(now);
        let (keys, clock, windower) = (&self.keys, &self.clock, &self.windower);
        self.store.due_held(now.0, round, |key, index, window| due(keys, clock, windower, key, index, window))
    }

    /// Closes the windows due at system time `now` (in no particular
    /// order: the pipeline orders what all partitions closed).
    pub fn close_due(&mut self, now: Timestamp) -> Vec<(WindowId, OpenWindow)> {
        let now = self.clock_now(now);
        let (keys, clock, windower) = (&self.keys, &self.clock, &self.windower);
        let (closed, emptied) = self.store.close_due(now.0, |key, index, window| due(keys, clock, windower, key, index, window));
        let closed = self.named(closed);
        self.note_closed(&closed);
        for key in emptied {
            // The key's name and id go; the clock keeps its watermark.
            self.clock.retire(key, self.keys.name(key), now);
            self.keys.release(key);
        }
        closed
    }

    /// Closes every open window (the input has ended), in no particular order.
    pub fn close_all(&mut self) -> Vec<(WindowId, OpenWindow)> {
        let closed = self.store.close_all();
        let closed = self.named(closed);
        self.note_closed(&closed);
        closed
    }

    // Closed windows under their keys' names.
    fn named(&self, closed: Vec<(KeyId, WindowIndex, OpenWindow)>) -> Vec<(WindowId, OpenWindow)> {
        closed.into_iter().map(|(key, index, window)| (WindowId { key: self.keys.name(key).to_owned(), index }, window)).collect()
    }

    /// How much it holds.
    pub fn held(&self) -> Held {
        let (keys, retired) = self.clock.keys();
        Held { windows: self.store.len(), keys, retired, timers: self.store.timers() }
    }

    /// Open windows.
    pub fn open_windows(&self) -> usize {
        self.store.len()
    }

    /// Every open window's accumulator, to rewrite in place (a migration).
    pub fn accs_mut(&mut self) -> impl Iterator<Item = &mut Vec<u8>> {
        self.store.accs_mut()
    }

    /// Its state at system time `now`, for a checkpoint.
    pub fn snapshot(&self, now: Timestamp, accumulator: Identity, claim: Claim, components: Vec<ComponentRecord>) -> PartitionSnapshot {
        let mut windows: Vec<WindowSnapshot> = self
            .store
            .iter()
            .map(|(key, index, w)| WindowSnapshot { key: self.keys.name(key).to_owned(), index, start: w.start.0, end: w.end.0, count: w.count, acc: w.acc.clone() })
            .collect();
        windows.sort_by(|a, b| (&a.key, a.index).cmp(&(&b.key, b.index)));
        let collect = match &self.windower {
            Windower::Collect(c) => c.snapshot().into_iter().map(|(key, open, next_index)| CollectSnapshot { key, open, next_index }).collect(),
            // The sessions are the open windows; only the numbering is kept.
            Windower::Session(s) => s.snapshot().into_iter().map(|(key, next_index)| CollectSnapshot { key, open: None, next_index }).collect(),
            Windower::Tumbling(_) | Windower::Sliding(_) => Vec::new(),
        };
        let clock_now = self.clock_now(now);
        PartitionSnapshot {
            format: FORMAT_VERSION,
            claim,
            components,
            accumulator,
            next_offset: self.next_offset,
            windows,
            watermarks: self.clock.snapshot(clock_now).into_iter().map(|(key, watermark)| (self.keys.name(key).to_owned(), watermark)).collect(),
            retired: self.clock.snapshot_retired(clock_now),
            collect,
        }
    }

    /// Takes the state of a checkpoint, at system time `now`. The clock
    /// pauses until the partition's records flow (see `paused_since`).
    pub fn restore(&mut self, snapshot: PartitionSnapshot, now: Timestamp) {
        self.next_offset = snapshot.next_offset;
        let watermarks: Vec<(KeyId, i64)> = snapshot.watermarks.iter().map(|(key, watermark)| (self.keys.intern(key), *watermark)).collect();
        self.clock.restore(&watermarks, &snapshot.retired, now);
        let mut windows = snapshot.windows;
        windows.sort_by(|a, b| (&a.key, a.index).cmp(&(&b.key, b.index)));
        for w in windows {
            if let Windower::Session(s) = &mut self.windower {
                s.restore_session(&w.key, w.index, Timestamp(w.start), Timestamp(w.end));
            }
            let window = OpenWindow { start: Timestamp(w.start), end: Timestamp(w.end), count: w.count, acc: w.acc };
            let id = self.keys.intern(&w.key);
            self.store.restore(id, w.index, window);
        }
        if self.clock.waits_for_events() {
            self.paused_since = Some(now);
        }
        match &mut self.windower {
            Windower::Collect(c) => {
                for s in snapshot.collect {
                    c.restore(&s.key, s.open, s.next_index);
                }
            }
            Windower::Session(w) => {
                for s in snapshot.collect {
                    w.restore_next(&s.key, s.next_index);
                }
            }
            Windower::Tumbling(_) | Windower::Sliding(_) => {}
        }
        for key in self.store.keys() {
            self.reschedule(key);
        }
    }

    fn note_closed(&mut self, closed: &[(WindowId, OpenWindow)]) {
        match &mut self.windower {
            Windower::Collect(c) => {
                for (id, _) in closed {
                    c.closed(&id.key, id.index);
                }
            }
            Windower::Session(s) => {
                for (id, _) in closed {
                    s.closed(&id.key, id.index);
                }
            }
            Windower::Tumbling(_) | Windower::Sliding(_) => {}
        }
    }
}

// The system time at which a window is due to close as things stand.
fn due(keys: &KeyIds, clock: &Clock, windower: &Windower, key: KeyId, index: WindowIndex, window: &OpenWindow) -> i64 {
    match windower {
        Windower::Tumbling(_) | Windower::Sliding(_) => clock.reaches(key, window.end),
        // Bytewax closes a session once the watermark is past its last
        // event by more than the gap.
        Windower::Session(s) => clock.reaches(key, window.end.plus(s.gap().saturating_add(1))),
        Windower::Collect(c) => c.due(keys.name(key), index, window.start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn tumbling(wait: i64) -> WindowOperator {
        WindowOperator::new(ClockSpec::Event { wait_for_system_duration: wait }, WindowSpec::Tumbling { length: 10 * S, align_to: Timestamp(0) })
    }

    fn put(op: &mut WindowOperator, key: &str, time: i64, now: i64) -> Result<Assignment, String> {
        let mut placed = Vec::new();
        let id = op.place(key, Timestamp(time * S), Timestamp(now * S), &mut placed)?;
        for &window in &placed {
            op.absorb(id, window, vec![1], 1);
        }
        Ok(placed[0])
    }

    #[test]
    fn a_key_whose_clock_moves_closes_its_older_window() {
        let mut op = tumbling(0);
        put(&mut op, "a", 1, 0).unwrap();
        assert!(op.close_due(Timestamp(0)).is_empty());
        // An event at 12 s puts a's watermark at 12 s: [0, 10) is due.
        put(&mut op, "a", 12, 0).unwrap();
        let closed = op.close_due(Timestamp(0));
        assert_eq!(closed.iter().map(|(id, _)| id.index).collect::<Vec<_>>(), [0]);
        // And with system time alone, [10, 20) is due 8 s later.
        assert!(op.close_due(Timestamp(7 * S)).is_empty());
        assert_eq!(op.close_due(Timestamp(8 * S)).len(), 1);
    }

    #[test]
    fn a_retired_key_cannot_reopen_a_written_window() {
        let mut op = tumbling(0);
        put(&mut op, "a", 5, 0).unwrap();
        assert_eq!(op.close_due(Timestamp(5 * S)).len(), 1);
        assert_eq!(op.held(), Held { windows: 0, keys: 0, retired: 1, timers: 0 });
        let late = put(&mut op, "a", 9, 5).unwrap_err();
        assert!(late.contains("before the watermark"), "{late}");
        assert_eq!(put(&mut op, "a", 10, 5).unwrap().index, 1);
        assert_eq!(op.held().keys, 1);
    }

    #[test]
    fn a_released_key_id_serves_another_key_without_mixing_their_state() {
        let mut op = tumbling(0);
        put(&mut op, "a", 5, 0).unwrap();
        // a's watermark reaches 10 s at 5 s: its window closes, its id is freed.
        assert_eq!(op.close_due(Timestamp(5 * S)).len(), 1);
        // b takes a's old id; its window is due by its own clock, not a's.
        put(&mut op, "b", 3, 5).unwrap();
        assert!(op.close_due(Timestamp(5 * S)).is_empty());
        let late = put(&mut op, "a", 9, 5).unwrap_err();
        assert!(late.contains("watermark 1970-01-01T00:00:10Z of key `a`"), "{late}");
        let held = op.held();
        assert_eq!((held.windows, held.keys, held.retired), (1, 2, 0));
        assert!(op.close_due(Timestamp(11 * S)).is_empty());
        let closed = op.close_due(Timestamp(12 * S));
        assert_eq!(closed.iter().map(|(id, w)| (id.key.as_str(), w.count)).collect::<Vec<_>>(), [("b", 1)]);
    }

    #[test]
    fn a_restored_operator_closes_its_windows_when_due() {
        let mut op = tumbling(0);
        put(&mut op, "a", 5, 0).unwrap();
        put(&mut op, "b", 2, 0).unwrap();
        op.close_due(Timestamp(0));
        let claim = Claim { epoch: 1, owner: crate::state::checkpoint::Owner::local() };
        let snapshot = op.snapshot(Timestamp(1 * S), Identity { name: "x".into(), version: 1 }, claim, Vec::new());
        let mut back = tumbling(0);
        back.restore(snapshot, Timestamp(100 * S));
        assert_eq!(back.open_windows(), 2);
        // Paused until its records flow: nothing closes on time alone.
        assert!(back.close_due(Timestamp(200 * S)).is_empty());
        back.unpause(Timestamp(200 * S));
        // a's watermark was 6 s, b's 3 s: b is due 7 s later, a 4 s later.
        assert_eq!(back.close_due(Timestamp(204 * S)).iter().map(|(id, _)| id.key.as_str()).collect::<Vec<_>>(), ["a"]);
        assert_eq!(back.close_due(Timestamp(207 * S)).len(), 1);
    }

    #[test]
    fn restored_sessions_merge_and_number_on() {
        let session = || WindowOperator::new(ClockSpec::Event { wait_for_system_duration: 100 * S }, WindowSpec::Session { gap: 10 * S });
        let mut op = session();
        put(&mut op, "a", 0, 0).unwrap();
        put(&mut op, "a", 15, 0).unwrap();
        assert_eq!(op.open_windows(), 2, "15 s apart with a 10 s gap: two sessions");
        let claim = Claim { epoch: 1, owner: crate::state::checkpoint::Owner::local() };
        let snapshot = op.snapshot(Timestamp(S), Identity { name: "x".into(), version: 1 }, claim, Vec::new());
        let mut back = session();
        back.restore(snapshot, Timestamp(S));
        back.unpause(Timestamp(S));
        // 8 s joins the first session and brings it within 10 s of the second.
        assert_eq!(put(&mut back, "a", 8, 1).unwrap().index, 0);
        let merges = back.take_merges();
        assert_eq!(merges, [Merge { key: "a".into(), from: 1, into: 0 }]);
        back.merge(&merges[0], |into, from| Ok([into, from].concat())).unwrap();
        assert_eq!(back.open_windows(), 1);
        let closed = back.close_all();
        let (id, w) = &closed[0];
        assert_eq!((id.index, w.start, w.end, w.count), (0, Timestamp(0), Timestamp(15 * S), 3));
        assert_eq!(w.acc.as_deref(), Some(&[1, 1][..]), "into then from (the helper stores [1] per fold)");
        // Numbering goes on past the restored sessions.
        assert_eq!(put(&mut back, "a", 200, 1).unwrap().index, 2);
    }

    #[test]
    fn a_refused_merge_hands_back_the_later_session() {
        let mut op = WindowOperator::new(ClockSpec::Event { wait_for_system_duration: 100 * S }, WindowSpec::Session { gap: 10 * S });
        put(&mut op, "a", 0, 0).unwrap();
        put(&mut op, "a", 15, 0).unwrap();
        put(&mut op, "a", 8, 0).unwrap();
        let merges = op.take_merges();
        let (id, window, reason) = op.merge(&merges[0], |_, _| Err("no".into())).unwrap_err();
        assert_eq!((id.index, window.count, reason.as_str()), (1, 1, "no"));
        assert_eq!(op.open_windows(), 1, "the earlier session stays");
    }

    #[test]
    fn a_full_collect_window_is_due_at_once() {
        let mut op = WindowOperator::new(ClockSpec::System, WindowSpec::Collect { max_size: 2, timeout: 60 * S });
        put(&mut op, "k", 0, 0).unwrap();
        assert!(op.close_due(Timestamp(0)).is_empty());
        put(&mut op, "k", 0, 0).unwrap();
        assert_eq!(op.close_due(Timestamp(0)).len(), 1);
        put(&mut op, "k", 0, 1).unwrap();
        assert!(op.close_due(Timestamp(60 * S)).is_empty());
        assert_eq!(op.close_due(Timestamp(61 * S)).len(), 1, "timed out");
    }
}
