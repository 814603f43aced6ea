//! The pipeline looks ahead in a batch: it gives keys their ids a few
//! events early and asks the memory for their state (with many keys, each
//! key's state misses the cache). That must change nothing: a batch of
//! two partitions' records interleaved, with many keys, records that fail
//! their key and records that come late, gives the same windows and the
//! same dead letters in one batch as one record at a time.

use std::collections::BTreeSet;
use std::fmt::Write;

use weir::harness::Harness;
use weir::source::{Origin, SourceRecord};
use weir_tests::{engine, sums_manifest};

// 40 keys (more than the look-ahead spans) in two partitions, over 30 s,
// in runs of one partition and then the other of 1 to 4 records. Some
// records fail their key (`badkey`), some are 15 s late.
fn records() -> Vec<SourceRecord> {
    let mut pending: [Vec<String>; 2] = Default::default();
    for second in 0..30u32 {
        for key in 0..40u32 {
            let mut value = String::new();
            let (name, at) = match (second * 40 + key) % 23 {
                0 => (format!("badkey-{key}"), second),
                5 if second >= 15 => (format!("k{key}"), second - 15),
                _ => (format!("k{key}"), second),
            };
            write!(value, r#"{{"key":"{name}","value":{},"time":"2022-01-01T00:00:{at:02}Z"}}"#, (second + key) % 7).unwrap();
            pending[(key % 2) as usize].push(value);
        }
    }
    let (mut out, mut next, mut run) = (Vec::new(), [0usize; 2], 0usize);
    let source: std::sync::Arc<str> = std::sync::Arc::from("t");
    while next[0] < pending[0].len() || next[1] < pending[1].len() {
        let partition = run % 2;
        for _ in 0..1 + run % 4 {
            let Some(value) = pending[partition].get(next[partition]) else { break };
            out.push(SourceRecord {
                value: value.clone().into_bytes(),
                key: None,
                timestamp: weir::Timestamp(0),
                headers: Vec::new(),
                origin: Origin { source: source.clone(), partition: Some(partition as i32), position: next[partition] as u64, offset: None },
            });
            next[partition] += 1;
        }
        run += 1;
    }
    out
}

// A dead letter's partition, position, stage and kind.
type Dead = (Option<i32>, u64, String, String);

// The windows (as JSON text) and the dead letters of the records pushed
// in batches of `batch`.
fn outcome(batch: usize) -> (BTreeSet<String>, BTreeSet<Dead>) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = sums_manifest(dir.path(), "faulty", "kind = \"stdin\"", "[stages.key]\nconfig = { mode = \"error\", when = \"badkey\" }");
    let mut harness = Harness::new(&manifest, engine()).unwrap();
    let records = records();
    for chunk in records.chunks(batch) {
        harness.push_records(chunk.to_vec()).unwrap();
    }
    harness.finish().unwrap();
    let windows = harness.take_objects().iter().map(|w| w.to_string()).collect();
    let dead = harness.dead_letters().into_iter().map(|d| (d.partition, d.position, d.stage.clone(), format!("{:?}", d.kind))).collect();
    (windows, dead)
}

#[test]
fn looking_ahead_in_a_batch_changes_no_window_and_no_dead_letter() {
    let (windows, dead) = outcome(1);
    let (batched_windows, batched_dead) = outcome(usize::MAX);
    // Every key has windows in both partitions' runs, some events failed
    // their key and some came late: the cases the look-ahead skips.
    assert!(windows.len() >= 40 * 3, "{windows:#?}");
    assert!(dead.iter().any(|d| d.2 == "key") && dead.iter().any(|d| d.2 == "clock"), "{dead:#?}");
    let differ = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.symmetric_difference(b).cloned().collect::<Vec<_>>();
    assert!(batched_windows == windows, "windows written in one batch and not one at a time, or the other way: {:#?}", differ(&batched_windows, &windows));
    assert_eq!(batched_dead, dead);
}
