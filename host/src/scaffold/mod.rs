//! `weir new`: a ready plugin project in Rust ([`rust`]: a crate) or Python
//! ([`python`]: an `app.py` with the SDK beside it), with a working example,
//! its unit tests, a README and, when it serves a whole pipeline, `weir test`
//! cases.

use std::path::{Path, PathBuf};

pub mod python;
pub mod rust;

pub use rust::VENDORED_SDK;

/// What `weir new` can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A whole pipeline: all four stages in Rust; in Python a fold and a
    /// format after the host's JSON decoding and keying (the usual start).
    Pipeline,
    /// Raw records to events.
    Deserialize,
    /// Events to keys.
    Key,
    /// Events into window accumulators.
    Fold,
    /// Closed windows to JSON objects.
    Format,
}

/// The plugin's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate on weir's guest SDK.
    #[default]
    Rust,
    /// A Python file on weir's Python SDK, built by `weir build`.
    Python,
}

/// Why the project could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a project name.
    #[error("`{0}` is not a plugin name: use letters, digits, `-` and `_`, starting with a letter")]
    Name(String),
    /// The folder exists already.
    #[error("{} exists already; pick another name or folder", .0.display())]
    Exists(PathBuf),
    /// The guest SDK is not where the crate would point.
    #[error("the guest SDK is not at {} (pass --sdk <path to weir's guest-sdk folder>)", .0.display())]
    Sdk(PathBuf),
    /// Writing failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Writes the project `name` for `kind` in `lang` into `dir/name`; returns
/// its folder. `sdk`: a Rust guest SDK folder to depend on by path; `None`
/// writes the SDK this binary carries into the crate (Python projects
/// always get the SDK written beside them).
pub fn create(lang: Lang, kind: Kind, name: &str, dir: &Path, sdk: Option<&Path>) -> Result<PathBuf, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(ScaffoldError::Name(name.to_owned()));
    }
    let root = dir.join(name);
    if root.exists() {
        return Err(ScaffoldError::Exists(root));
    }
    let files = match lang {
        Lang::Rust => rust::files(kind, name, sdk)?,
        Lang::Python => python::files(kind, name),
    };
    for (file, text) in files {
        let path = root.join(file);
        let write = |path: &Path| -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("inside root"))?;
            std::fs::write(path, &text)
        };
        write(&path).map_err(|source| ScaffoldError::Write { path: path.clone(), source })?;
    }
    Ok(root)
}
