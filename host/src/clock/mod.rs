//! Event time: which instant an event belongs to, and how far each key's
//! time has surely advanced (its watermark).

mod event;
mod system;

pub use event::EventClock;
pub use system::SystemClock;

use crate::Timestamp;
use crate::keys::KeyId;
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

    /// Places an event of key `name` (id `key`) with event time `time`,
    /// arriving at system time `now`.
    pub fn arrive(&mut self, key: KeyId, name: &str, time: Timestamp, now: Timestamp) -> Arrival {
        match self {
            Clock::Event(c) => c.arrive(key, name, time, now),
            Clock::System(c) => c.arrive(now),
        }
    }

    /// Asks the memory for key `key`'s entry, to be read a little later
    /// (see [`crate::fast::prefetch`]).
    pub fn prefetch(&self, key: KeyId) {
        if let Clock::Event(c) = self {
            c.prefetch(key);
        }
    }

    /// Watermarks by key id, for a checkpoint (none for the system clock).
    pub fn snapshot(&self, now: Timestamp) -> Vec<(KeyId, i64)> {
        match self {
            Clock::Event(c) => c.snapshot(now),
            Clock::System(_) => Vec::new(),
        }
    }

    /// Retired keys' watermarks by key hash, for a checkpoint.
    pub fn snapshot_retired(&self, now: Timestamp) -> Vec<(u64, i64)> {
        match self {
            Clock::Event(c) => c.snapshot_retired(now),
            Clock::System(_) => Vec::new(),
        }
    }

    /// Restores watermarks (live and retired keys) from a checkpoint.
    pub fn restore(&mut self, watermarks: &[(KeyId, i64)], retired: &[(u64, i64)], now: Timestamp) {
        if let Clock::Event(c) = self {
            c.restore(watermarks, retired, now);
        }
    }

    /// The system time at which `key`'s watermark reaches `time`
    /// (`i64::MAX`: not until an event of the key says so).
    pub fn reaches(&self, key: KeyId, time: Timestamp) -> i64 {
        match self {
            Clock::Event(c) => c.reaches(key, time).unwrap_or(i64::MAX),
            Clock::System(_) => time.0,
        }
    }

    /// Forgets key `name` (id `key`) but for its watermark (see
    /// [`EventClock::retire`]).
    pub fn retire(&mut self, key: KeyId, name: &str, now: Timestamp) {
        if let Clock::Event(c) = self {
            c.retire(key, name, now);
        }
    }

    /// Keys with an entry, and keys retired.
    pub fn keys(&self) -> (usize, usize) {
        match self {
            Clock::Event(c) => c.key_counts(),
            Clock::System(_) => (0, 0),
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

    /// The watermark of key `name` (id `key`) at system time `now`; `None`
    /// before the key's first event.
    pub fn watermark(&self, key: KeyId, name: &str, now: Timestamp) -> Option<Timestamp> {
        match self {
            Clock::Event(c) => c.watermark(key, name, now),
            Clock::System(_) => Some(now),
        }
    }
}
