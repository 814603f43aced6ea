//! Window state the host owns: each open window's accumulator (bytes the
//! fold plugin encodes), its bounds, how many events it has absorbed, and
//! when it is due to close. A plugin never holds window state, so it
//! survives a swap or a restart.

pub mod checkpoint;
mod key_windows;
mod timers;

use crate::Timestamp;
use crate::keys::KeyId;
use key_windows::{KeyWindows, Slot};
use timers::Timers;
use crate::window::WindowIndex;

/// Names one window: its key and index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowId {
    /// The key all its events share.
    pub key: String,
    /// Its index (see [`WindowIndex`]).
    pub index: WindowIndex,
}

/// An open window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenWindow {
    /// First instant in it.
    pub start: Timestamp,
    /// First instant after it.
    pub end: Timestamp,
    /// Events folded in.
    pub count: u64,
    /// The accumulator; `None` until an event has been folded in.
    pub acc: Option<Vec<u8>>,
}

// Sets `key`'s timer earlier if `due` brings one of its windows earlier
// than it is set.
fn set_timer(timers: &mut Timers, key: KeyId, windows: &mut KeyWindows, mut due: impl FnMut(WindowIndex, &OpenWindow) -> i64) {
    let at = windows.iter().map(|slot| due(slot.index, &slot.window)).min().unwrap_or(i64::MAX);
    if at < windows.due {
        windows.due = at;
        timers.push(at, key);
    }
}

/// All open windows, by key id (see [`crate::keys`]), and a timer a key:
/// the system time at which its earliest window is due to close. Closing
/// costs per window closed, not per window open: the timers are a heap
/// ordered by due time.
#[derive(Debug, Default)]
pub struct WindowStore {
    /// Each key's open windows, by key id.
    keys: Vec<KeyWindows>,
    timers: Timers,
    open: usize,
}

impl WindowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn slots(&self, key: KeyId) -> impl Iterator<Item = &Slot> {
        self.keys.get(key.index()).into_iter().flat_map(KeyWindows::iter)
    }

    /// Asks the memory for `key`'s entry, to be read a little later: its
    /// first window and its due time (two lines); then
    /// [`WindowStore::prefetch_windows`] for a second window.
    pub fn prefetch(&self, key: KeyId) {
        if let Some(windows) = self.keys.get(key.index()) {
            crate::fast::prefetch_lines(std::slice::from_ref(windows));
        }
    }

    /// Asks the memory for `key`'s second window, if it has one (reads
    /// its entry: best after [`WindowStore::prefetch`]).
    pub fn prefetch_windows(&self, key: KeyId) {
        if let Some(second) = self.keys.get(key.index()).and_then(KeyWindows::second) {
            crate::fast::prefetch(second);
        }
    }

    /// The window, if open.
    pub fn get(&self, key: KeyId, index: WindowIndex) -> Option<&OpenWindow> {
        self.slots(key).find(|s| s.index == index).map(|s| &s.window)
    }

    /// Takes an open window's accumulator out (it has none until one is
    /// absorbed again).
    pub fn take_acc(&mut self, key: KeyId, index: WindowIndex) -> Option<Vec<u8>> {
        let windows = self.keys.get_mut(key.index())?;
        windows.iter_mut().find(|s| s.index == index)?.window.acc.take()
    }

    /// Stores a window's new accumulator after a fold of `folded` events,
    /// then sets the key's timers as [`WindowStore::schedule`] does.
    #[allow(clippy::too_many_arguments)]
    pub fn absorb(&mut self, key: KeyId, index: WindowIndex, start: Timestamp, end: Timestamp, acc: Vec<u8>, folded: u64, due: impl FnMut(WindowIndex, &OpenWindow) -> i64) {
        let i = self.open_slot(key, index, start, end);
        let windows = &mut self.keys[key.index()];
        let window = &mut windows.get_mut(i).window;
        // A session's bounds move as events join it; other windows keep theirs.
        (window.start, window.end) = (start, end);
        window.acc = Some(acc);
        window.count += folded;
        set_timer(&mut self.timers, key, windows, due);
        self.compact();
    }

    /// Opens a window that events were placed in before their fold is
    /// absorbed (it has no accumulator until then), then sets the key's
    /// timers as [`WindowStore::schedule`] does: so that it is due on time
    /// while its events wait to be folded.
    ///
    /// The holder numbers the windows it holds events for: `round` names
    /// one filling of its buffer (never 0, never reused), and the window
    /// keeps the number it had in that round. Gives the window's number
    /// in `round`, which is `next` if it had none (so the holder needs no
    /// map of its own from windows to numbers).
    #[allow(clippy::too_many_arguments)]
    pub fn hold(&mut self, key: KeyId, index: WindowIndex, start: Timestamp, end: Timestamp, round: u32, next: u32, due: impl FnMut(WindowIndex, &OpenWindow) -> i64) -> u32 {
        let i = self.open_slot(key, index, start, end);
        let windows = &mut self.keys[key.index()];
        let slot = windows.get_mut(i);
        if slot.held.0 != round {
            slot.held = (round, next);
        }
        let number = slot.held.1;
        set_timer(&mut self.timers, key, windows, due);
        self.compact();
        number
    }

    /// Gives an open window the number `number` in hold round `round`
    /// (see [`WindowStore::hold`]): its holder dropped what it folded and
    /// numbered what it still holds afresh. Does nothing to a window not
    /// open.
    pub fn renumber_held(&mut self, key: KeyId, index: WindowIndex, round: u32, number: u32) {
        if let Some(slot) = self.keys.get_mut(key.index()).and_then(|windows| windows.iter_mut().find(|s| s.index == index)) {
            slot.held = (round, number);
        }
    }

    /// When the earliest timer fires (`i64::MAX` when none is set): no
    /// window is due before it. A stale timer may make it early.
    pub fn earliest_due(&self) -> i64 {
        self.timers.earliest()
    }

    // The position of window `index` among `key`'s slots, opened (empty,
    // not scheduled) when it was not.
    fn open_slot(&mut self, key: KeyId, index: WindowIndex, start: Timestamp, end: Timestamp) -> usize {
        if self.keys.len() <= key.index() {
            self.keys.resize_with(key.index() + 1, KeyWindows::default);
        }
        let windows = &mut self.keys[key.index()];
        match windows.position(index) {
            Some(i) => i,
            None => {
                self.open += 1;
                windows.push(Slot { index, window: OpenWindow { start, end, count: 0, acc: None }, held: (0, 0) })
            }
        }
    }

    /// Sets the timers of `key`'s open windows to what `due` says (system
    /// time, microseconds) where that is earlier than they are set to.
    pub fn schedule(&mut self, key: KeyId, due: impl FnMut(WindowIndex, &OpenWindow) -> i64) {
        let Some(windows) = self.keys.get_mut(key.index()) else { return };
        set_timer(&mut self.timers, key, windows, due);
        self.compact();
    }

    /// The held groups of round `round` (see [`WindowStore::hold`]) whose
    /// windows are due at `now`, as `due` (the true due time now)
    /// confirms: their events are to be folded before
    /// [`WindowStore::close_due`] closes them. The timers of keys with a
    /// window due are put back as they were, for `close_due`; a key found
    /// early is set to its windows' earliest true time and a stale timer is
    /// dropped, as `close_due` would. Each window given leaves the round: a
    /// later event of it in that round would get a new number.
    pub fn due_held(&mut self, now: i64, round: u32, mut due: impl FnMut(KeyId, WindowIndex, &OpenWindow) -> i64) -> Vec<u32> {
        let (mut groups, mut back) = (Vec::new(), Vec::new());
        for timer in self.timers.take_due(now) {
            let (at, key) = timer;
            let Some(windows) = self.keys.get_mut(key.index()).filter(|windows| windows.due == at) else { continue };
            let (mut any, mut later) = (false, i64::MAX);
            for slot in windows.iter_mut() {
                let truly = due(key, slot.index, &slot.window);
                if truly > now {
                    later = later.min(truly);
                    continue;
                }
                any = true;
                // Its held events are folded now and it closes: it leaves
                // the round, so no later event joins the group folded.
                if slot.held.0 == round {
                    groups.push(slot.held.1);
                    slot.held = (0, 0);
                }
            }
            if any {
                back.push(timer);
            } else {
                windows.due = later;
                if later != i64::MAX {
                    self.timers.push(later, key);
                }
            }
        }
        self.timers.put_back(back);
        groups
    }

    /// Removes and returns the windows whose keys' timers are at or before
    /// `now` and that `due` (the true due time now) confirms; a key whose
    /// windows are not all due is set to the earliest true time of the
    /// rest. In no particular order (the caller orders what all
    /// partitions closed). Also says which keys have no window left.
    pub fn close_due(&mut self, now: i64, mut due: impl FnMut(KeyId, WindowIndex, &OpenWindow) -> i64) -> (Vec<(KeyId, WindowIndex, OpenWindow)>, Vec<KeyId>) {
        let (mut closed, mut emptied) = (Vec::new(), Vec::new());
        for (at, key) in self.timers.take_due(now) {
            let Some(windows) = self.keys.get_mut(key.index()).filter(|windows| windows.due == at) else { continue };
            let (mut i, mut later) = (0, i64::MAX);
            while i < windows.len() {
                let slot = windows.get_mut(i);
                let truly = due(key, slot.index, &slot.window);
                if truly > now {
                    later = later.min(truly);
                    i += 1;
                    continue;
                }
                let slot = windows.swap_remove(i);
                self.open -= 1;
                closed.push((key, slot.index, slot.window));
            }
            windows.due = later;
            if later != i64::MAX {
                self.timers.push(later, key);
            } else if windows.is_empty() {
                emptied.push(key);
            }
        }
        (closed, emptied)
    }

    /// Removes a window before it is due (a session merged into another);
    /// its timer is skipped when it comes up.
    pub fn remove(&mut self, key: KeyId, index: WindowIndex) -> Option<OpenWindow> {
        let windows = self.keys.get_mut(key.index())?;
        let i = windows.position(index)?;
        self.open -= 1;
        Some(windows.swap_remove(i).window)
    }

    /// Removes and returns every window (in no particular order).
    pub fn close_all(&mut self) -> Vec<(KeyId, WindowIndex, OpenWindow)> {
        let ids = (0..).map(KeyId);
        let closed: Vec<_> = ids
            .zip(self.keys.iter_mut())
            .flat_map(|(key, windows)| {
                windows.due = i64::MAX;
                windows.take_all().map(move |s| (key, s.index, s.window))
            })
            .collect();
        self.timers = Timers::default();
        self.open = 0;
        closed
    }

    /// Every open window, for a checkpoint.
    pub fn iter(&self) -> impl Iterator<Item = (KeyId, WindowIndex, &OpenWindow)> {
        let ids = (0..).map(KeyId);
        ids.zip(&self.keys).flat_map(|(key, windows)| windows.iter().map(move |s| (key, s.index, &s.window)))
    }

    /// Every key with an open window, to schedule after a restore.
    pub fn keys(&self) -> Vec<KeyId> {
        let ids = (0..).map(KeyId);
        ids.zip(&self.keys).filter(|(_, windows)| !windows.is_empty()).map(|(key, _)| key).collect()
    }

    /// Whether `key` has an open window.
    pub fn holds(&self, key: KeyId) -> bool {
        self.slots(key).next().is_some()
    }

    /// Every open window's accumulator, to rewrite in place (a migration).
    pub fn accs_mut(&mut self) -> impl Iterator<Item = &mut Vec<u8>> {
        self.keys.iter_mut().flat_map(|windows| windows.iter_mut().filter_map(|s| s.window.acc.as_mut()))
    }

    /// Puts back a window from a checkpoint (due when scheduled).
    pub fn restore(&mut self, key: KeyId, index: WindowIndex, window: OpenWindow) {
        if self.keys.len() <= key.index() {
            self.keys.resize_with(key.index() + 1, KeyWindows::default);
        }
        let windows = &mut self.keys[key.index()];
        if let Some(i) = windows.position(index) {
            windows.swap_remove(i);
            self.open -= 1;
        }
        windows.push(Slot { index, window, held: (0, 0) });
        self.open += 1;
    }

    /// How many windows are open.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.open == 0
    }

    /// Timers waiting in the heap (live and stale).
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    // Stale timers pile up while keys' clocks move their windows earlier;
    // past four per open window, only the live ones are kept.
    fn compact(&mut self) {
        if self.timers.len() <= 4 * self.open + 1024 {
            return;
        }
        let keys = &self.keys;
        self.timers.retain(|&(at, key)| keys.get(key.index()).is_some_and(|windows| windows.due == at));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: KeyId = KeyId(0);
    const B: KeyId = KeyId(1);

    // Due when system time reaches the window's end.
    fn at_end(_: KeyId, _: WindowIndex, w: &OpenWindow) -> i64 {
        w.end.0
    }

    #[test]
    fn absorbs_and_closes_in_order() {
        let mut store = WindowStore::new();
        store.absorb(B, 0, Timestamp(0), Timestamp(10), vec![1], 2, |_, w| w.end.0);
        store.absorb(A, 1, Timestamp(10), Timestamp(20), vec![2], 1, |_, w| w.end.0);
        store.absorb(A, 0, Timestamp(0), Timestamp(10), vec![3], 1, |_, w| w.end.0);
        store.absorb(A, 0, Timestamp(0), Timestamp(10), vec![4], 2, |_, w| w.end.0);
        assert_eq!(store.get(A, 0).unwrap().count, 3);
        assert_eq!(store.get(A, 0).unwrap().acc, Some(vec![4]));
        let (mut closed, emptied) = store.close_due(10, at_end);
        closed.sort_by_key(|(key, index, _)| (*key, *index));
        let order: Vec<_> = closed.iter().map(|(key, index, _)| (*key, *index)).collect();
        assert_eq!(order, [(A, 0), (B, 0)]);
        assert_eq!(emptied, [B]);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_held_window_keeps_its_number_for_its_round_only() {
        let mut store = WindowStore::new();
        let never = |_: WindowIndex, _: &OpenWindow| i64::MAX;
        assert_eq!(store.hold(A, 0, Timestamp(0), Timestamp(10), 7, 0, never), 0);
        assert_eq!(store.hold(B, 0, Timestamp(0), Timestamp(10), 7, 1, never), 1);
        assert_eq!(store.hold(A, 0, Timestamp(0), Timestamp(10), 7, 2, never), 0, "the same window, the same round");
        assert_eq!(store.hold(A, 1, Timestamp(10), Timestamp(20), 7, 2, never), 2, "another window of the key");
        // A fold absorbs what was held; the next round numbers afresh.
        store.absorb(A, 0, Timestamp(0), Timestamp(10), vec![1], 2, never);
        assert_eq!(store.hold(A, 0, Timestamp(0), Timestamp(10), 8, 0, never), 0);
        assert_eq!(store.hold(B, 0, Timestamp(0), Timestamp(10), 8, 1, never), 1);
        assert_eq!(store.get(A, 0).unwrap().acc, Some(vec![1]), "holding leaves the accumulator");
        assert_eq!(store.take_acc(A, 0), Some(vec![1]));
        assert_eq!((store.get(A, 0).unwrap().acc.as_ref(), store.len()), (None, 3), "taken, the window stays open");
    }

    #[test]
    fn a_timer_set_early_is_checked_and_a_later_one_is_skipped() {
        let mut store = WindowStore::new();
        store.absorb(A, 0, Timestamp(0), Timestamp(10), vec![1], 1, |_, _| i64::MAX);
        // Scheduled for 5, but truly due at 10 (the clock paused).
        store.schedule(A, |_, _| 5);
        let (closed, _) = store.close_due(7, at_end);
        assert!(closed.is_empty());
        assert_eq!(store.len(), 1);
        // Moved earlier: the old timer at 10 is stale, the new one fires.
        store.schedule(A, |_, _| 8);
        let (closed, _) = store.close_due(9, |_, _, _| 8);
        assert_eq!(closed.len(), 1);
        assert!(store.is_empty());
        let (closed, _) = store.close_due(100, at_end);
        assert!(closed.is_empty(), "the stale timers of a closed window fire nothing");
    }

    #[test]
    fn a_key_due_closes_only_its_windows_due_and_waits_for_the_rest() {
        let mut store = WindowStore::new();
        store.absorb(A, 0, Timestamp(0), Timestamp(10), vec![1], 1, |_, w| w.end.0);
        store.absorb(A, 1, Timestamp(10), Timestamp(20), vec![2], 1, |_, w| w.end.0);
        let (closed, emptied) = store.close_due(15, at_end);
        assert_eq!((closed.len(), closed[0].1, emptied.len()), (1, 0, 0));
        assert_eq!(store.timers(), 1, "one timer, for the window left");
        let (closed, _) = store.close_due(19, at_end);
        assert!(closed.is_empty());
        let (closed, emptied) = store.close_due(20, at_end);
        assert_eq!((closed.len(), closed[0].1, emptied), (1, 1, vec![A]));
    }

    #[test]
    fn cost_follows_windows_due_not_windows_open() {
        let mut store = WindowStore::new();
        for key in 0..10_000u32 {
            let digits = key.to_string().len() as i64;
            store.absorb(KeyId(key), 0, Timestamp(0), Timestamp(1_000 + digits), vec![], 1, |_, w| w.end.0);
        }
        let mut looked = 0;
        let (closed, _) = store.close_due(999, |_, _, w| {
            looked += 1;
            w.end.0
        });
        assert!(closed.is_empty());
        assert_eq!(looked, 0, "nothing due: no window looked at");
        let (closed, _) = store.close_due(1_001, |_, _, w| w.end.0);
        assert_eq!(closed.len(), 10, "the ten one-digit keys");
    }
}
