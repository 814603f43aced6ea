//! weir: a stream processor whose user code runs as WebAssembly components.
//!
//! The host reads a source, keeps event time ([`clock`]), cuts windows
//! ([`window`]), owns their state ([`state`]), and writes a sink ([`sink`]);
//! the user's steps — deserialize, key, fold, format — are components
//! ([`plugin`]) named in a manifest ([`manifest`]) and run by [`pipeline`].
//!
//! The pieces that decide time are plain values you can try by hand:
//!
//! ```
//! use weir::Timestamp;
//! use weir::clock::{Arrival, EventClock};
//! use weir::keys::KeyIds;
//! use weir::window::TumblingWindower;
//!
//! const S: i64 = 1_000_000; // microseconds
//! let windows = TumblingWindower::new(5 * S, Timestamp(0));
//! let mut clock = EventClock::new(10 * S); // wait_for_system_duration = 10 s
//! let mut keys = KeyIds::default(); // the clock knows keys by number
//! let sensor = keys.intern("sensor-1");
//!
//! let now = Timestamp(1_000 * S); // system time
//! assert_eq!(clock.arrive(sensor, "sensor-1", Timestamp(42 * S), now), Arrival::OnTime(Timestamp(42 * S)));
//! assert_eq!(windows.assign(Timestamp(42 * S)).start, Timestamp(40 * S));
//! // The watermark trails the newest event by the wait, and moves on with
//! // system time even when no new event comes.
//! assert_eq!(clock.watermark(sensor, "sensor-1", now), Some(Timestamp(32 * S)));
//! assert_eq!(clock.watermark(sensor, "sensor-1", Timestamp(1_013 * S)), Some(Timestamp(45 * S)));
//! ```
#![deny(missing_docs)]

pub mod build;
pub mod cases;
pub mod cli;
pub mod clock;
pub mod control;
pub mod driver;
pub mod emitter;
pub mod event;
pub mod fast;
pub mod file;
pub mod harness;
pub mod keys;
pub mod manifest;
pub mod metrics;
pub mod operator;
pub mod pipeline;
pub mod plugin;
pub mod produce;
pub mod progress;
pub mod query;
pub mod report;
pub mod scaffold;
pub mod sink;
pub mod source;
pub mod stages;
pub mod state;
pub mod time;
pub mod window;

pub use time::Timestamp;
