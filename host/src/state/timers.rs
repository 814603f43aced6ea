//! The timers of a window store, earliest first: when each key with open
//! windows is next due to look at them (system time). One timer a key,
//! for its earliest window: a key's clock moves all its windows' due times
//! together. Timers are never removed early; the store skips one that is
//! no longer its key's (see [`Timer`]).

use crate::keys::KeyId;

/// (due, key). Live while the key is still due at that time as the store
/// last set it: a key's timer is replaced by an earlier one as its clock
/// moves, and the store skips the old one when it comes up.
pub(super) type Timer = (i64, KeyId);

// Due times as unsigned numbers in the same order.
fn ordered(at: i64) -> u64 {
    (at as u64) ^ (1 << 63)
}

/// A radix heap: timers in 65 buckets by the highest bit in which their
/// due time differs from `last`, the latest time a take has reached. Every
/// timer in a bucket is due before every timer in a higher one.
///
/// A replayed file moves event time far faster than system time, so each
/// event makes its key's due time earlier than most others: in a binary
/// heap such a timer climbs from a leaf towards the root, a cache miss a
/// level once the heap outgrows the cache. Here a timer set is appended to
/// its bucket; a take empties the lowest buckets, and moves the timers of
/// the first bucket not all due to lower ones (each timer moves down a
/// bucket at most 64 times in all, and only as its time comes near).
/// Times only move forward: a timer set for before `last` is due at once.
#[derive(Debug)]
pub(super) struct Timers {
    buckets: [Vec<Timer>; 65],
    /// The earliest (ordered) due time in each bucket; `u64::MAX` when empty.
    firsts: [u64; 65],
    last: u64,
    len: usize,
}

impl Default for Timers {
    fn default() -> Self {
        Timers { buckets: std::array::from_fn(|_| Vec::new()), firsts: [u64::MAX; 65], last: 0, len: 0 }
    }
}

impl Timers {
    // Where a timer at (ordered) `at` goes: due at once at `last` or before.
    fn place(&mut self, timer: Timer) {
        let at = ordered(timer.0).max(self.last);
        let bucket = if at == self.last { 0 } else { 64 - (at ^ self.last).leading_zeros() as usize };
        self.buckets[bucket].push(timer);
        self.firsts[bucket] = self.firsts[bucket].min(at);
    }

    /// Sets a timer for `key` at `at`.
    pub(super) fn push(&mut self, at: i64, key: KeyId) {
        self.place((at, key));
        self.len += 1;
    }

    /// Puts back timers [`Timers::take_due`] gave, as they were.
    pub(super) fn put_back(&mut self, timers: Vec<Timer>) {
        for timer in timers {
            self.push(timer.0, timer.1);
        }
    }

    /// Removes and gives every timer due at or before `now` (in no
    /// particular order), live or not.
    pub(super) fn take_due(&mut self, now: i64) -> Vec<Timer> {
        let now = ordered(now);
        let mut due = Vec::new();
        if now < self.last {
            return due;
        }
        loop {
            // Bucket 0 is due at `last`, which is not after `now`.
            due.append(&mut self.buckets[0]);
            self.firsts[0] = u64::MAX;
            let Some(bucket) = (1..65).find(|&b| !self.buckets[b].is_empty()) else { break };
            if self.firsts[bucket] > now {
                break;
            }
            // The earliest timer becomes `last`; the bucket's timers all
            // go to lower buckets.
            self.last = self.firsts[bucket];
            self.firsts[bucket] = u64::MAX;
            let timers = std::mem::take(&mut self.buckets[bucket]);
            for &timer in &timers {
                self.place(timer);
            }
            // Its room, back for the next timers of that bucket.
            self.buckets[bucket] = timers;
            self.buckets[bucket].clear();
        }
        self.len -= due.len();
        due
    }

    /// Keeps only the timers `live` says are, when too many stale ones
    /// have piled up (a pass over them all).
    pub(super) fn retain(&mut self, mut live: impl FnMut(&Timer) -> bool) {
        let last = self.last;
        self.len = 0;
        for (bucket, first) in self.buckets.iter_mut().zip(&mut self.firsts) {
            bucket.retain(|timer| live(timer));
            *first = bucket.iter().map(|timer| ordered(timer.0).max(last)).min().unwrap_or(u64::MAX);
            self.len += bucket.len();
        }
    }

    /// When the earliest timer fires (`i64::MAX` when there is none). It
    /// may be a stale one, whose key's windows have closed or moved.
    pub(super) fn earliest(&self) -> i64 {
        match self.firsts.iter().find(|&&first| first != u64::MAX) {
            Some(&first) => (first ^ (1 << 63)) as i64,
            None => i64::MAX,
        }
    }

    /// Timers held, live and stale.
    pub(super) fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_due_timer_comes_out_and_no_other() {
        let mut timers = Timers::default();
        timers.push(1_000, KeyId(0));
        // Each earlier than all before it.
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

    // Against a sorted list: random times, takes at random moments,
    // timers set before the last take (due at once), times below zero.
    #[test]
    fn takes_give_what_a_sorted_list_would() {
        let mut timers = Timers::default();
        let mut truth: Vec<i64> = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut now = -5_000i64;
        for step in 0..20_000 {
            let r = next();
            if r % 7 == 0 {
                now += (r % 300) as i64;
                let mut due: Vec<i64> = timers.take_due(now).iter().map(|t| t.0).collect();
                due.sort();
                let (mut want, keep): (Vec<i64>, Vec<i64>) = truth.iter().partition(|&&at| at <= now);
                want.sort();
                truth = keep;
                assert_eq!(due, want, "step {step}, now {now}");
                assert_eq!(timers.len(), truth.len());
                // Everything left is due after `now`.
                assert_eq!(timers.earliest(), truth.iter().copied().min().unwrap_or(i64::MAX));
            } else {
                let at = now - 1_000 + (r % 100_000) as i64;
                timers.push(at, KeyId(step));
                truth.push(at);
            }
        }
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
