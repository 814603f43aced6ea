//! `weir run --workers N`: a file job keyed by a field, shared out over
//! worker threads by key, writes exactly the windows one worker writes, and
//! loses no bad record.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use weir_tests::plugin;
use weir_tests::services::weir_binary;

// Readings of `keys` devices, 10 ms apart, keys drawn from a fixed
// pseudo-random sequence; every 997th line is not JSON and every 1,009th
// has no device, so both workers see bad records. Batches are small (50
// records), so a window's accumulator goes through the fold many times,
// at other batch boundaries on each number of workers.
fn input(path: &Path, lines: usize, keys: u64) {
    let mut text = String::new();
    let mut state = 7u64;
    for i in 0..lines {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let key = (state >> 33) % keys;
        let ts = 1_577_836_800.0 + i as f64 * 0.01;
        if i % 997 == 500 {
            writeln!(text, "not json {i}").unwrap();
        } else if i % 1009 == 600 {
            writeln!(text, r#"{{"temp":{}.5,"ts":{ts:.2}}}"#, i % 40).unwrap();
        } else {
            // Three decimals, as sensors send: sums that binary floats
            // cannot hold exactly.
            writeln!(text, r#"{{"device":"dev-{key:05}","temp":{}.{:03},"ts":{ts:.2}}}"#, i % 40, (state >> 20) % 1000).unwrap();
        }
    }
    std::fs::write(path, text).unwrap();
}

// A `-stdin` name reads the input from standard input (routed by one
// reader); the others read the file (each worker reads it for its keys).
// A `-stdout` name writes its windows to standard output.
fn manifest(dir: &Path, name: &str) -> std::path::PathBuf {
    let source =
        if name.ends_with("-stdin") { "kind = \"stdin\"".to_owned() } else { format!("kind = \"jsonl\"\npath = \"{}\"", dir.join("in.jsonl").display()) };
    let sink = if name.ends_with("-stdout") {
        "kind = \"stdout\"".to_owned()
    } else {
        format!("kind = \"file\"\npath = \"{}\"", dir.join(format!("{name}.jsonl")).display())
    };
    let text = format!(
        r#"name = "workers"
[source]
{source}
[stages]
plugin = "{plugin}"
config = {{ value_field = "temp" }}
[stages.deserialize]
builtin = "json"
[stages.key]
field = "device"
[clock]
kind = "event"
time_field = "ts"
wait_for_system_duration = "1h"
[window]
kind = "tumbling"
length = "10s"
align_to = "2020-01-01T00:00:00Z"
[sink]
{sink}
[dead_letter]
kind = "file"
path = "{dead}"
[limits]
batch_size = 50
"#,
        plugin = plugin("window_stats").display(),
        dead = dir.join(format!("{name}.dead.jsonl")).display(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

// Dead letters without the fields that name where they were handled.
fn sorted_letters(path: &Path) -> Vec<(String, u64, String)> {
    let mut letters: Vec<(String, u64, String)> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["stage"].as_str().unwrap().to_owned(), v["position"].as_u64().unwrap(), v["value"].as_str().unwrap().to_owned())
        })
        .collect();
    letters.sort();
    letters
}

#[test]
fn two_workers_write_the_windows_one_worker_writes() {
    let dir = tempfile::tempdir().unwrap();
    input(&dir.path().join("in.jsonl"), 40_000, 500);
    for (name, workers) in [("one", "1"), ("two", "2"), ("three", "3"), ("two-stdin", "2"), ("two-stdout", "2")] {
        let stdin = std::fs::File::open(dir.path().join("in.jsonl")).unwrap();
        let out =
            Command::new(weir_binary()).args(["--log", "info", "run", "--workers", workers]).arg(manifest(dir.path(), name)).stdin(stdin).output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        if name.ends_with("-stdout") {
            // Both workers write standard output: every line whole.
            std::fs::write(dir.path().join(format!("{name}.jsonl")), &out.stdout).unwrap();
        }
        let how = if name.ends_with("-stdin") { "records shared out by `device`" } else { "reading the file together, each keeping its own keys of `device`" };
        if workers != "1" {
            assert!(log.contains(&format!("{workers} workers, {how}")), "{log}");
        }
    }
    let one = sorted_lines(&dir.path().join("one.jsonl"));
    assert!(one.len() > 10_000, "500 keys over 400 s of 10 s windows: {} windows", one.len());
    let counted: u64 = one.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["count"].as_u64().unwrap()).sum();
    let letters = sorted_letters(&dir.path().join("one.dead.jsonl"));
    assert_eq!(counted + letters.len() as u64, 40_000, "every line in a window or a dead letter");
    let bad = (0..40_000).filter(|i| i % 997 == 500 || i % 1009 == 600).count();
    assert_eq!(letters.len(), bad, "the bad lines: not JSON, and no device");
    for name in ["two", "three", "two-stdin", "two-stdout"] {
        assert!(sorted_lines(&dir.path().join(format!("{name}.jsonl"))) == one, "{name} workers wrote other windows than one worker");
        assert_eq!(sorted_letters(&dir.path().join(format!("{name}.dead.jsonl"))), letters, "{name} workers");
    }
}

#[test]
fn a_job_that_cannot_be_shared_out_says_why_and_runs_on_one_worker() {
    let dir = tempfile::tempdir().unwrap();
    input(&dir.path().join("in.jsonl"), 100, 5);
    let path = manifest(dir.path(), "checkpointed");
    // Checkpoints of a file job belong to its one partition.
    let text = std::fs::read_to_string(&path).unwrap() + &format!("[checkpoint]\nkind = \"folder\"\ndir = \"{}\"\n", dir.path().join("cp").display());
    std::fs::write(&path, text).unwrap();
    let out = Command::new(weir_binary()).args(["--log", "info", "run", "--workers", "2"]).arg(&path).output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("one worker: a file job with checkpoints runs on one worker"), "{log}");
    assert_eq!(sorted_lines(&dir.path().join("checkpointed.jsonl")).len(), 5, "5 keys, 1 s of readings: one window each");
}
