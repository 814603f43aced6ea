//! Hot swap: a loaded component put in place of its stage's one between
//! two batches, open accumulators migrated first when the new fold writes
//! another identity — all or nothing; a refusal leaves the old one running.

use super::{Pipeline, SwapError};
use crate::event::Identity;
use crate::manifest::StageKind;
use crate::plugin::{PluginEngine, StagePlugin};

/// A swap that took place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Swapped {
    /// The stage.
    pub stage: StageKind,
    /// SHA-256 of the component replaced.
    pub old_hash: String,
    /// SHA-256 of the component now running.
    pub new_hash: String,
}

impl Pipeline {
    /// Replaces the component of stage `kind` with the one at `path`, with
    /// the stage's config and limits: [`StagePlugin::load`] then
    /// [`Pipeline::install`].
    pub fn swap_stage(&mut self, kind: StageKind, path: &std::path::Path, engine: &PluginEngine) -> Result<Swapped, SwapError> {
        let Some(old) = self.stages.get(kind) else {
            let err = SwapError::Contract(vec![format!("the host does the {kind} stage ({}): there is no plugin to swap", self.stages.describe(kind))]);
            return Err(self.refused(kind, err));
        };
        match StagePlugin::load(engine, kind, path, old.config(), old.limits()) {
            Ok(new) => self.install(new),
            Err(err) => Err(self.refused(kind, SwapError::Invalid(err))),
        }
    }

    /// Replaces the component of every stage that runs a plugin with the
    /// one at `path` (each with its stage's config and limits), all between
    /// the same two batches: [`Pipeline::install_all`].
    pub fn swap_all(&mut self, path: &std::path::Path, engine: &PluginEngine) -> Result<Vec<Swapped>, SwapError> {
        let mut new = Vec::new();
        for kind in StageKind::ALL {
            let Some(old) = self.stages.get(kind) else { continue };
            match StagePlugin::load(engine, kind, path, old.config(), old.limits()) {
                Ok(plugin) => new.push(plugin),
                Err(err) => return Err(self.refused(kind, SwapError::Invalid(err))),
            }
        }
        self.install_all(new)
    }

    /// Puts a loaded, configured component in place of its stage's one.
    /// Called between batches (the pipeline is single-threaded), so no
    /// record is processed twice or lost, and open windows keep their
    /// accumulators. A fold plugin of another state version must migrate
    /// every open accumulator first; if it cannot, the swap is refused and
    /// the old plugin and its windows are untouched.
    pub fn install(&mut self, new: StagePlugin) -> Result<Swapped, SwapError> {
        let mut swapped = self.install_all(vec![new])?;
        Ok(swapped.remove(0))
    }

    /// Like [`Pipeline::install`] for several stages at once (one component
    /// serving several stages changed): all are replaced between the same
    /// two batches, or none is.
    pub fn install_all(&mut self, mut new: Vec<StagePlugin>) -> Result<Vec<Swapped>, SwapError> {
        if let Err(problems) = self.stages.check_replacing(&new.iter().collect::<Vec<_>>()) {
            let kind = new.first().map_or(StageKind::Fold, StagePlugin::kind);
            return Err(self.refused(kind, SwapError::Contract(problems)));
        }
        // Events placed before the swap are folded by the plugin that was
        // running when they came.
        if let Err(err) = self.fold_held() {
            let kind = new.first().map_or(StageKind::Fold, StagePlugin::kind);
            return Err(self.refused(kind, SwapError::Unavailable(format!("folding the events held before the swap failed: {err}"))));
        }
        for plugin in &mut new {
            let kind = plugin.kind();
            if kind != StageKind::Fold {
                continue;
            }
            let from = self.stages.accumulator().clone();
            let to = plugin.accumulator().cloned().expect("a fold plugin declares its accumulator");
            if from != to
                && let Err(err) = self.migrate_open_windows(plugin, &from, &to)
            {
                return Err(self.refused(kind, err));
            }
        }
        let mut swapped = Vec::with_capacity(new.len());
        let incoming: Vec<(StageKind, String, std::path::PathBuf)> = new.iter().map(|p| (p.kind(), p.hash().to_owned(), p.path().to_owned())).collect();
        let old = self.stages.replace(new);
        for ((kind, new_hash, path), old) in incoming.into_iter().zip(old) {
            let old_hash = old.hash().to_owned();
            self.counters[kind as usize].swaps += 1;
            crate::metrics::global().swaps.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(stage = %kind, plugin = %path.display(), "swapped {} -> {}", &old_hash[..12], &new_hash[..12]);
            swapped.push(Swapped { stage: kind, old_hash, new_hash });
        }
        Ok(swapped)
    }

    /// Counts a refused swap and says why in the log.
    pub fn refused(&mut self, kind: StageKind, err: SwapError) -> SwapError {
        let counters = &mut self.counters[kind as usize];
        counters.refused_swaps += 1;
        counters.last_refusal = Some(err.to_string());
        tracing::warn!(stage = %kind, "{err}; the running plugin stays");
        err
    }

    // Rewrites every open accumulator with `new`, all or nothing.
    pub(super) fn migrate_open_windows(&mut self, new: &mut StagePlugin, from: &Identity, to: &Identity) -> Result<(), SwapError> {
        let mut accs: Vec<&mut Vec<u8>> = self.partitions.values_mut().flat_map(|p| p.accs_mut()).collect();
        let old: Vec<Vec<u8>> = accs.iter().map(|a| a.to_vec()).collect();
        let count = accs.len();
        let migrated = match new.migrate(from, old) {
            Ok(Ok(migrated)) => migrated,
            Ok(Err(reason)) => return Err(SwapError::Migration { old: from.clone(), new: to.clone(), reason }),
            Err(err) => return Err(SwapError::Migration { old: from.clone(), new: to.clone(), reason: err.to_string() }),
        };
        for (acc, new) in accs.iter_mut().zip(migrated) {
            **acc = new;
        }
        tracing::info!("migrated {count} open accumulators from `{from}` to `{to}`");
        Ok(())
    }
}
