//! A Python plugin (functions using the `weir` decorators of
//! `sdk/python/weir`) to a component of world `pipeline`, with
//! componentize-py from PyPI installed once into `tools/pyenv`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BuildError, WIT, install_step};

/// The componentize-py release weir builds with.
pub const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// The Python SDK, as `weir new` and `weir build` write it out.
pub const SDK_INIT: &str = include_str!("../../../sdk/python/weir/__init__.py");
const SDK_COMPONENT: &str = include_str!("../../../sdk/python/weir/_component.py");

/// componentize-py, installed into `tools/pyenv` first when missing.
pub fn componentize_py(tools: &Path) -> Result<PathBuf, BuildError> {
    let venv = tools.join("pyenv");
    let exe = venv.join("bin/componentize-py");
    if exe.is_file() {
        return Ok(exe);
    }
    let python = std::env::var("WEIR_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    if Command::new(&python).arg("--version").output().is_err() {
        return Err(BuildError::Missing { tool: python, need: "Python 3.10 or newer (for example `apt-get install python3 python3-venv`)" });
    }
    eprintln!("weir: installing {COMPONENTIZE_PY} into {} (once)", venv.display());
    std::fs::create_dir_all(tools)?;
    install_step(Command::new(&python).args(["-m", "venv"]).arg(&venv), COMPONENTIZE_PY, &venv)?;
    install_step(Command::new(venv.join("bin/pip")).args(["install", "--quiet", COMPONENTIZE_PY]), COMPONENTIZE_PY, &venv)?;
    Ok(exe)
}

/// Builds `app` into the component `out` (an absolute path).
pub fn build(app: &Path, out: &Path) -> Result<(), BuildError> {
    let componentize = componentize_py(&super::tools_dir())?;
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
        .arg(out)
        .output()?;
    if !output.status.success() {
        let detail = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        return Err(BuildError::Componentize { tool: "componentize-py", path: app.to_owned(), detail: detail.trim().to_owned() });
    }
    Ok(())
}
