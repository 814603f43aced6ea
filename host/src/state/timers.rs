//! The timers of a window store, earliest first: when each key with open
//! windows is next due to look at them (system time). One timer a key,
//! for its earliest window: a key's clock moves all its windows' due times
//! together. Timers are never removed early; the store skips one that is
//! no longer its key's (see [`Timer`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::keys::KeyId;

/// (due, key). Live while the key is still due at that time as the store
/// last set it: a key's timer is replaced by an earlier one as its clock
/// moves, and the store skips the old one when it comes up.
pub(super) type Timer = (i64, KeyId);

/// A heap ordered by due time, and the timers set earlier than all of it.
///
/// A replayed file moves event time far faster than system time, so each
/// event makes its key's due time earlier than every other: pushed onto the
/// heap, such a timer would climb from a leaf to the root, a cache miss a
/// level once the heap outgrows the cache. Those wait unsorted in `early`
/// (looked through only when one of them is due) and go into the heap in
/// bulk, a linear rebuild, once there are half as many as in the heap.
#[derive(Debug)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<Timer>>,
    early: Vec<Timer>,
    /// The earliest due time in `early` (`i64::MAX` when empty).
    early_first: i64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { heap: BinaryHeap::new(), early: Vec::new(), early_first: i64::MAX }
    }
}

impl Timers {
    /// Sets a timer for `key` at `at`.
    pub(super) fn push(&mut self, at: i64, key: KeyId) {
        let timer = (at, key);
        match self.heap.peek() {
            Some(Reverse(first)) if at < first.0 => {
                self.early_first = self.early_first.min(at);
                self.early.push(timer);
                if self.early.len() > 1024 + self.heap.len() / 2 {
                    self.merge();
                }
            }
            _ => self.heap.push(Reverse(timer)),
        }
    }

    /// Puts back timers [`Timers::take_due`] gave, as they were.
    pub(super) fn put_back(&mut self, timers: Vec<Timer>) {
        self.heap.extend(timers.into_iter().map(Reverse));
    }

    /// Removes and gives every timer due at or before `now` (in no
    /// particular order), live or not.
    pub(super) fn take_due(&mut self, now: i64) -> Vec<Timer> {
        let mut due = Vec::new();
        if self.early_first <= now {
            let mut first = i64::MAX;
            self.early.retain(|&timer| {
                if timer.0 <= now {
                    due.push(timer);
                    return false;
                }
                first = first.min(timer.0);
                true
            });
            self.early_first = first;
        }
        while self.heap.peek().is_some_and(|Reverse(timer)| timer.0 <= now) {
            due.push(self.heap.pop().expect("peeked").0);
        }
        due
    }

    /// Keeps only the timers `live` says are (a linear pass and a linear
    /// rebuild, when too many stale ones have piled up).
    pub(super) fn retain(&mut self, mut live: impl FnMut(&Timer) -> bool) {
        let mut all = std::mem::take(&mut self.heap).into_vec();
        all.extend(self.early.drain(..).map(Reverse));
        all.retain(|Reverse(timer)| live(timer));
        self.heap = BinaryHeap::from(all);
        self.early_first = i64::MAX;
    }

    /// When the earliest timer fires (`i64::MAX` when there is none). It
    /// may be a stale one, whose key's windows have closed or moved.
    pub(super) fn earliest(&self) -> i64 {
        self.heap.peek().map_or(i64::MAX, |Reverse(first)| first.0).min(self.early_first)
    }

    /// Timers held, live and stale.
    pub(super) fn len(&self) -> usize {
        self.heap.len() + self.early.len()
    }

    fn merge(&mut self) {
        self.retain(|_| true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_due_timer_comes_out_whether_early_or_in_the_heap() {
        let mut timers = Timers::default();
        timers.push(1_000, KeyId(0));
        // Each earlier than all before it: these wait in `early`, then go
        // into the heap in bulk.
        for at in (0..3_000).rev() {
            timers.push(at, KeyId(1));
        }
        assert_eq!(timers.len(), 3_001);
        let mut due: Vec<i64> = timers.take_due(499).iter().map(|t| t.0).collect();
        due.sort();
        assert_eq!(due, (0..500).collect::<Vec<_>>());
        let due = timers.take_due(1_000);
        assert_eq!(due.len(), 502, "500..=1,000 and the first timer, also at 1,000");
        assert_eq!(timers.take_due(i64::MAX).len(), 1_999);
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn a_retain_keeps_only_the_timers_said_live() {
        let mut timers = Timers::default();
        timers.push(5, KeyId(0));
        timers.push(3, KeyId(0));
        timers.push(4, KeyId(1));
        timers.retain(|&(at, key)| (at, key) != (5, KeyId(0)));
        assert_eq!(timers.len(), 2);
        let mut due = timers.take_due(10);
        due.sort();
        assert_eq!(due, [(3, KeyId(0)), (4, KeyId(1))]);
    }
}
