//! weir: a stream processor whose user code runs as WebAssembly components.
//!
//! The host reads a source, keeps event time ([`clock`]), cuts windows
//! ([`window`]), owns their state ([`state`]), and writes a sink ([`sink`]);
//! the user's steps — deserialize, key, fold, format — are components
//! ([`plugin`]) named in a manifest ([`manifest`]) and run by [`pipeline`].
#![deny(missing_docs)]

pub mod cli;
pub mod clock;
pub mod manifest;
pub mod pipeline;
pub mod plugin;
pub mod sink;
pub mod source;
pub mod state;
pub mod time;
pub mod window;

pub use time::Timestamp;
