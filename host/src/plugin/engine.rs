use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use super::PluginError;
use super::host::HostState;

/// How often the epoch advances; a call's time limit is counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The one wasmtime engine of a process, its linker, and the thread that
/// advances the epoch so that plugin calls can time out.
pub struct PluginEngine {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: Option<PathBuf>,
    stop_ticker: Arc<AtomicBool>,
}

impl PluginEngine {
    /// An engine with epoch interruption, a linker that offers the `log`
    /// import and WASI with nothing granted, and compiled code cached in
    /// `cache_dir` when given.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.wasm_component_model(true);
        // For profiling with `perf`: plugin code's symbols in /tmp/perf-PID.map.
        if std::env::var_os("WEIR_PERF_MAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(PluginError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(PluginError::Engine)?;
        deadline_clock(&mut linker).map_err(PluginError::Engine)?;
        super::bindings::log::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(&mut linker, |s| s).map_err(PluginError::Engine)?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.weak();
        let stop = stop_ticker.clone();
        thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    thread::sleep(EPOCH_TICK);
                    match ticker_engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|err| PluginError::Engine(err.into()))?;
        Ok(PluginEngine { engine, linker, cache_dir, stop_ticker })
    }

    /// The default place for compiled code: `$WEIR_CACHE_DIR`, else
    /// `~/.cache/weir/compiled`.
    pub fn default_cache_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("WEIR_CACHE_DIR") {
            return Some(PathBuf::from(dir));
        }
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/weir/compiled"))
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    pub(crate) fn linker(&self) -> &Linker<HostState> {
        &self.linker
    }

    /// Compiles a component, or loads its compiled code from the cache.
    /// Returns it with the SHA-256 of the file.
    pub fn load(&self, path: &Path) -> Result<(Component, String), PluginError> {
        let bytes = read_component(path)?;
        let hash = hex::encode(Sha256::digest(&bytes));
        let cached = self.cache_path(&hash);
        if let Some(cached) = &cached
            && let Some(compiled) = trusted_cache_file(cached)
        {
            // SAFETY: the bytes were written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the name),
            // into a folder and file only this user can write, and they
            // match the digest written beside them.
            if let Ok(component) = unsafe { Component::deserialize(&self.engine, &compiled) } {
                return Ok((component, hash));
            }
        }
        let compile_err = |source| PluginError::Compile { path: path.to_owned(), source };
        if !wasmparser_is_component(&bytes) {
            return Err(PluginError::NotAComponent { path: path.to_owned() });
        }
        let compiled = self.engine.precompile_component(&bytes).map_err(compile_err)?;
        // SAFETY: these bytes were produced just above by this engine.
        let component = unsafe { Component::deserialize(&self.engine, &compiled) }.map_err(compile_err)?;
        if let Some(cached) = cached
            && let Err(err) = write_cache_file(&cached, &compiled)
        {
            tracing::debug!("cannot cache compiled {}: {err}", path.display());
        }
        Ok((component, hash))
    }

    fn cache_path(&self, hash: &str) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        let mut hasher = DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut hasher);
        Some(dir.join(format!("{hash}-{:016x}.cwasm", hasher.finish())))
    }
}

/// The WASI clock's waits (`subscribe-duration`, `subscribe-instant`,
/// which back `sleep` and timed `poll`) end at the current call's
/// deadline: epoch interruption cannot stop a host call, so a plugin that
/// sleeps wakes at its deadline and the epoch check right after traps it.
fn deadline_clock(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use wasmtime::component::Resource;
    use wasmtime_wasi::clocks::WasiClocksView;
    use wasmtime_wasi::p2::DynPollable;
    use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host;

    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap("subscribe-duration", |mut store: wasmtime::StoreContextMut<'_, HostState>, (nanos,): (u64,)| {
        let capped = store.data_mut().capped_wait(Duration::from_nanos(nanos));
        doom_now(&mut store);
        let pollable: Resource<DynPollable> = store.data_mut().clocks().subscribe_duration(capped.as_nanos() as u64)?;
        Ok((pollable,))
    })?;
    clock.func_wrap("subscribe-instant", |mut store: wasmtime::StoreContextMut<'_, HostState>, (when,): (u64,)| {
        let now = store.data_mut().clocks().now()?;
        let capped = store.data_mut().capped_wait(Duration::from_nanos(when.saturating_sub(now)));
        doom_now(&mut store);
        let pollable: Resource<DynPollable> = store.data_mut().clocks().subscribe_duration(capped.as_nanos() as u64)?;
        Ok((pollable,))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

// A doomed call traps at its next epoch check instead of waiting for the
// ticker to reach the deadline.
fn doom_now(store: &mut wasmtime::StoreContextMut<'_, HostState>) {
    if store.data().doomed {
        store.set_epoch_deadline(0);
    }
}

/// The interface name wasmtime-wasi links the monotonic clock under (its
/// WIT version; guests importing any 0.2.x are served by it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Largest component file read, in bytes.
const MAX_COMPONENT_BYTES: u64 = 512 << 20;

// Reads a component file: a regular file (not a FIFO, a device or a
// folder, which could block or never end), of a sane size.
fn read_component(path: &Path) -> Result<Vec<u8>, PluginError> {
    use std::io::Read;
    let err = |source| PluginError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    if meta.len() > MAX_COMPONENT_BYTES {
        return Err(err(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{} bytes, over the {MAX_COMPONENT_BYTES}-byte limit", meta.len()))));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_COMPONENT_BYTES + 1).read_to_end(&mut bytes).map_err(err)?;
    Ok(bytes)
}

// Compiled code is native code: it is loaded only from a folder and a file
// that this user owns and nobody else may write, and only when its bytes
// match the SHA-256 written beside it (a torn or altered file is
// recompiled, never run).
fn trusted_cache_file(path: &Path) -> Option<Vec<u8>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc_geteuid() };
        for p in [path.parent()?, path] {
            let meta = std::fs::symlink_metadata(p).ok()?;
            if meta.uid() != me || meta.mode() & 0o022 != 0 || meta.file_type().is_symlink() {
                tracing::debug!("not using cached code {}: not owned by this user, or writable by others", p.display());
                return None;
            }
        }
    }
    let bytes = std::fs::read(path).ok()?;
    let digest = std::fs::read_to_string(path.with_extension("sha256")).ok()?;
    (digest.trim() == hex::encode(Sha256::digest(&bytes))).then_some(bytes)
}

#[cfg(unix)]
unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn write_cache_file(path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    crate::file::write_atomic(&path.with_extension("sha256"), hex::encode(Sha256::digest(compiled)).as_bytes(), true)?;
    crate::file::write_atomic(path, compiled, true)
}

// A component's preamble is `\0asm` followed by a layer of 1 (a core module
// has layer 0); checking it gives a clearer error than the compiler's.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[0..4] == b"\0asm" && bytes[6..8] == [1, 0]
}
