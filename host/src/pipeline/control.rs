//! What the control endpoint asks of a running pipeline (status, swaps),
//! answered between batches, and the counts `weir status` shows.

use std::time::{Duration, Instant};

use super::{Pipeline, Stats, SwapError, Swapped};
use crate::Timestamp;
use crate::event::Identity;
use crate::manifest::StageKind;
use crate::plugin::StagePlugin;

/// What the control endpoint asks of a running pipeline; answered between
/// batches by [`Pipeline::serve_control`].
pub enum ControlRequest {
    /// Counts and each stage's component.
    Status(std::sync::mpsc::Sender<PipelineStatus>),
    /// Put loaded, configured components in place, all at once (see
    /// [`Pipeline::install_all`]); the reply says how long the pipeline
    /// spent on it.
    Install(Vec<StagePlugin>, std::sync::mpsc::Sender<Result<(Vec<Swapped>, Duration), String>>),
    /// A swap refused before it reached the pipeline: count it.
    Refused(StageKind, SwapError, std::sync::mpsc::Sender<String>),
}

/// A running pipeline's counts and stages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineStatus {
    /// Counts so far.
    pub stats: Stats,
    /// Windows open now.
    pub open_windows: usize,
    /// One entry per stage, in data-path order.
    pub stages: Vec<StageStatus>,
}

/// One stage as `weir status` shows it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StageStatus {
    /// The stage's name.
    pub stage: String,
    /// The component file, or the host's built-in (`built-in json`,
    /// `field \`device\``).
    pub plugin: String,
    /// SHA-256 of the component, hex (empty for a built-in).
    pub sha256: String,
    /// When the component was loaded (RFC 3339; empty for a built-in).
    pub loaded_at: String,
    /// The accumulator a fold plugin writes or a format plugin reads.
    pub accumulator: Option<Identity>,
    /// Items handed to the stage (records, events or windows).
    pub records: u64,
    /// Items the stage failed (sent to the dead-letter output).
    pub errors: u64,
    /// Swaps that took place.
    pub swaps: u64,
    /// Swaps refused.
    pub refused_swaps: u64,
    /// Why the last refused swap was refused.
    pub last_refusal: Option<String>,
}

#[derive(Debug, Default, Clone)]
pub(super) struct StageCounters {
    pub(super) records: u64,
    pub(super) errors: u64,
    pub(super) swaps: u64,
    pub(super) refused_swaps: u64,
    pub(super) last_refusal: Option<String>,
}

impl Pipeline {
    /// Each stage's component and counts, for `weir status`.
    pub fn status(&self) -> Vec<StageStatus> {
        StageKind::ALL
            .into_iter()
            .map(|kind| {
                let plugin = self.stages.get(kind);
                let c = &self.counters[kind as usize];
                StageStatus {
                    stage: kind.name().to_owned(),
                    plugin: self.stages.describe(kind),
                    sha256: plugin.map(|p| p.hash().to_owned()).unwrap_or_default(),
                    loaded_at: plugin.map(|p| Timestamp::from(p.loaded_at()).to_string()).unwrap_or_default(),
                    accumulator: plugin.and_then(|p| p.accumulator().cloned()),
                    records: c.records,
                    errors: c.errors,
                    swaps: c.swaps,
                    refused_swaps: c.refused_swaps,
                    last_refusal: c.last_refusal.clone(),
                }
            })
            .collect()
    }

    /// Answers control requests waiting in the channel (status, swaps).
    /// Runs between batches.
    pub fn serve_control(&mut self) {
        let Some(control) = self.control.take() else { return };
        while let Ok(request) = control.try_recv() {
            match request {
                ControlRequest::Status(reply) => {
                    let _ = reply.send(PipelineStatus { stats: self.stats(), open_windows: self.open_windows(), stages: self.status() });
                }
                ControlRequest::Install(new, reply) => {
                    let started = Instant::now();
                    let result = self.install_all(new).map_err(|e| e.to_string());
                    let _ = reply.send(result.map(|swapped| (swapped, started.elapsed())));
                }
                ControlRequest::Refused(kind, err, reply) => {
                    let _ = reply.send(self.refused(kind, err).to_string());
                }
            }
        }
        self.control = Some(control);
    }

    /// Takes control requests from `requests` between batches.
    pub fn with_control(mut self, requests: std::sync::mpsc::Receiver<ControlRequest>) -> Self {
        self.control = Some(requests);
        self
    }
}
