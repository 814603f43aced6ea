//! The control endpoint of a running `weir run`: swaps under a steady input
//! through the real endpoint and CLI, and the refusals it owes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use weir::control::{Client, ControlError, Endpoint};
use weir_tests::plugin;
use weir_tests::services::{wait, weir_binary};

const LINES: usize = 3000;

fn manifest(dir: &Path, control: bool) -> std::path::PathBuf {
    let control = if control { format!("[control]\nendpoint_file = \"{}\"\n", dir.join("endpoint.json").display()) } else { String::new() };
    let text = format!(
        r#"
name = "control-test"
[source]
kind = "stdin"
[stages]
plugin = "{plugin}"
[clock]
kind = "event"
wait_for_system_duration = "60s"
[window]
kind = "tumbling"
length = "10s"
align_to = "2022-01-01T00:00:00Z"
[sink]
kind = "file"
path = "{out}"
{control}"#,
        plugin = plugin("faulty").display(),
        out = dir.join("out.jsonl").display(),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

// Event time moves one second per line, keys round robin: with a 60 s wait
// no stall of the test machine can make a reading late, so the output does
// not depend on timing.
fn line(i: usize) -> String {
    let key = ["a", "b", "c"][i % 3];
    let t = chrono_free_time(i as i64);
    format!("{{\"key\":\"{key}\",\"value\":{}.5,\"time\":\"{t}\"}}\n", i % 17)
}

fn chrono_free_time(second: i64) -> String {
    weir::Timestamp(1_640_995_200_000_000 + second * 1_000_000).to_string()
}

fn start(manifest: &Path) -> Child {
    Command::new(weir_binary())
        .args(["--log", "warn", "run"])
        .arg(manifest)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts")
}

fn finish(child: Child, limit: Duration) -> String {
    let out = wait(child, limit);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "weir failed:\n{log}");
    log
}

fn endpoint(dir: &Path) -> Endpoint {
    let file = dir.join("endpoint.json");
    let started = Instant::now();
    loop {
        if let Ok(e) = Endpoint::read(&file) {
            return e;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no endpoint file {} within 30 s", file.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn fifty_swaps_through_the_endpoint_under_steady_input_change_nothing() {
    // Baseline: the same input, no endpoint, no swaps.
    let base_dir = tempfile::tempdir().unwrap();
    let mut child = start(&manifest(base_dir.path(), false));
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..LINES {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    drop(stdin);
    finish(child, Duration::from_secs(60));
    let baseline = std::fs::read_to_string(base_dir.path().join("out.jsonl")).unwrap();
    assert_eq!(baseline.lines().count(), 3 * LINES / 10, "each key has a window per 10 s of readings");

    let dir = tempfile::tempdir().unwrap();
    let mut child = start(&manifest(dir.path(), true));
    let mut stdin = child.stdin.take().unwrap();
    // A steady trickle: 10 lines every 10 ms. The last third waits until the
    // swaps are done, so they happen while input is still arriving however
    // slow the machine is.
    let swaps_done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let done = swaps_done.clone();
    let writer = std::thread::spawn(move || {
        for (n, chunk) in (0..LINES).collect::<Vec<_>>().chunks(10).enumerate() {
            if n * 10 >= 2 * LINES / 3 {
                let waited = Instant::now();
                while !done.load(std::sync::atomic::Ordering::Relaxed) && waited.elapsed() < Duration::from_secs(120) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let text: String = chunk.iter().map(|&i| line(i)).collect();
            stdin.write_all(text.as_bytes()).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let client = Client::new(endpoint(dir.path()));
    let same = plugin("faulty");
    let stages = ["fold", "all", "deserialize", "key", "format"];
    for i in 0..50 {
        let answer = client.swap(stages[i % stages.len()], &same).unwrap_or_else(|err| panic!("swap {i}: {err}"));
        assert!(answer["swapped"].as_array().is_some_and(|s| !s.is_empty()), "{answer}");
    }
    let status = client.status().unwrap();
    let swaps: u64 = status["stages"].as_array().unwrap().iter().map(|s| s["swaps"].as_u64().unwrap()).sum();
    // Ten swaps each of fold, all (four stages), deserialize, key and format.
    assert_eq!(swaps, 10 + 10 * 4 + 10 + 10 + 10, "{status}");
    let read_so_far = status["stats"]["records"].as_u64().unwrap();
    swaps_done.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    finish(child, Duration::from_secs(60));
    assert!(read_so_far < LINES as u64, "the swaps happened while input was still arriving ({read_so_far} records read by then)");
    // Every window, byte for byte. The order windows of different keys are
    // written in may differ: the event clock's watermarks also advance with
    // system time, so a pause in the input (the writer waits for the swaps)
    // can close key c's window a moment before key a's of the same start.
    let swapped = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    let (swapped, baseline) = (sorted(&swapped), sorted(&baseline));
    if swapped != baseline {
        let first = swapped.iter().zip(&baseline).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "output with 50 swaps differs from the run without swaps ({} vs {} windows); first difference:\n  swapped:  {:?}\n  baseline: {:?}",
            swapped.len(),
            baseline.len(),
            swapped.get(first),
            baseline.get(first)
        );
    }
    assert!(!dir.path().join("endpoint.json").exists(), "the endpoint file is removed at exit");
}

fn raw_request(addr: std::net::SocketAddr, text: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

#[test]
fn the_endpoint_and_cli_refuse_what_they_should() {
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = manifest(dir.path(), true);
    let mut child = start(&manifest_path);
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..30 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    let e = endpoint(dir.path());
    assert!(e.address.ip().is_loopback(), "{}", e.address);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("endpoint.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the endpoint file holds the token: owner only");
    }

    // Clients that connect and say nothing take at most 8 request slots;
    // past that the endpoint says so at once instead of queueing.
    let silent: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(e.address).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (status, body) = raw_request(e.address, "GET /v1/status HTTP/1.1\r\n\r\n");
    assert_eq!(status, 503, "{body}");
    drop(silent);
    std::thread::sleep(Duration::from_millis(300));
    assert!(Client::new(e.clone()).status().is_ok(), "slots are given back when the silent clients leave");

    // No token, a wrong token, a token that is a prefix: 401, nothing done.
    let (status, _) = raw_request(e.address, "GET /v1/status HTTP/1.1\r\n\r\n");
    assert_eq!(status, 401);
    let (status, body) = raw_request(e.address, "GET /v1/status HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n");
    assert_eq!(status, 401, "{body}");
    let prefix = &e.token[..e.token.len() - 1];
    let (status, _) = raw_request(e.address, &format!("GET /v1/status HTTP/1.1\r\nAuthorization: Bearer {prefix}\r\n\r\n"));
    assert_eq!(status, 401);
    let wrong = Client::new(Endpoint { token: "0".repeat(48), ..e.clone() });
    let err = wrong.swap("fold", &plugin("faulty_v2")).unwrap_err();
    assert!(matches!(err, ControlError::Refused { status: 401, .. }), "{err}");

    // With the token: unknown paths, wrong methods, junk and oversized bodies.
    let auth = format!("Authorization: Bearer {}", e.token);
    let (status, _) = raw_request(e.address, &format!("GET /v1/secrets HTTP/1.1\r\n{auth}\r\n\r\n"));
    assert_eq!(status, 404);
    let (status, _) = raw_request(e.address, &format!("DELETE /v1/swap HTTP/1.1\r\n{auth}\r\n\r\n"));
    assert_eq!(status, 405);
    let (status, body) = raw_request(e.address, &format!("POST /v1/swap HTTP/1.1\r\n{auth}\r\nContent-Length: 5\r\n\r\nhello"));
    assert_eq!(status, 400, "{body}");
    let (status, _) = raw_request(e.address, &format!("POST /v1/swap HTTP/1.1\r\n{auth}\r\nContent-Length: 10000000\r\n\r\n"));
    assert_eq!(status, 413);
    let client = Client::new(e.clone());
    let err = client.swap("window", &plugin("faulty")).unwrap_err().to_string();
    assert!(err.contains("no stage `window`"), "{err}");
    let err = client.request("POST", "/v1/swap", Some(serde_json::json!({ "stage": "fold", "plugin": "relative.wasm" }))).unwrap_err().to_string();
    assert!(err.contains("must be absolute"), "{err}");

    // A refused swap through the CLI: non-zero exit, the reason, and the
    // old component still running (status says so).
    let out = Command::new(weir_binary()).args(["swap", "key"]).arg(plugin("wrong_world")).arg("--manifest").arg(&manifest_path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("cannot serve the key stage"), "{stderr}");
    // Fold alone to another accumulator: refused, naming both sides.
    let out = Command::new(weir_binary()).args(["swap", "fold"]).arg(plugin("faulty_v2")).arg("-m").arg(&manifest_path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("reads accumulator `faulty-sum v1`") && stderr.contains("writes `faulty-sum v2`"), "{stderr}");
    // A good one through the CLI: fold and format together.
    let out = Command::new(weir_binary()).args(["swap", "fold,format"]).arg(plugin("faulty_v2")).arg("-m").arg(&manifest_path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("fold: ") && stdout.contains("pipeline paused"), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(weir_binary()).args(["status", "-m"]).arg(&manifest_path).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let row = |stage: &str| table.lines().find(|l| l.starts_with(stage)).unwrap_or_else(|| panic!("no {stage} row in\n{table}")).to_owned();
    assert!(row("key").split_whitespace().nth(4) == Some("1"), "one refused key swap:\n{table}");
    assert!(row("fold").contains("faulty_v2.wasm") && row("fold").contains("(faulty-sum v2)"), "{table}");
    assert!(table.contains("last refusal: swap refused:"), "{table}");

    drop(stdin);
    finish(child, Duration::from_secs(60));
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 9, "the 30 readings make 3 windows per key, nothing lost:\n{out}");
}

#[test]
fn a_control_endpoint_on_a_public_address_needs_allow_remote() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), false);
    let text = std::fs::read_to_string(&path).unwrap() + "[control]\nlisten = \"0.0.0.0:7070\"\n";
    let err = weir::manifest::Manifest::parse(&text, &path).unwrap_err().to_string();
    assert!(err.contains("control.listen") && err.contains("allow_remote"), "{err}");
    let ok = std::fs::read_to_string(&path).unwrap() + "[control]\nlisten = \"0.0.0.0:7070\"\nallow_remote = true\ntoken = \"0123456789abcdef0123\"\n";
    assert!(weir::manifest::Manifest::parse(&ok, &path).is_ok());
    let short = std::fs::read_to_string(&path).unwrap() + "[control]\ntoken = \"short\"\n";
    let err = weir::manifest::Manifest::parse(&short, &path).unwrap_err().to_string();
    assert!(err.contains("control.token") && err.contains("16 characters"), "{err}");
}

#[test]
fn watch_swaps_a_changed_plugin_file_in_with_its_windows() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.wasm");
    std::fs::copy(plugin("faulty"), &live).unwrap();
    let path = manifest(dir.path(), true);
    let text = std::fs::read_to_string(&path).unwrap().replace(&plugin("faulty").display().to_string(), &live.display().to_string());
    std::fs::write(&path, text).unwrap();
    let mut child = Command::new(weir_binary())
        .args(["--log", "info", "run", "--watch"])
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Readings 0..15 s under version 1: the windows [0,10) and [10,20) of
    // each key are open when the file changes (the clock waits 60 s).
    for i in 0..15 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    let client = Client::new(endpoint(dir.path()));
    // Write the new build beside it and rename it over, as a build tool does.
    let next = dir.path().join("next.wasm");
    std::fs::copy(plugin("faulty_v2"), &next).unwrap();
    std::fs::rename(&next, &live).unwrap();
    let started = Instant::now();
    loop {
        let status = client.status().unwrap();
        if status["stages"][2]["accumulator"]["version"] == 2 {
            let swaps: Vec<u64> = status["stages"].as_array().unwrap().iter().map(|s| s["swaps"].as_u64().unwrap()).collect();
            assert_eq!(swaps, [1, 1, 1, 1], "the four stages of the one file swapped together: {status}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no watched swap within 30 s: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 15..40 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    drop(stdin);
    let log = finish(child, Duration::from_secs(60));
    assert!(log.contains("plugin file changed"), "{log}");
    let out: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(out.len(), 12, "40 s of readings, 3 keys, 10 s windows");
    let counts: u64 = out.iter().map(|o| o["count"].as_u64().unwrap()).sum();
    assert_eq!(counts, 40, "every reading in exactly one window");
    // The first six windows were open at the swap: migrated, their maximum
    // unknown; the rest opened under version 2.
    assert!(out[..6].iter().all(|o| o["version"] == 2 && o["max"].is_null()), "{out:?}");
    assert!(out[6..].iter().all(|o| o["version"] == 2 && o["max"].is_number()), "{out:?}");
}

#[test]
fn a_swap_of_a_stage_the_host_does_is_refused_by_name_and_rust_swaps_to_javascript() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), true);
    // window-stats (Rust) folds and formats; the host decodes, keys and times.
    let text = std::fs::read_to_string(&path).unwrap().replace(&plugin("faulty").display().to_string(), &plugin("window_stats").display().to_string()).replace(
        "[clock]\n",
        "config = { value_field = \"value\" }\n[stages.deserialize]\nbuiltin = \"json\"\n[stages.key]\nfield = \"key\"\n[clock]\ntime_field = \"time\"\n",
    );
    std::fs::write(&path, text).unwrap();
    let mut child = start(&path);
    let mut stdin = child.stdin.take().unwrap();
    for i in 0..15 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    stdin.flush().unwrap();
    endpoint(dir.path());
    let out = Command::new(weir_binary()).args(["swap", "key"]).arg(plugin("window_stats")).arg("-m").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("the key stage is done by the host") && stderr.contains("[stages.key]"), "{stderr}");
    // `all` swaps the stages components serve, and says which: the
    // JavaScript plugin takes over the open windows (same accumulator).
    let out = Command::new(weir_binary()).args(["swap", "all"]).arg(plugin("window_stats_js")).arg("-m").arg(&path).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("fold: ") && stdout.contains("format: ") && !stdout.contains("key: "), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for i in 15..30 {
        stdin.write_all(line(i).as_bytes()).unwrap();
    }
    drop(stdin);
    finish(child, Duration::from_secs(60));
    let out = std::fs::read_to_string(dir.path().join("out.jsonl")).unwrap();
    assert_eq!(out.lines().count(), 9, "3 windows per key, nothing lost:\n{out}");
    let counts: u64 = out.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["count"].as_u64().unwrap()).sum();
    assert_eq!(counts, 30, "every reading in a window:\n{out}");
}
