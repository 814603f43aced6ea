//! `weir test`: runs a compiled component in the real host against a file
//! of cases (input records, config, expected windows, expected dead letters
//! or an expected error) and shows a diff where they disagree.
//!
//! A cases file is TOML:
//!
//! ```toml
//! [defaults]                       # shared by every case; all optional
//! window = { kind = "tumbling", length = "5s", align_to = "2024-01-01T00:00:00Z" }
//! clock = { kind = "event", wait_for_system_duration = "0s" }
//! config = { start_at = "2024-01-01T00:00:00Z" }   # every stage's config
//! # stages.format.config = { ... }                 # or one stage's
//!
//! [[case]]
//! name = "averages a window"
//! input = ['{"id":"s1","value":20.0,"time":"2024-01-01T00:00:01Z"}']
//! expect = [{ id = "s1", average = 20.0, num_events = 1, from = 1.0, to = 1.0 }]
//!
//! [[case]]
//! name = "a bad time is a dead letter"
//! input = ['{"id":"s1","value":1,"time":"soon"}']
//! expect = []
//! expect_dead = [{ stage = "deserialize", line = 1, reason = "field `time`" }]
//!
//! [[case]]
//! name = "unknown config is refused"
//! config = { colour = "blue" }
//! expect_error = "unknown field `colour`"
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::harness::Harness;
use crate::manifest::Manifest;
use crate::plugin::PluginEngine;

/// Why a cases file could not be run at all.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a cases file.
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line when TOML knows it.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    #[serde(default)]
    defaults: toml::Table,
    #[serde(rename = "case")]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    input: Vec<toml::Value>,
    expect: Option<Vec<toml::Value>>,
    expect_dead: Option<Vec<ExpectedDead>>,
    expect_error: Option<String>,
    // Overrides of the defaults.
    config: Option<toml::Value>,
    stages: Option<toml::Table>,
    clock: Option<toml::Value>,
    window: Option<toml::Value>,
    limits: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedDead {
    stage: Option<String>,
    line: Option<u64>,
    /// Text the reason must contain.
    reason: Option<String>,
}

/// The outcome of one case.
#[derive(Debug)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// `None` when it passed; otherwise what differed, ready to print.
    pub failure: Option<String>,
}

/// Runs every case of `cases` against the component at `plugin`.
pub fn run(plugin: &Path, cases: &Path, engine: &PluginEngine) -> Result<Vec<CaseResult>, CasesError> {
    if !plugin.is_file() {
        let source = std::io::Error::new(std::io::ErrorKind::NotFound, "no such component (build it first)");
        return Err(CasesError::Read { path: plugin.to_owned(), source });
    }
    let text = std::fs::read_to_string(cases).map_err(|source| CasesError::Read { path: cases.to_owned(), source })?;
    let file: CasesFile = toml::from_str(&text).map_err(|err| {
        let line = err.span().map(|s| text[..s.start].matches('\n').count() + 1);
        let message = match line {
            Some(line) => format!("line {line}: {}", err.message()),
            None => err.message().to_owned(),
        };
        CasesError::Invalid { path: cases.to_owned(), message }
    })?;
    if file.cases.is_empty() {
        return Err(CasesError::Invalid { path: cases.to_owned(), message: "no [[case]] in the file".to_owned() });
    }
    let plugin = std::path::absolute(plugin).unwrap_or_else(|_| plugin.to_owned());
    let mut results = Vec::new();
    for case in &file.cases {
        if case.expect.is_none() && case.expect_error.is_none() {
            return Err(CasesError::Invalid {
                path: cases.to_owned(),
                message: format!("case `{}` expects nothing: give `expect` (windows, maybe []) or `expect_error`", case.name),
            });
        }
        let failure = match manifest_for(&plugin, &file.defaults, case, cases) {
            Ok(manifest) => run_case(&manifest, case, engine),
            Err(message) => Some(message),
        };
        results.push(CaseResult { name: case.name.clone(), failure });
    }
    Ok(results)
}

/// A manifest running `plugin` in every stage with the case's settings.
fn manifest_for(plugin: &Path, defaults: &toml::Table, case: &Case, cases: &Path) -> Result<Manifest, String> {
    let mut m = toml::Table::new();
    m.insert("name".into(), "weir-test".into());
    m.insert("source".into(), toml::Value::Table(toml::Table::from_iter([("kind".to_owned(), "stdin".into())])));
    let mut stages = match defaults.get("stages") {
        Some(toml::Value::Table(t)) => t.clone(),
        _ => toml::Table::new(),
    };
    if let Some(config) = defaults.get("config") {
        stages.insert("config".into(), config.clone());
    }
    if let Some(config) = &case.config {
        stages.insert("config".into(), config.clone());
    }
    for (name, value) in case.stages.iter().flatten() {
        stages.insert(name.clone(), value.clone());
    }
    stages.insert("plugin".into(), plugin.display().to_string().into());
    m.insert("stages".into(), toml::Value::Table(stages));
    let pick = |field: &str, own: &Option<toml::Value>, fallback: toml::Value| own.clone().or_else(|| defaults.get(field).cloned()).unwrap_or(fallback);
    let table = |pairs: &[(&str, &str)]| toml::Value::Table(pairs.iter().map(|(k, v)| ((*k).to_owned(), toml::Value::from(*v))).collect());
    m.insert("clock".into(), pick("clock", &case.clock, table(&[("kind", "event"), ("wait_for_system_duration", "0s")])));
    m.insert("window".into(), pick("window", &case.window, table(&[("kind", "tumbling"), ("length", "1h"), ("align_to", "1970-01-01T00:00:00Z")])));
    if let Some(limits) = case.limits.clone().or_else(|| defaults.get("limits").cloned()) {
        m.insert("limits".into(), limits);
    }
    m.insert("sink".into(), table(&[("kind", "stdout")]));
    for key in defaults.keys() {
        if !["stages", "config", "clock", "window", "limits"].contains(&key.as_str()) {
            return Err(format!("[defaults] has `{key}`; it may hold config, stages, clock, window and limits"));
        }
    }
    let text = toml::to_string(&m).map_err(|err| err.to_string())?;
    Manifest::parse(&text, cases).map_err(|err| format!("the case's settings are not a valid pipeline: {err}"))
}

fn run_case(manifest: &Manifest, case: &Case, engine: &PluginEngine) -> Option<String> {
    let mut harness = match Harness::new(manifest, engine) {
        Ok(h) => h,
        Err(err) => {
            let message = err.to_string();
            return match &case.expect_error {
                Some(expected) if message.contains(expected.as_str()) => None,
                Some(expected) => Some(format!("expected an error containing {expected:?}, got: {message}")),
                None => Some(format!("the component did not start: {message}")),
            };
        }
    };
    if let Some(expected) = &case.expect_error {
        return Some(format!("expected an error containing {expected:?}, but the component started"));
    }
    let inputs: Vec<Vec<u8>> = case
        .input
        .iter()
        .map(|v| match v {
            toml::Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap_or_default(),
        })
        .collect();
    for chunk in inputs.chunks(manifest.limits.batch_size) {
        if let Err(err) = harness.push(chunk) {
            return Some(format!("the pipeline stopped: {err}"));
        }
    }
    if let Err(err) = harness.finish() {
        return Some(format!("the pipeline stopped: {err}"));
    }
    let actual = harness.take_objects();
    let mut report = String::new();
    if let Some(expected) = &case.expect {
        let expected: Vec<serde_json::Value> = expected.iter().map(|v| serde_json::to_value(v).unwrap_or_default()).collect();
        report.push_str(&diff(&expected, &actual));
    }
    let dead = harness.dead_letters();
    let wanted = case.expect_dead.as_deref().unwrap_or_default();
    for (i, w) in wanted.iter().enumerate() {
        let found = dead.iter().any(|d| {
            w.stage.as_ref().is_none_or(|s| *s == d.stage)
                && w.line.is_none_or(|l| l == d.position)
                && w.reason.as_ref().is_none_or(|r| d.reason.contains(r.as_str()))
        });
        if !found {
            let mut want = Vec::new();
            if let Some(stage) = &w.stage {
                want.push(format!("stage {stage}"));
            }
            if let Some(line) = w.line {
                want.push(format!("line {line}"));
            }
            if let Some(reason) = &w.reason {
                want.push(format!("reason containing {reason:?}"));
            }
            let _ = writeln!(report, "expected dead letter {} ({}) was not produced", i + 1, want.join(", "));
        }
    }
    if !report.is_empty() || dead.len() > wanted.len() || (case.expect_dead.is_none() && !dead.is_empty()) {
        for d in &dead {
            let _ = writeln!(report, "dead letter: {} line {}: {}", d.stage, d.position, d.reason);
        }
        if case.expect_dead.is_none() {
            report.push_str("(no dead letters were expected; list them under expect_dead)\n");
        }
    }
    (!report.is_empty()).then_some(report)
}

/// Lines `-` expected / `+` actual for every window that differs.
fn diff(expected: &[serde_json::Value], actual: &[serde_json::Value]) -> String {
    let mut out = String::new();
    for i in 0..expected.len().max(actual.len()) {
        match (expected.get(i), actual.get(i)) {
            (Some(e), Some(a)) if same(e, a) => {}
            (e, a) => {
                let _ = writeln!(out, "window {}:", i + 1);
                if let Some(e) = e {
                    let _ = writeln!(out, "  - {e}");
                }
                if let Some(a) = a {
                    let _ = writeln!(out, "  + {a}");
                }
            }
        }
    }
    out
}

/// JSON equality where numbers are equal by value (`1` and `1.0`).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.to_string().parse::<f64>().ok() == y.to_string().parse::<f64>().ok(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_compare_by_value_and_everything_else_exactly() {
        assert!(same(&json!({"a": 1, "b": [2.0]}), &serde_json::from_str(r#"{"b":[2],"a":1.0}"#).unwrap()));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1.5})));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": null})));
        assert!(!same(&json!({"a": "1"}), &json!({"a": 1})));
    }

    #[test]
    fn the_diff_names_the_window_and_both_sides() {
        let out = diff(&[json!({"n": 1}), json!({"n": 2})], &[json!({"n": 1}), json!({"n": 3}), json!({"n": 4})]);
        assert_eq!(out, "window 2:\n  - {\"n\":2}\n  + {\"n\":3}\nwindow 3:\n  + {\"n\":4}\n");
    }
}
