//! A partition restored from a checkpoint (a handover or a restart) keeps
//! its windows open until its records flow again: the time a new owner
//! spends before its first fetch does not close them early.

use std::time::Duration;

use weir::harness::Harness;
use weir::source::{Origin, SourceRecord};
use weir::state::checkpoint::{FolderCheckpoints, PartitionId};
use weir_tests::{engine, manifest_text, write_sums_manifest};

fn pipeline(dir: &std::path::Path, checkpoints: &std::path::Path) -> Harness {
    let path = write_sums_manifest(dir, "faulty", "kind = \"stdin\"", "[stages.deserialize]\nconfig = { when = \"\" }");
    let text = std::fs::read_to_string(path).unwrap().replace("wait_for_system_duration = \"0s\"", "wait_for_system_duration = \"5s\"");
    Harness::new(&manifest_text(dir, &text), engine()).unwrap().with_checkpoints(FolderCheckpoints::open(checkpoints).unwrap())
}

fn record(offset: u64, second: u32, value: f64) -> SourceRecord {
    SourceRecord {
        value: format!(r#"{{"key":"a","value":{value},"time":"2022-01-01T00:00:{second:02}Z"}}"#).into_bytes(),
        key: None,
        timestamp: weir::Timestamp(0),
        headers: Vec::new(),
        origin: Origin { source: std::sync::Arc::from("t"), partition: Some(0), position: offset, offset: None },
    }
}

#[test]
fn restored_windows_wait_for_their_records_or_for_the_source_to_say_there_are_none() {
    let id = PartitionId { topic: "t".to_owned(), partition: 0 };
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    // The first owner absorbs two readings of [0 s, 10 s) and checkpoints.
    let mut first = pipeline(dir.path(), &checkpoints);
    first.push_records(vec![record(0, 1, 1.0), record(1, 2, 2.0)]).unwrap();
    let now = first.now();
    first.pipeline().checkpoint(None, now).unwrap();

    // The next owner restores it, then waits 30 s for its first fetch (far
    // past the clock's 5 s): the window stays open, and the record after
    // the checkpoint lands in it rather than in the dead letters.
    let mut next = pipeline(dir.path(), &checkpoints);
    next.at(now);
    assert_eq!(next.pipeline().take_partition(&id, now).unwrap(), Some(2));
    next.advance(Duration::from_secs(30)).unwrap();
    assert_eq!(next.take_objects(), Vec::<serde_json::Value>::new(), "closed before its records were read again");
    next.push_records(vec![record(2, 3, 4.0)]).unwrap();
    assert!(next.dead_letters().is_empty(), "{:?}", next.dead_letters());
    next.finish().unwrap();
    assert_eq!(next.take_objects(), vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 3, "sum": 7.0 })]);

    // When the source says the partition has nothing more, its clock runs
    // again and the restored window closes on system time as usual.
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = dir.path().join("checkpoints");
    let mut first = pipeline(dir.path(), &checkpoints);
    first.push_records(vec![record(0, 1, 1.0)]).unwrap();
    first.pipeline().checkpoint(None, now).unwrap();
    let mut idle = pipeline(dir.path(), &checkpoints);
    idle.at(now);
    idle.pipeline().take_partition(&id, now).unwrap();
    idle.pipeline().caught_up(0, now);
    idle.advance(Duration::from_secs(30)).unwrap();
    assert_eq!(idle.take_objects(), vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 1, "sum": 1.0 })]);
}
