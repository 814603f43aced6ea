//! Checkpoints: the state of one input partition — its open windows, its
//! keys' watermarks, its collect windows, which windows it has emitted, and
//! the next offset to read — written together, atomically, to a folder.
//!
//! A checkpoint is written only after the sink has flushed every window
//! emitted before it, and Kafka offsets are committed only after the
//! checkpoint is on disk. On restart (or when another process takes the
//! partition over) the state is restored and records below the checkpoint's
//! offset are skipped, so no record is counted twice and no window is lost.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Bumped whenever [`PartitionSnapshot`] changes shape.
pub const FORMAT_VERSION: u32 = 1;

/// Names one input partition: a Kafka topic and partition, or a file
/// (partition -1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionId {
    /// The topic, or the file.
    pub topic: String,
    /// The Kafka partition; -1 for files and stdin.
    pub partition: i32,
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
    /// The fold plugin's declared accumulator version.
    pub state_version: u32,
    /// The first offset not yet absorbed.
    pub next_offset: Option<i64>,
    /// Open windows.
    pub windows: Vec<WindowSnapshot>,
    /// Each key's watermark when the checkpoint was taken, microseconds.
    pub watermarks: Vec<(String, i64)>,
    /// Collect windows per key.
    pub collect: Vec<CollectSnapshot>,
    /// Per key, the highest tumbling window index already emitted.
    pub closed_through: Vec<(String, i64)>,
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
    /// The file is not a checkpoint this version can read.
    #[error("checkpoint {}: cannot read it ({detail}); move it away to start that partition afresh", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// A folder of checkpoints, one file per partition.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    /// Checkpoints in `dir`, created if missing.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        fs::create_dir_all(dir).map_err(|source| CheckpointError::Io { path: dir.to_owned(), source })?;
        Ok(CheckpointStore { dir: dir.to_owned() })
    }

    fn path(&self, id: &PartitionId) -> PathBuf {
        let topic: String = id.topic.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect();
        self.dir.join(format!("{topic}-{}.ckpt", id.partition))
    }

    /// Writes a partition's snapshot: to a temporary file, synced, then
    /// renamed over the old one, so a crash leaves the old or the new whole.
    pub fn write(&self, id: &PartitionId, snapshot: &PartitionSnapshot) -> Result<(), CheckpointError> {
        let path = self.path(id);
        let bytes = postcard::to_allocvec(snapshot).map_err(|err| CheckpointError::Corrupt { path: path.clone(), detail: err.to_string() })?;
        crate::file::write_atomic(&path, &bytes, false).map_err(|source| CheckpointError::Io { path, source })
    }

    /// Reads a partition's snapshot, if there is one.
    pub fn read(&self, id: &PartitionId) -> Result<Option<PartitionSnapshot>, CheckpointError> {
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        let snapshot: PartitionSnapshot =
            postcard::from_bytes(&bytes).map_err(|err| CheckpointError::Corrupt { path: path.clone(), detail: err.to_string() })?;
        if snapshot.format != FORMAT_VERSION {
            return Err(CheckpointError::Corrupt { path, detail: format!("format {} (this weir writes {FORMAT_VERSION})", snapshot.format) });
        }
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let id = PartitionId { topic: "sensor/topic".into(), partition: 3 };
        assert_eq!(store.read(&id).unwrap(), None);
        let mut snap = PartitionSnapshot {
            format: FORMAT_VERSION,
            state_version: 1,
            next_offset: Some(42),
            windows: vec![WindowSnapshot { key: "a".into(), index: 7, start: 0, end: 10, count: 2, acc: Some(vec![1, 2]) }],
            watermarks: vec![("a".into(), 5)],
            collect: vec![],
            closed_through: vec![("a".into(), 6)],
        };
        store.write(&id, &snap).unwrap();
        assert_eq!(store.read(&id).unwrap().as_ref(), Some(&snap));
        snap.next_offset = Some(43);
        store.write(&id, &snap).unwrap();
        assert_eq!(store.read(&id).unwrap().unwrap().next_offset, Some(43));
        assert!(!dir.path().join("sensor_topic-3.tmp").exists());
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let id = PartitionId { topic: "t".into(), partition: 0 };
        std::fs::write(dir.path().join("t-0.ckpt"), b"\xff\xff\xff").unwrap();
        let err = store.read(&id).unwrap_err().to_string();
        assert!(err.contains("t-0.ckpt") && err.contains("cannot read"), "{err}");
    }
}
