//! Event time: which instant an event belongs to, and how far each key's
//! time has surely advanced (its watermark).

mod event;
mod system;

pub use event::EventClock;
pub use system::SystemClock;

use crate::Timestamp;
use crate::manifest::ClockSpec;

/// What the clock says of an arriving event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// In time; it goes to its window.
    OnTime(Timestamp),
    /// Behind its key's watermark: its window may have closed already.
    Late {
        /// The event's time.
        time: Timestamp,
        /// The key's watermark when it arrived.
        watermark: Timestamp,
    },
}

/// The clock of a pipeline.
#[derive(Debug)]
pub enum Clock {
    /// Event time with Bytewax's watermark.
    Event(EventClock),
    /// Processing time.
    System(SystemClock),
}

impl Clock {
    /// The clock a manifest asks for.
    pub fn from_spec(spec: ClockSpec) -> Self {
        match spec {
            ClockSpec::Event { wait_for_system_duration } => Clock::Event(EventClock::new(wait_for_system_duration)),
            ClockSpec::System => Clock::System(SystemClock),
        }
    }

    /// Places an event of `key` with event time `time`, arriving at system
    /// time `now`.
    pub fn arrive(&mut self, key: &str, time: Timestamp, now: Timestamp) -> Arrival {
        match self {
            Clock::Event(c) => c.arrive(key, time, now),
            Clock::System(c) => c.arrive(now),
        }
    }

    /// Watermarks for a checkpoint (none for the system clock).
    pub fn snapshot(&self, now: Timestamp) -> Vec<(String, i64)> {
        match self {
            Clock::Event(c) => c.snapshot(now),
            Clock::System(_) => Vec::new(),
        }
    }

    /// Restores watermarks from a checkpoint.
    pub fn restore(&mut self, watermarks: &[(String, i64)], now: Timestamp) {
        if let Clock::Event(c) = self {
            c.restore(watermarks, now);
        }
    }

    /// Resumes after a pause that began at `paused_at`: the time between
    /// does not advance the watermarks (see [`EventClock::resume`]).
    pub fn resume(&mut self, paused_at: Timestamp, now: Timestamp) {
        if let Clock::Event(c) = self {
            c.resume(paused_at, now);
        }
    }

    /// Whether system time alone moves its watermarks forward (an event
    /// clock), so a partition restored but not yet flowing must pause it.
    pub fn waits_for_events(&self) -> bool {
        matches!(self, Clock::Event(_))
    }

    /// The watermark of `key` at system time `now`; `None` before the key's
    /// first event.
    pub fn watermark(&self, key: &str, now: Timestamp) -> Option<Timestamp> {
        match self {
            Clock::Event(c) => c.watermark(key, now),
            Clock::System(_) => Some(now),
        }
    }
}
