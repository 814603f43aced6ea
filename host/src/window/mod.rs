//! Which window an event falls in, and when a window is due to close.

mod collect;
mod tumbling;

pub use collect::CollectWindower;
pub use tumbling::TumblingWindower;

use crate::Timestamp;
use crate::manifest::WindowSpec;

/// Identifies a window of one key: Bytewax's window id for tumbling windows,
/// a sequence number for collect windows.
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
    /// Size-or-timeout windows in system time.
    Collect(CollectWindower),
}

impl Windower {
    /// The windower a manifest asks for.
    pub fn from_spec(spec: WindowSpec) -> Self {
        match spec {
            WindowSpec::Tumbling { length, align_to } => Windower::Tumbling(TumblingWindower::new(length, align_to)),
            WindowSpec::Collect { max_size, timeout } => Windower::Collect(CollectWindower::new(max_size, timeout)),
        }
    }
}
