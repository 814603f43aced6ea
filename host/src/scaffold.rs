//! `weir new`: a ready plugin crate — Cargo.toml, a working example in
//! src/lib.rs with unit tests, a README and, for a crate serving all four
//! stages, `weir test` cases — that builds to a component with one command.

use std::path::{Path, PathBuf};

/// What `weir new` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// All four stages in one component (the usual start).
    Pipeline,
    /// Raw records to events.
    Deserialize,
    /// Events to keys.
    Key,
    /// Events into window accumulators.
    Fold,
    /// Closed windows to JSON objects.
    Format,
}

/// Why the crate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a crate name.
    #[error("`{0}` is not a crate name: use letters, digits, `-` and `_`, starting with a letter")]
    Name(String),
    /// The folder exists already.
    #[error("{} exists already; pick another name or folder", .0.display())]
    Exists(PathBuf),
    /// The guest SDK is not where the crate would point.
    #[error("the guest SDK is not at {} (pass --sdk <path to weir's guest-sdk folder>)", .0.display())]
    Sdk(PathBuf),
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where the SDK was when this binary was built.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).join("guest-sdk")
}

/// Writes the crate `name` for `kind` into `dir/name`; returns its folder.
pub fn create(kind: Kind, name: &str, dir: &Path, sdk: &Path) -> Result<PathBuf, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    let sdk = std::path::absolute(sdk).unwrap_or_else(|_| sdk.to_owned());
    if !sdk.join("Cargo.toml").is_file() {
        return Err(ScaffoldError::Sdk(sdk));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let module = name.replace('-', "_");
    let mut files = vec![
        ("Cargo.toml", cargo_toml(name, &sdk)),
        ("src/lib.rs", lib_rs(kind, name)),
        ("README.md", readme(kind, name, &module)),
        (".gitignore", "/target\n".to_owned()),
    ];
    // `weir test` runs whole pipelines: only a crate serving all four
    // stages can be run by it alone.
    if kind == Kind::Pipeline {
        files.push(("cases.toml", cases_toml(&module)));
    }
    for (file, text) in files {
        let path = root.join(file);
        let write = |path: &Path| -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("inside root"))?;
            std::fs::write(path, &text)
        };
        write(&path).map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
    }
    Ok(root)
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[lib]
# cdylib: the component; rlib: native unit tests.
crate-type = ["cdylib", "rlib"]

[dependencies]
weir-guest-sdk = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"

[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# Not part of any enclosing workspace.
[workspace]
"#,
        sdk = sdk.display()
    )
}

const TYPES: &str = r#"/// A reading as it arrives: `{"key": "sensor-1", "value": 21.5, "time": "2024-01-01T00:00:01Z"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub key: String,
    pub value: f64,
    pub time: String,
}

/// The event the stages pass on (encoded by the SDK between stages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub key: String,
    pub value: f64,
}

/// The window accumulator the host keeps for each (key, window). Raise
/// `STATE_VERSION` when its shape changes, and implement `migrate`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acc {
    pub count: u64,
    pub sum: f64,
}

/// What the stage's config may hold (the manifest's `config = { ... }`);
/// unknown fields are refused, so a typo stops the pipeline before it runs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Multiplies every value (an example setting).
    pub scale: Option<f64>,
}

pub struct Stage {
    /// From the config.
    pub scale: f64,
}

impl Plugin for Stage {
    type Config = Config;

    fn new(config: Config) -> Result<Self, Error> {
        let scale = config.scale.unwrap_or(1.0);
        if !scale.is_finite() {
            return Err(Error::msg("`scale` must be a finite number"));
        }
        Ok(Stage { scale })
    }
}
"#;

const DESERIALIZE: &str = r#"
impl DeserializeStage for Stage {
    type Event = Event;

    fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_, Event>) -> Result<(), Error> {
        let reading: Reading = record.json()?;
        let time = Timestamp::parse_rfc3339(&reading.time).map_err(|e| e.context("field `time`"))?;
        out.emit_at(Event { key: reading.key, value: reading.value * self.scale }, time)
    }
}
"#;

const KEY: &str = r#"
impl KeyStage for Stage {
    type Event = Event;

    fn key(&self, event: &Event) -> Result<String, Error> {
        Ok(event.key.clone())
    }
}
"#;

const FOLD: &str = r#"
impl FoldStage for Stage {
    type Event = Event;
    type Acc = Acc;
    const STATE_VERSION: u32 = 1;

    fn init(&self) -> Acc {
        Acc::default()
    }

    fn fold(&self, acc: &mut Acc, event: Event) -> Result<(), Error> {
        if !event.value.is_finite() {
            // Returned before `acc` changes: the event is dead-lettered.
            return Err(Error::msg(format!("value {} is not a finite number", event.value)));
        }
        acc.count += 1;
        acc.sum += event.value;
        Ok(())
    }
}
"#;

const FORMAT: &str = r#"
/// What a closed window becomes.
#[derive(Debug, Serialize)]
pub struct Output {
    pub key: String,
    pub start: String,
    pub count: u64,
    pub mean: f64,
}

impl FormatStage for Stage {
    type Acc = Acc;
    type Output = Output;

    fn format(&self, window: &Window, acc: Acc) -> Result<Output, Error> {
        if acc.count == 0 {
            return Err(Error::msg("empty window"));
        }
        Ok(Output { key: window.key.clone(), start: window.start.to_rfc3339(), count: acc.count, mean: acc.sum / acc.count as f64 })
    }
}
"#;

fn lib_rs(kind: Kind, name: &str) -> String {
    let (stages, uses): (&[&str], &str) = match kind {
        Kind::Pipeline => {
            (&["deserialize", "key", "fold", "format"], "DeserializeStage, Emitter, Error, FoldStage, FormatStage, KeyStage, Plugin, Record, Timestamp, Window")
        }
        Kind::Deserialize => (&["deserialize"], "DeserializeStage, Emitter, Error, Plugin, Record, Timestamp"),
        Kind::Key => (&["key"], "Error, KeyStage, Plugin"),
        Kind::Fold => (&["fold"], "Error, FoldStage, Plugin"),
        Kind::Format => (&["format"], "Error, FormatStage, Plugin, Window"),
    };
    let in_host = if kind == Kind::Pipeline {
        format!("test the component in the real host:\n//! `weir test target/wasm32-wasip2/release/{}.wasm --cases cases.toml`.", name.replace('-', "_"))
    } else {
        "run the component in the real host in a\n//! manifest beside the other stages' plugins, which must use the same\n//! `Event` type (the stages of one crate do).".to_owned()
    };
    let mut out = format!(
        "//! {name}: a weir plugin serving {}.\n//!\n//! Build: `cargo build --release --target wasm32-wasip2`; test natively:\n//! `cargo test`; {in_host}\n\nuse serde::{{Deserialize, Serialize}};\nuse weir_guest_sdk::{{{uses}}};\n\n",
        stages.join(", "),
    );
    out.push_str(TYPES);
    for stage in stages {
        out.push_str(match *stage {
            "deserialize" => DESERIALIZE,
            "key" => KEY,
            "fold" => FOLD,
            _ => FORMAT,
        });
    }
    let exports: Vec<String> = stages.iter().map(|s| format!("{s}: Stage")).collect();
    out.push_str(&format!("\nweir_guest_sdk::export_plugin!({});\n", exports.join(", ")));
    out.push_str("\n#[cfg(test)]\nmod tests {\n    use serde_json::json;\n    use weir_guest_sdk::testing;\n\n    use super::*;\n\n    fn stage() -> Stage {\n        testing::configure(json!({ \"scale\": 2.0 })).unwrap()\n    }\n");
    for stage in stages {
        out.push_str(match *stage {
            "deserialize" => {
                r##"
    #[test]
    fn deserializes_and_scales() {
        let events = testing::deserialize(&stage(), br#"{"key":"a","value":1.5,"time":"2024-01-01T00:00:01Z"}"#).unwrap();
        assert_eq!(events, vec![(Event { key: "a".into(), value: 3.0 }, Timestamp::parse_rfc3339("2024-01-01T00:00:01Z").unwrap())]);
        let err = testing::deserialize(&stage(), br#"{"key":"a","value":1.5,"time":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("field `time`"), "{err}");
    }
"##
            }
            "key" => {
                r#"
    #[test]
    fn keys_by_the_key_field() {
        assert_eq!(testing::key(&stage(), &Event { key: "a".into(), value: 1.0 }).unwrap(), "a");
    }
"#
            }
            "fold" => {
                r#"
    #[test]
    fn sums_and_refuses_non_finite_values() {
        let acc = testing::fold(&stage(), [Event { key: "a".into(), value: 1.0 }, Event { key: "a".into(), value: 2.5 }]).unwrap();
        assert_eq!(acc, Acc { count: 2, sum: 3.5 });
        assert!(testing::fold(&stage(), [Event { key: "a".into(), value: f64::NAN }]).is_err());
    }
"#
            }
            _ => {
                r#"
    #[test]
    fn formats_the_mean() {
        let window = testing::window("a", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", 2);
        let out = testing::format(&stage(), &window, Acc { count: 2, sum: 3.0 }).unwrap();
        assert_eq!(out, json!({ "key": "a", "start": "2024-01-01T00:00:00Z", "count": 2, "mean": 1.5 }));
    }
"#
            }
        });
    }
    out.push_str("}\n");
    out
}

fn cases_toml(module: &str) -> String {
    format!(
        r#"# weir test target/wasm32-wasip2/release/{module}.wasm --cases cases.toml
[defaults]
window = {{ kind = "tumbling", length = "1h", align_to = "2024-01-01T00:00:00Z" }}
config = {{ scale = 2.0 }}

[[case]]
name = "a window's mean, scaled"
input = [
    '{{"key": "a", "value": 1.0, "time": "2024-01-01T00:00:01Z"}}',
    '{{"key": "a", "value": 2.0, "time": "2024-01-01T00:10:00Z"}}',
]
expect = [{{ key = "a", start = "2024-01-01T00:00:00Z", count = 2, mean = 3.0 }}]

[[case]]
name = "a bad time is a dead letter"
input = ['{{"key": "a", "value": 1.0, "time": "soon"}}']
expect = []
expect_dead = [{{ stage = "deserialize", line = 1, reason = "field `time`" }}]

[[case]]
name = "a typo in the config is refused"
config = {{ scael = 2.0 }}
expect_error = "unknown field `scael`"
"#
    )
}

fn readme(kind: Kind, name: &str, module: &str) -> String {
    let whole = kind == Kind::Pipeline;
    let kind = format!("{kind:?}").to_lowercase();
    let test = if whole { format!("weir test target/wasm32-wasip2/release/{module}.wasm --cases cases.toml   # in the real host\n") } else { String::new() };
    let (stages, swap_stage) = if whole {
        ("[stages]".to_owned(), "all".to_owned())
    } else {
        (format!("[stages.{kind}]   # the other stages' plugins must use the same event type"), kind.clone())
    };
    let alone = if whole {
        ""
    } else {
        "\n`weir test` runs whole pipelines, so it cannot run a one-stage component\nalone: test this one natively, and end to end in a manifest beside the\nother stages' plugins. (`weir new pipeline` makes a crate `weir test` runs.)\n"
    };
    format!(
        r#"# {name}

A weir plugin ({kind}), made by `weir new`.

```sh
cargo test                                          # the logic, natively
cargo build --release --target wasm32-wasip2        # the component
{test}```
{alone}
`rustup target add wasm32-wasip2` once, if the target is missing.

Use it in a manifest:

```toml
{stages}
plugin = "target/wasm32-wasip2/release/{module}.wasm"
config = {{ scale = 1.0 }}
```

Swap a new build into a running pipeline (its manifest needs `[control]`):
`weir swap {swap_stage} target/wasm32-wasip2/release/{module}.wasm -m pipeline.toml`.

See the plugin author's guide (`docs/plugin-guide.md` in weir) for the stage
contracts, the accumulator and its versions, config, errors and limits.
"#
    )
}
