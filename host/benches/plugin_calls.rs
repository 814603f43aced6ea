//! What one plugin call costs per group and per window: the window-stats
//! fold over 8,192 single-event groups (new windows, and windows with an
//! accumulator), over 8,192 events in 10-event groups, and its format over
//! 8,192 closed windows; with the same work in native Rust as the baseline
//! in the same run.
//!
//! Run: `cargo bench -p weir --bench plugin_calls` (after
//! `bash scripts/build-plugins.sh`). `WEIR_BENCH_ROUNDS` sets the rounds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use weir::event::{Column, Events, Field};
use weir::manifest::{Limits, StageKind};
use weir::plugin::{ClosedWindow, FoldGroup, PluginEngine, StagePlugin};

const BATCH: usize = 8192;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn events(n: usize) -> Events {
    let temps = (0..n).map(|i| 20.0 + (i % 1000) as f64 * 0.001).collect();
    Events { count: n as u32, fields: vec![Field { name: "temp".into(), values: Column::Floats(temps), missing: vec![] }] }
}

fn best(rounds: usize, mut f: impl FnMut() -> Duration) -> Duration {
    (0..rounds).map(|_| f()).min().unwrap()
}

fn main() {
    let rounds: usize = std::env::var("WEIR_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let plugin = root().join("plugins/dist/window_stats.wasm");
    assert!(plugin.is_file(), "build the plugins first: bash scripts/build-plugins.sh");
    let engine = PluginEngine::new(PluginEngine::default_cache_dir()).unwrap();
    let config = r#"{"value_field":"temp"}"#;
    let mut fold = StagePlugin::load(&engine, StageKind::Fold, &plugin, config, Limits::default()).unwrap();
    let mut format = StagePlugin::load(&engine, StageKind::Format, &plugin, config, Limits::default()).unwrap();
    let batch = events(BATCH);

    let singles = |acc: Option<Vec<u8>>| (0..BATCH).map(|i| FoldGroup { acc: acc.clone(), end: i as u32 + 1 }).collect::<Vec<_>>();
    let (_, first) = fold.fold(singles(None), &batch);
    let acc = first.unwrap().accs[0].clone();

    let per = |d: Duration, n: usize| d.as_nanos() as f64 / n as f64;
    println!("plugin_calls: window-stats (Rust), {BATCH} per call, best of {rounds} rounds");
    // One fold call over `groups()` (built outside the timing).
    let mut time_fold = |groups: &dyn Fn() -> Vec<FoldGroup>, events: &Events| {
        best(rounds, || {
            let groups = groups();
            let count = groups.len();
            let t = Instant::now();
            let (_, r) = fold.fold(groups, events);
            let d = t.elapsed();
            assert_eq!(r.unwrap().accs.len(), count);
            d
        })
    };
    let new = time_fold(&|| singles(None), &batch);
    println!("{:<44} {:>9.0} ns/group", "fold, 1-event groups, new windows", per(new, BATCH));
    let old = time_fold(&|| singles(Some(acc.clone())), &batch);
    println!("{:<44} {:>9.0} ns/group", "fold, 1-event groups, with accumulators", per(old, BATCH));
    let tens = time_fold(&|| (0..BATCH / 10).map(|i| FoldGroup { acc: Some(acc.clone()), end: (i as u32 + 1) * 10 }).collect(), &batch.slice(0..BATCH / 10 * 10));
    println!("{:<44} {:>9.0} ns/group", "fold, 10-event groups, with accumulators", per(tens, BATCH / 10));
    let windows = || {
        (0..BATCH)
            .map(|i| ClosedWindow {
                key: format!("dev-{i}"),
                id: i as i64,
                start: 1_600_000_000_000_000 + i as i64 * 60_000_000,
                end: 1_600_000_060_000_000 + i as i64 * 60_000_000,
                count: 1,
                acc: acc.clone(),
            })
            .collect::<Vec<_>>()
    };
    let fmt = best(rounds, || {
        let w = windows();
        let t = Instant::now();
        let r = format.format(&w).unwrap();
        let d = t.elapsed();
        assert_eq!(r.objects.len(), BATCH);
        d
    });
    println!("{:<44} {:>9.0} ns/window", "format", per(fmt, BATCH));
}
