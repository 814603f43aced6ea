//! `weir build`: a Python plugin file to a WebAssembly component, with
//! componentize-py from PyPI (installed once into a cached virtualenv). The
//! binary carries the WIT and the Python SDK, so it works wherever it is
//! copied.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The componentize-py release weir builds with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

const WIT: &str = include_str!("../../wit/stream.wit");
const SDK_INIT: &str = include_str!("../../sdk/python/weir/__init__.py");
const SDK_COMPONENT: &str = include_str!("../../sdk/python/weir/_component.py");

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The input is not a Python file.
    #[error("{}: expected a Python file (app.py) whose functions use the weir decorators", .0.display())]
    NotPython(PathBuf),
    /// Python 3 is not installed.
    #[error("`{0}` was not found: weir build needs Python 3.10 or newer (for example `apt-get install python3 python3-venv`)")]
    NoPython(String),
    /// componentize-py could not be installed.
    #[error("could not install {COMPONENTIZE_PY} from PyPI into {}: {detail}", dir.display())]
    Install {
        /// The virtualenv.
        dir: PathBuf,
        /// What pip or venv said.
        detail: String,
    },
    /// componentize-py refused the plugin.
    #[error("componentize-py could not build {}:\n{detail}", path.display())]
    Componentize {
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

/// componentize-py, installed into `tools/pyenv` first when missing.
pub fn componentize_py(tools: &Path) -> Result<PathBuf, BuildError> {
    let venv = tools.join("pyenv");
    let exe = venv.join("bin/componentize-py");
    if exe.is_file() {
        return Ok(exe);
    }
    let python = std::env::var("WEIR_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if Command::new(&python).arg("--version").output().is_err() {
        return Err(BuildError::NoPython(python));
    }
    eprintln!("weir: installing {COMPONENTIZE_PY} into {} (once)", venv.display());
    std::fs::create_dir_all(tools)?;
    let run = |cmd: &mut Command| -> Result<(), BuildError> {
        let out = cmd.output().map_err(|e| BuildError::Install { dir: venv.clone(), detail: e.to_string() })?;
        if out.status.success() {
            return Ok(());
        }
        Err(BuildError::Install { dir: venv.clone(), detail: String::from_utf8_lossy(&out.stderr).trim().to_owned() })
    };
    run(Command::new(&python).args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(venv.join("bin/pip")).args(["install", "--quiet", COMPONENTIZE_PY]))?;
    Ok(exe)
}

/// Builds `app` (a Python file using the `weir` decorators) into the
/// component `out`. Returns `out`.
pub fn python(app: &Path, out: &Path) -> Result<PathBuf, BuildError> {
    if app.extension().is_none_or(|e| e != "py") || !app.is_file() {
        return Err(BuildError::NotPython(app.to_owned()));
    }
    let componentize = componentize_py(&tools_dir())?;
    let work = tempfile::tempdir()?;
    let root = work.path();
    std::fs::create_dir_all(root.join("wit"))?;
    std::fs::write(root.join("wit/stream.wit"), WIT)?;
    std::fs::create_dir_all(root.join("sdk/weir"))?;
    std::fs::write(root.join("sdk/weir/__init__.py"), SDK_INIT)?;
    std::fs::write(root.join("sdk/weir/_component.py"), SDK_COMPONENT)?;
    let module = app.file_stem().and_then(|s| s.to_str()).unwrap_or("app").to_owned();
    std::fs::write(root.join("weir_main.py"), format!("import {module}  # registers the stages\nfrom weir._component import Deserialize, Key, Fold, Format\n"))?;
    let app_dir = app.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let out_abs = if out.is_absolute() { out.to_owned() } else { std::env::current_dir()?.join(out) };
    if let Some(parent) = out_abs.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let output = Command::new(&componentize)
        .arg("-d")
        .arg(root.join("wit"))
        .args(["-w", "pipeline", "componentize", "weir_main", "-p"])
        .arg(root)
        .arg("-p")
        .arg(root.join("sdk"))
        .arg("-p")
        .arg(app_dir)
        .arg("-o")
        .arg(&out_abs)
        .output()?;
    if !output.status.success() {
        let detail = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        return Err(BuildError::Componentize { path: app.to_owned(), detail: detail.trim().to_owned() });
    }
    Ok(out_abs)
}
