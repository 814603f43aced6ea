//! The progress line of `weir run` on a terminal: records and records/s,
//! open windows, windows written, dead letters and Kafka lag, redrawn in
//! place once a second from the process's metrics. Log lines clear it
//! before they print ([`LogWriter`]), so the two never mix. When stderr is
//! not a terminal (piped, in CI) there is no progress line and logs stay
//! plain.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

// Whether a progress line may be on screen (log lines clear it first).
static SHOWING: AtomicBool = AtomicBool::new(false);

const CLEAR: &str = "\r\x1b[2K";

/// The progress line while it runs; dropping it clears the line.
#[derive(Debug)]
pub struct Progress {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts redrawing once a second when stderr is a terminal; `None`
    /// otherwise.
    pub fn start() -> Option<Progress> {
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("weir-progress".to_owned())
            .spawn(move || {
                let metrics = crate::metrics::global();
                let started = Instant::now();
                let mut last = (Instant::now(), metrics.records.load(Relaxed));
                while !stopping.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    if last.0.elapsed() < Duration::from_secs(1) || stopping.load(Relaxed) {
                        continue;
                    }
                    let records = metrics.records.load(Relaxed);
                    let rate = (records - last.1) as f64 / last.0.elapsed().as_secs_f64();
                    last = (Instant::now(), records);
                    let line = line(metrics, rate, started.elapsed());
                    let mut err = std::io::stderr().lock();
                    SHOWING.store(true, Relaxed);
                    let _ = write!(err, "{CLEAR}\x1b[2m{line}\x1b[0m");
                    let _ = err.flush();
                }
            })
            .ok()?;
        Some(Progress { stop, thread: Some(thread) })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        clear(&mut std::io::stderr().lock());
    }
}

/// The progress line's text.
pub fn line(m: &Metrics, rate: f64, elapsed: Duration) -> String {
    let mut parts = vec![
        format!("{} records ({}/s)", count(m.records.load(Relaxed) as f64), count(rate)),
        format!("{} windows open", count(m.open_windows.load(Relaxed).max(0) as f64)),
        format!("{} written", count(m.windows_written.load(Relaxed) as f64)),
    ];
    let dead = m.dead_letters();
    if dead > 0 {
        parts.push(format!("{} dead letters", count(dead as f64)));
    }
    if let Some(lag) = m.total_lag() {
        parts.push(format!("lag {}", count(lag as f64)));
    }
    format!("weir {:>6.0?} · {}", Duration::from_secs(elapsed.as_secs()), parts.join(" · "))
}

// 1234 -> "1,234"; 1_234_567 -> "1.23M".
fn count(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e4 {
        format!("{:.0}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

fn clear(err: &mut impl Write) {
    if SHOWING.swap(false, Relaxed) {
        let _ = write!(err, "{CLEAR}");
        let _ = err.flush();
    }
}

/// Where log lines go: stderr, with the progress line cleared first (the
/// next redraw brings it back under them).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// One log line's hold on stderr.
pub struct LogLine(std::io::StderrLock<'static>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        let mut err = std::io::stderr().lock();
        clear(&mut err);
        LogLine(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_rate_windows_and_lag() {
        let m = Metrics::default();
        m.records.store(1_234_567, Relaxed);
        m.open_windows.store(20, Relaxed);
        m.windows_written.store(12_345, Relaxed);
        let plain = line(&m, 812_345.0, Duration::from_millis(3_400));
        assert_eq!(plain, "weir     3s · 1.23M records (812k/s) · 20 windows open · 12k written");
        m.dead_letter("clock", "late");
        m.set_lag("in", 0, 1_500);
        assert!(line(&m, 0.0, Duration::ZERO).ends_with("· 1 dead letters · lag 1500"));
    }
}
