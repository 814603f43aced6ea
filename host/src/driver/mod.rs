//! Drivers own the loops around a pipeline: where batches come from, on
//! how many workers, when checkpoints are written and offsets committed,
//! and when the run ends.

pub mod files;
pub mod kafka;
pub mod route;
