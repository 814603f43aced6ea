//! Checkpoints: the state of one input partition — its open windows, its
//! keys' watermarks, its collect windows, which windows it has emitted, the
//! next offset to read and the components that ran — written together,
//! atomically, to a store every member of a consumer group reaches.
//!
//! A checkpoint is written only after the sink has flushed every window
//! emitted before it, and Kafka offsets are committed only after the
//! checkpoint is durable. On restart (or when another process takes the
//! partition over) the state is restored and reading resumes at the
//! checkpoint's offset, so no record is counted twice and no window is lost.
//!
//! Ownership is fenced: a member that takes a partition [claims](CheckpointStore::claim)
//! it, which raises the partition's epoch in the store; a write is accepted
//! only from the claim holding the current epoch, so a former owner (a
//! revoked member, a zombie that missed its revoke) cannot overwrite the
//! new owner's state.

mod dynamodb;
mod folder;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use dynamodb::DynamoCheckpoints;
pub use folder::FolderCheckpoints;

/// Bumped whenever [`PartitionSnapshot`] changes shape.
pub const FORMAT_VERSION: u32 = 4;

/// Names one input partition: a Kafka topic and partition, or a file
/// (partition -1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionId {
    /// The topic, or the file.
    pub topic: String,
    /// The Kafka partition; -1 for files and stdin.
    pub partition: i32,
}

impl std::fmt::Display for PartitionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}[{}]", self.topic, self.partition)
    }
}

/// Who processes a partition: the consumer-group member and its group
/// generation when it took the partition, and the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The Kafka member id (`local` outside a consumer group).
    pub member: String,
    /// The consumer group's generation when the partition was assigned.
    pub generation: i32,
    /// Host and process id, for people reading logs.
    pub process: String,
}

impl Owner {
    /// This process outside any consumer group.
    pub fn local() -> Self {
        Owner { member: "local".to_owned(), generation: 0, process: process_name() }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "member {} (generation {}, {})", self.member, self.generation, self.process)
    }
}

/// `host:pid` of this process.
pub fn process_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// The right to write a partition's checkpoint: held by one owner at a
/// time; a later claim fences every earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Raised by one on every claim of the partition.
    pub epoch: u64,
    /// Who claimed it.
    pub owner: Owner,
}

/// One stage's component when a checkpoint was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRecord {
    /// The stage (`deserialize`, `key`, `fold`, `format`).
    pub stage: String,
    /// SHA-256 of the component the manifest named.
    pub declared: String,
    /// SHA-256 of the component that was running (differs after a swap).
    pub running: String,
    /// Where the running component was loaded from.
    pub running_path: PathBuf,
}

/// An open window in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSnapshot {
    /// The key.
    pub key: String,
    /// The window index.
    pub index: i64,
    /// Start, microseconds.
    pub start: i64,
    /// End, microseconds.
    pub end: i64,
    /// Events folded in.
    pub count: u64,
    /// The accumulator.
    pub acc: Option<Vec<u8>>,
}

/// An open collect window in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectSnapshot {
    /// The key.
    pub key: String,
    /// The open window's index, if one is open.
    pub open: Option<(i64, i64, u64)>,
    /// The next index to use.
    pub next_index: i64,
}

/// The whole state of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionSnapshot {
    /// [`FORMAT_VERSION`] when written.
    pub format: u32,
    /// The claim it was written under.
    pub claim: Claim,
    /// The accumulator the fold plugin wrote (format 1 and 2: a bare
    /// version, read as an empty name).
    pub accumulator: crate::event::Identity,
    /// The first offset not yet absorbed.
    pub next_offset: Option<i64>,
    /// Open windows.
    pub windows: Vec<WindowSnapshot>,
    /// Each key's watermark when the checkpoint was taken, microseconds.
    pub watermarks: Vec<(String, i64)>,
    /// Collect windows per key.
    pub collect: Vec<CollectSnapshot>,
    /// Retired keys' watermarks (by the key's 64-bit FNV-1a hash) when the
    /// checkpoint was taken, microseconds.
    pub retired: Vec<(u64, i64)>,
    /// Each stage's component.
    pub components: Vec<ComponentRecord>,
}

// Format 3 (contract 0.2 before retired keys), still read. Its emitted
// marks are dropped: every key with one also has a watermark past it.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SnapshotV3 {
    _format: u32,
    claim: Claim,
    accumulator: crate::event::Identity,
    next_offset: Option<i64>,
    windows: Vec<WindowSnapshot>,
    watermarks: Vec<(String, i64)>,
    collect: Vec<CollectSnapshot>,
    closed_through: Vec<(String, i64)>,
    components: Vec<ComponentRecord>,
}

impl SnapshotV3 {
    fn upgrade(self) -> PartitionSnapshot {
        let _ = self.closed_through;
        PartitionSnapshot {
            format: FORMAT_VERSION,
            claim: self.claim,
            accumulator: self.accumulator,
            next_offset: self.next_offset,
            windows: self.windows,
            watermarks: self.watermarks,
            collect: self.collect,
            retired: Vec::new(),
            components: self.components,
        }
    }
}

// Format 2 (contract 0.1: a bare state version), still read.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct SnapshotV2 {
    _format: u32,
    claim: Claim,
    state_version: u32,
    next_offset: Option<i64>,
    windows: Vec<WindowSnapshot>,
    watermarks: Vec<(String, i64)>,
    collect: Vec<CollectSnapshot>,
    closed_through: Vec<(String, i64)>,
    components: Vec<ComponentRecord>,
}

// Format 1 (weir 0.1, before claims and components), still read.
#[derive(Deserialize)]
struct SnapshotV1 {
    _format: u32,
    state_version: u32,
    next_offset: Option<i64>,
    windows: Vec<WindowSnapshot>,
    watermarks: Vec<(String, i64)>,
    collect: Vec<CollectSnapshot>,
    closed_through: Vec<(String, i64)>,
}

impl SnapshotV2 {
    // The current format: the bare version becomes an identity without a
    // name, which a fold of that version accepts.
    fn upgrade(self) -> PartitionSnapshot {
        SnapshotV3 {
            _format: 3,
            claim: self.claim,
            accumulator: crate::event::Identity { name: String::new(), version: self.state_version },
            next_offset: self.next_offset,
            windows: self.windows,
            watermarks: self.watermarks,
            collect: self.collect,
            closed_through: self.closed_through,
            components: self.components,
        }
        .upgrade()
    }
}

impl PartitionSnapshot {
    /// The snapshot as stored.
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("a snapshot serializes")
    }

    /// Reads a stored snapshot of this format or the one before.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let (format, _): (u32, _) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
        match format {
            FORMAT_VERSION => postcard::from_bytes(bytes).map_err(|e| e.to_string()),
            3 => postcard::from_bytes::<SnapshotV3>(bytes).map(SnapshotV3::upgrade).map_err(|e| e.to_string()),
            2 => postcard::from_bytes::<SnapshotV2>(bytes).map(SnapshotV2::upgrade).map_err(|e| e.to_string()),
            1 => {
                let v1: SnapshotV1 = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
                let owner = Owner { member: "weir 0.1".into(), generation: 0, process: String::new() };
                Ok(SnapshotV2 {
                    _format: 1,
                    claim: Claim { epoch: 0, owner },
                    state_version: v1.state_version,
                    next_offset: v1.next_offset,
                    windows: v1.windows,
                    watermarks: v1.watermarks,
                    collect: v1.collect,
                    closed_through: v1.closed_through,
                    components: Vec::new(),
                }
                .upgrade())
            }
            other => Err(format!("format {other} (this weir reads {FORMAT_VERSION}, 3, 2 and 1)")),
        }
    }
}

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File system trouble.
    #[error("checkpoint {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The stored bytes are not a checkpoint this version can read.
    #[error("checkpoint {at}: cannot read it ({detail}); move it away to start that partition afresh")]
    Corrupt {
        /// The file or table item.
        at: String,
        /// What is wrong.
        detail: String,
    },
    /// Another member claimed the partition since this one did: its write
    /// is refused.
    #[error("checkpoint of {partition} refused: {mine} held epoch {mine_epoch}, but {current} claimed the partition at epoch {current_epoch}")]
    Fenced {
        /// The partition.
        partition: PartitionId,
        /// The writer.
        mine: Owner,
        /// The writer's epoch.
        mine_epoch: u64,
        /// The owner now.
        current: Owner,
        /// Its epoch.
        current_epoch: u64,
    },
    /// The DynamoDB checkpoint table failed.
    #[error("checkpoint table {table}: {message}")]
    Dynamo {
        /// The table.
        table: String,
        /// What happened.
        message: String,
    },
}

/// Where checkpoints are kept.
pub trait CheckpointStore: Send {
    /// Takes partition `id` for `owner`: raises its epoch, so every earlier
    /// claim is fenced, and returns the new claim.
    fn claim(&self, id: &PartitionId, owner: &Owner) -> Result<Claim, CheckpointError>;
    /// The partition's last snapshot, if any.
    fn read(&self, id: &PartitionId) -> Result<Option<PartitionSnapshot>, CheckpointError>;
    /// Replaces the partition's snapshot, whole or not at all, if `claim`
    /// still holds the partition's epoch; [`CheckpointError::Fenced`]
    /// otherwise.
    fn write(&self, id: &PartitionId, claim: &Claim, snapshot: &PartitionSnapshot) -> Result<(), CheckpointError>;
    /// Where, for log lines.
    fn describe(&self) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_2_checkpoint_reads_with_its_state_version_as_an_unnamed_identity() {
        let claim = Claim { epoch: 3, owner: Owner { member: "m".into(), generation: 2, process: "h:1".into() } };
        let window = WindowSnapshot { key: "a".into(), index: 7, start: 0, end: 10, count: 2, acc: Some(vec![1, 2]) };
        let old = SnapshotV2 {
            _format: 2,
            claim: claim.clone(),
            state_version: 4,
            next_offset: Some(9),
            windows: vec![window.clone()],
            watermarks: vec![("a".into(), 5)],
            collect: vec![],
            closed_through: vec![("a".into(), 6)],
            components: vec![],
        };
        let read = PartitionSnapshot::decode(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert_eq!(read.format, FORMAT_VERSION);
        assert_eq!(read.accumulator, crate::event::Identity { name: String::new(), version: 4 });
        assert_eq!(PartitionSnapshot::decode(&read.encode()).unwrap(), read, "written back in the current format");
        assert_eq!((read.claim, read.next_offset, read.windows, read.watermarks), (claim, Some(9), vec![window], vec![("a".to_owned(), 5)]));
        assert!(read.retired.is_empty());
    }

    #[test]
    fn a_format_3_checkpoint_reads_with_its_windows_and_watermarks() {
        let claim = Claim { epoch: 3, owner: Owner { member: "m".into(), generation: 2, process: "h:1".into() } };
        let window = WindowSnapshot { key: "a".into(), index: 7, start: 0, end: 10, count: 2, acc: Some(vec![1, 2]) };
        let identity = crate::event::Identity { name: "stats".into(), version: 2 };
        let old = SnapshotV3 {
            _format: 3,
            claim: claim.clone(),
            accumulator: identity.clone(),
            next_offset: Some(9),
            windows: vec![window.clone()],
            watermarks: vec![("a".into(), 5)],
            collect: vec![],
            closed_through: vec![("a".into(), 6)],
            components: vec![],
        };
        let read = PartitionSnapshot::decode(&postcard::to_allocvec(&old).unwrap()).unwrap();
        assert_eq!((read.format, read.accumulator, read.windows, read.watermarks), (FORMAT_VERSION, identity, vec![window], vec![("a".to_owned(), 5)]));
    }
}
