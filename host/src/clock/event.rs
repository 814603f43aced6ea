use std::collections::HashMap;

use super::Arrival;
use crate::Timestamp;

/// Bytewax's event clock, per key: the watermark is the largest event time
/// seen minus `wait_for_system_duration`, plus the system time elapsed since
/// that event was seen. So a key that goes quiet still sees its watermark
/// advance and its windows close. The watermark never goes backwards.
#[derive(Debug, Clone)]
pub struct EventClock {
    wait: i64,
    keys: HashMap<String, KeyTime>,
}

#[derive(Debug, Clone, Copy)]
struct KeyTime {
    /// Watermark at system time `seen_at`.
    base: i64,
    seen_at: i64,
}

impl KeyTime {
    fn watermark(self, now: Timestamp) -> Timestamp {
        Timestamp(self.base.saturating_add(now.0.saturating_sub(self.seen_at).max(0)))
    }
}

impl EventClock {
    /// A clock that waits `wait_micros` of system time for late events.
    pub fn new(wait_micros: i64) -> Self {
        EventClock { wait: wait_micros, keys: HashMap::new() }
    }

    /// Places an event; it is late when its time is below its key's
    /// watermark, and late events do not move the watermark.
    pub fn arrive(&mut self, key: &str, time: Timestamp, now: Timestamp) -> Arrival {
        let candidate = time.0.saturating_sub(self.wait);
        match self.keys.get_mut(key) {
            None => {
                self.keys.insert(key.to_owned(), KeyTime { base: candidate, seen_at: now.0 });
                Arrival::OnTime(time)
            }
            Some(k) => {
                let watermark = k.watermark(now);
                if time < watermark {
                    return Arrival::Late { time, watermark };
                }
                *k = KeyTime { base: candidate.max(watermark.0), seen_at: now.0 };
                Arrival::OnTime(time)
            }
        }
    }

    /// The watermark of `key` at system time `now`.
    pub fn watermark(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        self.keys.get(key).map(|k| k.watermark(now))
    }

    /// Every key's watermark at `now`, for a checkpoint.
    pub fn snapshot(&self, now: Timestamp) -> Vec<(String, i64)> {
        self.keys.iter().map(|(key, k)| (key.clone(), k.watermark(now).0)).collect()
    }

    /// Resumes after a pause that began at system time `paused_at`: each
    /// key's watermark is where it was then, and advances from `now`.
    pub fn resume(&mut self, paused_at: Timestamp, now: Timestamp) {
        for k in self.keys.values_mut() {
            *k = KeyTime { base: k.watermark(paused_at).0, seen_at: now.0 };
        }
    }

    /// Restores watermarks from a checkpoint. Time the process was down does
    /// not count as elapsed: the watermark resumes where it was, so replayed
    /// records find the windows they belong to still open.
    pub fn restore(&mut self, watermarks: &[(String, i64)], now: Timestamp) {
        for (key, watermark) in watermarks {
            self.keys.insert(key.clone(), KeyTime { base: *watermark, seen_at: now.0 });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn watermark_trails_the_largest_event_by_the_wait() {
        let mut clock = EventClock::new(10 * S);
        assert_eq!(clock.watermark("a", Timestamp(0)), None);
        clock.arrive("a", Timestamp(100 * S), Timestamp(0));
        assert_eq!(clock.watermark("a", Timestamp(0)), Some(Timestamp(90 * S)));
        // An older event within the wait is on time and moves nothing.
        assert_eq!(clock.arrive("a", Timestamp(95 * S), Timestamp(0)), Arrival::OnTime(Timestamp(95 * S)));
        assert_eq!(clock.watermark("a", Timestamp(0)), Some(Timestamp(90 * S)));
    }

    #[test]
    fn watermark_advances_with_system_time_without_new_data() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive("a", Timestamp(100 * S), Timestamp(1_000 * S));
        assert_eq!(clock.watermark("a", Timestamp(1_004 * S)), Some(Timestamp(94 * S)));
        assert_eq!(clock.watermark("a", Timestamp(1_030 * S)), Some(Timestamp(120 * S)));
    }

    #[test]
    fn watermark_with_new_data_never_goes_back() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive("a", Timestamp(100 * S), Timestamp(0));
        // 50 s of system time pass: watermark 140 s. A new maximum of 120 s
        // would put it at 110 s; it stays at 140 s.
        clock.arrive("a", Timestamp(145 * S), Timestamp(50 * S));
        assert_eq!(clock.watermark("a", Timestamp(50 * S)), Some(Timestamp(140 * S)));
        clock.arrive("a", Timestamp(200 * S), Timestamp(50 * S));
        assert_eq!(clock.watermark("a", Timestamp(50 * S)), Some(Timestamp(190 * S)));
    }

    #[test]
    fn late_items_are_named_and_do_not_move_the_watermark() {
        let mut clock = EventClock::new(0);
        clock.arrive("a", Timestamp(100 * S), Timestamp(0));
        let late = clock.arrive("a", Timestamp(99 * S), Timestamp(0));
        assert_eq!(late, Arrival::Late { time: Timestamp(99 * S), watermark: Timestamp(100 * S) });
        assert_eq!(clock.watermark("a", Timestamp(0)), Some(Timestamp(100 * S)));
    }

    #[test]
    fn keys_keep_their_own_time() {
        let mut clock = EventClock::new(0);
        clock.arrive("a", Timestamp(100 * S), Timestamp(0));
        assert_eq!(clock.arrive("b", Timestamp(5 * S), Timestamp(0)), Arrival::OnTime(Timestamp(5 * S)));
        assert_eq!(clock.watermark("b", Timestamp(0)), Some(Timestamp(5 * S)));
    }

    #[test]
    fn a_restored_watermark_resumes_without_the_downtime() {
        let mut clock = EventClock::new(10 * S);
        clock.arrive("a", Timestamp(100 * S), Timestamp(0));
        let saved = clock.snapshot(Timestamp(5 * S));
        let mut restored = EventClock::new(10 * S);
        restored.restore(&saved, Timestamp(3_600 * S));
        assert_eq!(restored.watermark("a", Timestamp(3_600 * S)), Some(Timestamp(95 * S)));
        assert_eq!(restored.watermark("a", Timestamp(3_601 * S)), Some(Timestamp(96 * S)));
    }

    #[test]
    fn times_before_1970_work() {
        let mut clock = EventClock::new(S);
        clock.arrive("a", Timestamp(-100 * S), Timestamp(0));
        assert_eq!(clock.watermark("a", Timestamp(0)), Some(Timestamp(-101 * S)));
        assert!(matches!(clock.arrive("a", Timestamp(-102 * S), Timestamp(0)), Arrival::Late { .. }));
    }
}
