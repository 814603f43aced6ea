use super::Arrival;
use crate::Timestamp;
use crate::fast::{FastMap, stable_hash};
use crate::keys::KeyId;

/// Bytewax's event clock, per key: the watermark is the largest event time
/// seen minus `wait_for_system_duration`, plus the system time elapsed since
/// that event was seen. So a key that goes quiet still sees its watermark
/// advance and its windows close. The watermark never goes backwards.
///
/// Keys are named by their operator's [`KeyId`]s (their names are only
/// needed for retired keys). A key with nothing open can be *retired*
/// ([`EventClock::retire`]): its entry is dropped and only its watermark's
/// offset from system time stays, under a 64-bit hash of the key (16 bytes
/// a key). When the key comes back, under whatever id, its watermark is
/// exactly what it would have been, so an event behind it is still late,
/// and a window already written is never opened again.
#[derive(Debug, Clone)]
pub struct EventClock {
    wait: i64,
    /// By key id; [`KeyTime::NONE`] for an id with no entry (new, or
    /// retired). Sixteen bytes, four to a cache line: with many keys each
    /// event's entry is a miss, and one never spans two lines.
    keys: Vec<KeyTime>,
    /// Retired keys: watermark minus system time, by [`stable_hash`] of the key.
    retired: FastMap<u64, i64>,
}

#[derive(Debug, Clone, Copy)]
#[repr(align(16))]
struct KeyTime {
    /// Watermark at system time `seen_at`.
    base: i64,
    seen_at: i64,
}

impl KeyTime {
    // No entry (system time is never `i64::MIN`).
    const NONE: KeyTime = KeyTime { base: 0, seen_at: i64::MIN };

    fn get(self) -> Option<KeyTime> {
        (self.seen_at != i64::MIN).then_some(self)
    }

    fn watermark(self, now: Timestamp) -> Timestamp {
        Timestamp(self.base.saturating_add(now.0.saturating_sub(self.seen_at).max(0)))
    }

    // The system time at which the watermark reaches `time`.
    fn reaches(self, time: Timestamp) -> i64 {
        if time.0 <= self.base { i64::MIN } else { self.seen_at.saturating_add(time.0.saturating_sub(self.base)) }
    }
}

impl EventClock {
    /// A clock that waits `wait_micros` of system time for late events.
    pub fn new(wait_micros: i64) -> Self {
        EventClock { wait: wait_micros, keys: Vec::new(), retired: FastMap::default() }
    }

    /// Places an event of key `name` (id `key`); it is late when its time
    /// is below the key's watermark, and late events do not move the
    /// watermark.
    pub fn arrive(&mut self, key: KeyId, name: &str, time: Timestamp, now: Timestamp) -> Arrival {
        let candidate = time.0.saturating_sub(self.wait);
        if self.keys.len() <= key.index() {
            self.keys.resize(key.index() + 1, KeyTime::NONE);
        }
        let k = &mut self.keys[key.index()];
        if k.get().is_none() {
            // New, or retired: a retired key comes back where its
            // watermark has got to.
            let back = if self.retired.is_empty() { None } else { self.retired.remove(&stable_hash(name)) };
            *k = match back {
                Some(offset) => KeyTime { base: now.0.saturating_add(offset), seen_at: now.0 },
                None => KeyTime { base: candidate, seen_at: now.0 },
            };
        }
        let watermark = k.watermark(now);
        if time < watermark {
            return Arrival::Late { time, watermark };
        }
        *k = KeyTime { base: candidate.max(watermark.0), seen_at: now.0 };
        Arrival::OnTime(time)
    }

    /// Asks the memory for key `key`'s entry, to be read a little later.
    pub fn prefetch(&self, key: KeyId) {
        if let Some(entry) = self.keys.get(key.index()) {
            crate::fast::prefetch(entry);
        }
    }

    fn entry(&self, key: KeyId) -> Option<KeyTime> {
        self.keys.get(key.index()).and_then(|k| k.get())
    }

    /// The watermark of key `name` (id `key`, whether it holds one or is
    /// retired) at system time `now`.
    pub fn watermark(&self, key: KeyId, name: &str, now: Timestamp) -> Option<Timestamp> {
        match self.entry(key) {
            Some(k) => Some(k.watermark(now)),
            None => self.retired.get(&stable_hash(name)).map(|offset| Timestamp(now.0.saturating_add(*offset))),
        }
    }

    /// The system time at which `key`'s watermark reaches `time` (`None`
    /// for a key with no entry): a timer for a window ending at `time`.
    /// Only an event of the key can bring it earlier.
    pub fn reaches(&self, key: KeyId, time: Timestamp) -> Option<i64> {
        self.entry(key).map(|k| k.reaches(time))
    }

    /// Drops the entry of key `name` (id `key`), keeping only its
    /// watermark's offset from system time (see the type's docs). `now` is
    /// the clock's system time.
    pub fn retire(&mut self, key: KeyId, name: &str, now: Timestamp) {
        if let Some(k) = self.keys.get_mut(key.index()).and_then(|k| std::mem::replace(k, KeyTime::NONE).get()) {
            self.retired.insert(stable_hash(name), k.watermark(now).0.saturating_sub(now.0));
        }
    }

    /// Keys with an entry, and keys retired.
    pub fn key_counts(&self) -> (usize, usize) {
        (self.keys.iter().filter_map(|k| k.get()).count(), self.retired.len())
    }

    /// Every key's watermark at `now`, by key id, for a checkpoint.
    pub fn snapshot(&self, now: Timestamp) -> Vec<(KeyId, i64)> {
        let ids = (0..).map(KeyId);
        ids.zip(&self.keys).filter_map(|(id, k)| k.get().map(|k| (id, k.watermark(now).0))).collect()
    }

    /// Every retired key's watermark at `now`, by key hash, for a checkpoint.
    pub fn snapshot_retired(&self, now: Timestamp) -> Vec<(u64, i64)> {
        self.retired.iter().map(|(hash, offset)| (*hash, now.0.saturating_add(*offset))).collect()
    }

    /// Resumes after a pause that began at system time `paused_at`: each
    /// key's watermark is where it was then, and advances from `now`.
    pub fn resume(&mut self, paused_at: Timestamp, now: Timestamp) {
        for k in self.keys.iter_mut().filter(|k| k.get().is_some()) {
            *k = KeyTime { base: k.watermark(paused_at).0, seen_at: now.0 };
        }
        let paused = now.0.saturating_sub(paused_at.0);
        for offset in self.retired.values_mut() {
            *offset = offset.saturating_sub(paused);
        }
    }

    /// Restores watermarks from a checkpoint (live keys by the ids their
    /// operator gave them). Time the process was down does not count as
    /// elapsed: the watermark resumes where it was, so replayed records
    /// find the windows they belong to still open.
    pub fn restore(&mut self, watermarks: &[(KeyId, i64)], retired: &[(u64, i64)], now: Timestamp) {
        for &(key, watermark) in watermarks {
            if self.keys.len() <= key.index() {
                self.keys.resize(key.index() + 1, KeyTime::NONE);
            }
            self.keys[key.index()] = KeyTime { base: watermark, seen_at: now.0 };
        }
        for (hash, watermark) in retired {
            self.retired.insert(*hash, watermark.saturating_sub(now.0));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    const A: KeyId = KeyId(0);
    const B: KeyId = KeyId(1);

    #[test]
    fn watermark_trails_the_largest_event_by_the_wait() {
        let mut clock = EventClock::new(10 * S);
        assert_eq!(clock.watermark(A, "a", Timestamp(0)), None);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(0));
        assert_eq!(clock.watermark(A, "a", Timestamp(0)), Some(Timestamp(90 * S)));
        // An older event within the wait is on time and moves nothing.
        assert_eq!(clock.arrive(A, "a", Timestamp(95 * S), Timestamp(0)), Arrival::OnTime(Timestamp(95 * S)));
        assert_eq!(clock.watermark(A, "a", Timestamp(0)), Some(Timestamp(90 * S)));
    }

    #[test]
    fn watermark_advances_with_system_time_without_new_data() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(1_000 * S));
        assert_eq!(clock.watermark(A, "a", Timestamp(1_004 * S)), Some(Timestamp(94 * S)));
        assert_eq!(clock.watermark(A, "a", Timestamp(1_030 * S)), Some(Timestamp(120 * S)));
    }

    #[test]
    fn watermark_with_new_data_never_goes_back() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(0));
        // 50 s of system time pass: watermark 140 s. A new maximum of 120 s
        // would put it at 110 s; it stays at 140 s.
        clock.arrive(A, "a", Timestamp(145 * S), Timestamp(50 * S));
        assert_eq!(clock.watermark(A, "a", Timestamp(50 * S)), Some(Timestamp(140 * S)));
        clock.arrive(A, "a", Timestamp(200 * S), Timestamp(50 * S));
        assert_eq!(clock.watermark(A, "a", Timestamp(50 * S)), Some(Timestamp(190 * S)));
    }

    #[test]
    fn late_items_are_named_and_do_not_move_the_watermark() {
        let mut clock = EventClock::new(0);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(0));
        let late = clock.arrive(A, "a", Timestamp(99 * S), Timestamp(0));
        assert_eq!(late, Arrival::Late { time: Timestamp(99 * S), watermark: Timestamp(100 * S) });
        assert_eq!(clock.watermark(A, "a", Timestamp(0)), Some(Timestamp(100 * S)));
    }

    #[test]
    fn keys_keep_their_own_time() {
        let mut clock = EventClock::new(0);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(0));
        assert_eq!(clock.arrive(B, "b", Timestamp(5 * S), Timestamp(0)), Arrival::OnTime(Timestamp(5 * S)));
        assert_eq!(clock.watermark(B, "b", Timestamp(0)), Some(Timestamp(5 * S)));
    }

    #[test]
    fn a_restored_watermark_resumes_without_the_downtime() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(0));
        let saved = clock.snapshot(Timestamp(5 * S));
        let mut restored = EventClock::new(10 * S);
        restored.restore(&saved, &[], Timestamp(3_600 * S));
        assert_eq!(restored.watermark(A, "a", Timestamp(3_600 * S)), Some(Timestamp(95 * S)));
        assert_eq!(restored.watermark(A, "a", Timestamp(3_601 * S)), Some(Timestamp(96 * S)));
    }

    #[test]
    fn a_retired_key_comes_back_with_its_watermark() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(0));
        clock.retire(A, "a", Timestamp(5 * S));
        assert_eq!(clock.key_counts(), (0, 1));
        // Its watermark goes on with system time while it is retired.
        assert_eq!(clock.watermark(A, "a", Timestamp(20 * S)), Some(Timestamp(110 * S)));
        // Behind it: late, as if it had never been retired.
        assert_eq!(clock.arrive(A, "a", Timestamp(105 * S), Timestamp(20 * S)), Arrival::Late { time: Timestamp(105 * S), watermark: Timestamp(110 * S) });
        assert_eq!(clock.key_counts(), (1, 0));
        assert_eq!(clock.arrive(A, "a", Timestamp(130 * S), Timestamp(20 * S)), Arrival::OnTime(Timestamp(130 * S)));
        assert_eq!(clock.watermark(A, "a", Timestamp(20 * S)), Some(Timestamp(120 * S)));
    }

    #[test]
    fn retired_keys_survive_a_checkpoint_and_a_pause() {
        let mut clock = EventClock::new(0);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(0));
        clock.retire(A, "a", Timestamp(0));
        let (live, retired) = (clock.snapshot(Timestamp(10 * S)), clock.snapshot_retired(Timestamp(10 * S)));
        let mut restored = EventClock::new(0);
        restored.restore(&live, &retired, Timestamp(1_000 * S));
        assert_eq!(restored.watermark(A, "a", Timestamp(1_000 * S)), Some(Timestamp(110 * S)));
        restored.resume(Timestamp(1_001 * S), Timestamp(2_000 * S));
        assert_eq!(restored.watermark(A, "a", Timestamp(2_000 * S)), Some(Timestamp(111 * S)));
        assert!(matches!(restored.arrive(A, "a", Timestamp(105 * S), Timestamp(2_000 * S)), Arrival::Late { .. }));
    }

    #[test]
    fn reaches_says_when_a_window_end_is_passed() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive(A, "a", Timestamp(100 * S), Timestamp(1_000 * S));
        // Watermark 90 s at 1,000 s: it reaches 120 s at 1,030 s.
        assert_eq!(clock.reaches(A, Timestamp(120 * S)), Some(1_030 * S));
        assert_eq!(clock.reaches(A, Timestamp(80 * S)), Some(i64::MIN));
        assert_eq!(clock.reaches(B, Timestamp(80 * S)), None);
    }

    #[test]
    fn times_before_1970_work() {
        let mut clock = EventClock::new(S);
        clock.arrive(A, "a", Timestamp(-100 * S), Timestamp(0));
        assert_eq!(clock.watermark(A, "a", Timestamp(0)), Some(Timestamp(-101 * S)));
        assert!(matches!(clock.arrive(A, "a", Timestamp(-102 * S), Timestamp(0)), Arrival::Late { .. }));
    }
}
