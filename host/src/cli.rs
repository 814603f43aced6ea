//! The `weir` command line.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::manifest::Manifest;
use crate::pipeline::{Pipeline, Stages};
use crate::plugin::PluginEngine;

/// weir: stream processing with WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
    /// Log filter, e.g. `info`, `debug`, `weir=debug` (also RUST_LOG).
    #[arg(long, global = true, default_value = "info")]
    pub log: String,
    /// Where compiled plugins are cached (default ~/.cache/weir/compiled;
    /// also WEIR_CACHE_DIR).
    #[arg(long, global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Compile plugins every time instead of using the cache.
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline until its input ends (Ctrl-C stops a stream).
    Run {
        /// The pipeline manifest (TOML).
        manifest: PathBuf,
    },
    /// Check a manifest and its plugins without running anything: fields,
    /// files, each component's exports, limits and config.
    Check {
        /// The pipeline manifest (TOML).
        manifest: PathBuf,
    },
}

/// Runs the command line; the process exit code follows the result.
pub fn main(cli: Cli) -> Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| cli.log.clone());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).with_context(|| format!("bad log filter `{filter}`"))?)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cache = if cli.no_cache { None } else { cli.cache_dir.clone().or_else(PluginEngine::default_cache_dir) };
    match cli.command {
        Command::Check { manifest } => check(&manifest, cache),
        Command::Run { manifest } => run(&manifest, cache),
    }
}

fn check(path: &Path, cache: Option<PathBuf>) -> Result<()> {
    let manifest = Manifest::load(path)?;
    let engine = PluginEngine::new(cache)?;
    let stages = Stages::load(&manifest, &engine)?;
    println!("{}: ok ({})", path.display(), manifest.name);
    for stage in [&stages.deserialize, &stages.key, &stages.fold, &stages.format] {
        let version = stage.state_version().map(|v| format!(", state version {v}")).unwrap_or_default();
        println!("  {:<11} {} (sha256 {}{version})", stage.kind().name(), stage.path().display(), &stage.hash()[..12]);
    }
    Ok(())
}

fn run(path: &Path, cache: Option<PathBuf>) -> Result<()> {
    let manifest = Manifest::load(path)?;
    let engine = PluginEngine::new(cache)?;
    let started = std::time::Instant::now();
    let mut pipeline = Pipeline::load(&manifest, &engine)?;
    let source = crate::source::open(&manifest.source)?;
    let stats = pipeline.run_source(source)?;
    let elapsed = started.elapsed();
    tracing::info!(
        "{}: {} records, {} events, {} windows written, {} late, {} failed, in {:.2?}",
        manifest.name, stats.records, stats.events, stats.windows, stats.late, stats.failed, elapsed
    );
    if stats.late + stats.failed > 0 {
        let target = match &manifest.dead_letter {
            crate::manifest::DeadLetterSpec::Log => "the log above".to_owned(),
            crate::manifest::DeadLetterSpec::File(p) => p.display().to_string(),
        };
        tracing::warn!("{} dead letters: see {target}", stats.late + stats.failed);
    }
    Ok(())
}
