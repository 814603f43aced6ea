//! The process's metrics, in Prometheus' text exposition format: counters
//! and gauges the pipeline, the emitter, the stages and the Kafka driver
//! move as they work, read by `GET /metrics` and by the progress line.
//!
//! One registry per process (all workers add to it), lock-free on the data
//! path: counters and histogram buckets are atomics; only the labelled
//! families (dead letters by stage and kind, lag by partition) take a
//! short lock, and only when they change.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use crate::manifest::StageKind;

/// Upper bounds of the latency histograms' buckets, in seconds.
const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A latency histogram with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| seconds <= b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The smallest bucket bound at or under which a `q` share of the
    /// observations fall (`None` before any, or when past the last bucket).
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let wanted = (q * count as f64).ceil() as u64;
        let mut seen = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            seen += bucket.load(Relaxed);
            if seen >= wanted {
                return Some(*bound);
            }
        }
        None
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_micros.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Latencies kept one by one (microseconds), for exact quantiles in a
/// run's summary; past [`Samples::CAP`] observations the rest are dropped.
#[derive(Debug, Default)]
pub struct Samples(Mutex<Vec<u32>>);

impl Samples {
    /// The most observations kept.
    pub const CAP: usize = 1_000_000;

    /// Keeps one observation.
    pub fn observe(&self, took: Duration) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if all.len() < Self::CAP {
            all.push(took.as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }

    /// Count, median, 99th percentile and maximum (nearest rank), or
    /// `None` before any observation.
    pub fn summary(&self) -> Option<LatencySummary> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if all.is_empty() {
            return None;
        }
        all.sort_unstable();
        let rank = |q: f64| Duration::from_micros(u64::from(all[((q * all.len() as f64).ceil() as usize).clamp(1, all.len()) - 1]));
        Some(LatencySummary { count: all.len(), p50: rank(0.50), p99: rank(0.99), max: rank(1.0) })
    }
}

/// Quantiles of kept latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    /// Observations.
    pub count: usize,
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        write!(f, "{} windows, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms", self.count, ms(self.p50), ms(self.p99), ms(self.max))
    }
}

/// Everything `GET /metrics` reports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records read from the source.
    pub records: AtomicU64,
    /// Events the deserialize stage produced.
    pub events: AtomicU64,
    /// Late events (to the dead letters).
    pub late: AtomicU64,
    /// Windows written to the sink.
    pub windows_written: AtomicU64,
    /// Windows open now (all workers).
    pub open_windows: AtomicI64,
    /// Session windows merged into another.
    pub sessions_merged: AtomicU64,
    /// Stage components swapped in while running.
    pub swaps: AtomicU64,
    /// When the last checkpoint was written (unix microseconds; 0: never).
    pub checkpoint_at: AtomicI64,
    /// Checkpoints written.
    pub checkpoints: AtomicU64,
    /// From a window closing to the sink taking it.
    pub close_to_sink: Histogram,
    /// From a window closing to its item being written where the sink
    /// writes it (DynamoDB: the BatchWriteItem that took it returned).
    pub close_to_item: Histogram,
    /// The same, each observation kept (up to a million) for exact
    /// quantiles at the end of a run.
    pub close_to_item_samples: Samples,
    /// Time of each stage call, by stage.
    pub stage_calls: [Histogram; 4],
    dead: Mutex<BTreeMap<(String, &'static str), u64>>,
    lag: Mutex<BTreeMap<(String, i32), i64>>,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

impl Metrics {
    /// Counts a dead letter of `stage` (deserialize, key, time, clock, fold,
    /// merge, format, sink) and `kind` (late or failed).
    pub fn dead_letter(&self, stage: &str, kind: &'static str) {
        let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        *dead.entry((stage.to_owned(), kind)).or_default() += 1;
    }

    /// Dead letters so far, all stages and kinds.
    pub fn dead_letters(&self) -> u64 {
        self.dead.lock().unwrap_or_else(|e| e.into_inner()).values().sum()
    }

    /// Sets the consumer lag of a partition (messages behind its high
    /// watermark); a negative lag (unknown) removes it.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        let mut all = self.lag.lock().unwrap_or_else(|e| e.into_inner());
        if lag < 0 {
            all.remove(&(topic.to_owned(), partition));
        } else {
            all.insert((topic.to_owned(), partition), lag);
        }
    }

    /// Forgets the lag of partitions this process no longer reads.
    pub fn retain_lag(&self, keep: impl Fn(&str, i32) -> bool) {
        self.lag.lock().unwrap_or_else(|e| e.into_inner()).retain(|(t, p), _| keep(t, *p));
    }

    /// The summed lag of every partition read (`None`: no lag known).
    pub fn total_lag(&self) -> Option<i64> {
        let lag = self.lag.lock().unwrap_or_else(|e| e.into_inner());
        (!lag.is_empty()).then(|| lag.values().sum())
    }

    /// Notes a checkpoint written now.
    pub fn checkpointed(&self) {
        self.checkpoints.fetch_add(1, Relaxed);
        self.checkpoint_at.store(crate::Timestamp::now().0, Relaxed);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(&mut out, "weir_records_total", "Records read from the source.", self.records.load(Relaxed));
        counter(&mut out, "weir_events_total", "Events the deserialize stage produced.", self.events.load(Relaxed));
        counter(&mut out, "weir_late_events_total", "Events that arrived behind their key's watermark.", self.late.load(Relaxed));
        counter(&mut out, "weir_windows_written_total", "Windows the sink took.", self.windows_written.load(Relaxed));
        counter(&mut out, "weir_sessions_merged_total", "Session windows merged into an earlier one.", self.sessions_merged.load(Relaxed));
        counter(&mut out, "weir_swaps_total", "Stage components swapped in while running.", self.swaps.load(Relaxed));
        counter(&mut out, "weir_checkpoints_total", "Checkpoints written.", self.checkpoints.load(Relaxed));
        let _ = writeln!(out, "# HELP weir_open_windows Windows open now.\n# TYPE weir_open_windows gauge\nweir_open_windows {}", self.open_windows.load(Relaxed));

        let _ = writeln!(out, "# HELP weir_dead_letters_total Records and windows sent to the dead-letter output.\n# TYPE weir_dead_letters_total counter");
        for ((stage, kind), n) in self.dead.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "weir_dead_letters_total{{stage=\"{}\",kind=\"{kind}\"}} {n}", escape(stage));
        }

        let _ = writeln!(out, "# HELP weir_consumer_lag Messages between a partition's read position and its high watermark.\n# TYPE weir_consumer_lag gauge");
        for ((topic, partition), lag) in self.lag.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "weir_consumer_lag{{topic=\"{}\",partition=\"{partition}\"}} {lag}", escape(topic));
        }

        let at = self.checkpoint_at.load(Relaxed);
        let _ = writeln!(out, "# HELP weir_checkpoint_age_seconds Seconds since the last checkpoint was written (-1: none yet).\n# TYPE weir_checkpoint_age_seconds gauge");
        let age = if at == 0 { -1.0 } else { (crate::Timestamp::now().0 - at).max(0) as f64 / 1e6 };
        let _ = writeln!(out, "weir_checkpoint_age_seconds {age}");

        let _ = writeln!(out, "# HELP weir_window_close_to_sink_seconds From a window closing to the sink taking it.\n# TYPE weir_window_close_to_sink_seconds histogram");
        self.close_to_sink.render(&mut out, "weir_window_close_to_sink_seconds", "");
        let _ = writeln!(out, "# HELP weir_window_close_to_item_seconds From a window closing to its item written (DynamoDB sink).\n# TYPE weir_window_close_to_item_seconds histogram");
        self.close_to_item.render(&mut out, "weir_window_close_to_item_seconds", "");
        let _ = writeln!(out, "# HELP weir_stage_call_seconds Time of each call into a stage's component.\n# TYPE weir_stage_call_seconds histogram");
        for kind in StageKind::ALL {
            self.stage_calls[kind as usize].render(&mut out, "weir_stage_call_seconds", &format!("stage=\"{}\"", kind.name()));
        }
        out
    }
}

// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_text_exposition_format() {
        let m = Metrics::default();
        m.records.fetch_add(7, Relaxed);
        m.dead_letter("clock", "late");
        m.dead_letter("clock", "late");
        m.set_lag("in\"put", 2, 40);
        m.close_to_sink.observe(Duration::from_millis(3));
        m.stage_calls[StageKind::Fold as usize].observe(Duration::from_micros(200));
        let text = m.render();
        assert!(text.contains("weir_records_total 7\n"), "{text}");
        assert!(text.contains("weir_dead_letters_total{stage=\"clock\",kind=\"late\"} 2\n"), "{text}");
        assert!(text.contains("weir_consumer_lag{topic=\"in\\\"put\",partition=\"2\"} 40\n"), "{text}");
        assert!(text.contains("weir_window_close_to_sink_seconds_bucket{le=\"0.0025\"} 0\n"), "{text}");
        assert!(text.contains("weir_window_close_to_sink_seconds_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("weir_stage_call_seconds_bucket{stage=\"fold\",le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("weir_stage_call_seconds_count{stage=\"format\"} 0\n"), "{text}");
        assert!(text.contains("weir_checkpoint_age_seconds -1\n"), "{text}");
        // Every sample line is `name{labels} value` with a number.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }

    #[test]
    fn kept_samples_give_nearest_rank_quantiles() {
        let s = Samples::default();
        assert_eq!(s.summary(), None);
        for ms in 1..=200u64 {
            s.observe(Duration::from_millis(ms));
        }
        let summary = s.summary().unwrap();
        assert_eq!(summary.count, 200);
        assert_eq!(summary.p50, Duration::from_millis(100));
        assert_eq!(summary.p99, Duration::from_millis(198));
        assert_eq!(summary.max, Duration::from_millis(200));
        assert_eq!(summary.to_string(), "200 windows, p50 100.0 ms, p99 198.0 ms, max 200.0 ms");
    }

    #[test]
    fn quantile_bounds_come_from_the_buckets() {
        let h = Histogram::default();
        assert_eq!(h.quantile_bound(0.99), None);
        for _ in 0..99 {
            h.observe(Duration::from_millis(2));
        }
        h.observe(Duration::from_millis(40));
        assert_eq!(h.quantile_bound(0.99), Some(0.0025));
        assert_eq!(h.quantile_bound(1.0), Some(0.05));
    }
}
