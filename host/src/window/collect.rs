use std::collections::HashMap;

use super::{Assignment, WindowIndex};
use crate::Timestamp;

/// Bytewax's `collect`: per key, a window opens with its first event and
/// closes after `max_size` events or when `timeout` of system time has passed
/// since it opened, whichever comes first.
#[derive(Debug, Clone)]
pub struct CollectWindower {
    max_size: u64,
    timeout: i64,
    open: HashMap<String, OpenCollect>,
    next_index: HashMap<String, WindowIndex>,
}

/// An open collect window in a checkpoint: index, opened at (µs), size.
pub type OpenSnapshot = (WindowIndex, i64, u64);

#[derive(Debug, Clone, Copy)]
struct OpenCollect {
    index: WindowIndex,
    opened_at: Timestamp,
    size: u64,
}

impl CollectWindower {
    /// Windows of at most `max_size` events and `timeout` microseconds.
    pub fn new(max_size: u64, timeout: i64) -> Self {
        CollectWindower { max_size, timeout, open: HashMap::new(), next_index: HashMap::new() }
    }

    /// The window an event of `key` arriving at `now` goes to; opens one when
    /// the key has none, or when its current one is full or timed out.
    pub fn assign(&mut self, key: &str, now: Timestamp) -> Assignment {
        let reusable = self.open.get(key).is_some_and(|w| w.size < self.max_size && now.0 - w.opened_at.0 < self.timeout);
        if !reusable {
            let index = self.next_index.entry(key.to_owned()).or_insert(0);
            let window = OpenCollect { index: *index, opened_at: now, size: 0 };
            *index += 1;
            self.open.insert(key.to_owned(), window);
        }
        let window = self.open.get_mut(key).expect("opened above");
        window.size += 1;
        Assignment { index: window.index, start: window.opened_at, end: window.opened_at.plus(self.timeout) }
    }

    /// Whether window `index` of `key`, opened at `start`, is due to close at
    /// `now`: full, timed out, or no longer the key's open window.
    pub fn is_due(&self, key: &str, index: WindowIndex, start: Timestamp, now: Timestamp) -> bool {
        self.due(key, index, start) <= now.0
    }

    /// The system time at which window `index` of `key`, opened at
    /// `start`, is due: its timeout, or now (`i64::MIN`) when it is full
    /// or no longer the key's open window.
    pub fn due(&self, key: &str, index: WindowIndex, start: Timestamp) -> i64 {
        match self.open.get(key) {
            Some(w) if w.index == index && w.size < self.max_size => start.0.saturating_add(self.timeout),
            _ => i64::MIN,
        }
    }

    /// Per key: the open window (index, opened at, size) and the next index,
    /// for a checkpoint.
    pub fn snapshot(&self) -> Vec<(String, Option<OpenSnapshot>, WindowIndex)> {
        self.next_index.iter().map(|(key, next)| (key.clone(), self.open.get(key).map(|w| (w.index, w.opened_at.0, w.size)), *next)).collect()
    }

    /// Restores what [`CollectWindower::snapshot`] returned.
    pub fn restore(&mut self, key: &str, open: Option<OpenSnapshot>, next_index: WindowIndex) {
        self.next_index.insert(key.to_owned(), next_index);
        if let Some((index, opened_at, size)) = open {
            self.open.insert(key.to_owned(), OpenCollect { index, opened_at: Timestamp(opened_at), size });
        }
    }

    /// Forgets `key`'s open window once it has closed.
    pub fn closed(&mut self, key: &str, index: WindowIndex) {
        if self.open.get(key).is_some_and(|w| w.index == index) {
            self.open.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    #[test]
    fn closes_by_size() {
        let mut c = CollectWindower::new(3, 10 * S);
        let now = Timestamp(0);
        let ids: Vec<_> = (0..7).map(|_| c.assign("ALL", now).index).collect();
        assert_eq!(ids, [0, 0, 0, 1, 1, 1, 2]);
        assert!(c.is_due("ALL", 1, now, now), "a window replaced by the next one is due");
        assert!(!c.is_due("ALL", 2, now, now), "one of three events, no timeout yet");
    }

    #[test]
    fn closes_by_timeout() {
        let mut c = CollectWindower::new(3, 10 * S);
        let a = c.assign("k", Timestamp(0));
        assert!(!c.is_due("k", a.index, a.start, Timestamp(9 * S)));
        assert!(c.is_due("k", a.index, a.start, Timestamp(10 * S)));
        // An event after the timeout opens a new window even if the old one
        // is not full.
        assert_eq!(c.assign("k", Timestamp(11 * S)).index, 1);
    }

    #[test]
    fn keys_collect_apart() {
        let mut c = CollectWindower::new(2, 10 * S);
        assert_eq!(c.assign("a", Timestamp(0)).index, 0);
        assert_eq!(c.assign("b", Timestamp(0)).index, 0);
        assert_eq!(c.assign("a", Timestamp(0)).index, 0);
        assert_eq!(c.assign("a", Timestamp(0)).index, 1);
    }
}
