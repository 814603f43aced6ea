//! `weir new` in Rust: a crate — Cargo.toml, a working example in
//! src/lib.rs with unit tests, a README and, for a crate serving all four
//! stages, `weir test` cases — that builds to a component with one command.

use std::path::Path;

use super::{Kind, ScaffoldError};

/// Where the SDK lives inside a new crate when it is written out from
/// this binary (no `--sdk`).
pub const VENDORED_SDK: &str = "vendor/weir-guest-sdk";

/// The guest SDK's source as this binary was built with it, file by file
/// (paths relative to the crate). `weir new` writes it into the crate, so
/// the crate builds wherever the binary was copied to.
const SDK_FILES: [(&str, &str); 12] = [
    ("vendor/weir-guest-sdk/src/lib.rs", include_str!("../../../guest-sdk/src/lib.rs")),
    ("vendor/weir-guest-sdk/src/__bindings.rs", include_str!("../../../guest-sdk/src/__bindings.rs")),
    ("vendor/weir-guest-sdk/src/__rt.rs", include_str!("../../../guest-sdk/src/__rt.rs")),
    ("vendor/weir-guest-sdk/src/decimal.rs", include_str!("../../../guest-sdk/src/decimal.rs")),
    ("vendor/weir-guest-sdk/src/error.rs", include_str!("../../../guest-sdk/src/error.rs")),
    ("vendor/weir-guest-sdk/src/event.rs", include_str!("../../../guest-sdk/src/event.rs")),
    ("vendor/weir-guest-sdk/src/log.rs", include_str!("../../../guest-sdk/src/log.rs")),
    ("vendor/weir-guest-sdk/src/record.rs", include_str!("../../../guest-sdk/src/record.rs")),
    ("vendor/weir-guest-sdk/src/stage.rs", include_str!("../../../guest-sdk/src/stage.rs")),
    ("vendor/weir-guest-sdk/src/testing.rs", include_str!("../../../guest-sdk/src/testing.rs")),
    ("vendor/weir-guest-sdk/src/time.rs", include_str!("../../../guest-sdk/src/time.rs")),
    // `__bindings.rs` reads the WIT from `../wit`.
    ("vendor/wit/stream.wit", include_str!("../../../wit/stream.wit")),
];

// The SDK's Cargo.toml outside weir's workspace: the workspace's versions
// written out.
fn sdk_cargo_toml() -> String {
    format!(
        r#"[package]
name = "weir-guest-sdk"
description = "Write weir stream stages (deserialize, key, fold, format) as WebAssembly components (written out by weir {version})"
version = "{version}"
edition = "2024"
rust-version = "1.95"
license = "Apache-2.0"
publish = false

[dependencies]
serde = {{ version = "1", features = ["derive"] }}
# float_roundtrip: accumulators go through JSON between batches, and a
# float must come back bit for bit.
serde_json = {{ version = "1", features = ["raw_value", "float_roundtrip"] }}
postcard = {{ version = "1", default-features = false, features = ["alloc"] }}
wit-bindgen = {{ version = "0.61", default-features = false, features = ["macros", "realloc"] }}
"#,
        version = env!("CARGO_PKG_VERSION")
    )
}

/// The files of the crate `name` for `kind`: with the SDK at `sdk`, or the
/// SDK this binary carries written into the crate when `sdk` is `None`.
pub fn files(kind: Kind, name: &str, sdk: Option<&Path>) -> Result<Vec<(&'static str, String)>, ScaffoldError> {
    let sdk_path = match sdk {
        Some(sdk) => {
            let sdk = std::path::absolute(sdk).unwrap_or_else(|_| sdk.to_owned());
            if !sdk.join("Cargo.toml").is_file() {
                return Err(ScaffoldError::Sdk(sdk));
            }
            sdk.display().to_string()
        }
        None => VENDORED_SDK.to_owned(),
    };
    let module = name.replace('-', "_");
    let mut files = vec![
        ("Cargo.toml", cargo_toml(name, &sdk_path)),
        ("src/lib.rs", lib_rs(kind, name)),
        ("README.md", readme(kind, name, &module)),
        (".gitignore", "/target\n".to_owned()),
    ];
    // `weir test` runs whole pipelines: only a crate serving all four
    // stages can be run by it alone.
    if kind == Kind::Pipeline {
        files.push(("cases.toml", cases_toml(&module)));
    }
    if sdk.is_none() {
        files.push(("vendor/weir-guest-sdk/Cargo.toml", sdk_cargo_toml()));
        files.extend(SDK_FILES.iter().map(|(path, text)| (*path, (*text).to_owned())));
    }
    Ok(files)
}

fn cargo_toml(name: &str, sdk: &str) -> String {
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
    )
}

const TYPES: &str = r#"/// The window accumulator the host keeps for each (key, window), as JSON.
/// When its shape changes, raise the version in `accumulator()` and
/// implement `migrate`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Acc {
    pub count: u64,
    pub sum: f64,
}

/// What the accumulator is; fold and format must name the same.
pub fn accumulator() -> Identity {
    Identity::new("__NAME__", 1)
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
/// A reading as it arrives: `{"key": "sensor-1", "value": 21.5, "time": "2024-01-01T00:00:01Z"}`.
/// (Records that are JSON objects need no deserialize plugin: the host's
/// `builtin = "json"` decodes the fields the other stages read.)
#[derive(Debug, Deserialize)]
pub struct Reading {
    pub key: String,
    pub value: f64,
    pub time: String,
}

impl DeserializeStage for Stage {
    fn writes(&self) -> Schema {
        Schema::new("reading", 1).field("key", FieldType::Text).field("value", FieldType::Float).field("time", FieldType::Time)
    }

    fn deserialize(&self, record: &Record<'_>, out: &mut Emitter<'_>) -> Result<(), Error> {
        let reading: Reading = record.json()?;
        let time = Timestamp::parse_rfc3339(&reading.time).map_err(|e| e.context("field `time`"))?;
        out.emit(Event::new().text("key", reading.key).float("value", reading.value).time("time", time))
    }
}
"#;

const KEY: &str = r#"
impl KeyStage for Stage {
    fn reads(&self) -> Schema {
        Schema::new("reading", 1).field("key", FieldType::Text)
    }

    fn key(&self, event: &Row<'_>) -> Result<String, Error> {
        Ok(event.text("key")?.to_owned())
    }
}
"#;

const FOLD: &str = r#"
impl FoldStage for Stage {
    type Acc = Acc;

    fn reads(&self) -> Schema {
        Schema::new("reading", 1).field("value", FieldType::Float)
    }

    fn accumulator(&self) -> Identity {
        accumulator()
    }

    fn init(&self) -> Acc {
        Acc::default()
    }

    fn fold(&self, acc: &mut Acc, event: &Row<'_>) -> Result<(), Error> {
        let value = event.float("value")? * self.scale;
        if !value.is_finite() {
            // Returned before `acc` changes: the event is dead-lettered.
            return Err(Error::msg(format!("value {value} is not a finite number")));
        }
        acc.count += 1;
        acc.sum += value;
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

    fn accumulator(&self) -> Identity {
        accumulator()
    }

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
        Kind::Pipeline => (
            &["deserialize", "key", "fold", "format"],
            "DeserializeStage, Emitter, Error, Event, FieldType, FoldStage, FormatStage, Identity, KeyStage, Plugin, Record, Row, Schema, Timestamp, Window",
        ),
        Kind::Deserialize => (&["deserialize"], "DeserializeStage, Emitter, Error, Event, FieldType, Identity, Plugin, Record, Schema, Timestamp"),
        Kind::Key => (&["key"], "Error, FieldType, Identity, KeyStage, Plugin, Row, Schema"),
        Kind::Fold => (&["fold"], "Error, FieldType, FoldStage, Identity, Plugin, Row, Schema"),
        Kind::Format => (&["format"], "Error, FormatStage, Identity, Plugin, Window"),
    };
    let in_host = if kind == Kind::Pipeline {
        format!("test the component in the real host:\n//! `weir test target/wasm32-wasip2/release/{}.wasm --cases cases.toml`.", name.replace('-', "_"))
    } else {
        "run the component in the real host in a\n//! manifest beside the other stages (the host checks that the fields\n//! each stage reads are written upstream).".to_owned()
    };
    let mut out = format!(
        "//! {name}: a weir plugin serving {}.\n//!\n//! Build: `cargo build --release --target wasm32-wasip2`; test natively:\n//! `cargo test`; {in_host}\n\nuse serde::{{Deserialize, Serialize}};\nuse weir_guest_sdk::{{{uses}}};\n\n",
        stages.join(", "),
    );
    out.push_str(&TYPES.replace("__NAME__", name));
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
    fn deserializes() {
        let events = testing::deserialize(&stage(), br#"{"key":"a","value":1.5,"time":"2024-01-01T00:00:01Z"}"#).unwrap();
        let time = Timestamp::parse_rfc3339("2024-01-01T00:00:01Z").unwrap();
        assert_eq!(events, vec![Event::new().text("key", "a").float("value", 1.5).time("time", time)]);
        let err = testing::deserialize(&stage(), br#"{"key":"a","value":1.5,"time":"soon"}"#).unwrap_err();
        assert!(err.to_string().contains("field `time`"), "{err}");
    }
"##
            }
            "key" => {
                r#"
    #[test]
    fn keys_by_the_key_field() {
        assert_eq!(testing::key(&stage(), &weir_guest_sdk::Event::new().text("key", "a")).unwrap(), "a");
    }
"#
            }
            "fold" => {
                r#"
    #[test]
    fn sums_and_refuses_non_finite_values() {
        let event = |value: f64| weir_guest_sdk::Event::new().float("value", value);
        let acc = testing::fold(&stage(), &[event(1.0), event(2.5)]).unwrap();
        assert_eq!(acc, Acc { count: 2, sum: 7.0 });
        assert!(testing::fold(&stage(), &[event(f64::MAX)]).is_err());
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
        (format!("[stages.{kind}]   # the host checks the fields it reads are written upstream"), kind.clone())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_carries_every_file_of_the_guest_sdk() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk/src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            let carried = format!("vendor/weir-guest-sdk/src/{name}");
            let (_, text) = SDK_FILES.iter().find(|(path, _)| *path == carried).unwrap_or_else(|| panic!("guest-sdk/src/{name} is not in SDK_FILES"));
            assert_eq!(*text, std::fs::read_to_string(src.join(&name)).unwrap());
        }
    }

    #[test]
    fn a_crate_with_the_carried_sdk_names_no_path_outside_itself() {
        let files = files(Kind::Fold, "my-fold", None).unwrap();
        let cargo = &files.iter().find(|(path, _)| *path == "Cargo.toml").unwrap().1;
        assert!(cargo.contains(r#"weir-guest-sdk = { path = "vendor/weir-guest-sdk" }"#), "{cargo}");
        assert!(files.iter().any(|(path, _)| *path == "vendor/weir-guest-sdk/Cargo.toml"));
        assert!(files.iter().any(|(path, _)| *path == "vendor/wit/stream.wit"));
        assert!(!files.iter().any(|(_, text)| text.contains(env!("CARGO_MANIFEST_DIR"))), "a path of the machine that built weir");
    }
}
