//! Checkpoints in a local folder: one file per partition, replaced
//! atomically, and one claim file per partition holding the epoch and
//! owner. A lock file per partition serialises claims and writes between
//! the processes sharing the folder (the single-machine default).

use std::fs;
use std::path::{Path, PathBuf};

use super::{CheckpointError, CheckpointStore, Claim, Owner, PartitionId, PartitionSnapshot};

/// A folder of checkpoints, shared by the processes of one machine.
#[derive(Debug, Clone)]
pub struct FolderCheckpoints {
    dir: PathBuf,
}

impl FolderCheckpoints {
    /// Checkpoints in `dir`, created if missing.
    pub fn open(dir: &Path) -> Result<Self, CheckpointError> {
        fs::create_dir_all(dir).map_err(|source| CheckpointError::Io { path: dir.to_owned(), source })?;
        Ok(FolderCheckpoints { dir: dir.to_owned() })
    }

    fn stem(&self, id: &PartitionId) -> PathBuf {
        let topic: String = id.topic.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect();
        self.dir.join(format!("{topic}-{}", id.partition))
    }

    // Holds the partition's lock until dropped.
    fn lock(&self, id: &PartitionId) -> Result<fs::File, CheckpointError> {
        let path = self.stem(id).with_extension("lock");
        let io = |source| CheckpointError::Io { path: path.clone(), source };
        let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }

    fn current_claim(&self, id: &PartitionId) -> Result<Option<Claim>, CheckpointError> {
        let path = self.stem(id).with_extension("claim");
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map(Some).map_err(|e| CheckpointError::Corrupt { at: path.display().to_string(), detail: e.to_string() })
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CheckpointError::Io { path, source }),
        }
    }
}

impl CheckpointStore for FolderCheckpoints {
    fn claim(&self, id: &PartitionId, owner: &Owner) -> Result<Claim, CheckpointError> {
        let _lock = self.lock(id)?;
        // A snapshot of weir 0.1 has no claim file: its epoch counts as 0.
        let epoch = self.current_claim(id)?.map_or(0, |c| c.epoch) + 1;
        let claim = Claim { epoch, owner: owner.clone() };
        let path = self.stem(id).with_extension("claim");
        let bytes = serde_json::to_vec(&claim).expect("a claim serializes");
        crate::file::write_atomic(&path, &bytes, false).map_err(|source| CheckpointError::Io { path, source })?;
        Ok(claim)
    }

    fn read(&self, id: &PartitionId) -> Result<Option<PartitionSnapshot>, CheckpointError> {
        let path = self.stem(id).with_extension("ckpt");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        PartitionSnapshot::decode(&bytes).map(Some).map_err(|detail| CheckpointError::Corrupt { at: path.display().to_string(), detail })
    }

    fn write(&self, id: &PartitionId, claim: &Claim, snapshot: &PartitionSnapshot) -> Result<(), CheckpointError> {
        let _lock = self.lock(id)?;
        if let Some(current) = self.current_claim(id)?
            && current.epoch != claim.epoch
        {
            return Err(CheckpointError::Fenced {
                partition: id.clone(),
                mine: claim.owner.clone(),
                mine_epoch: claim.epoch,
                current: current.owner,
                current_epoch: current.epoch,
            });
        }
        let path = self.stem(id).with_extension("ckpt");
        crate::file::write_atomic(&path, &snapshot.encode(), false).map_err(|source| CheckpointError::Io { path, source })
    }

    fn describe(&self) -> String {
        format!("folder {}", self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{FORMAT_VERSION, WindowSnapshot};
    use super::*;

    fn snapshot(claim: &Claim, next: i64) -> PartitionSnapshot {
        PartitionSnapshot {
            format: FORMAT_VERSION,
            claim: claim.clone(),
            accumulator: crate::event::Identity { name: "test".into(), version: 1 },
            next_offset: Some(next),
            windows: vec![WindowSnapshot { key: "a".into(), index: 7, start: 0, end: 10, count: 2, acc: Some(vec![1, 2]) }],
            watermarks: vec![("a".into(), 5)],
            collect: vec![],
            retired: vec![(7, 6)],
            components: vec![],
        }
    }

    fn owner(member: &str, generation: i32) -> Owner {
        Owner { member: member.into(), generation, process: "test".into() }
    }

    #[test]
    fn round_trips_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderCheckpoints::open(dir.path()).unwrap();
        let id = PartitionId { topic: "sensor/topic".into(), partition: 3 };
        assert_eq!(store.read(&id).unwrap(), None);
        let claim = store.claim(&id, &owner("a", 1)).unwrap();
        assert_eq!(claim.epoch, 1);
        let mut snap = snapshot(&claim, 42);
        store.write(&id, &claim, &snap).unwrap();
        assert_eq!(store.read(&id).unwrap().as_ref(), Some(&snap));
        snap.next_offset = Some(43);
        store.write(&id, &claim, &snap).unwrap();
        assert_eq!(store.read(&id).unwrap().unwrap().next_offset, Some(43));
        assert!(!dir.path().join("sensor_topic-3.tmp").exists());
    }

    #[test]
    fn a_former_owner_is_fenced() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderCheckpoints::open(dir.path()).unwrap();
        let id = PartitionId { topic: "t".into(), partition: 0 };
        let old = store.claim(&id, &owner("a", 1)).unwrap();
        store.write(&id, &old, &snapshot(&old, 10)).unwrap();
        let new = store.claim(&id, &owner("b", 2)).unwrap();
        assert_eq!(new.epoch, 2);
        let err = store.write(&id, &old, &snapshot(&old, 99)).unwrap_err().to_string();
        assert!(err.contains("t[0] refused") && err.contains("member a") && err.contains("member b") && err.contains("epoch 2"), "{err}");
        assert_eq!(store.read(&id).unwrap().unwrap().next_offset, Some(10), "the old owner's write left no trace");
        store.write(&id, &new, &snapshot(&new, 11)).unwrap();
        assert_eq!(store.read(&id).unwrap().unwrap().next_offset, Some(11));
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderCheckpoints::open(dir.path()).unwrap();
        let id = PartitionId { topic: "t".into(), partition: 0 };
        std::fs::write(dir.path().join("t-0.ckpt"), b"\xff\xff\xff").unwrap();
        let err = store.read(&id).unwrap_err().to_string();
        assert!(err.contains("t-0.ckpt") && err.contains("cannot read"), "{err}");
    }
}
