//! A pipeline you drive by hand, for tests: the real plugins and the real
//! data path, records pushed from memory in the batches you choose, a
//! system clock that moves only when you move it, and results and dead
//! letters kept in memory.
//!
//! ```no_run
//! use std::time::Duration;
//! use weir::harness::Harness;
//! use weir::manifest::Manifest;
//! use weir::plugin::PluginEngine;
//!
//! let manifest = Manifest::load("examples/seed-000-sensor-average/pipeline.toml".as_ref()).unwrap();
//! let engine = PluginEngine::new(None).unwrap();
//! let mut h = Harness::new(&manifest, &engine).unwrap();
//! h.push([r#"{"id":"s1","value":20.5,"time":"2024-01-01T00:00:01Z"}"#]).unwrap();
//! h.advance(Duration::from_secs(30)).unwrap(); // the event clock's wait passes
//! assert_eq!(h.take_objects().len(), 1);
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Timestamp;
use crate::manifest::{Manifest, StageKind};
use crate::pipeline::{Pipeline, PipelineError, Stages, Stats, SwapError, Swapped};
use crate::plugin::PluginEngine;
use crate::sink::{DeadLetter, DeadLetters, MemorySink, WindowResult};
use crate::source::{Origin, SourceRecord};

/// The name records pushed by hand come from, in dead letters.
pub const SOURCE_NAME: &str = "harness";

/// A hand-driven pipeline over in-memory input and output.
pub struct Harness {
    pipeline: Pipeline,
    sink: MemorySink,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
    now: Timestamp,
    pushed: u64,
    taken: usize,
    source: Arc<str>,
}

impl Harness {
    /// Loads the manifest's plugins; the manifest's source and sink are not
    /// opened (input comes from [`Harness::push`], output stays in memory).
    /// The clock starts at 2000-01-01T00:00:00Z.
    pub fn new(manifest: &Manifest, engine: &PluginEngine) -> Result<Harness, PipelineError> {
        let stages = Stages::load(manifest, engine)?;
        Ok(Harness::with_stages(manifest, stages))
    }

    /// Like [`Harness::new`] with stages already loaded.
    pub fn with_stages(manifest: &Manifest, stages: Stages) -> Harness {
        let sink = MemorySink::new();
        let (dead_letters, dead) = DeadLetters::memory();
        let pipeline = Pipeline::new(manifest, stages, Box::new(sink.clone()), dead_letters);
        Harness { pipeline, sink, dead, now: Timestamp(946_684_800_000_000), pushed: 0, taken: 0, source: Arc::from(SOURCE_NAME) }
    }

    /// Keeps checkpoints in `store` (see [`Pipeline::checkpoint`] and
    /// [`Pipeline::take_partition`]).
    pub fn with_checkpoints(self, store: impl crate::state::checkpoint::CheckpointStore + 'static) -> Self {
        Harness { pipeline: self.pipeline.with_checkpoints(store), ..self }
    }

    /// Lets a restore load the components a checkpoint names (see
    /// [`Pipeline::with_engine`]).
    pub fn with_engine(self, engine: std::sync::Arc<PluginEngine>) -> Self {
        Harness { pipeline: self.pipeline.with_engine(engine), ..self }
    }

    /// Sets the system clock.
    pub fn at(&mut self, now: Timestamp) -> &mut Self {
        self.now = now;
        self
    }

    /// The system clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Processes `values` as one batch at the current system time. Each
    /// value is numbered on from the last (its "line" in dead letters,
    /// starting at 1).
    pub fn push<V: AsRef<[u8]>>(&mut self, values: impl IntoIterator<Item = V>) -> Result<(), PipelineError> {
        let records = values
            .into_iter()
            .map(|v| {
                self.pushed += 1;
                SourceRecord {
                    value: v.as_ref().to_vec(),
                    key: None,
                    timestamp: self.now,
                    headers: Vec::new(),
                    origin: Origin { source: self.source.clone(), partition: None, position: self.pushed, offset: None },
                }
            })
            .collect();
        self.pipeline.process(records, self.now)
    }

    /// Processes records built by the caller (keys, headers, partitions).
    pub fn push_records(&mut self, records: Vec<SourceRecord>) -> Result<(), PipelineError> {
        self.pipeline.process(records, self.now)
    }

    /// Moves the system clock on by `by` and closes the windows now due.
    pub fn advance(&mut self, by: Duration) -> Result<(), PipelineError> {
        self.now = self.now.plus(i64::try_from(by.as_micros()).unwrap_or(i64::MAX));
        self.pipeline.advance(self.now)
    }

    /// Swaps the component at `path` into stage `kind` between batches.
    pub fn swap(&mut self, kind: StageKind, path: &std::path::Path, engine: &PluginEngine) -> Result<Swapped, SwapError> {
        self.pipeline.swap_stage(kind, path, engine)
    }

    /// Swaps every plugin stage to the component at `path` at once.
    pub fn swap_all(&mut self, path: &std::path::Path, engine: &PluginEngine) -> Result<Vec<Swapped>, SwapError> {
        self.pipeline.swap_all(path, engine)
    }

    /// Every window written so far.
    pub fn results(&self) -> Vec<WindowResult> {
        self.sink.results()
    }

    /// The windows written since the last call, as JSON.
    pub fn take_objects(&mut self) -> Vec<serde_json::Value> {
        let results = self.sink.results();
        let new = results[self.taken..].iter().map(|r| serde_json::from_str(&r.object).expect("the pipeline checks objects are JSON")).collect();
        self.taken = results.len();
        new
    }

    /// Every dead letter so far.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().expect("not poisoned").clone()
    }

    /// Counts so far.
    pub fn stats(&self) -> Stats {
        self.pipeline.stats()
    }

    /// The pipeline itself, e.g. for checkpoints or status.
    pub fn pipeline(&mut self) -> &mut Pipeline {
        &mut self.pipeline
    }

    /// Ends the input: closes every open window and writes it.
    pub fn finish(&mut self) -> Result<Stats, PipelineError> {
        self.pipeline.finish()
    }
}
