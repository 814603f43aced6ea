//! Instants as the host keeps them: microseconds since the Unix epoch, the
//! same integer the WIT contract carries.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since 1970-01-01T00:00:00Z; negative before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Later than every real instant; what the watermark becomes at the end
    /// of a finite input.
    pub const MAX: Timestamp = Timestamp(i64::MAX);

    /// The system clock, now.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_micros())
    }

    /// Parses RFC 3339 text such as `2020-01-01T00:00:00Z`.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| Timestamp(t.with_timezone(&Utc).timestamp_micros()))
    }

    /// Like [`Timestamp::parse_rfc3339`], also taking a space for the `T`
    /// and a time without an offset (read as UTC), as ISO 8601 writers
    /// such as Python's `isoformat()` produce.
    pub fn parse_iso8601(text: &str) -> Option<Self> {
        if let Some(t) = Self::parse_rfc3339(text) {
            return Some(t);
        }
        if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%:z") {
            return Some(Timestamp(t.with_timezone(&Utc).timestamp_micros()));
        }
        ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
            .map(|t| Timestamp(t.and_utc().timestamp_micros()))
    }

    /// `self + micros`, saturating at the ends of time.
    pub fn plus(self, micros: i64) -> Self {
        Timestamp(self.0.saturating_add(micros))
    }
}

impl From<std::time::SystemTime> for Timestamp {
    fn from(t: std::time::SystemTime) -> Self {
        Timestamp(DateTime::<Utc>::from(t).timestamp_micros())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            None => write!(f, "{}µs", self.0),
        }
    }
}
