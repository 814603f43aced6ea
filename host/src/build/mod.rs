//! `weir build`: a plugin source file to a WebAssembly component of
//! `weir:stream@0.2.0`, with the language's own componentizer from its
//! package registry, installed once under the tools cache. The binary
//! carries the WIT (and the Python SDK), so it works wherever it is copied.
//!
//! - `.py`: the Python SDK's decorated functions, with componentize-py
//!   ([`python`]).
//! - `.js` / `.mjs`: an ES module exporting the WIT interfaces, with
//!   componentize-js ([`javascript`]).

use std::path::{Path, PathBuf};

pub mod javascript;
pub mod python;

/// The contract every build targets.
const WIT: &str = include_str!("../../../wit/stream.wit");

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The input file does not exist (or is not a file).
    #[error("{}: no such file", .0.display())]
    NotFound(PathBuf),
    /// The input is not a file of a language weir builds.
    #[error("{}: expected a Python file (app.py, using the weir decorators) or a JavaScript module (app.js, exporting the WIT interfaces)", .0.display())]
    Unsupported(PathBuf),
    /// The language's runtime is not installed.
    #[error("`{tool}` was not found: weir build needs {need}")]
    Missing {
        /// The program looked for.
        tool: String,
        /// What to install.
        need: &'static str,
    },
    /// The componentizer could not be installed.
    #[error("could not install {package} into {}: {detail}", dir.display())]
    Install {
        /// The package, with its version.
        package: &'static str,
        /// Where it was being installed.
        dir: PathBuf,
        /// What the installer said.
        detail: String,
    },
    /// A JavaScript module exports no set of stages a world of the
    /// contract has.
    #[error("{}: {detail}", path.display())]
    World {
        /// The module.
        path: PathBuf,
        /// What it exports and what a world needs.
        detail: String,
    },
    /// The componentizer refused the plugin.
    #[error("{tool} could not build {}:\n{detail}", path.display())]
    Componentize {
        /// componentize-py or componentize-js.
        tool: &'static str,
        /// The plugin.
        path: PathBuf,
        /// Its output.
        detail: String,
    },
    /// File trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where tools are cached: `$WEIR_TOOLS_DIR`, else `~/.cache/weir/tools`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/weir/tools")
}

/// Builds `app` into the component `out`, by its extension. Returns `out`
/// made absolute.
pub fn build(app: &Path, out: &Path) -> Result<PathBuf, BuildError> {
    if !app.is_file() {
        return Err(BuildError::NotFound(app.to_owned()));
    }
    let out = if out.is_absolute() { out.to_owned() } else { std::env::current_dir()?.join(out) };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match app.extension().and_then(|e| e.to_str()) {
        Some("py") => python::build(app, &out)?,
        Some("js" | "mjs") => javascript::build(app, &out)?,
        _ => return Err(BuildError::Unsupported(app.to_owned())),
    }
    Ok(out)
}

/// Runs an installer step, its stderr in the error.
fn install_step(cmd: &mut std::process::Command, package: &'static str, dir: &Path) -> Result<(), BuildError> {
    let out = cmd.output().map_err(|e| BuildError::Install { package, dir: dir.to_owned(), detail: e.to_string() })?;
    if out.status.success() {
        return Ok(());
    }
    let detail = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Err(BuildError::Install { package, dir: dir.to_owned(), detail: detail.trim().to_owned() })
}
