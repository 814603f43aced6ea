//! The processing stall a hot swap causes, at a steady input rate.
//!
//! The seed 001 telemetry flows through the window-stats plugin at a fixed
//! rate (batches on a schedule). A second thread plays the control
//! endpoint: it loads and validates a component off the data path and sends
//! it through the pipeline's control channel, as `weir swap` does; the
//! pipeline installs it between batches. Measured, in the same run:
//!
//! - how long the pipeline paused for each swap (the install itself);
//! - each batch's lateness (done minus scheduled arrival) without swaps and
//!   with a swap every 50 ms: the stall as a record sees it;
//! - one swap that migrates many open windows (fold state v1 -> v2).
//!
//! Run: `cargo bench -p weir --bench swap_stall` (after
//! `bash scripts/build-plugins.sh`). `WEIR_BENCH_SECONDS` sets each run's
//! length (default 5), `WEIR_BENCH_RATE` the records per second (50,000).

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use weir::Timestamp;
use weir::manifest::{Manifest, StageKind};
use weir::pipeline::{ControlRequest, Pipeline, Stages};
use weir::plugin::{PluginEngine, StagePlugin};
use weir::sink::{DeadLetters, NullSink};
use weir::source::{CsvReader, Source, SourceRecord};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    if v.is_empty() {
        return Default::default();
    }
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), *v.last().unwrap())
}

struct Run {
    lateness: Vec<Duration>,
    pauses: Vec<Duration>,
    validations: Vec<Duration>,
    records: u64,
}

/// Feeds `records` at `rate` per second in batches of `batch`, swapping the
/// fold stage every `swap_every` when given.
fn run(
    manifest: &Manifest,
    engine: &'static PluginEngine,
    records: &[SourceRecord],
    rate: f64,
    batch: usize,
    seconds: f64,
    swap_every: Option<Duration>,
) -> Run {
    let stages = Stages::load(manifest, engine).unwrap();
    let (dead, _) = DeadLetters::memory();
    let (requests, taken) = mpsc::channel();
    let mut pipeline = Pipeline::new(manifest, stages, Box::new(NullSink), dead).with_control(taken);
    let spec = manifest.stage(StageKind::Fold).cloned().unwrap();
    let limits = manifest.limits;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let swapper = std::thread::spawn(move || {
        let mut pauses = Vec::new();
        let mut validations = Vec::new();
        let Some(every) = swap_every else { return (pauses, validations) };
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(every);
            let started = Instant::now();
            let new = StagePlugin::load(engine, StageKind::Fold, &spec.plugin, &spec.config, limits).unwrap();
            validations.push(started.elapsed());
            let (reply, answer) = mpsc::channel();
            requests.send(ControlRequest::Install(vec![new], reply)).unwrap();
            match answer.recv_timeout(Duration::from_secs(10)) {
                Ok(Ok((_, paused))) => pauses.push(paused),
                Ok(Err(err)) => panic!("swap refused: {err}"),
                Err(_) => break,
            }
        }
        (pauses, validations)
    });
    let interval = Duration::from_secs_f64(batch as f64 / rate);
    let total = (rate * seconds) as usize;
    let mut lateness = Vec::new();
    let start = Instant::now();
    for (i, chunk) in records.iter().cycle().take(total).collect::<Vec<_>>().chunks(batch).enumerate() {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        pipeline.process(chunk.iter().map(|r| (*r).clone()).collect(), Timestamp::now()).unwrap();
        lateness.push(Instant::now().saturating_duration_since(due));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // Answer a swap that may be waiting, then let the swapper go.
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        pipeline.advance(Timestamp::now()).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let (pauses, validations) = swapper.join().unwrap();
    let stats = pipeline.finish().unwrap();
    assert_eq!(stats.failed, 0);
    Run { lateness, pauses, validations, records: stats.records }
}

fn row(name: &str, v: Vec<Duration>) {
    let n = v.len();
    let (p50, p99, max) = percentiles(v);
    println!("{name:<44} {n:>6} {:>10.3} {:>10.3} {:>10.3}", p50.as_secs_f64() * 1e3, p99.as_secs_f64() * 1e3, max.as_secs_f64() * 1e3);
}

fn main() {
    let seconds: f64 = std::env::var("WEIR_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5.0);
    let rate: f64 = std::env::var("WEIR_BENCH_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(50_000.0);
    let batch = 500;
    assert!(root().join("plugins/dist/window_stats.wasm").is_file(), "build the plugins first: bash scripts/build-plugins.sh");
    let engine: &'static PluginEngine = Box::leak(Box::new(PluginEngine::new(PluginEngine::default_cache_dir()).unwrap()));
    let manifest = Manifest::load(&root().join("examples/seed-001-telemetry/pipeline.toml")).unwrap();
    let records = CsvReader::open(&root().join("examples/seed-001-telemetry/iot_telemetry_data_1000.csv")).unwrap().next_batch(usize::MAX).unwrap();

    println!("swap stall: seed 001 telemetry at {rate:.0} records/s in batches of {batch} ({seconds} s per run), window-stats plugin");
    println!("{:<44} {:>6} {:>10} {:>10} {:>10}", "", "n", "p50 ms", "p99 ms", "max ms");
    let quiet = run(&manifest, engine, &records, rate, batch, seconds, None);
    let swapping = run(&manifest, engine, &records, rate, batch, seconds, Some(Duration::from_millis(50)));
    row("batch lateness, no swaps (baseline)", quiet.lateness);
    row("batch lateness, a fold swap every 50 ms", swapping.lateness);
    row("pipeline paused per swap (install)", swapping.pauses);
    row("validation per swap (off the data path)", swapping.validations);
    println!("records: {} without swaps, {} with swaps", quiet.records, swapping.records);

    // A swap that migrates open windows: the test plugin, state v1 -> v2.
    let faulty = root().join("plugins/dist/faulty.wasm");
    let v2 = root().join("plugins/dist/faulty_v2.wasm");
    let dir = std::env::temp_dir();
    let text = format!(
        "[source]\nkind = \"stdin\"\n[stages]\nplugin = \"{}\"\n[clock]\nkind = \"event\"\nwait_for_system_duration = \"1h\"\n[window]\nkind = \"tumbling\"\nlength = \"1h\"\nalign_to = \"2022-01-01T00:00:00Z\"\n[sink]\nkind = \"stdout\"\n",
        faulty.display()
    );
    let m = Manifest::parse(&text, &dir.join("migrate.toml")).unwrap();
    for windows in [1_000usize, 10_000, 100_000] {
        let mut h = weir::harness::Harness::new(&m, engine).unwrap();
        let lines: Vec<String> = (0..windows).map(|i| format!(r#"{{"key":"k{i}","value":1.5,"time":"2022-01-01T00:00:01Z"}}"#)).collect();
        for chunk in lines.chunks(4096) {
            h.push(chunk).unwrap();
        }
        let new = StagePlugin::load(engine, StageKind::Fold, &v2, "{}", m.limits).unwrap();
        let started = Instant::now();
        h.pipeline().install(new).unwrap();
        let paused = started.elapsed();
        println!("{:<44} {windows:>6} open windows: paused {:.3} ms", "fold swap v1 -> v2 migrating", paused.as_secs_f64() * 1e3);
    }
}
