//! User code: WebAssembly components loaded per stage, called in batches
//! under a memory cap and a per-call time limit.
//!
//! [`bindings`] holds the generated code; [`StagePlugin`] is what the
//! pipeline calls, in the host's own types ([`batch`]).

pub mod batch;
mod bindings;
mod engine;
mod host;
mod isolate;
mod stage;

use std::path::PathBuf;

pub use batch::{ClosedWindow, Decoded, FoldGroup, Folded, Formatted, Keys, Packed, RecordFailure, SourceBatch};
pub use engine::PluginEngine;
pub use isolate::{Narrowed, narrow};
pub use stage::{CONTRACT, StagePlugin};

use crate::manifest::StageKind;

/// Why a plugin could not be loaded or started.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// wasmtime itself could not be set up.
    #[error("cannot set up the WebAssembly engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The component path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a WebAssembly component (maybe a core module).
    #[error("{} is not a WebAssembly component (build plugins for wasm32-wasip2, or run `wasm-tools component new` on a core module)", path.display())]
    NotAComponent {
        /// The file.
        path: PathBuf,
    },
    /// The component did not compile.
    #[error("{} does not compile: {source:#}", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// wasmtime's error.
        source: wasmtime::Error,
    },
    /// The component does not export the stage's interface, or imports what
    /// the host does not offer.
    #[error("{} cannot serve the {stage} stage: {detail}", path.display())]
    WrongWorld {
        /// The file.
        path: PathBuf,
        /// The stage it was meant for.
        stage: StageKind,
        /// What is missing.
        detail: String,
    },
    /// The component targets another version of the contract.
    #[error("{} targets {found}; this weir runs weir:stream@0.2.0 — rebuild it with weir-guest-sdk 0.2 or the Python SDK (see docs/plugin-guide.md)", path.display())]
    OldContract {
        /// The file.
        path: PathBuf,
        /// The version it targets.
        found: String,
    },
    /// The component trapped while starting.
    #[error("{} failed to start for the {stage} stage: {detail}", path.display())]
    Instantiate {
        /// The file.
        path: PathBuf,
        /// The stage.
        stage: StageKind,
        /// The trap or error.
        detail: String,
    },
    /// The component refused its config.
    #[error("{} refused its {stage} config: {message}", path.display())]
    ConfigRejected {
        /// The file.
        path: PathBuf,
        /// The stage.
        stage: StageKind,
        /// The plugin's own words.
        message: String,
    },
}

/// Why a call into a plugin failed; the batch is retried in parts (see
/// [`narrow`]) and what fails alone goes to the dead-letter output
/// with this error as the reason.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The call ran past the time limit and was stopped.
    #[error("{stage} plugin timed out after {limit:?}")]
    Timeout {
        /// The stage.
        stage: StageKind,
        /// The limit.
        limit: std::time::Duration,
    },
    /// The plugin tried to grow memory past the cap.
    #[error("{stage} plugin exceeded its memory limit of {limit} bytes")]
    Memory {
        /// The stage.
        stage: StageKind,
        /// The cap.
        limit: u64,
    },
    /// The plugin trapped (a Rust panic, an unreachable, a bad access).
    #[error("{stage} plugin trapped: {detail}")]
    Trap {
        /// The stage.
        stage: StageKind,
        /// wasmtime's description.
        detail: String,
    },
    /// The plugin could not be restarted after an earlier trap.
    #[error("{stage} plugin could not be restarted: {detail}")]
    Restart {
        /// The stage.
        stage: StageKind,
        /// Why.
        detail: String,
    },
    /// The plugin returned something that breaks the contract.
    #[error("{stage} plugin broke the contract: {detail}")]
    Contract {
        /// The stage.
        stage: StageKind,
        /// How.
        detail: String,
    },
}
