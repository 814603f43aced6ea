//! A plugin that traps, loops, hoards memory, errors or refuses its config is
//! contained: its records go to the dead-letter output with the reason, and
//! the pipeline goes on.

use std::path::Path;

use weir::manifest::Manifest;
use weir::pipeline::Stages;
use weir::sink::{DeadLetter, DeadLetterKind};
use weir_tests::{engine, run, sums_manifest};

const INPUT: &str = r#"{"key":"a","value":1,"time":"2022-01-01T00:00:01Z"}
{"key":"b","value":2,"time":"2022-01-01T00:00:02Z"}
{"key":"boom","value":3,"time":"2022-01-01T00:00:03Z"}
{"key":"a","value":4,"time":"2022-01-01T00:00:04Z"}
not json at all
{"key":"b","value":5,"time":"2022-01-01T00:00:05Z"}
"#;

/// A pipeline of the faulty plugin with `stage` configured as `config`.
fn pipeline(dir: &Path, stage: &str, config: &str, limits: &str) -> Manifest {
    std::fs::write(dir.join("input.jsonl"), INPUT).unwrap();
    sums_manifest(dir, "faulty", "kind = \"jsonl\"\npath = \"input.jsonl\"", &format!("[stages.{stage}]\nconfig = {config}\n\n[limits]\n{limits}"))
}

fn failed<'a>(dead: &'a [DeadLetter], stage: &str) -> Vec<&'a DeadLetter> {
    dead.iter().filter(|d| d.kind == DeadLetterKind::Failed && d.stage == stage).collect()
}

fn keys(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["key"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn a_trap_fails_its_batch_and_the_pipeline_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "deserialize", r#"{ mode = "trap", when = "boom" }"#, "batch_size = 1");
    let out = run(&m).unwrap();
    let dead = failed(&out.dead, "deserialize");
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].position, 3);
    assert!(dead[0].reason.contains("deserialize plugin trapped"), "{}", dead[0].reason);
    assert_eq!(dead[1].position, 5);
    assert!(dead[1].reason.contains("value is not the expected JSON"), "{}", dead[1].reason);
    // Records after the trap still made it: a (1+4) and b (2+5).
    assert_eq!(keys(&out.lines), ["a", "b"]);
    assert!(out.lines[0].contains(r#""count":2,"sum":5.0"#), "{}", out.lines[0]);
    assert!(out.lines[1].contains(r#""count":2,"sum":7.0"#), "{}", out.lines[1]);
}

#[test]
fn an_endless_loop_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "key", r#"{ mode = "loop", when = "boom" }"#, "batch_size = 1\ncall_timeout = \"200ms\"");
    let started = std::time::Instant::now();
    let out = run(&m).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    let dead = failed(&out.dead, "key");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].reason, "key plugin timed out after 200ms");
    assert_eq!(keys(&out.lines), ["a", "b"]);
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "fold", r#"{ mode = "alloc", when = "boom" }"#, "batch_size = 1\nmemory = \"32MiB\"");
    let out = run(&m).unwrap();
    let dead = failed(&out.dead, "fold");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].reason, format!("fold plugin exceeded its memory limit of {} bytes", 32 << 20));
    assert_eq!(keys(&out.lines), ["a", "b"]);
}

#[test]
fn a_trap_in_fold_keeps_the_accumulators_it_had() {
    let dir = tempfile::tempdir().unwrap();
    // All records in one batch: the trap fails the whole batch, and no
    // window may hold half of it.
    let m = pipeline(dir.path(), "fold", r#"{ mode = "trap", when = "boom" }"#, "");
    let out = run(&m).unwrap();
    assert_eq!(failed(&out.dead, "fold").len(), 5);
    assert!(out.lines.is_empty(), "{:?}", out.lines);
    assert_eq!(out.stats.failed, 6, "five in fold, the line that is not JSON in deserialize");
}

#[test]
fn a_fold_error_fails_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "fold", r#"{ mode = "error", when = "boom" }"#, "");
    let out = run(&m).unwrap();
    let dead = failed(&out.dead, "fold");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].position, 3);
    assert!(dead[0].reason.contains("mode \"error\""), "{}", dead[0].reason);
    assert_eq!(keys(&out.lines), ["a", "b"]);
}

#[test]
fn a_format_trap_dead_letters_the_window_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "format", r#"{ mode = "trap", when = "boom" }"#, "");
    let out = run(&m).unwrap();
    assert!(out.lines.is_empty(), "all windows close in one format call, which trapped");
    let dead = failed(&out.dead, "format");
    let mut dead_keys: Vec<_> = dead.iter().map(|d| d.key.clone().unwrap()).collect();
    dead_keys.sort();
    assert_eq!(dead_keys, ["a", "b", "boom"]);
    assert!(dead[0].value.contains(r#""start":"2022-01-01T00:00:00Z""#), "{}", dead[0].value);
}

#[test]
fn a_format_error_fails_only_that_window() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "format", r#"{ mode = "error", when = "boom" }"#, "");
    let out = run(&m).unwrap();
    assert_eq!(keys(&out.lines), ["a", "b"]);
    assert_eq!(failed(&out.dead, "format").len(), 1);
}

#[test]
fn a_refused_config_stops_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "key", r#"{ mode = "reject" }"#, "");
    let err = Stages::load(&m, engine()).err().expect("refused").to_string();
    assert!(err.contains("refused its key config"), "{err}");
    assert!(err.contains("this config is refused on purpose"), "{err}");
}

#[test]
fn an_unknown_config_field_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "fold", r#"{ mood = "trap" }"#, "");
    let err = Stages::load(&m, engine()).err().expect("refused").to_string();
    assert!(err.contains("fold config: unknown field `mood`"), "{err}");
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "fold", "{}", "");
    for (name, bytes) in [("core.wasm", &b"\0asm\x01\0\0\0"[..]), ("junk.wasm", &b"definitely not wasm"[..])] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut bad = m.clone();
        bad.stages[2].plugin = path.clone();
        let err = Stages::load(&bad, engine()).err().expect("refused").to_string();
        assert!(err.contains("is not a WebAssembly component"), "{err}");
        assert!(err.contains(name), "{err}");
    }
}

#[test]
fn a_python_exception_is_named_in_the_dead_letter() {
    // The Python format stage after Rust fold stages: it cannot read their
    // (postcard) accumulators, raises, and componentize-py traps. The reason
    // names the Python exception, not only the trap.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.jsonl"), INPUT).unwrap();
    let more = format!(
        "[stages.format]\nplugin = \"{}\"\nconfig = {{ key_field = \"key\", value_field = \"value\", time_field = \"time\" }}\n\
         [stages.deserialize]\nconfig = {{ key_field = \"key\", value_field = \"value\", time_field = \"time\" }}",
        weir_tests::plugin("window_stats_py").display()
    );
    let text = format!(
        "[source]\nkind = \"jsonl\"\npath = \"input.jsonl\"\n[stages]\nplugin = \"{}\"\n[clock]\nkind = \"event\"\nwait_for_system_duration = \"0s\"\n\
         [window]\nkind = \"tumbling\"\nlength = \"10s\"\nalign_to = \"2022-01-01T00:00:00Z\"\n[sink]\nkind = \"stdout\"\n{more}\n",
        weir_tests::plugin("window_stats").display()
    );
    let out = run(&weir_tests::manifest_text(dir.path(), &text)).unwrap();
    assert!(out.lines.is_empty(), "{:?}", out.lines);
    let format_failures = failed(&out.dead, "format");
    assert!(!format_failures.is_empty(), "{:?}", out.dead);
    let reason = &format_failures[0].reason;
    assert!(reason.contains("format plugin trapped: Python exception") && reason.contains("Error"), "{reason}");
}
