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
        let engine = Engine::new(&config).map_err(PluginError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(PluginError::Engine)?;
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
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read { path: path.to_owned(), source })?;
        let hash = hex::encode(Sha256::digest(&bytes));
        let cached = self.cache_path(&hash);
        if let Some(cached) = &cached
            && cached.is_file()
        {
            // SAFETY: the file was written by `precompile_component` of an
            // engine with the same compatibility hash (it is in the name),
            // in a cache folder this user owns.
            if let Ok(component) = unsafe { Component::deserialize_file(&self.engine, cached) } {
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
        if let Some(cached) = cached {
            let write = std::fs::create_dir_all(cached.parent().unwrap_or(Path::new(".")))
                .and_then(|_| std::fs::write(cached.with_extension("tmp"), &compiled))
                .and_then(|_| std::fs::rename(cached.with_extension("tmp"), &cached));
            if let Err(err) = write {
                tracing::debug!("cannot cache compiled {}: {err}", path.display());
            }
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

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

// A component's preamble is `\0asm` followed by a layer of 1 (a core module
// has layer 0); checking it gives a clearer error than the compiler's.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && &bytes[0..4] == b"\0asm" && bytes[6..8] == [1, 0]
}
