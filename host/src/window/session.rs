use super::{Assignment, WindowIndex};
use crate::Timestamp;
use crate::fast::FastMap;

/// Bytewax's `SessionWindower(gap)`: per key, an event within `gap` of a
/// session (before its first event or after its last) joins it and moves
/// its bound; an event that brings two sessions within `gap` of each other
/// merges the later into the earlier. A session closes once the key's
/// watermark is more than `gap` past its last event. Sessions are numbered
/// per key from 0 in the order they open, as Bytewax numbers them.
///
/// A session's bounds are its first and last event times, both inclusive
/// (Bytewax's `WindowMetadata` for sessions).
#[derive(Debug, Clone, Default)]
pub struct SessionWindower {
    gap: i64,
    keys: FastMap<String, KeySessions>,
    merges: Vec<Merge>,
}

/// Two sessions of a key that became one: `from`'s events now belong to `into`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merge {
    /// The key.
    pub key: String,
    /// The session merged away.
    pub from: WindowIndex,
    /// The session that holds both now.
    pub into: WindowIndex,
}

#[derive(Debug, Clone, Default)]
struct KeySessions {
    // In the order they opened (Bytewax iterates its dict in that order).
    open: Vec<Session>,
    next: WindowIndex,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    index: WindowIndex,
    first: i64,
    last: i64,
}

impl SessionWindower {
    /// Sessions that end after `gap` microseconds without an event.
    pub fn new(gap: i64) -> Self {
        SessionWindower { gap: gap.max(0), ..SessionWindower::default() }
    }

    /// The inactivity that ends a session, in microseconds.
    pub fn gap(&self) -> i64 {
        self.gap
    }

    /// The session an event of `key` at `time` goes to (opening one when it
    /// is near none). Merges it causes wait in [`SessionWindower::take_merges`].
    pub fn assign(&mut self, key: &str, time: Timestamp) -> Assignment {
        let t = time.0;
        let gap = self.gap;
        if !self.keys.contains_key(key) {
            self.keys.insert(key.to_owned(), KeySessions::default());
        }
        let sessions = self.keys.get_mut(key).expect("inserted above");
        let mut hit = None;
        for (i, s) in sessions.open.iter_mut().enumerate() {
            let until_first = s.first.saturating_sub(t);
            let since_last = t.saturating_sub(s.last);
            if until_first <= 0 && since_last <= 0 {
                // Inside: no bound moves, nothing can merge.
                return Assignment { index: s.index, start: Timestamp(s.first), end: Timestamp(s.last) };
            } else if until_first > 0 && until_first <= gap {
                s.first = t;
                hit = Some(i);
                break;
            } else if since_last > 0 && since_last <= gap {
                s.last = t;
                hit = Some(i);
                break;
            }
        }
        let index = match hit {
            Some(i) => {
                let index = sessions.open[i].index;
                find_merges(key, sessions, gap, &mut self.merges);
                index
            }
            None => {
                let index = sessions.next;
                sessions.next += 1;
                sessions.open.push(Session { index, first: t, last: t });
                index
            }
        };
        let (start, end) = self.bounds(key, index).unwrap_or((time, time));
        Assignment { index, start, end }
    }

    /// The merges since the last call, in the order they happened.
    pub fn take_merges(&mut self) -> Vec<Merge> {
        std::mem::take(&mut self.merges)
    }

    /// The first and last event times of session `index` of `key`, while
    /// it is open (the session it merged into holds them after a merge).
    pub fn bounds(&self, key: &str, index: WindowIndex) -> Option<(Timestamp, Timestamp)> {
        self.keys.get(key)?.open.iter().find(|s| s.index == index).map(|s| (Timestamp(s.first), Timestamp(s.last)))
    }

    /// Forgets session `index` of `key` once it has closed (or never got
    /// an event folded in). The key's numbering goes on.
    pub fn closed(&mut self, key: &str, index: WindowIndex) {
        if let Some(sessions) = self.keys.get_mut(key) {
            sessions.open.retain(|s| s.index != index);
        }
    }

    /// Per key, the number the next session gets (for a checkpoint; the
    /// sessions themselves are the open windows).
    pub fn snapshot(&self) -> Vec<(String, WindowIndex)> {
        self.keys.iter().map(|(key, s)| (key.clone(), s.next)).collect()
    }

    /// Restores a key's numbering from [`SessionWindower::snapshot`].
    pub fn restore_next(&mut self, key: &str, next: WindowIndex) {
        let sessions = self.keys.entry(key.to_owned()).or_default();
        sessions.next = sessions.next.max(next);
    }

    /// Restores an open session from its window (call in index order).
    pub fn restore_session(&mut self, key: &str, index: WindowIndex, first: Timestamp, last: Timestamp) {
        let sessions = self.keys.entry(key.to_owned()).or_default();
        sessions.open.push(Session { index, first: first.0, last: last.0 });
        sessions.next = sessions.next.max(index + 1);
    }
}

// Bytewax's `_session_find_merges`: sessions sorted by first event (a
// stable sort); each one within `gap` of the one before merges into it.
fn find_merges(key: &str, sessions: &mut KeySessions, gap: i64, merges: &mut Vec<Merge>) {
    if sessions.open.len() < 2 {
        return;
    }
    let mut sorted: Vec<Session> = sessions.open.clone();
    sorted.sort_by_key(|s| s.first);
    let mut gone = Vec::new();
    let mut last = sorted[0];
    for this in &sorted[1..] {
        if this.first.saturating_sub(last.last) <= gap {
            last.last = last.last.max(this.last);
            merges.push(Merge { key: key.to_owned(), from: this.index, into: last.index });
            gone.push(this.index);
            if let Some(s) = sessions.open.iter_mut().find(|s| s.index == last.index) {
                s.last = last.last;
            }
        } else {
            last = *this;
        }
    }
    sessions.open.retain(|s| !gone.contains(&s.index));
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn at(w: &mut SessionWindower, key: &str, t: i64) -> (WindowIndex, i64, i64) {
        let a = w.assign(key, Timestamp(t * S));
        (a.index, a.start.0 / S, a.end.0 / S)
    }

    #[test]
    fn events_within_the_gap_share_a_session() {
        let mut w = SessionWindower::new(5 * S);
        assert_eq!(at(&mut w, "a", 0), (0, 0, 0));
        assert_eq!(at(&mut w, "a", 5), (0, 0, 5), "exactly the gap still joins");
        assert_eq!(at(&mut w, "a", 11), (1, 11, 11), "past the gap opens another");
        assert_eq!(at(&mut w, "b", 11), (0, 11, 11), "numbered per key");
        assert_eq!(at(&mut w, "a", 3), (0, 0, 5), "inside: nothing moves");
        assert!(w.take_merges().is_empty());
    }

    #[test]
    fn an_event_that_closes_the_gap_merges_the_later_session_into_the_earlier() {
        let mut w = SessionWindower::new(5 * S);
        at(&mut w, "a", 0);
        at(&mut w, "a", 20);
        at(&mut w, "a", 10);
        assert!(w.take_merges().is_empty(), "10 opened its own session: it is 10 from both");
        // 15 joins the first session near it in opening order (20's, which
        // now starts at 15) and so brings it within the gap of 10's: 20's
        // merges into 10's (the earlier start). The event still names the
        // session it joined, as in Bytewax; the host folds it there and
        // then merges.
        assert_eq!(at(&mut w, "a", 15), (1, 15, 15));
        assert_eq!(w.take_merges(), [Merge { key: "a".into(), from: 1, into: 2 }]);
        assert_eq!(w.bounds("a", 2).map(|(f, l)| (f.0 / S, l.0 / S)), Some((10, 20)));
        assert_eq!(w.bounds("a", 1), None);
        // 5 bridges 0 and 10..20: all one session now, numbered 0.
        assert_eq!(at(&mut w, "a", 5), (0, 0, 20));
        assert_eq!(w.take_merges(), [Merge { key: "a".into(), from: 2, into: 0 }]);
        w.closed("a", 0);
        assert_eq!(at(&mut w, "a", 100), (3, 100, 100), "numbering goes on after a close");
    }

    #[test]
    fn a_restored_windower_numbers_and_merges_as_before() {
        let mut w = SessionWindower::new(5 * S);
        w.restore_session("a", 4, Timestamp(0), Timestamp(2 * S));
        w.restore_session("a", 6, Timestamp(10 * S), Timestamp(10 * S));
        w.restore_next("a", 7);
        assert_eq!(at(&mut w, "a", 6), (4, 0, 10));
        assert_eq!(w.take_merges(), [Merge { key: "a".into(), from: 6, into: 4 }]);
        assert_eq!(at(&mut w, "a", 30), (7, 30, 30));
    }
}
