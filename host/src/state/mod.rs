//! Window state the host owns: each open window's accumulator (bytes the
//! fold plugin encodes), its bounds, how many events it has absorbed, and
//! when it is due to close. A plugin never holds window state, so it
//! survives a swap or a restart.

pub mod checkpoint;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::Timestamp;
use crate::fast::{FastMap, Key};
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

// The open windows of one key.
#[derive(Debug)]
struct KeyWindows {
    key: Key,
    slots: Vec<Slot>,
}

// Sets timers of `windows` that `due` brings earlier.
fn set_timers(timers: &mut BinaryHeap<Timer>, sequence: &mut u64, windows: &mut KeyWindows, mut due: impl FnMut(WindowIndex, &OpenWindow) -> i64) {
    for slot in windows.slots.iter_mut() {
        let at = due(slot.index, &slot.window);
        if at < slot.due {
            slot.due = at;
            *sequence += 1;
            timers.push(Reverse((at, *sequence, windows.key.clone(), slot.index)));
        }
    }
}

// A window and the system time it is due to close, as last scheduled.
#[derive(Debug)]
struct Slot {
    index: WindowIndex,
    window: OpenWindow,
    due: i64,
}

// A timer: (due, sequence, key, index). The sequence number is unique, so
// timers due at the same instant (many are due at once) are ordered
// without comparing keys. Timers are never removed from the heap; one
// whose window has closed or been rescheduled is skipped when it comes up.
type Timer = Reverse<(i64, u64, Key, WindowIndex)>;

/// All open windows, by key, each with a timer: the system time at which
/// it is due to close. Closing costs per window closed, not per window
/// open: the timers are a heap ordered by due time.
#[derive(Debug, Default)]
pub struct WindowStore {
    keys: FastMap<Key, KeyWindows>,
    timers: BinaryHeap<Timer>,
    sequence: u64,
    open: usize,
}

impl WindowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The window, if open.
    pub fn get(&self, key: &str, index: WindowIndex) -> Option<&OpenWindow> {
        self.keys.get(key)?.slots.iter().find(|s| s.index == index).map(|s| &s.window)
    }

    /// Stores a window's new accumulator after a fold of `folded` events,
    /// then sets the key's timers as [`WindowStore::schedule`] does.
    #[allow(clippy::too_many_arguments)]
    pub fn absorb(&mut self, key: &str, index: WindowIndex, start: Timestamp, end: Timestamp, acc: Vec<u8>, folded: u64, due: impl FnMut(WindowIndex, &OpenWindow) -> i64) {
        let windows = match self.keys.get_mut(key) {
            Some(windows) => windows,
            None => {
                let key = Key::new(key);
                self.keys.entry(key.clone()).or_insert(KeyWindows { key, slots: Vec::new() })
            }
        };
        let slot = match windows.slots.iter().position(|s| s.index == index) {
            Some(i) => &mut windows.slots[i],
            None => {
                self.open += 1;
                windows.slots.push(Slot { index, window: OpenWindow { start, end, count: 0, acc: None }, due: i64::MAX });
                windows.slots.last_mut().expect("pushed")
            }
        };
        // A session's bounds move as events join it; other windows keep theirs.
        (slot.window.start, slot.window.end) = (start, end);
        slot.window.acc = Some(acc);
        slot.window.count += folded;
        set_timers(&mut self.timers, &mut self.sequence, windows, due);
        self.compact();
    }

    /// Sets the timers of `key`'s open windows to what `due` says (system
    /// time, microseconds) where that is earlier than they are set to.
    pub fn schedule(&mut self, key: &str, due: impl FnMut(WindowIndex, &OpenWindow) -> i64) {
        let Some(windows) = self.keys.get_mut(key) else { return };
        set_timers(&mut self.timers, &mut self.sequence, windows, due);
        self.compact();
    }

    /// Removes and returns the windows whose timers are at or before `now`
    /// and that `due` (the true due time now) confirms; a window found not
    /// yet due is set to its true time. In no particular order (the caller
    /// orders what all partitions closed). Also says which keys have no
    /// window left.
    pub fn close_due(&mut self, now: i64, mut due: impl FnMut(&str, WindowIndex, &OpenWindow) -> i64) -> (Vec<(WindowId, OpenWindow)>, Vec<Key>) {
        let (mut closed, mut emptied) = (Vec::new(), Vec::new());
        let mut later = Vec::new();
        while let Some(Reverse((at, _, _, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            let Reverse((at, _, key, index)) = self.timers.pop().expect("peeked");
            let Some(KeyWindows { slots, .. }) = self.keys.get_mut(&key) else { continue };
            let Some(i) = slots.iter().position(|s| s.index == index && s.due == at) else { continue };
            let truly = due(&key, index, &slots[i].window);
            if truly > now {
                slots[i].due = truly;
                self.sequence += 1;
                later.push(Reverse((truly, self.sequence, key, index)));
                continue;
            }
            let slot = slots.swap_remove(i);
            self.open -= 1;
            if slots.is_empty() {
                self.keys.remove(&key);
                emptied.push(key.clone());
            }
            closed.push((WindowId { key: key.to_string(), index }, slot.window));
        }
        self.timers.extend(later);
        (closed, emptied)
    }

    /// Removes a window before it is due (a session merged into another);
    /// its timer is skipped when it comes up.
    pub fn remove(&mut self, key: &str, index: WindowIndex) -> Option<OpenWindow> {
        let windows = self.keys.get_mut(key)?;
        let i = windows.slots.iter().position(|s| s.index == index)?;
        let slot = windows.slots.swap_remove(i);
        if windows.slots.is_empty() {
            self.keys.remove(key);
        }
        self.open -= 1;
        Some(slot.window)
    }

    /// Removes and returns every window (in no particular order).
    pub fn close_all(&mut self) -> Vec<(WindowId, OpenWindow)> {
        let closed: Vec<_> = self
            .keys
            .drain()
            .flat_map(|(key, windows)| windows.slots.into_iter().map(move |s| (WindowId { key: key.to_string(), index: s.index }, s.window)))
            .collect();
        self.timers.clear();
        self.open = 0;
        closed
    }

    /// Every open window, for a checkpoint.
    pub fn iter(&self) -> impl Iterator<Item = (&str, WindowIndex, &OpenWindow)> {
        self.keys.iter().flat_map(|(key, windows)| windows.slots.iter().map(move |s| (&**key, s.index, &s.window)))
    }

    /// Every open window's key, to schedule after a restore.
    pub fn keys(&self) -> Vec<Key> {
        self.keys.keys().cloned().collect()
    }

    /// Every open window's accumulator, to rewrite in place (a migration).
    pub fn accs_mut(&mut self) -> impl Iterator<Item = &mut Vec<u8>> {
        self.keys.values_mut().flat_map(|windows| windows.slots.iter_mut().filter_map(|s| s.window.acc.as_mut()))
    }

    /// Puts back a window from a checkpoint (due when scheduled).
    pub fn restore(&mut self, key: &str, index: WindowIndex, window: OpenWindow) {
        let key = Key::new(key);
        let windows = self.keys.entry(key.clone()).or_insert(KeyWindows { key, slots: Vec::new() });
        windows.slots.retain(|s| s.index != index);
        windows.slots.push(Slot { index, window, due: i64::MAX });
        self.open = self.keys.values().map(|w| w.slots.len()).sum();
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
    // past four per open window, the heap is rebuilt from the live ones.
    fn compact(&mut self) {
        if self.timers.len() <= 4 * self.open + 1024 {
            return;
        }
        let mut sequence = self.sequence;
        self.timers = self
            .keys
            .iter()
            .flat_map(|(key, windows)| windows.slots.iter().filter(|s| s.due != i64::MAX).map(move |s| (s.due, key.clone(), s.index)))
            .map(|(due, key, index)| {
                sequence += 1;
                Reverse((due, sequence, key, index))
            })
            .collect();
        self.sequence = sequence;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Due when system time reaches the window's end.
    fn at_end(_: &str, _: WindowIndex, w: &OpenWindow) -> i64 {
        w.end.0
    }

    #[test]
    fn absorbs_and_closes_in_order() {
        let mut store = WindowStore::new();
        store.absorb("b", 0, Timestamp(0), Timestamp(10), vec![1], 2, |_, w| w.end.0);
        store.absorb("a", 1, Timestamp(10), Timestamp(20), vec![2], 1, |_, w| w.end.0);
        store.absorb("a", 0, Timestamp(0), Timestamp(10), vec![3], 1, |_, w| w.end.0);
        store.absorb("a", 0, Timestamp(0), Timestamp(10), vec![4], 2, |_, w| w.end.0);
        assert_eq!(store.get("a", 0).unwrap().count, 3);
        assert_eq!(store.get("a", 0).unwrap().acc, Some(vec![4]));
        let (mut closed, emptied) = store.close_due(10, at_end);
        closed.sort_by(|(a, _), (b, _)| a.cmp(b));
        let order: Vec<_> = closed.iter().map(|(id, _)| (id.key.as_str(), id.index)).collect();
        assert_eq!(order, [("a", 0), ("b", 0)]);
        assert_eq!(emptied.iter().map(|k| &**k).collect::<Vec<_>>(), ["b"]);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_timer_set_early_is_checked_and_a_later_one_is_skipped() {
        let mut store = WindowStore::new();
        store.absorb("a", 0, Timestamp(0), Timestamp(10), vec![1], 1, |_, _| i64::MAX);
        // Scheduled for 5, but truly due at 10 (the clock paused).
        store.schedule("a", |_, _| 5);
        let (closed, _) = store.close_due(7, at_end);
        assert!(closed.is_empty());
        assert_eq!(store.len(), 1);
        // Moved earlier: the old timer at 10 is stale, the new one fires.
        store.schedule("a", |_, _| 8);
        let (closed, _) = store.close_due(9, |_, _, _| 8);
        assert_eq!(closed.len(), 1);
        assert!(store.is_empty());
        let (closed, _) = store.close_due(100, at_end);
        assert!(closed.is_empty(), "the stale timers of a closed window fire nothing");
    }

    #[test]
    fn cost_follows_windows_due_not_windows_open() {
        let mut store = WindowStore::new();
        for key in 0..10_000 {
            let key = key.to_string();
            store.absorb(&key, 0, Timestamp(0), Timestamp(1_000 + key.len() as i64), vec![], 1, |_, w| w.end.0);
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
