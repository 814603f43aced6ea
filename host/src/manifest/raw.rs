//! The manifest exactly as written: serde structs that refuse unknown fields.
//! `super::Manifest` is what a valid one becomes.

use std::path::PathBuf;

use serde::Deserialize;

use super::duration::{ByteSize, HumanDuration};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub name: Option<String>,
    pub source: RawSource,
    pub stages: RawStages,
    pub clock: RawClock,
    pub window: RawWindow,
    pub sink: RawSink,
    #[serde(default)]
    pub dead_letter: RawDeadLetter,
    #[serde(default)]
    pub limits: RawLimits,
    pub checkpoint: Option<RawCheckpoint>,
    pub control: Option<RawControl>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControl {
    pub listen: Option<String>,
    pub token: Option<String>,
    pub endpoint_file: Option<PathBuf>,
    pub allow_remote: Option<bool>,
    pub watch: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheckpoint {
    #[serde(default)]
    pub kind: CheckpointKind,
    pub dir: Option<PathBuf>,
    pub table: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub create_table: Option<bool>,
    pub interval: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    /// A local folder (one machine).
    #[default]
    Folder,
    /// A DynamoDB table (any number of machines).
    Dynamodb,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A CSV file with a header row; each row becomes a JSON object.
    Csv,
    /// A file of JSON values, one per line.
    Jsonl,
    /// Lines from standard input.
    Stdin,
    /// Kafka topics, as a member of a consumer group.
    Kafka,
}

// Flat structs with a `kind` rather than tagged enums: toml then points at
// the exact key of a bad value instead of at the whole table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
    pub brokers: Option<String>,
    pub topics: Option<Vec<String>>,
    pub group_id: Option<String>,
    pub start: Option<StartAt>,
    pub properties: Option<std::collections::BTreeMap<String, String>>,
    pub exit_when_idle: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    Earliest,
    Latest,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStages {
    /// The component used by every stage that names none of its own.
    pub plugin: Option<PathBuf>,
    /// The config given to every stage that has none of its own.
    pub config: Option<toml::Table>,
    pub deserialize: Option<RawStage>,
    pub key: Option<RawStage>,
    pub fold: Option<RawStage>,
    pub format: Option<RawStage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub plugin: Option<PathBuf>,
    pub config: Option<toml::Table>,
    /// `deserialize` only: a host built-in decoder (`"json"`).
    pub builtin: Option<String>,
    /// `key` only: key each event by this field, in the host.
    pub field: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    Event,
    System,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClock {
    pub kind: ClockKind,
    pub wait_for_system_duration: Option<HumanDuration>,
    pub time_field: Option<String>,
    pub time_format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    Tumbling,
    Sliding,
    Session,
    Collect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub kind: WindowKind,
    pub length: Option<HumanDuration>,
    pub align_to: Option<String>,
    pub offset: Option<HumanDuration>,
    pub gap: Option<HumanDuration>,
    pub max_size: Option<u64>,
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    Stdout,
    File,
    Dynamodb,
    Kafka,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    pub kind: SinkKind,
    pub path: Option<PathBuf>,
    pub text_field: Option<String>,
    pub table: Option<String>,
    pub partition_key: Option<String>,
    pub sort_key: Option<String>,
    pub create_table: Option<bool>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub max_in_flight: Option<usize>,
    pub brokers: Option<String>,
    pub topic: Option<String>,
    pub properties: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    #[default]
    Log,
    File,
    Kafka,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeadLetter {
    #[serde(default)]
    pub kind: DeadLetterKind,
    pub path: Option<PathBuf>,
    pub brokers: Option<String>,
    pub topic: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<ByteSize>,
    pub call_timeout: Option<HumanDuration>,
    pub batch_size: Option<usize>,
    pub fold_buffer: Option<usize>,
}
