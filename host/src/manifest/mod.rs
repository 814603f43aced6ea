//! The pipeline manifest: TOML in, a checked [`Manifest`] out.
//!
//! Reading happens in two steps, as in Spin: [`raw`] mirrors the file with
//! serde and refuses unknown fields (toml names the line), then
//! [`Manifest::from_raw`] checks what serde cannot — files exist, windows have
//! a length, times parse — and names each problem by its field path. Every
//! problem is reported before anything runs.

mod duration;
mod raw;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use duration::{ByteSize, HumanDuration};

use crate::time::Timestamp;

/// One problem with a manifest, named by where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Field path such as `window.length`, or the file for a syntax error.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a manifest cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("cannot read manifest {path}: {source}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("{} has {} problem(s):\n{}", path.display(), problems.len(), list(problems))]
    Invalid {
        /// The manifest path.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

/// The four user stages, in data-path order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StageKind {
    /// Raw record to events.
    Deserialize,
    /// Event to key.
    Key,
    /// Events into a window accumulator.
    Fold,
    /// Closed window to a JSON object.
    Format,
}

impl StageKind {
    /// All four, in data-path order.
    pub const ALL: [StageKind; 4] = [StageKind::Deserialize, StageKind::Key, StageKind::Fold, StageKind::Format];

    /// The name used in manifests, logs and the WIT.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Deserialize => "deserialize",
            StageKind::Key => "key",
            StageKind::Fold => "fold",
            StageKind::Format => "format",
        }
    }
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A CSV file with a header row.
    Csv(PathBuf),
    /// A JSON-lines file.
    Jsonl(PathBuf),
    /// Standard input, one record per line.
    Stdin,
}

/// A stage's component and config.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    /// Which stage.
    pub kind: StageKind,
    /// The `.wasm` component.
    pub plugin: PathBuf,
    /// The config, as JSON text, given to the stage at instantiation.
    pub config: String,
}

/// How event time is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockSpec {
    /// Event time from the deserialize stage, with Bytewax's watermark.
    Event {
        /// How long, in system time, to wait for late items.
        wait_for_system_duration: i64,
    },
    /// Processing time: the system clock when the record is handled.
    System,
}

/// How events are grouped into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSpec {
    /// Fixed, non-overlapping windows of `length` from `align_to`.
    Tumbling {
        /// Window length in microseconds.
        length: i64,
        /// An instant where a window starts.
        align_to: Timestamp,
    },
    /// Per key, up to `max_size` events or until `timeout` of system time has
    /// passed since the window opened, whichever first.
    Collect {
        /// Events per window at most.
        max_size: u64,
        /// System time a window stays open at most, in microseconds.
        timeout: i64,
    },
}

/// Where window results go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkSpec {
    /// `None` for standard output.
    pub path: Option<PathBuf>,
    /// Write this string field of each object as a raw line instead of the
    /// object as JSON.
    pub text_field: Option<String>,
}

/// Where late items and failed records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterSpec {
    /// A warning line in the log per record.
    Log,
    /// A JSON-lines file.
    File(PathBuf),
}

/// Limits each plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per plugin instance, in bytes.
    pub memory: u64,
    /// Wall time one call into a plugin may take.
    pub call_timeout: Duration,
    /// Records per batch.
    pub batch_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory: 256 << 20, call_timeout: Duration::from_secs(5), batch_size: 1024 }
    }
}

/// A checked manifest, ready to run. Paths are resolved against the
/// manifest's folder.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The pipeline's name (the file stem when not given).
    pub name: String,
    /// Where records come from.
    pub source: SourceSpec,
    /// The four stages, in data-path order.
    pub stages: Vec<StageSpec>,
    /// How event time is kept.
    pub clock: ClockSpec,
    /// How events are grouped.
    pub window: WindowSpec,
    /// Where results go.
    pub sink: SinkSpec,
    /// Where late and failed records go.
    pub dead_letter: DeadLetterSpec,
    /// Plugin limits and batch size.
    pub limits: Limits,
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
        Manifest::parse(&text, path)
    }

    /// Checks manifest text; `path` resolves relative paths and names the
    /// file in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let invalid = |problems| ManifestError::Invalid { path: path.to_owned(), problems };
        let raw: raw::RawManifest = toml::from_str(text).map_err(|err| {
            invalid(vec![Problem { field: syntax_field(&err, text), message: err.message().to_owned() }])
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let name = raw.name.clone().unwrap_or_else(|| {
            path.parent()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "pipeline".to_owned())
        });
        Manifest::from_raw(raw, base, name).map_err(invalid)
    }

    fn from_raw(raw: raw::RawManifest, base: &Path, name: String) -> Result<Manifest, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| problems.push(Problem { field: field.to_owned(), message });
        let resolve = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };

        let source = match &raw.source {
            raw::RawSource::Csv { path } => SourceSpec::Csv(resolve(path)),
            raw::RawSource::Jsonl { path } => SourceSpec::Jsonl(resolve(path)),
            raw::RawSource::Stdin {} => SourceSpec::Stdin,
        };
        if let SourceSpec::Csv(path) | SourceSpec::Jsonl(path) = &source
            && !path.is_file()
        {
            problem("source.path", format!("no such file: {}", path.display()));
        }

        let mut stages = Vec::new();
        for kind in StageKind::ALL {
            let own = match kind {
                StageKind::Deserialize => &raw.stages.deserialize,
                StageKind::Key => &raw.stages.key,
                StageKind::Fold => &raw.stages.fold,
                StageKind::Format => &raw.stages.format,
            };
            let own = own.as_ref();
            let field = format!("stages.{kind}.plugin");
            let Some(plugin) = own.and_then(|s| s.plugin.as_ref()).or(raw.stages.plugin.as_ref()) else {
                problem(&field, "no component: set it here or set stages.plugin for every stage".to_owned());
                continue;
            };
            let plugin = resolve(plugin);
            if !plugin.is_file() {
                problem(&field, format!("no such file: {}", plugin.display()));
            }
            let config = own.and_then(|s| s.config.as_ref()).or(raw.stages.config.as_ref()).cloned().unwrap_or_default();
            let config = serde_json::to_string(&config).unwrap_or_else(|_| "{}".to_owned());
            stages.push(StageSpec { kind, plugin, config });
        }

        let clock = match raw.clock {
            raw::RawClock::Event { wait_for_system_duration } => {
                ClockSpec::Event { wait_for_system_duration: wait_for_system_duration.micros() }
            }
            raw::RawClock::System {} => ClockSpec::System,
        };

        let window = match &raw.window {
            raw::RawWindow::Tumbling { length, align_to } => {
                if length.micros() <= 0 {
                    problem("window.length", "must be longer than zero".to_owned());
                }
                let align = Timestamp::parse_rfc3339(align_to).unwrap_or_else(|| {
                    problem("window.align_to", format!("`{align_to}` is not an RFC 3339 time like 2020-01-01T00:00:00Z"));
                    Timestamp(0)
                });
                WindowSpec::Tumbling { length: length.micros().max(1), align_to: align }
            }
            raw::RawWindow::Collect { max_size, timeout } => {
                if *max_size == 0 {
                    problem("window.max_size", "must be at least 1".to_owned());
                }
                if timeout.micros() <= 0 {
                    problem("window.timeout", "must be longer than zero".to_owned());
                }
                WindowSpec::Collect { max_size: (*max_size).max(1), timeout: timeout.micros().max(1) }
            }
        };

        let sink = match raw.sink {
            raw::RawSink::Stdout { text_field } => SinkSpec { path: None, text_field },
            raw::RawSink::File { path, text_field } => {
                let path = resolve(&path);
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                    && !parent.is_dir()
                {
                    problem("sink.path", format!("folder {} does not exist", parent.display()));
                }
                SinkSpec { path: Some(path), text_field }
            }
        };

        let dead_letter = match raw.dead_letter {
            raw::RawDeadLetter::Log => DeadLetterSpec::Log,
            raw::RawDeadLetter::File { path } => DeadLetterSpec::File(resolve(&path)),
        };

        let defaults = Limits::default();
        let limits = Limits {
            memory: raw.limits.memory.map_or(defaults.memory, |m| m.0),
            call_timeout: raw.limits.call_timeout.map_or(defaults.call_timeout, |d| d.0),
            batch_size: raw.limits.batch_size.unwrap_or(defaults.batch_size),
        };
        if limits.batch_size == 0 {
            problem("limits.batch_size", "must be at least 1".to_owned());
        }
        if limits.call_timeout.is_zero() {
            problem("limits.call_timeout", "must be longer than zero".to_owned());
        }
        if limits.memory < 1 << 20 {
            problem("limits.memory", "must be at least 1MiB: a component needs memory to start".to_owned());
        }

        if problems.is_empty() {
            Ok(Manifest { name, source, stages, clock, window, sink, dead_letter, limits })
        } else {
            Err(problems)
        }
    }

    /// The stage of this kind.
    pub fn stage(&self, kind: StageKind) -> &StageSpec {
        self.stages.iter().find(|s| s.kind == kind).expect("a checked manifest has all four stages")
    }
}

// toml names the line and column; turn that into "line N" plus the key path
// when the message carries one.
fn syntax_field(err: &toml::de::Error, text: &str) -> String {
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let key = text[span.start.min(text.len())..span.end.min(text.len())].trim();
            let key = key.split(['=', '\n']).next().unwrap_or("").trim();
            if key.is_empty() || key.len() > 60 { format!("line {line}") } else { format!("line {line} (`{key}`)") }
        }
        None => "manifest".to_owned(),
    }
}

#[cfg(test)]
mod tests;
