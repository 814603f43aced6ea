//! Drivers own the loops around a pipeline: where batches come from, on
//! how many workers, and when the run ends. (The Kafka driver, which also
//! owns partition assignment, checkpoints and commits, is
//! [`crate::source::kafka::run`].)

pub mod files;
pub mod route;
