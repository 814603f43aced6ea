//! Hot swap between batches: validated first, refused without harm, and
//! invisible in the output when the new component does the same job.

use weir::Timestamp;
use weir::manifest::{Manifest, StageKind};
use weir::pipeline::{Pipeline, Stages};
use weir::sink::{DeadLetters, MemorySink};
use weir::source::SourceRecord;
use weir_tests::{engine, manifest, plugin};

fn records(m: &Manifest) -> Vec<SourceRecord> {
    weir::source::open(&m.source).unwrap().next_batch(usize::MAX).unwrap()
}

/// Runs seed 000 two records per batch at a hand-driven system time,
/// calling `between` after every batch.
fn run(mut between: impl FnMut(usize, &mut Pipeline)) -> Vec<String> {
    let m = manifest("examples/seed-000-sensor-average/pipeline.toml");
    let sink = MemorySink::new();
    let (dead, _) = DeadLetters::memory();
    let mut pipeline = Pipeline::new(&m, Stages::load(&m, engine()).unwrap(), Box::new(sink.clone()), dead);
    for (i, batch) in records(&m).chunks(2).enumerate() {
        pipeline.process(batch.to_vec(), Timestamp(1_000_000 * i as i64)).unwrap();
        between(i, &mut pipeline);
    }
    let stats = pipeline.finish().unwrap();
    assert_eq!(stats.late + stats.failed, 0);
    sink.results().into_iter().map(|r| r.object).collect()
}

#[test]
fn fifty_swaps_to_the_same_job_change_nothing() {
    let baseline = run(|_, _| {});
    let mut swaps = 0;
    let same = plugin("sensor_average");
    let swapped = run(|i, p| {
        for kind in StageKind::ALL {
            if swaps < 50 && (i + kind as usize).is_multiple_of(2) {
                let done = p.swap_stage(kind, &same, engine()).unwrap();
                assert_eq!(done.old_hash, done.new_hash);
                swaps += 1;
            }
        }
    });
    assert_eq!(swaps, 50, "the input is long enough for 50 swaps");
    assert_eq!(swapped, baseline);
    assert_eq!(baseline.len(), 18);
}

#[test]
fn refused_swaps_leave_the_run_unharmed() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a component").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let baseline = run(|_, _| {});
    let mut refusals = Vec::new();
    let result = run(|i, p| {
        let attempt = match i {
            3 => p.swap_stage(StageKind::Fold, &junk, engine()),
            5 => p.swap_stage(StageKind::Key, &core, engine()),
            // faulty refuses the format stage's `start_at` (unknown field).
            7 => p.swap_stage(StageKind::Format, &plugin("faulty"), engine()),
            _ => return,
        };
        refusals.push(attempt.expect_err("refused").to_string());
    });
    assert_eq!(result, baseline, "the old components kept running");
    assert!(refusals[0].contains("junk.wasm is not a WebAssembly component"), "{}", refusals[0]);
    assert!(refusals[1].contains("core.wasm is not a WebAssembly component"), "{}", refusals[1]);
    assert!(refusals[2].contains("refused its format config") && refusals[2].contains("unknown field `start_at`"), "{}", refusals[2]);
    assert!(refusals.iter().all(|r| r.starts_with("swap refused: ")));
}

// A pipeline of the test plugin (`faulty`, mode ok) in every stage: sums
// per key and 10 s window, the event clock with no wait.
fn faulty_pipeline(plugin_file: &str) -> weir::harness::Harness {
    let dir = tempfile::tempdir().unwrap();
    let m = weir_tests::sums_manifest(dir.path(), plugin_file, "kind = \"stdin\"", "[stages.deserialize]\nconfig = { when = \"\" }");
    weir::harness::Harness::new(&m, engine()).unwrap()
}

fn reading(key: &str, second: u32, value: f64) -> String {
    format!(r#"{{"key":"{key}","value":{value},"time":"2022-01-01T00:00:{second:02}Z"}}"#)
}

#[test]
fn a_changed_plugin_applies_from_the_switch_point_and_open_windows_migrate() {
    let mut h = faulty_pipeline("faulty");
    // [0,10) closes under version 1 when the reading at 11 s arrives; [10,20) stays open.
    h.push([reading("a", 1, 1.0), reading("a", 2, 2.0), reading("a", 11, 5.0)]).unwrap();
    let before = h.take_objects();
    assert_eq!(before, vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 2, "sum": 3.0 })]);

    let v2 = plugin("faulty_v2");
    // One at a time cannot work: fold v2 and format v1 name different
    // accumulators, and the host refuses that pairing.
    let err = h.swap(StageKind::Fold, &v2, engine()).unwrap_err().to_string();
    assert!(err.contains("reads accumulator `faulty-sum v1`, but fold") && err.contains("writes `faulty-sum v2`"), "{err}");
    h.swap_all(&v2, engine()).unwrap();
    h.push([reading("a", 12, 7.0), reading("a", 21, 3.0)]).unwrap();
    h.finish().unwrap();
    let after = h.take_objects();
    assert_eq!(
        after,
        vec![
            // Open at the switch: its version 1 sum was migrated (the maximum
            // of its first reading is unknown) and the new reading added.
            serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:10Z", "count": 2, "sum": 12.0, "version": 2, "max": null }),
            // Opened after the switch: all version 2.
            serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:20Z", "count": 1, "sum": 3.0, "version": 2, "max": 3.0 }),
        ]
    );
    assert!(h.dead_letters().is_empty(), "{:?}", h.dead_letters());
    let status = h.pipeline().status();
    assert_eq!(status[StageKind::Fold as usize].swaps, 1);
    assert_eq!(status[StageKind::Fold as usize].accumulator.as_ref().map(|a| a.version), Some(2));
}

#[test]
fn a_fold_plugin_that_cannot_read_the_open_windows_is_refused() {
    let mut h = faulty_pipeline("faulty_v2");
    h.push([reading("a", 1, 1.0), reading("b", 2, 2.0)]).unwrap();
    let err = h.swap_all(&plugin("faulty"), engine()).unwrap_err().to_string();
    assert!(err.contains("writes accumulator `faulty-sum v1`, the open windows hold `faulty-sum v2`"), "{err}");
    assert!(err.contains("cannot read accumulators `faulty-sum v2`"), "{err}");
    h.push([reading("a", 3, 4.0)]).unwrap();
    h.finish().unwrap();
    let out = h.take_objects();
    assert_eq!(out[0], serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 2, "sum": 5.0, "version": 2, "max": 4.0 }));
    assert_eq!(out.len(), 2);
    let status = h.pipeline().status();
    assert_eq!((status[StageKind::Fold as usize].swaps, status[StageKind::Fold as usize].refused_swaps), (0, 1));
}

#[test]
fn every_kind_of_bad_component_is_refused_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wasm");
    let mut bytes = std::fs::read(plugin("faulty")).unwrap();
    let half = bytes.len() / 2;
    bytes.truncate(half);
    std::fs::write(&corrupt, &bytes).unwrap();
    let missing = dir.path().join("missing.wasm");

    let batches: Vec<Vec<String>> = (0..8).map(|i| vec![reading("a", i * 3, f64::from(i)), reading("b", i * 3 + 1, 1.0)]).collect();
    let run = |attempts: &mut dyn FnMut(usize, &mut weir::harness::Harness)| {
        let mut h = faulty_pipeline("faulty");
        for (i, batch) in batches.iter().enumerate() {
            h.push(batch).unwrap();
            attempts(i, &mut h);
        }
        h.finish().unwrap();
        (h.take_objects(), h.pipeline().status())
    };
    let (baseline, _) = run(&mut |_, _| {});
    let mut refusals = Vec::new();
    let (out, status) = run(&mut |i, h| {
        let (kind, file) = match i {
            0 => (StageKind::Fold, plugin("wrong_world")),
            1 => (StageKind::Deserialize, plugin("sensor_average")),
            2 => (StageKind::Key, plugin("faulty_trap_on_start")),
            3 => (StageKind::Format, corrupt.clone()),
            4 => (StageKind::Fold, missing.clone()),
            _ => return,
        };
        refusals.push(h.swap(kind, &file, engine()).expect_err("refused").to_string());
    });
    assert_eq!(out, baseline, "the old components kept running");
    let expect = [
        "cannot serve the fold stage",
        "refused its deserialize config",
        "failed to start for the key stage: key plugin trapped: panicked at plugins/faulty/src/lib.rs",
        "corrupt.wasm",
        "cannot read",
    ];
    for (refusal, want) in refusals.iter().zip(expect) {
        assert!(refusal.starts_with("swap refused: ") && refusal.contains(want), "{refusal:?} should say {want:?}");
    }
    assert!(refusals[0].contains("wrong_world.wasm"), "{}", refusals[0]);
    assert!(refusals[1].contains("unknown field `when`"), "{}", refusals[1]);
    assert!(refusals[2].contains("built with `trap-on-start`: trapping while starting, on purpose"), "the panic message: {}", refusals[2]);
    let refused: Vec<u64> = status.iter().map(|s| s.refused_swaps).collect();
    assert_eq!(refused, vec![1, 1, 2, 1]);
    assert!(status.iter().all(|s| s.swaps == 0));
}

fn partition_record(offset: u64, key: &str, second: u32, value: f64) -> weir::source::SourceRecord {
    weir::source::SourceRecord {
        value: reading(key, second, value).into_bytes(),
        key: None,
        timestamp: weir::Timestamp(0),
        headers: Vec::new(),
        origin: weir::source::Origin { source: std::sync::Arc::from("t"), partition: Some(0), position: offset, offset: None },
    }
}

#[test]
fn a_checkpoint_of_another_state_version_is_migrated_on_restore_or_refused() {
    use weir::state::checkpoint::{FolderCheckpoints, PartitionId};
    let id = PartitionId { topic: "t".to_owned(), partition: 0 };

    // Version 1 absorbs two readings of an open window and checkpoints.
    let dir = tempfile::tempdir().unwrap();
    let mut v1 = faulty_pipeline("faulty").with_checkpoints(FolderCheckpoints::open(dir.path()).unwrap());
    v1.push_records(vec![partition_record(0, "a", 1, 1.0), partition_record(1, "a", 2, 2.0)]).unwrap();
    let now = v1.now();
    v1.pipeline().checkpoint(None, now).unwrap();

    // Version 2 takes the partition: the accumulator is migrated, the
    // window goes on where it was.
    let mut v2 = faulty_pipeline("faulty_v2").with_checkpoints(FolderCheckpoints::open(dir.path()).unwrap());
    assert_eq!(v2.pipeline().take_partition(&id, now).unwrap(), Some(2));
    v2.push_records(vec![partition_record(2, "a", 3, 4.0)]).unwrap();
    v2.finish().unwrap();
    assert_eq!(v2.take_objects(), vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 3, "sum": 7.0, "version": 2, "max": null })]);

    // Version 1 cannot read version 2 state: the restore stops and says so.
    let dir = tempfile::tempdir().unwrap();
    let mut v2 = faulty_pipeline("faulty_v2").with_checkpoints(FolderCheckpoints::open(dir.path()).unwrap());
    v2.push_records(vec![partition_record(0, "b", 1, 1.0)]).unwrap();
    v2.pipeline().checkpoint(None, now).unwrap();
    let mut v1 = faulty_pipeline("faulty").with_checkpoints(FolderCheckpoints::open(dir.path()).unwrap());
    let err = v1.pipeline().take_partition(&id, now).unwrap_err().to_string();
    assert!(err.contains("t[0]") && err.contains("accumulators `faulty-sum v2`") && err.contains("writes `faulty-sum v1`"), "{err}");
}

#[test]
fn a_swap_survives_a_restart_and_a_missing_component_stops_it() {
    use weir::manifest::StageKind;
    use weir::state::checkpoint::{FolderCheckpoints, PartitionId};
    let id = PartitionId { topic: "t".to_owned(), partition: 0 };
    let dir = tempfile::tempdir().unwrap();
    let engine = std::sync::Arc::new(weir::plugin::PluginEngine::new(weir::plugin::PluginEngine::default_cache_dir()).unwrap());
    let v2 = dir.path().join("faulty-v2.wasm");
    std::fs::copy(weir_tests::plugin("faulty_v2"), &v2).unwrap();
    let store = || FolderCheckpoints::open(&dir.path().join("checkpoints")).unwrap();

    // Version 1 from the manifest, swapped to version 2 while running, then checkpointed.
    let mut first = faulty_pipeline("faulty").with_checkpoints(store()).with_engine(engine.clone());
    first.push_records(vec![partition_record(0, "a", 1, 1.0)]).unwrap();
    first.pipeline().swap_all(&v2, &engine).unwrap();
    let v2_hash = first.pipeline().stages().fold.hash().to_owned();
    let now = first.now();
    first.pipeline().checkpoint(None, now).unwrap();

    // A restart from the same manifest runs what was running, not the manifest's version 1.
    let mut second = faulty_pipeline("faulty").with_checkpoints(store()).with_engine(engine.clone());
    assert_ne!(second.pipeline().stages().fold.hash(), v2_hash);
    assert_eq!(second.pipeline().take_partition(&id, now).unwrap(), Some(1));
    for kind in StageKind::ALL {
        assert_eq!(second.pipeline().stages().get(kind).unwrap().hash(), v2_hash, "{kind}");
    }
    second.push_records(vec![partition_record(1, "a", 2, 4.0)]).unwrap();
    second.finish().unwrap();
    assert_eq!(
        second.take_objects(),
        vec![serde_json::json!({ "key": "a", "start": "2022-01-01T00:00:00Z", "count": 2, "sum": 5.0, "version": 2, "max": null })]
    );

    // The swapped-in component is gone: the restart stops and names both.
    std::fs::remove_file(&v2).unwrap();
    let mut third = faulty_pipeline("faulty").with_checkpoints(store()).with_engine(engine.clone());
    let err = third.pipeline().take_partition(&id, now).unwrap_err().to_string();
    assert!(err.contains("faulty-v2.wasm") && err.contains(&v2_hash) && err.contains("swapped in for the manifest's"), "{err}");
}
