//! Which window an event falls in, and when a window is due to close.

mod collect;
mod session;
mod sliding;
mod tumbling;

pub use collect::CollectWindower;
pub use session::{Merge, SessionWindower};
pub use sliding::SlidingWindower;
pub use tumbling::TumblingWindower;

use crate::Timestamp;
use crate::manifest::WindowSpec;

/// Identifies a window of one key: Bytewax's window id for tumbling and
/// sliding windows, a per-key sequence number for session and collect
/// windows.
pub type WindowIndex = i64;

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The window's index.
    pub index: WindowIndex,
    /// First instant in it.
    pub start: Timestamp,
    /// First instant after it.
    pub end: Timestamp,
}

/// The windowing of a pipeline.
#[derive(Debug)]
pub enum Windower {
    /// Fixed windows in event time.
    Tumbling(TumblingWindower),
    /// Overlapping fixed windows: an event may fall in several.
    Sliding(SlidingWindower),
    /// Per-key sessions that end after a gap, merging when it closes.
    Session(SessionWindower),
    /// Size-or-timeout windows in system time.
    Collect(CollectWindower),
}

impl Windower {
    /// The windower a manifest asks for.
    pub fn from_spec(spec: WindowSpec) -> Self {
        match spec {
            WindowSpec::Tumbling { length, align_to } => Windower::Tumbling(TumblingWindower::new(length, align_to)),
            WindowSpec::Sliding { length, offset, align_to } => Windower::Sliding(SlidingWindower::new(length, offset, align_to)),
            WindowSpec::Session { gap } => Windower::Session(SessionWindower::new(gap)),
            WindowSpec::Collect { max_size, timeout } => Windower::Collect(CollectWindower::new(max_size, timeout)),
        }
    }
}

/// `a.div_euclid(b)` for `b > 0`: in 64 bits when `a` fits, as it does for
/// any time of this era (a 128-bit division is a call costing tens of
/// nanoseconds, once an event).
fn floor_div(a: i128, b: i64) -> i128 {
    match i64::try_from(a) {
        Ok(a) => i128::from(a.div_euclid(b)),
        Err(_) => a.div_euclid(i128::from(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::floor_div;

    // In 64 bits or 128, the floor of the quotient, also past either end
    // of 64 bits and for negative times.
    #[test]
    fn floor_div_is_the_128_bit_floor_of_the_quotient() {
        let big = i128::from(i64::MAX);
        for a in [0, 1, -1, 9, -9, 10, -10, 11, big, -big - 1, big + 1, -big - 2, 3 * big, -3 * big] {
            for b in [1, 3, 10, i64::MAX] {
                assert_eq!(floor_div(a, b), a.div_euclid(i128::from(b)), "{a} / {b}");
            }
        }
    }
}
