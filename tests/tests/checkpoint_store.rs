//! The DynamoDB checkpoint store against DynamoDB Local: claims fence
//! former owners, snapshots over DynamoDB's item limit are chunked and read
//! back whole.

use weir::manifest::DynamoCheckpointSpec;
use weir::state::checkpoint::{
    CheckpointError, CheckpointStore, Claim, DynamoCheckpoints, FORMAT_VERSION, Owner, PartitionId, PartitionSnapshot, WindowSnapshot,
};
use weir_tests::services::{services, unique};

fn snapshot(claim: &Claim, next: i64, windows: usize) -> PartitionSnapshot {
    PartitionSnapshot {
        format: FORMAT_VERSION,
        claim: claim.clone(),
        accumulator: weir::event::Identity { name: "test".into(), version: 1 },
        next_offset: Some(next),
        windows: (0..windows).map(|i| WindowSnapshot { key: format!("sensor-{i}"), index: 7, start: 0, end: 10, count: 2, acc: Some(vec![7; 100]) }).collect(),
        watermarks: vec![],
        collect: vec![],
        retired: vec![],
        components: vec![],
    }
}

fn owner(member: &str, generation: i32) -> Owner {
    Owner { member: member.into(), generation, process: "test".into() }
}

#[test]
fn a_former_owner_cannot_write_and_large_snapshots_round_trip() {
    let s = services();
    let spec = DynamoCheckpointSpec { table: unique("ckpt"), endpoint: Some(s.dynamodb.clone()), region: Some("us-east-1".into()), create_table: true };
    let store = DynamoCheckpoints::connect(&spec, "group-a").unwrap();
    let id = PartitionId { topic: "sensors".into(), partition: 2 };
    assert_eq!(store.read(&id).unwrap(), None);

    let a = store.claim(&id, &owner("a", 3)).unwrap();
    assert_eq!(a.epoch, 1);
    // 10,000 windows: about 1.3 MB, several chunks.
    let big = snapshot(&a, 40, 10_000);
    store.write(&id, &a, &big).unwrap();
    assert_eq!(store.read(&id).unwrap().as_ref(), Some(&big));

    let b = store.claim(&id, &owner("b", 4)).unwrap();
    assert_eq!(b.epoch, 2);
    let err = store.write(&id, &a, &snapshot(&a, 99, 1)).unwrap_err();
    assert!(matches!(err, CheckpointError::Fenced { current_epoch: 2, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("member a") && text.contains("member b") && text.contains("sensors[2]"), "{text}");
    assert_eq!(store.read(&id).unwrap().unwrap().next_offset, Some(40), "the fenced write changed nothing anyone reads");

    store.write(&id, &b, &snapshot(&b, 41, 3)).unwrap();
    let read = store.read(&id).unwrap().unwrap();
    assert_eq!((read.next_offset, read.windows.len(), read.claim.owner.member.as_str()), (Some(41), 3, "b"));

    // Another group's items are apart.
    let other = DynamoCheckpoints::connect(&spec, "group-b").unwrap();
    assert_eq!(other.read(&id).unwrap(), None);
}
