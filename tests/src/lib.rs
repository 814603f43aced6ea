//! A harness for whole-pipeline tests: run a manifest with the real plugins,
//! capture the sink's lines and the dead letters in memory.
#![deny(missing_docs)]

pub mod pipelines;
pub mod services;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use weir::manifest::Manifest;
use weir::pipeline::{Pipeline, PipelineError, Stages, Stats};
use weir::plugin::PluginEngine;
use weir::sink::{DeadLetter, DeadLetters, JsonLinesSink};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").to_owned()
}

/// A built plugin in `plugins/dist`; panics with what to run when missing.
pub fn plugin(name: &str) -> PathBuf {
    let path = root().join("plugins/dist").join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} is missing: build the plugins with `bash scripts/build-plugins.sh` (scripts/test.sh does it first)", path.display());
    path
}

/// One engine for the whole test binary, caching compiled plugins.
pub fn engine() -> &'static PluginEngine {
    static ENGINE: OnceLock<PluginEngine> = OnceLock::new();
    ENGINE.get_or_init(|| PluginEngine::new(PluginEngine::default_cache_dir()).expect("engine"))
}

/// What a run produced.
#[derive(Debug)]
pub struct Output {
    /// The sink's lines.
    pub lines: Vec<String>,
    /// Every dead letter.
    pub dead: Vec<DeadLetter>,
    /// The run's counts.
    pub stats: Stats,
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Loads the manifest at `path` (relative to the workspace root).
pub fn manifest(path: &str) -> Manifest {
    Manifest::load(&root().join(path)).unwrap_or_else(|err| panic!("{err}"))
}

/// Checks manifest text as if it were the file `dir/pipeline.toml`.
pub fn manifest_text(dir: &Path, text: &str) -> Manifest {
    Manifest::parse(text, &dir.join("pipeline.toml")).unwrap_or_else(|err| panic!("{err}"))
}

/// A pipeline of the test plugin `plugin_file` (from `plugins/dist`) in every
/// stage: sums per key and 10 s tumbling window aligned to 2022-01-01, the
/// event clock with no wait, stdout. `source` is the `[source]` table's
/// body; `more` is appended (stage configs, limits).
pub fn sums_manifest(dir: &Path, plugin_file: &str, source: &str, more: &str) -> Manifest {
    manifest_text(dir, &sums_text(plugin_file, source, more))
}

fn sums_text(plugin_file: &str, source: &str, more: &str) -> String {
    format!(
        "[source]\n{source}\n\n[stages]\nplugin = \"{}\"\n\n[clock]\nkind = \"event\"\nwait_for_system_duration = \"0s\"\n\n\
         [window]\nkind = \"tumbling\"\nlength = \"10s\"\nalign_to = \"2022-01-01T00:00:00Z\"\n\n[sink]\nkind = \"stdout\"\n\n{more}\n",
        plugin(plugin_file).display()
    )
}

/// Like [`sums_manifest`], written to `dir/pipeline.toml` for the `weir`
/// binary; returns its path.
pub fn write_sums_manifest(dir: &Path, plugin_file: &str, source: &str, more: &str) -> PathBuf {
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, sums_text(plugin_file, source, more)).unwrap();
    path
}

/// Runs `manifest` from its source to the end, capturing output.
pub fn run(manifest: &Manifest) -> Result<Output, PipelineError> {
    let stages = Stages::load(manifest, engine())?;
    let buf = SharedBuf::default();
    let text_field = match &manifest.sink {
        weir::manifest::SinkSpec::Lines { text_field, .. } => text_field.clone(),
        _ => None,
    };
    let sink = JsonLinesSink::to_writer(Box::new(buf.clone()), text_field);
    let (dead, letters) = DeadLetters::memory();
    let mut pipeline = Pipeline::new(manifest, stages, Box::new(sink), dead);
    let source = weir::source::open(&manifest.source)?;
    let stats = pipeline.run_source(source)?;
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).expect("UTF-8 output");
    let dead = letters.lock().unwrap().clone();
    Ok(Output { lines: text.lines().map(str::to_owned).collect(), dead, stats })
}

/// The lines of a file under the workspace root.
pub fn expected(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"));
    text.lines().map(str::to_owned).collect()
}
