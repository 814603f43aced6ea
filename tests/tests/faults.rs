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
fn a_trap_in_a_batch_dead_letters_only_the_poison_record() {
    let dir = tempfile::tempdir().unwrap();
    // All records in one batch: the call traps as a whole, the host retries
    // it in halves, and only the record that traps alone is dead.
    for stage in ["deserialize", "key", "fold"] {
        let m = pipeline(dir.path(), stage, r#"{ mode = "trap", when = "boom" }"#, "");
        let out = run(&m).unwrap();
        let dead = failed(&out.dead, stage);
        assert_eq!(dead.len(), if stage == "deserialize" { 2 } else { 1 }, "{stage}: {dead:?}");
        assert_eq!(dead[0].position, 3, "{stage}");
        assert!(dead[0].reason.contains(&format!("{stage} plugin trapped")) && dead[0].reason.contains("trapping on"), "{}", dead[0].reason);
        assert_eq!(keys(&out.lines), ["a", "b"], "{stage}");
        assert!(out.lines[0].contains(r#""count":2,"sum":5.0"#), "{stage}: {}", out.lines[0]);
        assert!(out.lines[1].contains(r#""count":2,"sum":7.0"#), "{stage}: {}", out.lines[1]);
        assert_eq!(out.stats.failed, 2, "{stage}: the poison record and the line that is not JSON");
    }
}

#[test]
fn a_plugin_that_sleeps_is_stopped_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    // The plugin sleeps 30 s inside a WASI call, where epoch interruption
    // cannot reach; the clock the host gives it ends waits at the deadline.
    let m = pipeline(dir.path(), "fold", r#"{ mode = "sleep", when = "boom" }"#, "batch_size = 1\ncall_timeout = \"500ms\"");
    let started = std::time::Instant::now();
    let out = run(&m).unwrap();
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(10), "took {took:?}: the sleep escaped the 500ms limit");
    let dead = failed(&out.dead, "fold");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].reason, "fold plugin timed out after 500ms");
    assert_eq!(keys(&out.lines), ["a", "b"]);
    println!("a 30 s sleep under a 500ms limit: the run took {took:?}");
}

#[test]
fn a_stack_overflow_is_contained() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "key", r#"{ mode = "stack", when = "boom" }"#, "");
    let out = run(&m).unwrap();
    let dead = failed(&out.dead, "key");
    assert_eq!(dead.len(), 1, "{dead:?}");
    // Rust keeps its stack in linear memory: overflowing it runs off the
    // bottom of memory (an out-of-bounds trap) before wasm's own call stack
    // is exhausted. Either way one line names it.
    let reason = &dead[0].reason;
    assert!(reason.contains("key plugin trapped") && (reason.contains("stack") || reason.contains("out of bounds")), "{reason}");
    assert!(!reason.contains('\n'), "{reason}");
    assert_eq!(keys(&out.lines), ["a", "b"]);
}

#[test]
fn huge_output_hits_the_memory_cap() {
    let dir = tempfile::tempdir().unwrap();
    // 64 MiB of events for one record, under a 32 MiB cap.
    let m = pipeline(dir.path(), "deserialize", r#"{ mode = "huge", when = "boom" }"#, "memory = \"32MiB\"");
    let out = run(&m).unwrap();
    let dead = failed(&out.dead, "deserialize");
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(dead[0].position, 3);
    assert_eq!(dead[0].reason, format!("deserialize plugin exceeded its memory limit of {} bytes", 32 << 20));
    assert_eq!(keys(&out.lines), ["a", "b"]);
}

#[test]
fn a_log_flood_is_cut_to_size_and_rate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.jsonl"), INPUT).unwrap();
    let manifest = weir_tests::write_sums_manifest(
        dir.path(),
        "faulty",
        "kind = \"jsonl\"\npath = \"input.jsonl\"",
        "[stages.key]\nconfig = { mode = \"flood\", when = \"boom\" }\n[limits]\ncall_timeout = \"60s\"",
    );
    let out = weir_tests::services::weir(&["run", manifest.to_str().unwrap()], std::time::Duration::from_secs(120));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let flood_lines = log.lines().filter(|l| l.contains("xxxxxxxx")).count();
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(flood_lines <= 101, "{flood_lines} plugin log lines reached the log");
    assert!(longest < 6000, "a log line of {longest} bytes");
    assert!(log.contains("log lines dropped: over 100 a second"), "{}", &log[..log.len().min(3000)]);
    println!("20,000 plugin log lines of 16 KiB: {flood_lines} reached the log, the longest line {longest} bytes");
}

#[test]
fn a_component_path_that_is_not_a_regular_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "fold", "{}", "");
    for path in ["/dev/zero", "/tmp"] {
        let mut bad = m.clone();
        bad.stages[2].plugin = path.into();
        let err = Stages::load(&bad, engine()).err().expect("refused").to_string();
        assert!(err.contains(path) && (err.contains("not a regular file") || err.contains("Is a directory")), "{err}");
    }
}

#[test]
fn tampered_compiled_code_is_recompiled_not_run() {
    let cache = tempfile::tempdir().unwrap();
    let engine = weir::plugin::PluginEngine::new(Some(cache.path().join("compiled"))).unwrap();
    let component = weir_tests::plugin("faulty");
    engine.load(&component).unwrap();
    let cwasm: Vec<_> =
        std::fs::read_dir(cache.path().join("compiled")).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "cwasm")).collect();
    assert_eq!(cwasm.len(), 1, "{cwasm:?}");
    let mut bytes = std::fs::read(&cwasm[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&cwasm[0], &bytes).unwrap();
    // The altered file does not match its digest: compiled again, and the
    // cache holds good code afterwards.
    engine.load(&component).unwrap();
    assert_ne!(std::fs::read(&cwasm[0]).unwrap(), bytes);
}

#[test]
fn the_dead_letter_file_is_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("input.jsonl"), INPUT).unwrap();
    let manifest = weir_tests::write_sums_manifest(
        dir.path(),
        "faulty",
        "kind = \"jsonl\"\npath = \"input.jsonl\"",
        "[dead_letter]\nkind = \"file\"\npath = \"dead.jsonl\"",
    );
    for run in 1..=2 {
        let out = weir_tests::services::weir(&["run", manifest.to_str().unwrap()], std::time::Duration::from_secs(60));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let letters = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
        assert_eq!(letters.lines().count(), run, "run {run}: one letter (the line that is not JSON) per run:\n{letters}");
    }
}

// A record that is not UTF-8 (a Latin-1 line, a binary payload) cannot
// be decoded, and its dead letter must hold its bytes as they were, with
// its own time, to be replayed: as text they would be lost.
#[test]
fn a_record_that_is_not_utf8_is_dead_lettered_byte_for_byte() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let bad: &[u8] = b"{\"key\":\"caf\xe9\",\"value\":\xff\xfe}";
    let mut input = INPUT.as_bytes().to_vec();
    input.extend_from_slice(bad);
    input.push(b'\n');
    std::fs::write(dir.path().join("input.jsonl"), &input).unwrap();
    let manifest = weir_tests::write_sums_manifest(dir.path(), "faulty", "kind = \"jsonl\"\npath = \"input.jsonl\"", "[dead_letter]\nkind = \"file\"\npath = \"dead.jsonl\"");
    let out = weir_tests::services::weir(&["run", manifest.to_str().unwrap()], std::time::Duration::from_secs(60));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let letters: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(letters.len(), 2, "{letters:?}");
    // The line that is text but not JSON: as text.
    assert_eq!(letters[0]["position"], 5);
    assert_eq!(letters[0]["value"], "not json at all");
    // The one that is not text: its bytes, in base64.
    assert_eq!(letters[1]["position"], 7);
    let encoded = letters[1]["value"]["base64"].as_str().unwrap_or_else(|| panic!("no base64 value: {}", letters[1]));
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(encoded).unwrap(), bad);
    for letter in &letters {
        assert!(letter["timestamp_us"].as_i64().is_some_and(|t| t > 1_600_000_000_000_000), "the record's time: {letter}");
    }
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
fn a_format_trap_dead_letters_its_window_with_everything_to_replay_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "format", r#"{ mode = "trap", when = "boom" }"#, "");
    let out = run(&m).unwrap();
    assert_eq!(keys(&out.lines), ["a", "b"], "the other windows of the same format call are written");
    let dead = failed(&out.dead, "format");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].key.as_deref(), Some("boom"));
    let value: serde_json::Value = serde_json::from_slice(&dead[0].value).unwrap();
    assert_eq!(value["start"], "2022-01-01T00:00:00Z");
    assert_eq!(value["count"], 1);
    assert_eq!(value["accumulator"], serde_json::json!({ "name": "faulty-sum", "version": 1 }));
    // The accumulator itself (the JSON of the plugin's Sum { count: 1, sum: 3.0 }).
    let acc = hex::decode(value["acc_hex"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(acc).unwrap(), r#"{"count":1,"sum":3.0}"#, "{value}");
}

#[test]
fn a_window_the_format_stage_mangles_keeps_what_was_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let m = pipeline(dir.path(), "format", r#"{ mode = "error", when = "boom" }"#, "");
    let out = run(&m).unwrap();
    let dead = failed(&out.dead, "format");
    let value: serde_json::Value = serde_json::from_slice(&dead[0].value).unwrap();
    assert!(!value["acc_hex"].as_str().unwrap().is_empty(), "{value}");
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
    // The Rust fold, the Python format. Two readings near f64::MAX in one
    // window overflow the Rust fold's sum, which JSON writes as null; the
    // Python format divides it and raises. The dead letter names the Python
    // exception; the other window is written.
    let dir = tempfile::tempdir().unwrap();
    let input = r#"{"key":"a","value":1e308,"time":"2022-01-01T00:00:01Z"}
{"key":"a","value":1e308,"time":"2022-01-01T00:00:02Z"}
{"key":"b","value":2,"time":"2022-01-01T00:00:02Z"}
"#;
    std::fs::write(dir.path().join("input.jsonl"), input).unwrap();
    let text = format!(
        "[source]\nkind = \"jsonl\"\npath = \"input.jsonl\"\n[stages]\nplugin = \"{}\"\nconfig = {{ value_field = \"value\" }}\n[stages.format]\nplugin = \"{}\"\n\
         [stages.deserialize]\nbuiltin = \"json\"\n[stages.key]\nfield = \"key\"\n\
         [clock]\nkind = \"event\"\ntime_field = \"time\"\nwait_for_system_duration = \"0s\"\n\
         [window]\nkind = \"tumbling\"\nlength = \"10s\"\nalign_to = \"2022-01-01T00:00:00Z\"\n[sink]\nkind = \"stdout\"\n",
        weir_tests::plugin("window_stats").display(),
        weir_tests::plugin("window_stats_py").display()
    );
    let out = run(&weir_tests::manifest_text(dir.path(), &text)).unwrap();
    assert_eq!(out.lines.len(), 1, "{:?}", out.lines);
    assert!(out.lines[0].contains(r#""key":"b""#), "{:?}", out.lines);
    let format_failures = failed(&out.dead, "format");
    assert_eq!(format_failures.len(), 1, "{:?}", out.dead);
    let reason = &format_failures[0].reason;
    assert!(reason.starts_with("TypeError: unsupported operand type(s) for /"), "{reason}");
}

#[test]
fn wrong_lengths_in_what_a_plugin_returns_are_contained() {
    // `liar` (raw wit-bindgen) folds honestly except for a batch holding
    // `boom`, where it returns one accumulator too few, a failure index past
    // the batch, or ends past its data. The host refuses each result,
    // narrows the batch down, and only `boom` is dead-lettered.
    for (mode, says) in
        [("short", "0 accumulators for 1 groups"), ("index", "a failure index is past the end of the batch")]
    {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input.jsonl"), INPUT).unwrap();
        let more = format!("[stages.fold]\nplugin = \"{}\"\nconfig = {{ mode = \"{mode}\", when = \"boom\" }}", weir_tests::plugin("liar").display());
        let m = sums_manifest(dir.path(), "faulty", "kind = \"jsonl\"\npath = \"input.jsonl\"", &more);
        let out = run(&m).unwrap();
        let dead = failed(&out.dead, "fold");
        assert_eq!(dead.len(), 1, "{mode}: {dead:?}");
        assert_eq!(dead[0].position, 3, "{mode}");
        assert!(dead[0].reason.starts_with("fold plugin broke the contract") && dead[0].reason.contains(says), "{mode}: {}", dead[0].reason);
        assert_eq!(keys(&out.lines), ["a", "b"], "{mode}");
        assert!(out.lines[0].contains(r#""count":2,"sum":5.0"#), "{mode}: {}", out.lines[0]);
        assert!(out.lines[1].contains(r#""count":2,"sum":7.0"#), "{mode}: {}", out.lines[1]);
        println!("{mode}: {}", dead[0].reason);
    }
}
