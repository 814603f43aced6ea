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
