use super::{Assignment, WindowIndex};
use crate::Timestamp;

/// Bytewax's `SlidingWindower(length, offset, align_to)`: a window of
/// `length` starts every `offset` (at most `length`), one of them at
/// `align_to`. Window `i` is `[align_to + i·offset, align_to + i·offset +
/// length)`; an event falls in every window that holds its time.
#[derive(Debug, Clone, Copy)]
pub struct SlidingWindower {
    length: i64,
    offset: i64,
    align_to: i64,
}

impl SlidingWindower {
    /// Windows of `length` microseconds every `offset` microseconds.
    pub fn new(length: i64, offset: i64, align_to: Timestamp) -> Self {
        assert!(length > 0 && offset > 0 && offset <= length, "sliding windows are checked by the manifest");
        SlidingWindower { length, offset, align_to: align_to.0 }
    }

    /// Pushes the windows `time` falls in onto `out`, earliest first (as
    /// Bytewax's `intersects`: ids `(t - length) / offset + 1 ..= t / offset`
    /// with `t` measured from `align_to`, floor division).
    pub fn assign(&self, time: Timestamp, out: &mut Vec<Assignment>) {
        let since = i128::from(time.0) - i128::from(self.align_to);
        let first = super::floor_div(since - i128::from(self.length), self.offset) + 1;
        let last = super::floor_div(since, self.offset);
        for index in first..=last {
            let index = WindowIndex::try_from(index).unwrap_or(if index < 0 { WindowIndex::MIN } else { WindowIndex::MAX });
            let (start, end) = self.bounds(index);
            out.push(Assignment { index, start, end });
        }
    }

    /// The bounds of window `index`.
    pub fn bounds(&self, index: WindowIndex) -> (Timestamp, Timestamp) {
        let clamp = |v: i128| Timestamp(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64);
        let start = i128::from(self.align_to) + i128::from(index) * i128::from(self.offset);
        (clamp(start), clamp(start + i128::from(self.length)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn windows_of(w: &SlidingWindower, t: i64) -> Vec<(i64, i64, i64)> {
        let mut out = Vec::new();
        w.assign(Timestamp(t), &mut out);
        out.iter().map(|a| (a.index, a.start.0 / S, a.end.0 / S)).collect()
    }

    #[test]
    fn an_event_falls_in_every_window_that_holds_it() {
        let w = SlidingWindower::new(10 * S, 5 * S, Timestamp(0));
        assert_eq!(windows_of(&w, 7 * S), [(0, 0, 10), (1, 5, 15)]);
        // A start belongs to its window; an end does not.
        assert_eq!(windows_of(&w, 10 * S), [(1, 5, 15), (2, 10, 20)]);
        assert_eq!(windows_of(&w, 0), [(-1, -5, 5), (0, 0, 10)]);
        let thirds = SlidingWindower::new(9 * S, 3 * S, Timestamp(S));
        assert_eq!(windows_of(&thirds, 10 * S), [(1, 4, 13), (2, 7, 16), (3, 10, 19)]);
    }

    #[test]
    fn offset_equal_to_length_is_tumbling() {
        let w = SlidingWindower::new(10 * S, 10 * S, Timestamp(0));
        let tumbling = super::super::TumblingWindower::new(10 * S, Timestamp(0));
        for t in [-11 * S, -1, 0, 9 * S, 10 * S, 123 * S + 7] {
            let a = tumbling.assign(Timestamp(t));
            assert_eq!(windows_of(&w, t), [(a.index, a.start.0 / S, a.end.0 / S)], "at {t}");
        }
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let w = SlidingWindower::new(10 * S, 3 * S, Timestamp(7));
        let mut out = Vec::new();
        w.assign(Timestamp(i64::MAX), &mut out);
        w.assign(Timestamp(i64::MIN), &mut out);
        assert!(!out.is_empty());
    }
}
