//! Drivers own the loops around a pipeline: where batches come from, on
//! how many workers, when checkpoints are written and offsets committed,
//! and when the run ends.

use crate::manifest::{Manifest, SourceSpec};

pub mod files;
pub mod kafka;
pub mod route;
pub mod workers;

/// How many workers the job of `manifest` can use when `asked` for, and,
/// when that is fewer, why. `control`: the run has a control endpoint or
/// watches its plugin files. A Kafka job shares out partitions, a file
/// job keys (by the key field, read from the raw JSON).
pub fn workers_for(manifest: &Manifest, asked: usize, control: bool) -> (usize, Option<&'static str>) {
    if asked <= 1 {
        return (1, None);
    }
    let why = match &manifest.source {
        _ if control => Some("swaps through the control endpoint or --watch apply to one worker"),
        SourceSpec::Kafka(_) => None,
        SourceSpec::Csv(_) => Some("a CSV source runs on one worker in this version"),
        SourceSpec::Jsonl(_) | SourceSpec::Stdin if !manifest.events.builtin_json || manifest.events.key_field.is_none() => {
            Some("records are shared out by the key field; with a deserialize or key plugin the job runs on one worker")
        }
        _ if manifest.checkpoint.is_some() => Some("a file job with checkpoints runs on one worker"),
        _ => None,
    };
    match why {
        Some(why) => (1, Some(why)),
        None => (asked, None),
    }
}
