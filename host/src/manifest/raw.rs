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

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSource {
    /// A CSV file with a header row; each row becomes a JSON object.
    Csv { path: PathBuf },
    /// A file of JSON values, one per line.
    Jsonl { path: PathBuf },
    /// Lines from standard input.
    Stdin {},
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

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawClock {
    Event { wait_for_system_duration: HumanDuration },
    System {},
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawWindow {
    Tumbling { length: HumanDuration, align_to: String },
    Collect { max_size: u64, timeout: HumanDuration },
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawSink {
    Stdout {
        text_field: Option<String>,
    },
    File {
        path: PathBuf,
        text_field: Option<String>,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawDeadLetter {
    #[default]
    Log,
    File {
        path: PathBuf,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub memory: Option<ByteSize>,
    pub call_timeout: Option<HumanDuration>,
    pub batch_size: Option<usize>,
}
