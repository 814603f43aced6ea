use super::{Assignment, WindowIndex};
use crate::Timestamp;

/// Fixed-length, non-overlapping windows; one starts at `align_to` and every
/// `length` before and after it. Window `i` is `[align_to + i·length,
/// align_to + (i+1)·length)`.
#[derive(Debug, Clone, Copy)]
pub struct TumblingWindower {
    length: i64,
    align_to: i64,
}

impl TumblingWindower {
    /// Windows of `length` microseconds aligned to `align_to`.
    pub fn new(length: i64, align_to: Timestamp) -> Self {
        assert!(length > 0, "a window length is checked positive by the manifest");
        TumblingWindower { length, align_to: align_to.0 }
    }

    /// The window `time` falls in. Works for `align_to` in the future, times
    /// before 1970, and at the ends of the range (clamped).
    pub fn assign(&self, time: Timestamp) -> Assignment {
        let offset = i128::from(time.0) - i128::from(self.align_to);
        let index = super::floor_div(offset, self.length);
        let index = WindowIndex::try_from(index).unwrap_or(if index < 0 { WindowIndex::MIN } else { WindowIndex::MAX });
        let (start, end) = self.bounds(index);
        Assignment { index, start, end }
    }

    /// The bounds of window `index`.
    pub fn bounds(&self, index: WindowIndex) -> (Timestamp, Timestamp) {
        let clamp = |v: i128| Timestamp(v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64);
        let start = i128::from(self.align_to) + i128::from(index) * i128::from(self.length);
        (clamp(start), clamp(start + i128::from(self.length)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn windows(length_s: i64, align_s: i64) -> TumblingWindower {
        TumblingWindower::new(length_s * S, Timestamp(align_s * S))
    }

    #[test]
    fn boundaries_belong_to_the_window_they_start() {
        let w = windows(10, 0);
        assert_eq!(w.assign(Timestamp(0)).index, 0);
        assert_eq!(w.assign(Timestamp(10 * S - 1)).index, 0);
        assert_eq!(w.assign(Timestamp(10 * S)).index, 1);
        let a = w.assign(Timestamp(10 * S));
        assert_eq!((a.start, a.end), (Timestamp(10 * S), Timestamp(20 * S)));
    }

    #[test]
    fn align_to_in_the_past() {
        // Aligned to 2020-01-01; an event an hour and a bit later.
        let align = 1_577_836_800;
        let w = windows(3600, align);
        let a = w.assign(Timestamp((align + 3600 + 5) * S));
        assert_eq!(a.index, 1);
        assert_eq!(a.start, Timestamp((align + 3600) * S));
    }

    #[test]
    fn align_to_in_the_future_gives_negative_ids() {
        let w = windows(5, 100);
        let a = w.assign(Timestamp(97 * S));
        assert_eq!(a.index, -1);
        assert_eq!((a.start, a.end), (Timestamp(95 * S), Timestamp(100 * S)));
        // Alignment is a phase: windows still start at 95, 90, ... and 100, 105, ...
        assert_eq!(w.assign(Timestamp(3 * S)).start, Timestamp(0));
    }

    #[test]
    fn times_before_1970() {
        let w = windows(10, 0);
        let a = w.assign(Timestamp(-1));
        assert_eq!(a.index, -1);
        assert_eq!((a.start, a.end), (Timestamp(-10 * S), Timestamp(0)));
        assert_eq!(w.assign(Timestamp(-10 * S)).index, -1);
        assert_eq!(w.assign(Timestamp(-10 * S - 1)).index, -2);
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let w = windows(10, 7);
        let hi = w.assign(Timestamp(i64::MAX));
        assert!(hi.start <= Timestamp(i64::MAX) && hi.end == Timestamp(i64::MAX));
        let lo = w.assign(Timestamp(i64::MIN));
        assert!(lo.start == Timestamp(i64::MIN) || lo.start.0 <= i64::MIN + 10 * S);
    }
}
