use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store, Trap};

use super::bindings::{deserialize, fold, format, key, merge};
use super::engine::EPOCH_TICK;
use super::host::HostState;
use super::batch::{lift_decoded, lower_events};
use super::{CallError, ClosedWindow, Decoded, FoldGroup, Folded, Formatted, Keys, PluginEngine, PluginError, SourceBatch};
use crate::event::{Events, Identity, Schema};
use crate::manifest::{Limits, StageKind};

/// The contract version this host speaks.
pub const CONTRACT: &str = "weir:stream@0.2.0";

/// Where a stage's export lives in the component, found once per component.
#[derive(Clone)]
enum Indices {
    Deserialize(deserialize::GuestIndices),
    Key(key::GuestIndices),
    /// The fold export, and the merge export when the component has one.
    Fold(fold::GuestIndices, Option<merge::GuestIndices>),
    Format(format::GuestIndices),
}

enum Guest {
    Deserialize(deserialize::Guest),
    Key(key::Guest),
    Fold(fold::Guest, Option<merge::Guest>),
    Format(format::Guest),
}

struct Live {
    store: Store<HostState>,
    guest: Guest,
}

/// One stage's component: pre-instantiated once, instantiated in its own
/// store, configured, and called in batches. A trap or timeout poisons the
/// instance; the next call starts a fresh one from the same pre-instance.
pub struct StagePlugin {
    kind: StageKind,
    path: PathBuf,
    hash: String,
    engine: Engine,
    pre: InstancePre<HostState>,
    indices: Indices,
    config: String,
    limits: Limits,
    live: Option<Live>,
    writes: Option<Schema>,
    reads: Option<Schema>,
    accumulator: Option<Identity>,
    loaded_at: std::time::SystemTime,
}

impl StagePlugin {
    /// Loads `path` for stage `kind`: compiles it (or loads cached code),
    /// checks it exports the stage's interface, instantiates it under
    /// `limits` and hands it `config`. Any failure is a [`PluginError`]
    /// naming the file and stage.
    pub fn load(engine: &PluginEngine, kind: StageKind, path: &Path, config: &str, limits: Limits) -> Result<Self, PluginError> {
        let (component, hash) = engine.load(path)?;
        let wrong_world = |detail: String| PluginError::WrongWorld { path: path.to_owned(), stage: kind, detail };
        if let Some(old) = older_contract(engine.engine(), &component) {
            return Err(PluginError::OldContract { path: path.to_owned(), found: old });
        }
        let pre = engine.linker().instantiate_pre(&component).map_err(|err| wrong_world(format!("{err:#}")))?;
        let missing = |err: wasmtime::Error| wrong_world(format!("it does not export weir:stream/{kind}@0.2.0 ({err:#})"));
        let indices = match kind {
            StageKind::Deserialize => Indices::Deserialize(deserialize::GuestIndices::new(&pre).map_err(missing)?),
            StageKind::Key => Indices::Key(key::GuestIndices::new(&pre).map_err(missing)?),
            StageKind::Fold => Indices::Fold(fold::GuestIndices::new(&pre).map_err(missing)?, merge::GuestIndices::new(&pre).ok()),
            StageKind::Format => Indices::Format(format::GuestIndices::new(&pre).map_err(missing)?),
        };
        let mut plugin = StagePlugin {
            kind,
            path: path.to_owned(),
            hash,
            engine: engine.engine().clone(),
            pre,
            indices,
            config: config.to_owned(),
            limits,
            live: None,
            writes: None,
            reads: None,
            accumulator: None,
            loaded_at: std::time::SystemTime::now(),
        };
        plugin.live = Some(plugin.start()?);
        Ok(plugin)
    }

    fn start(&mut self) -> Result<Live, PluginError> {
        let kind = self.kind;
        let failed = |detail: String| PluginError::Instantiate { path: self.path.clone(), stage: kind, detail };
        let mut store = Store::new(&self.engine, HostState::new(Arc::from(kind.name()), self.limits.memory));
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(self.limits.call_timeout));
        // Instantiation, configure and state-version share one deadline.
        store.data_mut().deadline = Some(Instant::now() + self.limits.call_timeout);
        let instance = self.pre.instantiate(&mut store).map_err(|err| failed(describe(kind, &err, &self.limits, &store.data().stderr.take()).to_string()))?;
        let guest = match &self.indices {
            Indices::Deserialize(i) => i.load(&mut store, &instance).map(Guest::Deserialize),
            Indices::Key(i) => i.load(&mut store, &instance).map(Guest::Key),
            Indices::Fold(i, m) => i.load(&mut store, &instance).and_then(|fold| {
                let merge = m.as_ref().map(|m| m.load(&mut store, &instance)).transpose()?;
                Ok(Guest::Fold(fold, merge))
            }),
            Indices::Format(i) => i.load(&mut store, &instance).map(Guest::Format),
        }
        .map_err(|err| failed(format!("{err:#}")))?;
        store.set_epoch_deadline(deadline_ticks(self.limits.call_timeout));
        let configured = match &guest {
            Guest::Deserialize(g) => g.call_configure(&mut store, &self.config),
            Guest::Key(g) => g.call_configure(&mut store, &self.config),
            Guest::Fold(g, _) => g.call_configure(&mut store, &self.config),
            Guest::Format(g) => g.call_configure(&mut store, &self.config),
        }
        .map_err(|err| failed(describe(kind, &err, &self.limits, &store.data().stderr.take()).to_string()))?;
        if let Err(message) = configured {
            return Err(PluginError::ConfigRejected { path: self.path.clone(), stage: kind, message });
        }
        // What it reads, writes and keeps: asked once, after its config.
        store.set_epoch_deadline(deadline_ticks(self.limits.call_timeout));
        let describe_failed = |err: wasmtime::Error, store: &Store<HostState>| failed(describe(kind, &err, &self.limits, &store.data().stderr.take()).to_string());
        match &guest {
            Guest::Deserialize(g) => self.writes = Some(g.call_writes(&mut store).map_err(|e| describe_failed(e, &store))?.into()),
            Guest::Key(g) => self.reads = Some(g.call_reads(&mut store).map_err(|e| describe_failed(e, &store))?.into()),
            Guest::Fold(g, _) => {
                self.reads = Some(g.call_reads(&mut store).map_err(|e| describe_failed(e, &store))?.into());
                self.accumulator = Some(g.call_accumulator(&mut store).map_err(|e| describe_failed(e, &store))?.into());
            }
            Guest::Format(g) => self.accumulator = Some(g.call_accumulator(&mut store).map_err(|e| describe_failed(e, &store))?.into()),
        }
        Ok(Live { store, guest })
    }

    /// The stage this component serves.
    pub fn kind(&self) -> StageKind {
        self.kind
    }

    /// The component file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 of the component file, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// When it was loaded.
    pub fn loaded_at(&self) -> std::time::SystemTime {
        self.loaded_at
    }

    /// The config the stage was given (JSON).
    pub fn config(&self) -> &str {
        &self.config
    }

    /// The limits it runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The fields a deserialize plugin writes.
    pub fn writes(&self) -> Option<&Schema> {
        self.writes.as_ref()
    }

    /// The fields a key or fold plugin reads.
    pub fn reads(&self) -> Option<&Schema> {
        self.reads.as_ref()
    }

    /// The accumulator a fold plugin writes or a format plugin reads.
    pub fn accumulator(&self) -> Option<&Identity> {
        self.accumulator.as_ref()
    }

    /// `stage (path)`, for messages.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.kind, self.path.display())
    }

    // Runs `call` on a live instance, starting one first if the last call
    // poisoned it. Any trap poisons this one.
    fn call<R>(&mut self, call: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<R>) -> Result<R, CallError> {
        if self.live.is_none() {
            let live = self.start().map_err(|err| CallError::Restart { stage: self.kind, detail: err.to_string() })?;
            self.live = Some(live);
        }
        let live = self.live.as_mut().expect("started above");
        live.store.set_epoch_deadline(deadline_ticks(self.limits.call_timeout));
        let started = Instant::now();
        live.store.data_mut().deadline = Some(started + self.limits.call_timeout);
        live.store.data_mut().doomed = false;
        let mut outcome = call(&live.guest, &mut live.store);
        crate::metrics::global().stage_calls[self.kind as usize].observe(started.elapsed());
        live.store.data_mut().report_dropped_logs();
        // It asked to wait past its deadline: a timeout, even if it got back
        // before an epoch check could stop it.
        if live.store.data().doomed && outcome.is_ok() {
            outcome = Err(wasmtime::Error::new(Trap::Interrupt));
        }
        match outcome {
            Ok(result) => {
                // What the plugin printed (its own debugging) goes to the
                // host's debug log, tagged with the stage.
                let printed = live.store.data().stderr.take();
                for line in printed.lines().filter(|l| !l.trim().is_empty()).take(super::host::LOG_LINES_PER_SECOND as usize) {
                    tracing::debug!(target: "weir::plugin", stage = %self.kind, "stderr: {}", super::host::bounded(line, super::host::LOG_LINE_MAX));
                }
                Ok(result)
            }
            Err(err) => {
                let stderr = live.store.data().stderr.take();
                self.live = None;
                let error = describe(self.kind, &err, &self.limits, &stderr);
                tracing::warn!(stage = %self.kind, plugin = %self.path.display(), elapsed = ?started.elapsed(), "{error}; the plugin restarts and the batch is retried in parts");
                Err(error)
            }
        }
    }

    fn contract(&self, detail: String) -> CallError {
        CallError::Contract { stage: self.kind, detail }
    }

    /// Deserializes a batch of raw records.
    pub fn deserialize(&mut self, batch: SourceBatch) -> Result<Decoded, CallError> {
        let records = batch.timestamps.len();
        let input: deserialize::SourceBatch = batch.into();
        let raw = self.call(|guest, store| match guest {
            Guest::Deserialize(g) => g.call_deserialize(store, &input),
            _ => unreachable!("indices match the kind"),
        })?;
        let decoded = lift_decoded(raw).map_err(|detail| self.contract(detail))?;
        let n = decoded.events.count as usize;
        if decoded.origins.len() != n {
            return Err(self.contract(format!("{n} events but {} origins", decoded.origins.len())));
        }
        if decoded.origins.iter().any(|&o| o as usize >= records) || decoded.failures.iter().any(|f| f.index as usize >= records) {
            return Err(self.contract(format!("an origin or failure index is past the {records} records of the batch")));
        }
        if let Some(writes) = &self.writes {
            for field in &writes.fields {
                let found = decoded.events.field(&field.name);
                if found.is_none_or(|f| f.values.field_type() != field.ty) && n > 0 {
                    return Err(self.contract(format!("it declared `{field}` but returned {}", found.map_or("no such field".to_owned(), |f| format!("a {} column", f.values.field_type())))));
                }
                if !field.optional && found.is_some_and(|f| !f.missing.is_empty()) {
                    return Err(self.contract(format!("it declared `{field}` required but left it missing")));
                }
            }
        }
        Ok(decoded)
    }

    /// Keys a batch of events.
    pub fn key(&mut self, events: &Events) -> Result<Keys, CallError> {
        let count = events.count as usize;
        let input = lower_events(events);
        let keys: Keys = self
            .call(|guest, store| match guest {
                Guest::Key(g) => g.call_key(store, &input),
                _ => unreachable!("indices match the kind"),
            })?
            .into();
        if keys.keys.len() != count {
            return Err(self.contract(format!("{} keys for {count} events", keys.keys.len())));
        }
        if keys.failures.iter().any(|f| f.index as usize >= count) {
            return Err(self.contract("a failure index is past the end of the batch".to_owned()));
        }
        Ok(keys)
    }

    /// Folds groups of events into their accumulators. The groups are lent
    /// to the call and handed back, not copied, so a failed call can be
    /// retried in parts.
    pub fn fold(&mut self, groups: Vec<FoldGroup>, events: &Events) -> (Vec<FoldGroup>, Result<Folded, CallError>) {
        let group_count = groups.len();
        let event_count = events.count as usize;
        let input = fold::FoldBatch { groups: groups.into_iter().map(Into::into).collect(), events: lower_events(events) };
        let result = self.call(|guest, store| match guest {
            Guest::Fold(g, _) => g.call_fold(store, &input),
            _ => unreachable!("indices match the kind"),
        });
        let groups = input.groups.into_iter().map(|g| FoldGroup { acc: g.acc, end: g.end }).collect();
        let folded: Folded = match result {
            Ok(folded) => folded.into(),
            Err(err) => return (groups, Err(err)),
        };
        if folded.accs.len() != group_count {
            return (groups, Err(self.contract(format!("{} accumulators for {group_count} groups", folded.accs.len()))));
        }
        if folded.failures.iter().any(|f| f.index as usize >= event_count) {
            return (groups, Err(self.contract("a failure index is past the end of the batch".to_owned())));
        }
        (groups, Ok(folded))
    }

    /// Asks a fold plugin to rewrite accumulators of identity `from` into
    /// its own. `Ok(Err(reason))` is the plugin's refusal.
    pub fn migrate(&mut self, from: &Identity, accs: Vec<Vec<u8>>) -> Result<Result<Vec<Vec<u8>>, String>, CallError> {
        let count = accs.len();
        let from = from.into();
        let result = self.call(|guest, store| match guest {
            Guest::Fold(g, _) => g.call_migrate(store, &from, &accs),
            _ => unreachable!("indices match the kind"),
        })?;
        match result {
            Ok(migrated) if migrated.len() != count => Err(self.contract(format!("{} accumulators migrated from {count}", migrated.len()))),
            Ok(migrated) => Ok(Ok(migrated)),
            Err(reason) => Ok(Err(reason)),
        }
    }

    /// Whether the component exports `merge` (session windows need it).
    pub fn merges(&self) -> bool {
        matches!(self.indices, Indices::Fold(_, Some(_)))
    }

    /// Merges the accumulator `from` into `into` (two session windows
    /// became one). `Ok(Err(reason))` is the plugin's refusal.
    pub fn merge(&mut self, into: &[u8], from: &[u8]) -> Result<Result<Vec<u8>, String>, CallError> {
        self.call(|guest, store| match guest {
            Guest::Fold(_, Some(m)) => m.call_merge(store, into, from),
            Guest::Fold(_, None) => Ok(Err("this fold component does not export weir:stream/merge".to_owned())),
            _ => unreachable!("indices match the kind"),
        })
    }

    /// Formats closed windows.
    pub fn format(&mut self, windows: &[ClosedWindow]) -> Result<Formatted, CallError> {
        let count = windows.len();
        let input: Vec<format::Window> = windows.iter().map(Into::into).collect();
        let formatted: Formatted = self
            .call(|guest, store| match guest {
                Guest::Format(g) => g.call_format(store, &input),
                _ => unreachable!("indices match the kind"),
            })?
            .into();
        if formatted.objects.len() != count {
            return Err(self.contract(format!("{} objects for {count} windows", formatted.objects.len())));
        }
        Ok(formatted)
    }
}

// The contract version a component of another weir:stream version targets.
fn older_contract(engine: &Engine, component: &wasmtime::component::Component) -> Option<String> {
    let ty = component.component_type();
    let names = ty.imports(engine).map(|(name, _)| name.to_owned()).chain(ty.exports(engine).map(|(name, _)| name.to_owned()));
    names.filter(|name| name.starts_with("weir:stream/")).find_map(|name| {
        let version = name.rsplit_once('@').map(|(_, v)| v.to_owned())?;
        (version != "0.2.0").then(|| format!("weir:stream@{version}"))
    })
}

fn deadline_ticks(limit: Duration) -> u64 {
    (limit.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

fn describe(stage: StageKind, err: &wasmtime::Error, limits: &Limits, stderr: &str) -> CallError {
    if let Some(trap) = err.downcast_ref::<Trap>()
        && *trap == Trap::Interrupt
    {
        return CallError::Timeout { stage, limit: limits.call_timeout };
    }
    let text = format!("{err:#}");
    if text.contains("forcing trap when growing memory") || text.contains("memory limit") {
        return CallError::Memory { stage, limit: limits.memory };
    }
    // A Rust panic prints its message to stderr before it traps: that
    // message says more to the plugin's author than the wasm backtrace.
    if let Some(at) = stderr.rfind("panicked at ") {
        let message: Vec<&str> = stderr[at..].lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE")).collect();
        let mut message: String = message.join(" ").chars().take(1000).collect();
        // componentize-py prints a Python exception's traceback, then its
        // runtime panics: the exception (the traceback's last unindented
        // line) is what the author needs.
        let panic_line = stderr[..at].rfind('\n').map_or(0, |i| i + 1);
        if let Some(tb) = stderr[..panic_line].rfind("Traceback (most recent call last)") {
            let exception = stderr[tb..panic_line].lines().skip(1).filter(|l| !l.trim().is_empty() && !l.starts_with(' ')).last();
            if let Some(exception) = exception {
                message = format!("Python exception {}: {message}", exception.trim().chars().take(500).collect::<String>());
            }
        }
        let trap = err.downcast_ref::<Trap>().map_or_else(|| "trap".to_owned(), |t| t.to_string());
        return CallError::Trap { stage, detail: format!("{message} ({trap})") };
    }
    // One line for the dead letter: the trap's name, not the wasm backtrace.
    let detail = match err.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string().split_whitespace().collect::<Vec<_>>().join(" ").chars().take(500).collect(),
    };
    CallError::Trap { stage, detail }
}
