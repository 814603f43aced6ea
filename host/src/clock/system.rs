use super::Arrival;
use crate::Timestamp;

/// Processing time: an event's time is when the host handles it, and the
/// watermark is the system clock, so nothing is ever late.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// An event arriving now is on time, at now.
    pub fn arrive(&self, now: Timestamp) -> Arrival {
        Arrival::OnTime(now)
    }
}
