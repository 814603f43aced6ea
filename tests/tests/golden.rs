//! Every example, run through the real host and plugins, against its
//! expected output.

use weir_tests::{expected, manifest, run};

fn assert_lines(got: &[String], want: &[String]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g, w, "line {} differs", i + 1);
    }
    assert_eq!(got.len(), want.len(), "line count differs");
}

#[test]
fn seed_000_sensor_average() {
    let out = run(&manifest("examples/seed-000-sensor-average/pipeline.toml")).unwrap();
    assert_lines(&out.lines, &expected("examples/seed-000-sensor-average/expected.jsonl"));
    assert_eq!((out.stats.records, out.stats.late, out.stats.failed), (60, 0, 0));
}

#[test]
fn seed_001_telemetry() {
    let out = run(&manifest("examples/seed-001-telemetry/pipeline.toml")).unwrap();
    assert_lines(&out.lines, &expected("examples/seed-001-telemetry/expected.jsonl"));
    assert_eq!(out.stats.records, 999);
}

#[test]
fn seed_001_window_length_is_configurable() {
    let mut m = manifest("examples/seed-001-telemetry/pipeline.toml");
    if let weir::manifest::WindowSpec::Tumbling { length, .. } = &mut m.window {
        *length = 10 * 60 * 1_000_000;
    }
    let out = run(&m).unwrap();
    // The data spans 00:01–00:29 on 2020-07-12: three 10-minute windows per device.
    assert_eq!(out.lines.len(), 9);
    let total: u64 = out.lines.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 999);
    assert!(out.lines.iter().any(|l| l.contains(r#""start":"2020-07-12T00:10:00Z","end":"2020-07-12T00:20:00Z""#)));
}

#[test]
fn seed_002_with_the_python_and_javascript_plugins_equals_the_rust_plugin() {
    let rust = run(&manifest("examples/seed-002-min-max-mean/pipeline.toml")).unwrap();
    for language in ["python", "javascript"] {
        let out = run(&manifest(&format!("examples/seed-002-min-max-mean/{language}.toml"))).unwrap();
        assert_lines(&out.lines, &expected("examples/seed-002-min-max-mean/expected.jsonl"));
        assert_eq!(out.lines, rust.lines, "{language}: byte for byte");
        let positions: Vec<u64> = out.dead.iter().map(|d| d.position).collect();
        assert_eq!(positions, [201, 251], "{language}: the same late readings");
    }
}

#[test]
fn seed_002_min_max_mean_sends_late_readings_to_dead_letters() {
    let out = run(&manifest("examples/seed-002-min-max-mean/pipeline.toml")).unwrap();
    assert_lines(&out.lines, &expected("examples/seed-002-min-max-mean/expected.jsonl"));
    assert_eq!(out.stats.late, 2);
    let positions: Vec<u64> = out.dead.iter().map(|d| d.position).collect();
    assert_eq!(positions, [201, 251]);
    assert!(out.dead[0].reason.starts_with("late: event time 2024-06-14T10:00:05Z is before the watermark"), "{}", out.dead[0].reason);
}

#[test]
fn seed_004_collect_matches_the_seed() {
    let out = run(&manifest("examples/seed-004-collect/collect.toml")).unwrap();
    assert_lines(&out.lines, &expected("examples/seed-004-collect/collect-expected.txt"));
}

#[test]
fn seed_004_collect_window_matches_the_seed() {
    let out = run(&manifest("examples/seed-004-collect/window.toml")).unwrap();
    assert_lines(&out.lines, &expected("examples/seed-004-collect/window-expected.txt"));
}

#[test]
fn batch_size_does_not_change_results() {
    for path in ["examples/seed-000-sensor-average/pipeline.toml", "examples/seed-002-min-max-mean/pipeline.toml"] {
        let whole = run(&manifest(path)).unwrap();
        let mut one_by_one = manifest(path);
        one_by_one.limits.batch_size = 1;
        let single = run(&one_by_one).unwrap();
        // Windows of different keys may close in another order when each
        // record is its own batch; their content may not change.
        let sorted = |mut lines: Vec<String>| {
            lines.sort();
            lines
        };
        assert_eq!(sorted(whole.lines), sorted(single.lines), "{path}");
        // The watermark in a late item's reason moves with system time; which
        // records are dead letters may not.
        let which = |dead: &[weir::sink::DeadLetter]| dead.iter().map(|d| (d.kind, d.position, d.key.clone())).collect::<Vec<_>>();
        assert_eq!(which(&whole.dead), which(&single.dead), "{path}");
    }
}

#[test]
fn seed_002_mixing_languages_per_stage_equals_the_rust_plugin() {
    let rust = run(&manifest("examples/seed-002-min-max-mean/pipeline.toml")).unwrap();
    for mixed in ["rust-fold-python-format", "python-fold-rust-format", "javascript-fold-python-format"] {
        let m = manifest(&format!("examples/seed-002-min-max-mean/{mixed}.toml"));
        let fold = m.stage(weir::manifest::StageKind::Fold).unwrap().plugin.clone();
        let format = m.stage(weir::manifest::StageKind::Format).unwrap().plugin.clone();
        assert_ne!(fold, format, "{mixed}: two components, one per language");
        let out = run(&m).unwrap();
        assert_lines(&out.lines, &expected("examples/seed-002-min-max-mean/expected.jsonl"));
        assert_eq!(out.lines, rust.lines, "{mixed}: byte for byte");
        assert_eq!(out.dead.len(), 2, "{mixed}: the same two late readings");
    }
}

// Sliding and session windows against Bytewax 0.21.1's own output for the
// same job (`scripts/golden-bytewax.sh` writes the expected files). Windows
// are compared as sorted lines: the order windows close in is not part of
// either tool's contract.
fn sorted_run(path: &str) -> (Vec<String>, weir_tests::Output) {
    let out = run(&manifest(path)).unwrap();
    let mut lines = out.lines.clone();
    lines.sort();
    (lines, out)
}

#[test]
fn sliding_windows_match_bytewax() {
    let (lines, out) = sorted_run("examples/windows/sliding.toml");
    assert_lines(&lines, &expected("examples/windows/sliding-expected.jsonl"));
    // Bytewax reports a late reading once per window it missed (2 × 2);
    // weir dead-letters the reading once.
    let positions: Vec<u64> = out.dead.iter().map(|d| d.position).collect();
    assert_eq!(positions, [201, 251]);
    let counted: u64 = out.lines.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 2 * 300, "every on-time reading is in two windows");
}

#[test]
fn session_windows_match_bytewax() {
    let (lines, out) = sorted_run("examples/windows/session.toml");
    assert_lines(&lines, &expected("examples/windows/session-expected.jsonl"));
    assert_eq!(out.stats.late, 2);
}

#[test]
fn out_of_order_sessions_merge_and_match_bytewax() {
    let (lines, out) = sorted_run("examples/windows/session-shuffled.toml");
    assert_lines(&lines, &expected("examples/windows/session-shuffled-expected.jsonl"));
    assert!(out.stats.sessions_merged > 0, "the shuffled input makes sessions merge: {:?}", out.stats);
    assert_eq!(out.stats.late, 2);
    // Bytewax folds in time order and never merges here; the windows are the same.
    assert_eq!(expected("examples/windows/session-shuffled-expected.jsonl"), expected("examples/windows/session-expected.jsonl"));
}

#[test]
fn session_windows_refuse_a_fold_that_cannot_merge() {
    // The Python SDK's components export no `merge`.
    let mut m = manifest("examples/seed-002-min-max-mean/python.toml");
    m.window = weir::manifest::WindowSpec::Session { gap: 5_000_000 };
    let err = run(&m).err().expect("refused").to_string();
    assert!(err.contains("does not export weir:stream/merge") && err.contains("window_stats_py.wasm"), "{err}");
}

#[test]
fn seed_001_profile_per_device_and_hour() {
    // The figures are recomputed in plain Python by examples/reference_check.py.
    let out = run(&manifest("examples/seed-001-telemetry/profile.toml")).unwrap();
    assert_lines(&out.lines, &expected("examples/seed-001-telemetry/profile-expected.jsonl"));
    assert_eq!((out.stats.records, out.stats.failed), (999, 0));
}
