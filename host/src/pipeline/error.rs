//! Why a pipeline stopped, and why a swap was refused.

use crate::event::Identity;
use crate::manifest::StageKind;
use crate::plugin::PluginError;
use crate::sink::SinkError;
use crate::source::SourceError;
use crate::stages::StagesError;
use crate::state::checkpoint::CheckpointError;

/// Why a pipeline stopped.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A plugin could not be loaded or started.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The stages do not fit together.
    #[error(transparent)]
    Stages(#[from] StagesError),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The sink or the dead-letter output failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// A checkpoint could not be written or read.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// A checkpoint holds accumulators of another identity that the fold
    /// plugin cannot migrate.
    #[error(
        "checkpoint of {partition} holds accumulators `{found}`, but the fold plugin writes `{expected}` and cannot migrate them ({reason}); run the plugin that wrote it, or move the checkpoint away"
    )]
    Accumulator {
        /// The plugin's refusal.
        reason: String,
        /// The partition.
        partition: String,
        /// In the checkpoint.
        found: Identity,
        /// The plugin's.
        expected: Identity,
    },
    /// The components a checkpoint was written with could not be put back.
    #[error("cannot resume the components {partition} was checkpointed with: {reason}")]
    Resume {
        /// The partition.
        partition: String,
        /// Why.
        reason: String,
    },
    /// A checkpoint was written by a component that was swapped in, and
    /// that component is no longer where it was loaded from.
    #[error(
        "checkpoint of {partition} was written while the {stage} stage ran {running} (sha256 {running_hash}, swapped in for the manifest's {declared_hash}), and that file is gone or changed ({detail}); put it back, or change the manifest's {stage} plugin to say which component to run"
    )]
    SwappedComponent {
        /// The partition.
        partition: String,
        /// The stage.
        stage: StageKind,
        /// The component that was running.
        running: String,
        /// Its hash.
        running_hash: String,
        /// The manifest's component then (and now).
        declared_hash: String,
        /// What went wrong loading it.
        detail: String,
    },
    /// A worker thread stopped (after an error it reported, or a panic).
    #[error("worker {worker} stopped")]
    WorkerStopped {
        /// Its number.
        worker: usize,
    },
}

/// Why a hot swap was refused; the old component keeps running.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// The new component failed validation (compile, exports, start, config).
    #[error("swap refused: {0}")]
    Invalid(#[from] PluginError),
    /// The new component does not fit the other stages (fields read,
    /// accumulator identity).
    #[error("swap refused: {}", .0.join("; "))]
    Contract(Vec<String>),
    /// The new fold plugin writes another accumulator and could not
    /// migrate the open windows' accumulators.
    #[error("swap refused: the new fold plugin writes accumulator `{new}`, the open windows hold `{old}`, and it could not migrate them: {reason}")]
    Migration {
        /// The running plugin's accumulator.
        old: Identity,
        /// The new plugin's.
        new: Identity,
        /// The plugin's refusal or failure.
        reason: String,
    },
    /// The running pipeline did not take the new component in time.
    #[error("swap refused: {0}")]
    Unavailable(String),
}
