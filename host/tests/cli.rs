//! The `weir` binary as a user runs it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn weir(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(root())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_every_example() {
    for manifest in [
        "examples/seed-000-sensor-average/pipeline.toml",
        "examples/seed-001-telemetry/pipeline.toml",
        "examples/seed-002-min-max-mean/pipeline.toml",
        "examples/seed-002-min-max-mean/python.toml",
        "examples/seed-002-min-max-mean/rust-fold-python-format.toml",
        "examples/seed-002-min-max-mean/python-fold-rust-format.toml",
        "examples/seed-004-collect/collect.toml",
        "examples/seed-004-collect/window.toml",
        "examples/seed-001-telemetry/profile.toml",
        "examples/windows/sliding.toml",
        "examples/windows/session.toml",
    ] {
        let out = weir(&["check", manifest], None);
        assert!(out.status.success(), "{manifest}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains(": ok ("), "{stdout}");
        assert!(stdout.contains("fold") && stdout.contains("accumulator ") && stdout.contains(" v1"), "{stdout}");
    }
}

#[test]
fn check_names_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("bad.toml");
    std::fs::write(
        &manifest,
        r#"
[source]
kind = "csv"
path = "nowhere.csv"
[stages]
plugin = "missing.wasm"
[clock]
kind = "event"
[window]
kind = "tumbling"
length = "1h"
[sink]
kind = "stdout"
"#,
    )
    .unwrap();
    let out = weir(&["check", manifest.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for field in ["source.path: no such file", "stages.deserialize.plugin: no such file", "clock.wait_for_system_duration: required"] {
        assert!(stderr.contains(field), "missing `{field}` in:\n{stderr}");
    }
}

#[test]
fn check_refuses_stages_that_do_not_fit_and_names_both_sides() {
    // sensor-average's deserialize writes id, value, time; window-stats'
    // fold reads `temp` (its default); sensor-average's format reads another
    // accumulator than window-stats' fold writes.
    let dir = tempfile::tempdir().unwrap();
    let plugin = |name: &str| root().join(format!("plugins/dist/{name}.wasm"));
    std::fs::write(dir.path().join("in.jsonl"), "").unwrap();
    let manifest = dir.path().join("p.toml");
    std::fs::write(
        &manifest,
        format!(
            "[source]\nkind = \"jsonl\"\npath = \"in.jsonl\"\n[stages]\nplugin = {sa:?}\n[stages.fold]\nplugin = {ws:?}\n\
             [clock]\nkind = \"event\"\nwait_for_system_duration = \"0s\"\n[window]\nkind = \"tumbling\"\nlength = \"1m\"\n[sink]\nkind = \"stdout\"\n",
            sa = plugin("sensor_average"),
            ws = plugin("window_stats"),
        ),
    )
    .unwrap();
    let out = weir(&["check", manifest.to_str().unwrap()], None);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("window_stats.wasm) reads `temp: float`, but deserialize (") && stderr.contains("sensor_average.wasm) writes no such field (it writes id: text, value: float, time: time)"),
        "{stderr}"
    );
    assert!(stderr.contains("reads accumulator `sensor-average v1`, but fold (") && stderr.contains("writes `window-stats v1`"), "{stderr}");
}

#[test]
fn run_writes_a_file_sink_and_a_dead_letter_file() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("examples/seed-002-min-max-mean");
    let manifest = std::fs::read_to_string(example.join("pipeline.toml"))
        .unwrap()
        .replace("path = \"input.jsonl\"", &format!("path = {:?}", example.join("input.jsonl")))
        .replace("../../plugins", root().join("plugins").to_str().unwrap())
        .replace("kind = \"stdout\"", "kind = \"file\"\npath = \"out.jsonl\"")
        + "\n[dead_letter]\nkind = \"file\"\npath = \"dead.jsonl\"\n";
    std::fs::write(dir.path().join("pipeline.toml"), manifest).unwrap();
    // Two workers (keys shared out): the same windows, in another order.
    let out = weir(&["run", "--workers", "2", dir.path().join("pipeline.toml").to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = std::fs::read_to_string(example.join("expected.jsonl")).unwrap();
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap()), sorted(&expected));
    assert_eq!(std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap().lines().count(), 2);
    std::fs::remove_file(dir.path().join("dead.jsonl")).unwrap();
    // One worker: the seed's order, byte for byte.
    let out = weir(&["run", "--workers", "1", dir.path().join("pipeline.toml").to_str().unwrap()], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(written, expected);
    let dead = std::fs::read_to_string(dir.path().join("dead.jsonl")).unwrap();
    let dead: Vec<serde_json::Value> = dead.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0]["kind"], "late");
    assert_eq!(dead[0]["position"], 201);
    assert!(text(&out.stderr).contains("2 dead letters"), "{}", text(&out.stderr));
}

#[test]
fn run_reads_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"
[source]
kind = "stdin"
[stages]
plugin = {:?}
config = {{ value_field = "v" }}
[stages.deserialize]
builtin = "json"
[stages.key]
field = "id"
[clock]
kind = "event"
time_field = "t"
wait_for_system_duration = "0s"
[window]
kind = "tumbling"
length = "1m"
[sink]
kind = "stdout"
"#,
        root().join("plugins/dist/window_stats.wasm")
    );
    std::fs::write(dir.path().join("p.toml"), manifest).unwrap();
    let input = "{\"id\":\"x\",\"v\":1,\"t\":60}\n{\"id\":\"x\",\"v\":3,\"t\":61}\n{\"id\":\"x\",\"v\":5,\"t\":120}\n";
    let out = weir(&["run", dir.path().join("p.toml").to_str().unwrap()], Some(input));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "{\"key\":\"x\",\"start\":\"1970-01-01T00:01:00Z\",\"end\":\"1970-01-01T00:02:00Z\",\"count\":2,\"mean\":2.0,\"min\":1.0,\"max\":3.0}\n\
         {\"key\":\"x\",\"start\":\"1970-01-01T00:02:00Z\",\"end\":\"1970-01-01T00:03:00Z\",\"count\":1,\"mean\":5.0,\"min\":5.0,\"max\":5.0}\n"
    );
}

#[test]
fn a_missing_environment_variable_is_named() {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["check", "examples/seed-000-sensor-average/kafka-dynamodb.toml"])
        .current_dir(root())
        .env_remove("WEIR_KAFKA_BROKERS")
        .env_remove("WEIR_DYNAMODB_ENDPOINT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("source.brokers: environment variable `WEIR_KAFKA_BROKERS` is not set"), "{stderr}");
    assert!(stderr.contains("sink.endpoint: environment variable `WEIR_DYNAMODB_ENDPOINT` is not set"), "{stderr}");
}

#[test]
fn a_component_of_contract_0_1_is_refused_by_name() {
    // A real 0.1 build of window-stats (see tests/fixtures/README.md).
    let old = root().join("host/tests/fixtures/window_stats_contract_0_1.wasm");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "").unwrap();
    let manifest = dir.path().join("p.toml");
    std::fs::write(
        &manifest,
        format!(
            "[source]\nkind = \"jsonl\"\npath = \"in.jsonl\"\n[stages]\nplugin = {old:?}\n[stages.deserialize]\nbuiltin = \"json\"\n[stages.key]\nfield = \"k\"\n\
             [clock]\nkind = \"event\"\ntime_field = \"t\"\nwait_for_system_duration = \"0s\"\n[window]\nkind = \"tumbling\"\nlength = \"1m\"\n[sink]\nkind = \"stdout\"\n"
        ),
    )
    .unwrap();
    for command in ["check", "run"] {
        let out = weir(&[command, manifest.to_str().unwrap()], None);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{command}: {stderr}");
        assert!(
            stderr.contains("window_stats_contract_0_1.wasm targets weir:stream@0.1.0; this weir runs weir:stream@0.2.0") && stderr.contains("rebuild it"),
            "{command}: {stderr}"
        );
    }
}

// `p.toml` in `dir`: window-stats over stdin JSON lines keyed by `id`,
// timed by `t`, 1 min windows, into the `[sink]` given.
fn write_stdin_manifest(dir: &Path, sink: &str) {
    let manifest = format!(
        "[source]\nkind = \"stdin\"\n[stages]\nplugin = {:?}\nconfig = {{ value_field = \"v\" }}\n[stages.deserialize]\nbuiltin = \"json\"\n[stages.key]\nfield = \"id\"\n\
         [clock]\nkind = \"event\"\ntime_field = \"t\"\nwait_for_system_duration = \"0s\"\n[window]\nkind = \"tumbling\"\nlength = \"1m\"\n[sink]\n{sink}\n",
        root().join("plugins/dist/window_stats.wasm")
    );
    std::fs::write(dir.join("p.toml"), manifest).unwrap();
}

// The value of an unlabelled sample line `name value`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.split(' ').next() == Some(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn scrape(addr: &str) -> String {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else { return String::new() };
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: weir\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

// Scrapes until `ready` holds (30 s at most), returning the last scrape.
fn scrape_until(addr: &str, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = scrape(addr);
        if ready(&text) {
            return text;
        }
        assert!(std::time::Instant::now() < deadline, "metrics never showed {what}; last scrape:\n{text}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn metrics_move_while_a_stream_runs() {
    let dir = tempfile::tempdir().unwrap();
    write_stdin_manifest(dir.path(), "kind = \"stdout\"");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", dir.path().join("p.toml").to_str().unwrap(), "--workers", "1", "--metrics", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts");
    let mut stdin = child.stdin.take().unwrap();
    // Two readings in [60, 120), one at 120 that closes it, one late.
    stdin.write_all(b"{\"id\":\"x\",\"v\":1,\"t\":60}\n{\"id\":\"x\",\"v\":3,\"t\":61}\n{\"id\":\"x\",\"v\":5,\"t\":120}\n{\"id\":\"x\",\"v\":7,\"t\":10}\n").unwrap();
    stdin.flush().unwrap();
    let first = scrape_until(&addr, "4 records", |t| sample(t, "weir_records_total") == Some(4.0));
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n") && first.contains("Content-Type: text/plain; version=0.0.4"), "{first}");
    assert_eq!(sample(&first, "weir_windows_written_total"), Some(1.0), "{first}");
    assert_eq!(sample(&first, "weir_late_events_total"), Some(1.0), "{first}");
    assert_eq!(sample(&first, "weir_open_windows"), Some(1.0), "{first}");
    assert!(first.contains("weir_dead_letters_total{stage=\"clock\",kind=\"late\"} 1\n"), "{first}");
    assert!(first.contains("weir_window_close_to_sink_seconds_count 1\n"), "{first}");
    let fold_calls = |t: &str| t.lines().find(|l| l.starts_with("weir_stage_call_seconds_count{stage=\"fold\"}")).and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).unwrap_or(0);
    assert!(fold_calls(&first) >= 1, "{first}");

    // More input: the figures move. x at 250 closes x's [180, 240), whose
    // held event is folded then (held events wait for their window).
    stdin.write_all(b"{\"id\":\"x\",\"v\":9,\"t\":185}\n{\"id\":\"y\",\"v\":2,\"t\":190}\n{\"id\":\"x\",\"v\":4,\"t\":250}\n").unwrap();
    stdin.flush().unwrap();
    let second = scrape_until(&addr, "7 records", |t| sample(t, "weir_records_total") == Some(7.0));
    assert_eq!(sample(&second, "weir_windows_written_total"), Some(3.0), "{second}");
    assert_eq!(sample(&second, "weir_open_windows"), Some(2.0), "{second}");
    assert!(fold_calls(&second) > fold_calls(&first), "{second}");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 5, "every window written at the end");
}

#[test]
fn a_terminal_gets_a_progress_line_and_a_pipe_gets_plain_logs() {
    let dir = tempfile::tempdir().unwrap();
    write_stdin_manifest(dir.path(), "kind = \"file\"\npath = \"out.jsonl\"");
    // A stream that stays open 2.5 s, under a pseudo-terminal (util-linux `script`).
    let job = format!(
        "(echo '{{\"id\":\"x\",\"v\":1,\"t\":60}}'; sleep 2.5; echo '{{\"id\":\"x\",\"v\":2,\"t\":130}}') | {} run {} --workers 1",
        env!("CARGO_BIN_EXE_weir"),
        dir.path().join("p.toml").display()
    );
    let tty = Command::new("script").args(["-qec", &job, "/dev/null"]).stdin(Stdio::null()).output().expect("util-linux `script` runs (it gives the job a terminal)");
    let screen = text(&tty.stdout);
    assert!(tty.status.success(), "{screen}");
    assert!(screen.contains("\r\x1b[2K") && screen.contains(" records (") && screen.contains("windows open"), "no progress line on a terminal:\n{screen:?}");
    assert!(screen.contains("2 records, 2 events, 2 windows written"), "the summary still prints:\n{screen:?}");

    // Piped: no progress line, no colour.
    let piped = Command::new("sh").args(["-c", &job]).output().unwrap();
    let logs = text(&piped.stderr);
    assert!(piped.status.success(), "{logs}");
    assert!(!logs.contains('\x1b') && !logs.contains(" records (") && logs.contains("2 windows written"), "{logs:?}");
}
