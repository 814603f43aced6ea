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
}

// Flat structs with a `kind` rather than tagged enums: toml then points at
// the exact key of a bad value instead of at the whole table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    pub kind: SourceKind,
    pub path: Option<PathBuf>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    Tumbling,
    Collect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub kind: WindowKind,
    pub length: Option<HumanDuration>,
    pub align_to: Option<String>,
    pub max_size: Option<u64>,
    pub timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    Stdout,
    File,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    pub kind: SinkKind,
    pub path: Option<PathBuf>,
    pub text_field: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterKind {
    #[default]
    Log,
    File,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeadLetter {
    #[serde(default)]
    pub kind: DeadLetterKind,
    pub path: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<ByteSize>,
    pub call_timeout: Option<HumanDuration>,
    pub batch_size: Option<usize>,
}
