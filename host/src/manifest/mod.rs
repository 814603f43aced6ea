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

impl serde::Serialize for StageKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl std::str::FromStr for StageKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        StageKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| format!("no stage `{name}`: the stages are deserialize, key, fold and format"))
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
    /// Kafka topics in a consumer group.
    Kafka(KafkaSourceSpec),
}

/// A Kafka source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSourceSpec {
    /// Bootstrap servers, `host:port,...`.
    pub brokers: String,
    /// Topics to read.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Where a group with no committed offset starts: `earliest` or `latest`.
    pub start: &'static str,
    /// Any other librdkafka consumer properties.
    pub properties: Vec<(String, String)>,
    /// Stop (closing every window) after this long without a message: for
    /// replays that should end once caught up.
    pub exit_when_idle: Option<Duration>,
}

/// Consumer properties weir sets itself; a manifest may not override them.
pub const KAFKA_MANAGED_PROPERTIES: [&str; 6] =
    ["enable.auto.commit", "enable.auto.offset.store", "enable.partition.eof", "group.id", "bootstrap.servers", "auto.offset.reset"];

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

/// How records become keyed, timed events: what the host does itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventsSpec {
    /// `[stages.deserialize] builtin = "json"`: the host decodes JSON
    /// objects (JSON lines, Kafka values, CSV rows) into exactly the fields
    /// the later stages read. `false`: the deserialize plugin does.
    pub builtin_json: bool,
    /// `[stages.key] field = "..."`: the host keys events by this field.
    pub key_field: Option<String>,
    /// `[clock] time_field`: event time from this field. Unset: the one
    /// `time` field the deserialize plugin writes, else the record's source
    /// time.
    pub time_field: Option<String>,
    /// `[clock] time_format` (default `auto`).
    pub time_format: crate::event::TimeFormat,
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
    /// Bytewax's `SlidingWindower`: windows of `length` starting every
    /// `offset` from `align_to`; an event falls in `length / offset` of them.
    Sliding {
        /// Window length in microseconds.
        length: i64,
        /// Time between the starts of adjacent windows, in microseconds
        /// (at most `length`).
        offset: i64,
        /// An instant where a window starts.
        align_to: Timestamp,
    },
    /// Bytewax's `SessionWindower`: per key, events closer than `gap` to
    /// each other share a window; sessions merge when an event closes the
    /// gap between them (the fold must export `merge`).
    Session {
        /// Inactivity, in microseconds, that ends a session.
        gap: i64,
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
pub enum SinkSpec {
    /// JSON lines on stdout or in a file.
    Lines {
        /// `None` for standard output.
        path: Option<PathBuf>,
        /// Write this string field of each object as a raw line instead of
        /// the object as JSON.
        text_field: Option<String>,
    },
    /// A DynamoDB table.
    Dynamodb(DynamoSinkSpec),
    /// A Kafka topic.
    Kafka(KafkaSinkSpec),
}

/// A DynamoDB sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoSinkSpec {
    /// The table.
    pub table: String,
    /// Attribute holding the window key (the table's partition key).
    pub partition_key: String,
    /// The sort key attribute: the window start in epoch milliseconds, or
    /// the window id where starts can repeat (see [`SortBy`]).
    pub sort_key: String,
    /// What the sort key holds, from the window kind.
    pub sort_by: SortBy,
    /// Create the table if it does not exist.
    pub create_table: bool,
    /// Endpoint override (DynamoDB Local); the SDK's default otherwise.
    pub endpoint: Option<String>,
    /// Region; the SDK's default chain otherwise.
    pub region: Option<String>,
    /// BatchWriteItem calls in flight at once.
    pub max_in_flight: usize,
}

/// What makes a window's item unique beside its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// The window start (ms): tumbling windows of a key never share one.
    Start,
    /// The window id: collect windows of a key opened in one batch share
    /// a start, never an id.
    WindowId,
}

/// A Kafka topic sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSinkSpec {
    /// Bootstrap servers.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// Any other librdkafka producer properties.
    pub properties: Vec<(String, String)>,
}

/// Periodic checkpoints of window state and offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSpec {
    /// Where they are kept.
    pub store: CheckpointStoreSpec,
    /// How often.
    pub interval: Duration,
}

/// Where checkpoints are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointStoreSpec {
    /// A local folder; the processes of one machine may share it.
    Folder(PathBuf),
    /// A DynamoDB table that members on any machine reach.
    Dynamodb(DynamoCheckpointSpec),
}

/// A DynamoDB checkpoint table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoCheckpointSpec {
    /// The table (partition key `partition`, sort key `part`, both strings).
    pub table: String,
    /// Endpoint override (DynamoDB Local).
    pub endpoint: Option<String>,
    /// Region; the SDK's default chain otherwise.
    pub region: Option<String>,
    /// Create the table if it does not exist.
    pub create_table: bool,
}

/// The control endpoint of a running pipeline (`weir status`, `weir swap`)
/// and plugin-file watching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlSpec {
    /// Where the endpoint listens; loopback unless `allow_remote`.
    pub listen: std::net::SocketAddr,
    /// The bearer token clients must send; random per run when not given.
    pub token: Option<String>,
    /// Where the running process writes its address and token (mode 0600)
    /// for `weir status` and `weir swap` to find.
    pub endpoint_file: PathBuf,
    /// Swap a stage when its component file changes.
    pub watch: bool,
}

/// Where late items and failed records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterSpec {
    /// A warning line in the log per record.
    Log,
    /// A JSON-lines file.
    File(PathBuf),
    /// A Kafka topic, reason and origin in headers.
    Kafka {
        /// Bootstrap servers.
        brokers: String,
        /// The topic.
        topic: String,
    },
}

/// The most events `limits.fold_buffer` may hold back from the fold.
pub const MAX_FOLD_BUFFER: usize = 1 << 24;

/// Limits each plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory per plugin instance, in bytes.
    pub memory: u64,
    /// Wall time one call into a plugin may take.
    pub call_timeout: Duration,
    /// Records per batch.
    pub batch_size: usize,
    /// Placed events the pipeline holds back to fold together, window by
    /// window (tumbling and sliding windows); 0 folds each batch at once.
    pub fold_buffer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory: 256 << 20, call_timeout: Duration::from_secs(5), batch_size: 8192, fold_buffer: 1_048_576 }
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
    /// The stages that run a plugin, in data-path order (fold and format
    /// always; deserialize and key unless the host does them).
    pub stages: Vec<StageSpec>,
    /// What the host does for deserialize, key and time.
    pub events: EventsSpec,
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
    /// Checkpoints, when configured.
    pub checkpoint: Option<CheckpointSpec>,
    /// The control endpoint, when configured.
    pub control: Option<ControlSpec>,
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
        let raw: raw::RawManifest =
            toml::from_str(text).map_err(|err| invalid(vec![Problem { field: syntax_field(&err, text), message: err.message().to_owned() }]))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let name = raw
            .name
            .clone()
            .unwrap_or_else(|| path.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "pipeline".to_owned()));
        Manifest::from_raw(raw, base, name).map_err(invalid)
    }

    fn from_raw(raw: raw::RawManifest, base: &Path, name: String) -> Result<Manifest, Vec<Problem>> {
        let mut problems = Vec::new();
        let resolve = |p: &Path| if p.is_absolute() { p.to_owned() } else { base.join(p) };

        // A field that a kind needs: missing ones are named, not guessed.
        fn required<T: Clone>(value: &Option<T>, field: &str, kind: &str, problems: &mut Vec<Problem>) -> Option<T> {
            if value.is_none() {
                problems.push(Problem { field: field.to_owned(), message: format!("required when kind = \"{kind}\"") });
            }
            value.clone()
        }
        fn unused<T>(value: &Option<T>, field: &str, kind: &str, problems: &mut Vec<Problem>) {
            if value.is_some() {
                problems.push(Problem { field: field.to_owned(), message: format!("has no meaning when kind = \"{kind}\"") });
            }
        }

        let source = match raw.source.kind {
            raw::SourceKind::Csv => required(&raw.source.path, "source.path", "csv", &mut problems).map(|p| SourceSpec::Csv(resolve(&p))),
            raw::SourceKind::Jsonl => required(&raw.source.path, "source.path", "jsonl", &mut problems).map(|p| SourceSpec::Jsonl(resolve(&p))),
            raw::SourceKind::Stdin => {
                unused(&raw.source.path, "source.path", "stdin", &mut problems);
                Some(SourceSpec::Stdin)
            }
            raw::SourceKind::Kafka => {
                let src = &raw.source;
                unused(&src.path, "source.path", "kafka", &mut problems);
                let brokers = required(&src.brokers, "source.brokers", "kafka", &mut problems).map(|b| expand_env(&b, "source.brokers", &mut problems));
                let topics = required(&src.topics, "source.topics", "kafka", &mut problems);
                if topics.as_ref().is_some_and(|t| t.is_empty() || t.iter().any(String::is_empty)) {
                    problems.push(Problem { field: "source.topics".into(), message: "name at least one topic, none empty".into() });
                }
                let group_id = required(&src.group_id, "source.group_id", "kafka", &mut problems);
                let properties: Vec<(String, String)> = src.properties.clone().unwrap_or_default().into_iter().collect();
                for (name, _) in &properties {
                    if KAFKA_MANAGED_PROPERTIES.contains(&name.as_str()) {
                        problems.push(Problem {
                            field: format!("source.properties.\"{name}\""),
                            message: "weir sets this itself (use brokers, group_id and start; offsets are committed with checkpoints)".into(),
                        });
                    }
                }
                let start = match src.start.unwrap_or(raw::StartAt::Earliest) {
                    raw::StartAt::Earliest => "earliest",
                    raw::StartAt::Latest => "latest",
                };
                match (brokers, topics, group_id) {
                    (Some(brokers), Some(topics), Some(group_id)) => Some(SourceSpec::Kafka(KafkaSourceSpec {
                        brokers,
                        topics,
                        group_id,
                        start,
                        properties,
                        exit_when_idle: src.exit_when_idle.map(|d| d.0),
                    })),
                    _ => None,
                }
            }
        };
        if !matches!(raw.source.kind, raw::SourceKind::Kafka) {
            for (set, field) in [
                (raw.source.brokers.is_some(), "source.brokers"),
                (raw.source.topics.is_some(), "source.topics"),
                (raw.source.group_id.is_some(), "source.group_id"),
                (raw.source.start.is_some(), "source.start"),
                (raw.source.properties.is_some(), "source.properties"),
                (raw.source.exit_when_idle.is_some(), "source.exit_when_idle"),
            ] {
                if set {
                    problems.push(Problem { field: field.into(), message: "only means something when kind = \"kafka\"".into() });
                }
            }
        }
        if let Some(SourceSpec::Csv(path) | SourceSpec::Jsonl(path)) = &source
            && !path.is_file()
        {
            problems.push(Problem { field: "source.path".to_owned(), message: format!("no such file: {}", path.display()) });
        }
        let mut problem = |field: &str, message: String| problems.push(Problem { field: field.to_owned(), message });

        let mut stages = Vec::new();
        let mut events = EventsSpec::default();
        for kind in StageKind::ALL {
            let own = match kind {
                StageKind::Deserialize => &raw.stages.deserialize,
                StageKind::Key => &raw.stages.key,
                StageKind::Fold => &raw.stages.fold,
                StageKind::Format => &raw.stages.format,
            };
            let own = own.as_ref();
            if let Some(builtin) = own.and_then(|s| s.builtin.as_deref()) {
                if kind != StageKind::Deserialize {
                    problem(&format!("stages.{kind}.builtin"), "only the deserialize stage has a built-in (`builtin = \"json\"`)".to_owned());
                } else if builtin != "json" {
                    problem("stages.deserialize.builtin", format!("no built-in `{builtin}`: the built-in deserializer is \"json\" (JSON lines, Kafka JSON values, CSV rows)"));
                }
                events.builtin_json = true;
            }
            if let Some(field) = own.and_then(|s| s.field.as_deref()) {
                if kind != StageKind::Key {
                    problem(&format!("stages.{kind}.field"), "only the key stage takes a field (`field = \"device\"`)".to_owned());
                } else if field.is_empty() {
                    problem("stages.key.field", "must name a field".to_owned());
                }
                events.key_field = Some(field.to_owned());
            }
            let host_does = own.is_some_and(|s| s.builtin.is_some() || s.field.is_some());
            if host_does {
                for (set, what) in [(own.is_some_and(|s| s.plugin.is_some()), "plugin"), (own.is_some_and(|s| s.config.is_some()), "config")] {
                    if set {
                        problem(&format!("stages.{kind}.{what}"), "the host does this stage (builtin/field): a plugin or config here means nothing".to_owned());
                    }
                }
                continue;
            }
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

        if let Some(field) = &raw.clock.time_field {
            if raw.clock.kind == raw::ClockKind::System {
                problem("clock.time_field", "has no meaning when kind = \"system\"".to_owned());
            } else if field.is_empty() {
                problem("clock.time_field", "must name a field".to_owned());
            }
            events.time_field = Some(field.clone());
        }
        events.time_format = match raw.clock.time_format.as_deref() {
            None => crate::event::TimeFormat::Auto,
            Some(name) => crate::event::TimeFormat::parse(name).unwrap_or_else(|| {
                problem("clock.time_format", format!("no format `{name}`: use auto, rfc3339, unix_s, unix_ms or unix_us"));
                crate::event::TimeFormat::Auto
            }),
        };
        if events.builtin_json && raw.clock.kind == raw::ClockKind::Event && events.time_field.is_none() {
            problem("clock.time_field", "required with the built-in deserializer and kind = \"event\": name the field that holds event time".to_owned());
        }
        let clock = match raw.clock.kind {
            raw::ClockKind::Event => match raw.clock.wait_for_system_duration {
                Some(wait) => ClockSpec::Event { wait_for_system_duration: wait.micros() },
                None => {
                    problem("clock.wait_for_system_duration", "required when kind = \"event\" (\"0s\" to wait for nothing)".to_owned());
                    ClockSpec::Event { wait_for_system_duration: 0 }
                }
            },
            raw::ClockKind::System => {
                if raw.clock.wait_for_system_duration.is_some() {
                    problem("clock.wait_for_system_duration", "has no meaning when kind = \"system\"".to_owned());
                }
                ClockSpec::System
            }
        };

        let w = &raw.window;
        let window = match w.kind {
            raw::WindowKind::Tumbling | raw::WindowKind::Sliding => {
                let kind = if w.kind == raw::WindowKind::Tumbling { "tumbling" } else { "sliding" };
                for (value, field) in [(w.max_size.is_some(), "window.max_size"), (w.timeout.is_some(), "window.timeout"), (w.gap.is_some(), "window.gap")] {
                    if value {
                        problem(field, format!("has no meaning when kind = \"{kind}\""));
                    }
                }
                let length = match w.length {
                    Some(length) if length.micros() > 0 => length.micros(),
                    Some(_) => {
                        problem("window.length", "must be longer than zero".to_owned());
                        1
                    }
                    None => {
                        problem("window.length", format!("required when kind = \"{kind}\""));
                        1
                    }
                };
                let align_to = match w.align_to.as_deref() {
                    None => Timestamp(0),
                    Some(text) => Timestamp::parse_rfc3339(text).unwrap_or_else(|| {
                        problem("window.align_to", format!("`{text}` is not an RFC 3339 time like 2020-01-01T00:00:00Z"));
                        Timestamp(0)
                    }),
                };
                if w.kind == raw::WindowKind::Tumbling {
                    if w.offset.is_some() {
                        problem("window.offset", "has no meaning when kind = \"tumbling\" (windows start every `length`)".to_owned());
                    }
                    WindowSpec::Tumbling { length, align_to }
                } else {
                    let offset = match w.offset {
                        Some(offset) if offset.micros() > 0 && offset.micros() <= length => offset.micros(),
                        Some(offset) if offset.micros() > 0 => {
                            problem("window.offset", format!("{offset} is longer than `length`: events between windows would be in none"));
                            length
                        }
                        Some(_) => {
                            problem("window.offset", "must be longer than zero".to_owned());
                            length
                        }
                        None => {
                            problem("window.offset", "required when kind = \"sliding\" (the time between window starts)".to_owned());
                            length
                        }
                    };
                    WindowSpec::Sliding { length, offset, align_to }
                }
            }
            raw::WindowKind::Session => {
                for (value, field) in [
                    (w.length.is_some(), "window.length"),
                    (w.align_to.is_some(), "window.align_to"),
                    (w.offset.is_some(), "window.offset"),
                    (w.max_size.is_some(), "window.max_size"),
                    (w.timeout.is_some(), "window.timeout"),
                ] {
                    if value {
                        problem(field, "has no meaning when kind = \"session\"".to_owned());
                    }
                }
                let gap = match w.gap {
                    Some(gap) => gap.micros(),
                    None => {
                        problem("window.gap", "required when kind = \"session\" (the inactivity that ends a session)".to_owned());
                        0
                    }
                };
                WindowSpec::Session { gap }
            }
            raw::WindowKind::Collect => {
                for (value, field) in [(w.length.is_some(), "window.length"), (w.align_to.is_some(), "window.align_to"), (w.offset.is_some(), "window.offset"), (w.gap.is_some(), "window.gap")] {
                    if value {
                        problem(field, "has no meaning when kind = \"collect\"".to_owned());
                    }
                }
                let max_size = match w.max_size {
                    Some(0) => {
                        problem("window.max_size", "must be at least 1".to_owned());
                        1
                    }
                    Some(n) => n,
                    None => {
                        problem("window.max_size", "required when kind = \"collect\"".to_owned());
                        1
                    }
                };
                let timeout = match w.timeout {
                    Some(t) if t.micros() > 0 => t.micros(),
                    Some(_) => {
                        problem("window.timeout", "must be longer than zero".to_owned());
                        1
                    }
                    None => {
                        problem("window.timeout", "required when kind = \"collect\"".to_owned());
                        1
                    }
                };
                WindowSpec::Collect { max_size, timeout }
            }
        };

        let rs = &raw.sink;
        let sink = match rs.kind {
            raw::SinkKind::Stdout => {
                if rs.path.is_some() {
                    problem("sink.path", "has no meaning when kind = \"stdout\"".to_owned());
                }
                SinkSpec::Lines { path: None, text_field: rs.text_field.clone() }
            }
            raw::SinkKind::File => match &rs.path {
                None => {
                    problem("sink.path", "required when kind = \"file\"".to_owned());
                    SinkSpec::Lines { path: None, text_field: None }
                }
                Some(path) => {
                    let path = resolve(path);
                    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                        && !parent.is_dir()
                    {
                        problem("sink.path", format!("folder {} does not exist", parent.display()));
                    }
                    SinkSpec::Lines { path: Some(path), text_field: rs.text_field.clone() }
                }
            },
            raw::SinkKind::Dynamodb => {
                let table = dynamodb_table(rs.table.as_deref(), "sink.table", &mut problem);
                let endpoint = rs.endpoint.as_deref().map(|e| expanded(e, "sink.endpoint", &mut problem));
                let max_in_flight = rs.max_in_flight.unwrap_or(4);
                if max_in_flight == 0 {
                    problem("sink.max_in_flight", "must be at least 1".to_owned());
                }
                SinkSpec::Dynamodb(DynamoSinkSpec {
                    table,
                    partition_key: rs.partition_key.clone().unwrap_or_else(|| "key".to_owned()),
                    sort_key: rs.sort_key.clone().unwrap_or_else(|| "window_start".to_owned()),
                    sort_by: match window {
                        WindowSpec::Collect { .. } => SortBy::WindowId,
                        // Sliding windows of a key start at distinct times,
                        // sessions of a key never overlap.
                        WindowSpec::Tumbling { .. } | WindowSpec::Sliding { .. } | WindowSpec::Session { .. } => SortBy::Start,
                    },
                    create_table: rs.create_table.unwrap_or(false),
                    endpoint,
                    region: rs.region.clone(),
                    max_in_flight: max_in_flight.max(1),
                })
            }
            raw::SinkKind::Kafka => {
                let mut p = Vec::new();
                let brokers = rs.brokers.as_deref().map(|b| expand_env(b, "sink.brokers", &mut p));
                for x in p {
                    problem(&x.field, x.message);
                }
                let brokers = brokers.unwrap_or_else(|| {
                    problem("sink.brokers", "required when kind = \"kafka\"".to_owned());
                    String::new()
                });
                let topic = rs.topic.clone().unwrap_or_else(|| {
                    problem("sink.topic", "required when kind = \"kafka\"".to_owned());
                    String::new()
                });
                SinkSpec::Kafka(KafkaSinkSpec { brokers, topic, properties: rs.properties.clone().unwrap_or_default().into_iter().collect() })
            }
        };

        let dl = &raw.dead_letter;
        let dead_letter = match dl.kind {
            raw::DeadLetterKind::Log => {
                if dl.path.is_some() {
                    problem("dead_letter.path", "has no meaning when kind = \"log\"".to_owned());
                }
                DeadLetterSpec::Log
            }
            raw::DeadLetterKind::File => match &dl.path {
                Some(path) => DeadLetterSpec::File(resolve(path)),
                None => {
                    problem("dead_letter.path", "required when kind = \"file\"".to_owned());
                    DeadLetterSpec::Log
                }
            },
            raw::DeadLetterKind::Kafka => {
                let mut p = Vec::new();
                let brokers = dl.brokers.as_deref().map(|b| expand_env(b, "dead_letter.brokers", &mut p));
                for x in p {
                    problem(&x.field, x.message);
                }
                match (brokers, dl.topic.clone()) {
                    (Some(brokers), Some(topic)) => DeadLetterSpec::Kafka { brokers, topic },
                    _ => {
                        problem("dead_letter", "kind = \"kafka\" needs brokers and topic".to_owned());
                        DeadLetterSpec::Log
                    }
                }
            }
        };

        let checkpoint = match &raw.checkpoint {
            Some(c) => {
                let store = match c.kind {
                    raw::CheckpointKind::Folder => {
                        for (field, set) in [
                            ("table", c.table.is_some()),
                            ("endpoint", c.endpoint.is_some()),
                            ("region", c.region.is_some()),
                            ("create_table", c.create_table.is_some()),
                        ] {
                            if set {
                                problem(&format!("checkpoint.{field}"), "has no meaning when kind = \"folder\"".to_owned());
                            }
                        }
                        match &c.dir {
                            Some(dir) => CheckpointStoreSpec::Folder(resolve(dir)),
                            None => {
                                problem("checkpoint.dir", "required when kind = \"folder\" (the default)".to_owned());
                                CheckpointStoreSpec::Folder(PathBuf::new())
                            }
                        }
                    }
                    raw::CheckpointKind::Dynamodb => {
                        if c.dir.is_some() {
                            problem("checkpoint.dir", "has no meaning when kind = \"dynamodb\"".to_owned());
                        }
                        let table = dynamodb_table(c.table.as_deref(), "checkpoint.table", &mut problem);
                        let endpoint = c.endpoint.as_deref().map(|e| expanded(e, "checkpoint.endpoint", &mut problem));
                        CheckpointStoreSpec::Dynamodb(DynamoCheckpointSpec {
                            table,
                            endpoint,
                            region: c.region.clone(),
                            create_table: c.create_table.unwrap_or(false),
                        })
                    }
                };
                Some(CheckpointSpec { store, interval: c.interval.map_or(Duration::from_secs(5), |i| i.0) })
            }
            // A Kafka source without checkpoints would commit offsets of
            // windows held only in memory: give it a folder beside the
            // manifest.
            None if matches!(source, Some(SourceSpec::Kafka(_))) => Some(CheckpointSpec {
                store: CheckpointStoreSpec::Folder(base.join(".weir").join(format!("{name}.checkpoints"))),
                interval: Duration::from_secs(5),
            }),
            None => None,
        };
        if checkpoint.as_ref().is_some_and(|c| c.interval.is_zero()) {
            problem("checkpoint.interval", "must be longer than zero".to_owned());
        }

        let control = raw.control.as_ref().and_then(|c| {
            let listen_text = c.listen.clone().unwrap_or_else(|| "127.0.0.1:0".to_owned());
            let listen: std::net::SocketAddr = match listen_text.parse() {
                Ok(addr) => addr,
                Err(_) => {
                    problem("control.listen", format!("`{listen_text}` is not an address and port such as 127.0.0.1:7070"));
                    return None;
                }
            };
            if !listen.ip().is_loopback() && !c.allow_remote.unwrap_or(false) {
                problem(
                    "control.listen",
                    format!("{listen} is reachable from other machines; the control endpoint swaps code, so set control.allow_remote = true if that is meant"),
                );
            }
            let token = c.token.as_ref().map(|t| {
                let mut env_problems = Vec::new();
                let t = expand_env(t, "control.token", &mut env_problems);
                for p in env_problems {
                    problem(&p.field, p.message);
                }
                t
            });
            if token.as_ref().is_some_and(|t| t.len() < 16) {
                problem("control.token", "must be at least 16 characters (leave it out for a random one per run)".to_owned());
            }
            let endpoint_file = c.endpoint_file.as_ref().map_or_else(|| base.join(".weir").join(format!("{name}.control.json")), |p| resolve(p));
            Some(ControlSpec { listen, token, endpoint_file, watch: c.watch.unwrap_or(false) })
        });

        let defaults = Limits::default();
        let limits = Limits {
            memory: raw.limits.memory.map_or(defaults.memory, |m| m.0),
            call_timeout: raw.limits.call_timeout.map_or(defaults.call_timeout, |d| d.0),
            batch_size: raw.limits.batch_size.unwrap_or(defaults.batch_size),
            fold_buffer: raw.limits.fold_buffer.unwrap_or(defaults.fold_buffer),
        };
        if limits.batch_size == 0 {
            problem("limits.batch_size", "must be at least 1".to_owned());
        }
        if limits.call_timeout.is_zero() {
            problem("limits.call_timeout", "must be longer than zero".to_owned());
        }
        if limits.fold_buffer > MAX_FOLD_BUFFER {
            problem("limits.fold_buffer", format!("must be at most {MAX_FOLD_BUFFER} events held (each takes ~70 bytes, and a copied record ~150); 0 folds each batch at once"));
        }
        if limits.memory < 1 << 20 {
            problem("limits.memory", "must be at least 1MiB: a component needs memory to start".to_owned());
        }

        match source {
            Some(source) if problems.is_empty() => Ok(Manifest { name, source, stages, events, clock, window, sink, dead_letter, limits, checkpoint, control }),
            _ => Err(problems),
        }
    }

    /// The plugin of stage `kind`; `None` when the host does that stage.
    pub fn stage(&self, kind: StageKind) -> Option<&StageSpec> {
        self.stages.iter().find(|s| s.kind == kind)
    }
}

// `${NAME}` in a value is the environment variable NAME, so one manifest
// serves a laptop and CI (brokers and endpoints differ).
// A DynamoDB table name a kind needs: missing or malformed ones are named.
fn dynamodb_table(table: Option<&str>, field: &str, problem: &mut dyn FnMut(&str, String)) -> String {
    let Some(table) = table else {
        problem(field, "required when kind = \"dynamodb\"".to_owned());
        return "missing".to_owned();
    };
    if !(3..=255).contains(&table.len()) || !table.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        problem(field, format!("`{table}` is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, `_`, `-`, `.`)"));
    }
    table.to_owned()
}

// `text` with `${NAME}` expanded, its problems reported under `field`.
fn expanded(text: &str, field: &str, problem: &mut dyn FnMut(&str, String)) -> String {
    let mut problems = Vec::new();
    let text = expand_env(text, field, &mut problems);
    for p in problems {
        problem(&p.field, p.message);
    }
    text
}

fn expand_env(text: &str, field: &str, problems: &mut Vec<Problem>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start + 2..].find('}') else {
            problems.push(Problem { field: field.to_owned(), message: format!("unclosed `${{` in `{text}`") });
            return text.to_owned();
        };
        let name = &rest[start + 2..start + 2 + len];
        match std::env::var(name) {
            Ok(value) => out.push_str(&value),
            Err(_) => problems.push(Problem { field: field.to_owned(), message: format!("environment variable `{name}` is not set") }),
        }
        rest = &rest[start + 3 + len..];
    }
    out.push_str(rest);
    out
}

// toml gives a byte span; name the line and, when it can be told, the key
// path (`clock.wait_for_system_duration`).
fn syntax_field(err: &toml::de::Error, text: &str) -> String {
    let Some(span) = err.span() else { return "manifest".to_owned() };
    let at = span.start.min(text.len());
    let line_no = text[..at].matches('\n').count() + 1;
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let table =
        text[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('[') && l.ends_with(']')).map(|l| l.trim_matches(['[', ']']).trim().to_owned());
    match line.split_once('=') {
        Some((key, _)) if !line.starts_with('[') => {
            let key = key.trim();
            match table {
                Some(table) => format!("line {line_no}: {table}.{key}"),
                None => format!("line {line_no}: {key}"),
            }
        }
        _ => format!("line {line_no}: {line}"),
    }
}

#[cfg(test)]
mod tests;
