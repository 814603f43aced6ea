use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::InstancePre;
use wasmtime::{Engine, Store, Trap};

use super::bindings::{deserialize, fold, format, key};
use super::engine::EPOCH_TICK;
use super::host::HostState;
use super::{CallError, ClosedWindow, Events, FoldGroup, Folded, Formatted, Keys, Packed, PluginEngine, PluginError, SourceBatch};
use crate::manifest::{Limits, StageKind};

/// Where a stage's export lives in the component, found once per component.
#[derive(Clone)]
enum Indices {
    Deserialize(deserialize::GuestIndices),
    Key(key::GuestIndices),
    Fold(fold::GuestIndices),
    Format(format::GuestIndices),
}

enum Guest {
    Deserialize(deserialize::Guest),
    Key(key::Guest),
    Fold(fold::Guest),
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
    state_version: Option<u32>,
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
        let pre = engine.linker().instantiate_pre(&component).map_err(|err| wrong_world(format!("{err:#}")))?;
        let missing = |err: wasmtime::Error| wrong_world(format!("it does not export weir:stream/{kind}@0.1.0 ({err:#})"));
        let indices = match kind {
            StageKind::Deserialize => Indices::Deserialize(deserialize::GuestIndices::new(&pre).map_err(missing)?),
            StageKind::Key => Indices::Key(key::GuestIndices::new(&pre).map_err(missing)?),
            StageKind::Fold => Indices::Fold(fold::GuestIndices::new(&pre).map_err(missing)?),
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
            state_version: None,
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
            Indices::Fold(i) => i.load(&mut store, &instance).map(Guest::Fold),
            Indices::Format(i) => i.load(&mut store, &instance).map(Guest::Format),
        }
        .map_err(|err| failed(format!("{err:#}")))?;
        store.set_epoch_deadline(deadline_ticks(self.limits.call_timeout));
        let configured = match &guest {
            Guest::Deserialize(g) => g.call_configure(&mut store, &self.config),
            Guest::Key(g) => g.call_configure(&mut store, &self.config),
            Guest::Fold(g) => g.call_configure(&mut store, &self.config),
            Guest::Format(g) => g.call_configure(&mut store, &self.config),
        }
        .map_err(|err| failed(describe(kind, &err, &self.limits, &store.data().stderr.take()).to_string()))?;
        if let Err(message) = configured {
            return Err(PluginError::ConfigRejected { path: self.path.clone(), stage: kind, message });
        }
        if let Guest::Fold(g) = &guest {
            store.set_epoch_deadline(deadline_ticks(self.limits.call_timeout));
            let version =
                g.call_state_version(&mut store).map_err(|err| failed(describe(kind, &err, &self.limits, &store.data().stderr.take()).to_string()))?;
            self.state_version = Some(version);
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

    /// The accumulator version a fold plugin declares.
    pub fn state_version(&self) -> Option<u32> {
        self.state_version
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
    pub fn deserialize(&mut self, batch: SourceBatch) -> Result<Events, CallError> {
        let records = batch.timestamps.len();
        let input: deserialize::SourceBatch = batch.into();
        let events: Events = self
            .call(|guest, store| match guest {
                Guest::Deserialize(g) => g.call_deserialize(store, &input),
                _ => unreachable!("indices match the kind"),
            })?
            .into();
        let n = events.payloads.len();
        if !events.payloads.is_well_formed() || events.times.len() != n || events.origins.len() != n {
            return Err(self.contract(format!("{n} payloads but {} times and {} origins", events.times.len(), events.origins.len())));
        }
        if events.origins.iter().any(|&o| o as usize >= records) || events.failures.iter().any(|f| f.index as usize >= records) {
            return Err(self.contract(format!("an origin or failure index is past the {records} records of the batch")));
        }
        Ok(events)
    }

    /// Keys a batch of events. The events are lent to the call and handed
    /// back, not copied.
    pub fn key(&mut self, events: Packed) -> (Packed, Result<Keys, CallError>) {
        let count = events.len();
        let input: super::bindings::types::Packed = events.into();
        let result = self.call(|guest, store| match guest {
            Guest::Key(g) => g.call_key(store, &input),
            _ => unreachable!("indices match the kind"),
        });
        let events = input.into();
        let keys: Keys = match result {
            Ok(keys) => keys.into(),
            Err(err) => return (events, Err(err)),
        };
        if keys.keys.len() != count || !keys.keys.is_well_formed() {
            return (events, Err(self.contract(format!("{} keys for {count} events", keys.keys.len()))));
        }
        if keys.failures.iter().any(|f| f.index as usize >= count) {
            return (events, Err(self.contract("a failure index is past the end of the batch".to_owned())));
        }
        (events, Ok(keys))
    }

    /// Folds groups of events into their accumulators. The groups and
    /// events are lent to the call and handed back, not copied, so a failed
    /// call can be retried in parts.
    pub fn fold(&mut self, groups: Vec<FoldGroup>, events: Packed) -> (Vec<FoldGroup>, Packed, Result<Folded, CallError>) {
        let group_count = groups.len();
        let event_count = events.len();
        let input = fold::FoldBatch { groups: groups.into_iter().map(Into::into).collect(), events: events.into() };
        let result = self.call(|guest, store| match guest {
            Guest::Fold(g) => g.call_fold(store, &input),
            _ => unreachable!("indices match the kind"),
        });
        let groups = input.groups.into_iter().map(|g| FoldGroup { acc: g.acc, end: g.end }).collect();
        let events = input.events.into();
        let folded: Folded = match result {
            Ok(folded) => folded.into(),
            Err(err) => return (groups, events, Err(err)),
        };
        if folded.accs.len() != group_count {
            return (groups, events, Err(self.contract(format!("{} accumulators for {group_count} groups", folded.accs.len()))));
        }
        if !folded.accs.is_well_formed() {
            return (groups, events, Err(self.contract("accumulator ends run past their data".to_owned())));
        }
        if folded.failures.iter().any(|f| f.index as usize >= event_count) {
            return (groups, events, Err(self.contract("a failure index is past the end of the batch".to_owned())));
        }
        (groups, events, Ok(folded))
    }

    /// Asks a fold plugin to rewrite accumulators written under state
    /// version `from_version` into its own encoding. `Ok(Err(reason))` is
    /// the plugin's refusal.
    pub fn migrate(&mut self, from_version: u32, accs: Packed) -> Result<Result<Packed, String>, CallError> {
        let count = accs.len();
        let input: super::bindings::types::Packed = accs.into();
        let result = self.call(|guest, store| match guest {
            Guest::Fold(g) => g.call_migrate(store, from_version, &input),
            _ => unreachable!("indices match the kind"),
        })?;
        match result {
            Ok(migrated) => {
                let migrated: Packed = migrated.into();
                if migrated.len() != count || !migrated.is_well_formed() {
                    return Err(self.contract(format!("{} accumulators migrated from {count}", migrated.len())));
                }
                Ok(Ok(migrated))
            }
            Err(reason) => Ok(Err(reason)),
        }
    }

    /// Formats closed windows.
    pub fn format(&mut self, windows: Vec<ClosedWindow>) -> Result<Formatted, CallError> {
        let count = windows.len();
        let input: Vec<format::Window> = windows.into_iter().map(Into::into).collect();
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
