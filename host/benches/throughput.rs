//! Records per second per core through the whole data path: the real
//! telemetry (seed 001), repeated to a million records with event times
//! shifted per repetition, through the wasm stages (window-stats plugin) into
//! 1 h tumbling windows and a null sink. In the same run, the same job in
//! plain native Rust (serde_json, a HashMap of stats) as the baseline, so the
//! ratio says what the sandbox and the host cost.
//!
//! Then the same job with the Python plugin (`plugins/window-stats-py`,
//! componentize-py) against the Rust one on the same records: the cost per
//! record of each, and the ratio.
//!
//! Run: `cargo bench -p weir --bench throughput` (after
//! `bash scripts/build-plugins.sh`). `WEIR_BENCH_RECORDS` changes the count,
//! `WEIR_BENCH_PY_RECORDS` the Python comparison's (default 100,000).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir::Timestamp;
use weir::manifest::Manifest;
use weir::pipeline::{Pipeline, Stages};
use weir::plugin::PluginEngine;
use weir::sink::{DeadLetters, NullSink};
use weir::source::{CsvReader, Source, SourceRecord};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

// CPU time of this process (user + system), from /proc.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / 100.0))
}

/// The telemetry rows as JSON objects, repeated to `count` records, each
/// repetition 30 minutes after the previous one (the data spans 28).
fn records(count: usize) -> Vec<SourceRecord> {
    let mut reader = CsvReader::open(&root().join("examples/seed-001-telemetry/iot_telemetry_data_1000.csv")).unwrap();
    let rows = reader.next_batch(usize::MAX).unwrap();
    let parsed: Vec<serde_json::Map<String, serde_json::Value>> = rows.iter().map(|r| serde_json::from_slice(&r.value).unwrap()).collect();
    let mut out = Vec::with_capacity(count);
    'outer: for rep in 0.. {
        for (row, record) in parsed.iter().zip(&rows) {
            if out.len() == count {
                break 'outer;
            }
            let mut row = row.clone();
            let ts: f64 = row["ts"].as_str().unwrap().parse().unwrap();
            row.insert("ts".into(), serde_json::Value::String(format!("{}", ts + 1800.0 * rep as f64)));
            out.push(SourceRecord { value: serde_json::to_vec(&row).unwrap(), ..record.clone() });
        }
    }
    out
}

fn native_baseline(records: &[SourceRecord]) -> (Duration, usize) {
    #[derive(Default)]
    struct Stats {
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
    }
    let started = Instant::now();
    let mut windows: HashMap<(String, i64), Stats> = HashMap::new();
    let align = 1_577_836_800_000_000i64;
    let length = 3_600_000_000i64;
    for record in records {
        let row: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&record.value).unwrap();
        let ts: f64 = row["ts"].as_str().unwrap().parse().unwrap();
        let temp: f64 = row["temp"].as_str().unwrap().parse().unwrap();
        let key = row["device"].as_str().unwrap().to_owned();
        let index = ((ts * 1e6) as i64 - align).div_euclid(length);
        let s = windows.entry((key, index)).or_insert(Stats { min: f64::INFINITY, max: f64::NEG_INFINITY, ..Default::default() });
        s.count += 1;
        s.sum += temp;
        s.min = s.min.min(temp);
        s.max = s.max.max(temp);
    }
    let lines: Vec<String> = windows.iter().map(|((k, i), s)| format!("{k} {i} {} {} {} {}", s.count, s.sum / s.count as f64, s.min, s.max)).collect();
    (started.elapsed(), lines.len())
}

fn run_weir(manifest: &Manifest, engine: &PluginEngine, records: &[SourceRecord], batch_size: usize) -> (Duration, Option<Duration>, u64, u64) {
    let stages = Stages::load(manifest, engine).unwrap();
    let mut m = manifest.clone();
    m.limits.batch_size = batch_size;
    let (dead, _) = DeadLetters::memory();
    let mut pipeline = Pipeline::new(&m, stages, Box::new(NullSink), dead);
    let batches: Vec<Vec<SourceRecord>> = records.chunks(batch_size).map(<[SourceRecord]>::to_vec).collect();
    let cpu0 = cpu_time();
    let started = Instant::now();
    for batch in batches {
        pipeline.process(batch, Timestamp::now()).unwrap();
    }
    let stats = pipeline.finish().unwrap();
    let wall = started.elapsed();
    let cpu = cpu0.zip(cpu_time()).map(|(a, b)| b.saturating_sub(a));
    assert_eq!(stats.late + stats.failed, 0, "the benchmark input must flow cleanly");
    (wall, cpu, stats.records, stats.windows)
}

// Contract 0.2's first step alone: the host decodes the three fields the
// job reads into typed columns, batches of 1024.
fn decode_only(records: &[SourceRecord]) -> Duration {
    use weir::event::{FieldSpec, FieldType, JsonDecoder, TimeFormat};
    let decoder = JsonDecoder::new(
        vec![FieldSpec::required("device", FieldType::Text), FieldSpec::required("temp", FieldType::Float), FieldSpec::required("ts", FieldType::Time)],
        TimeFormat::UnixSeconds,
    );
    let started = Instant::now();
    let mut events = 0usize;
    for batch in records.chunks(1024) {
        let decoded = decoder.decode(batch.iter().map(|r| r.value.as_slice()));
        assert!(decoded.failures.is_empty(), "{:?}", decoded.failures.first());
        events += decoded.events.count as usize;
    }
    assert_eq!(events, records.len());
    started.elapsed()
}

fn main() {
    let count: usize = std::env::var("WEIR_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let plugin = root().join("plugins/dist/window_stats.wasm");
    assert!(plugin.is_file(), "build the plugins first: bash scripts/build-plugins.sh");
    let manifest = Manifest::load(&root().join("examples/seed-001-telemetry/pipeline.toml")).unwrap();
    let engine = PluginEngine::new(PluginEngine::default_cache_dir()).unwrap();

    eprintln!("preparing {count} records from the seed 001 telemetry ...");
    let records = records(count);
    let (native, native_windows) = native_baseline(&records);
    let native_rate = count as f64 / native.as_secs_f64();

    println!(
        "throughput: seed 001 telemetry, {count} records, CSV row JSON -> wasm deserialize -> wasm key -> event clock -> 1 h tumbling -> wasm fold -> wasm format -> null sink"
    );
    println!("{:<34} {:>12} {:>14} {:>14} {:>9}", "run", "wall", "records/s", "rec/s/core", "windows");
    println!("{:<34} {:>12.3?} {:>14.0} {:>14.0} {:>9}", "native Rust baseline (no wasm)", native, native_rate, native_rate, native_windows);
    let decode = decode_only(&records);
    let decode_rate = count as f64 / decode.as_secs_f64();
    println!(
        "{:<34} {:>12.3?} {:>14.0} {:>14.0} {:>9}   (contract 0.2's built-in decoder, typed columns; no stage after it)",
        "host JSON decode of 3 fields", decode, decode_rate, decode_rate, "-"
    );
    for batch_size in [64, 256, 1024, 4096] {
        let (wall, cpu, records, windows) = run_weir(&manifest, &engine, &records, batch_size);
        let rate = records as f64 / wall.as_secs_f64();
        // One pipeline runs on one thread; CPU time also counts the epoch
        // ticker and the allocator, so records per CPU-second is per core.
        let per_core = cpu.filter(|c| !c.is_zero()).map_or(rate, |c| records as f64 / c.as_secs_f64());
        println!(
            "{:<34} {:>12.3?} {:>14.0} {:>14.0} {:>9}   ({:.1}x the native baseline's time)",
            format!("weir, batch {batch_size}"),
            wall,
            rate,
            per_core,
            windows,
            native_rate / rate
        );
    }

    // Rust vs Python, the same job: seed 001's manifest with the plugin swapped.
    let py_count: usize = std::env::var("WEIR_BENCH_PY_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let python = root().join("plugins/dist/window_stats_py.wasm");
    assert!(python.is_file(), "build the plugins first: bash scripts/build-plugins.sh");
    let mut py_manifest = manifest.clone();
    for stage in &mut py_manifest.stages {
        stage.plugin = python.clone();
    }
    let sample = &records[..py_count.min(records.len())];
    println!();
    println!("per-record cost, same job, {} records, batch 1024:", sample.len());
    println!("{:<34} {:>12} {:>14} {:>12} {:>9}", "plugin", "wall", "records/s", "µs/record", "windows");
    let mut per_record = Vec::new();
    for (name, m) in [("Rust (window-stats)", &manifest), ("Python (window-stats-py)", &py_manifest)] {
        let (wall, cpu, n, windows) = run_weir(m, &engine, sample, 1024);
        let busy = cpu.filter(|c| !c.is_zero()).unwrap_or(wall);
        let micros = busy.as_secs_f64() * 1e6 / n as f64;
        per_record.push(micros);
        println!("{name:<34} {wall:>12.3?} {:>14.0} {micros:>12.2} {windows:>9}", n as f64 / wall.as_secs_f64());
    }
    println!("the Python plugin costs {:.1}x the Rust plugin per record", per_record[1] / per_record[0]);
}
