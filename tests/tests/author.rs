//! The plugin author's workflow as a user runs it: `weir new`, `cargo test`,
//! one build command, `weir test` against the generated cases.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use weir_tests::services::{wait, weir_binary};

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

#[test]
fn a_new_plugin_builds_tests_and_passes_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    // The binary copied away from the tree it was built in, as a user
    // installs it: the crate it makes must build on its own.
    let copied = dir.path().join("bin/weir");
    std::fs::create_dir_all(copied.parent().unwrap()).unwrap();
    std::fs::copy(weir_binary(), &copied).unwrap();
    let made = Command::new(&copied).args(["new", "pipeline", "my-plugin"]).current_dir(dir.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let root = dir.path().join("my-plugin");
    for file in ["Cargo.toml", "src/lib.rs", "cases.toml", "README.md", "vendor/weir-guest-sdk/Cargo.toml", "vendor/wit/stream.wit"] {
        assert!(root.join(file).is_file(), "weir new made no {file}");
    }
    let source_tree = weir_tests::root().display().to_string();
    for file in ["Cargo.toml", "vendor/weir-guest-sdk/Cargo.toml"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        assert!(!text.contains(&source_tree), "{file} names weir's source tree {source_tree}:\n{text}");
    }
    // A one-stage crate gets no cases: `weir test` runs whole pipelines.
    let fold = Command::new(weir_binary()).args(["new", "fold", "my-fold", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(fold.status.success(), "{}", String::from_utf8_lossy(&fold.stderr));
    assert!(dir.path().join("my-fold/src/lib.rs").is_file() && !dir.path().join("my-fold/cases.toml").exists());
    let lib = std::fs::read_to_string(dir.path().join("my-fold/src/lib.rs")).unwrap();
    assert!(lib.contains("export_plugin!(fold: Stage)"), "{lib}");
    // The same name again is refused rather than overwritten.
    let again = Command::new(weir_binary()).args(["new", "fold", "my-plugin", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("exists already"));

    let child =
        cargo().arg("test").arg("--quiet").current_dir(&root).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let tested = wait(child, Duration::from_secs(600));
    let out = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success(), "cargo test failed:\n{out}{}", String::from_utf8_lossy(&tested.stderr));
    assert!(out.contains("4 passed"), "the four example tests ran:\n{out}");

    let child = cargo()
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let built = wait(child, Duration::from_secs(600));
    assert!(built.status.success(), "the component build failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let component = target.join("wasm32-wasip2/release/my_plugin.wasm");
    assert!(component.is_file(), "no component at {}", component.display());

    let run = Command::new(weir_binary()).args(["--log", "error", "test"]).arg(&component).arg("--cases").arg(root.join("cases.toml")).output().unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success() && report.contains("3 cases passed, 0 failed"), "{report}{}", String::from_utf8_lossy(&run.stderr));

    // A case that disagrees fails with a diff.
    let cases = std::fs::read_to_string(root.join("cases.toml")).unwrap().replace("mean = 3.0", "mean = 4.0");
    std::fs::write(root.join("cases.toml"), cases).unwrap();
    let run = Command::new(weir_binary()).args(["--log", "error", "test"]).arg(&component).arg("--cases").arg(root.join("cases.toml")).output().unwrap();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(!run.status.success(), "{report}");
    assert!(report.contains("- {") && report.contains("\"mean\":4.0") && report.contains("+ {") && report.contains("\"mean\":3.0"), "{report}");
}

fn weir(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    let child = Command::new(weir_binary())
        .args(["--log", "error"])
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait(child, Duration::from_secs(600))
}

#[test]
fn a_new_python_plugin_tests_as_plain_python_builds_and_passes_its_cases() {
    let dir = tempfile::tempdir().unwrap();
    let made = weir(dir.path(), &["new", "pipeline", "my-py", "--lang", "python"]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let root = dir.path().join("my-py");
    for file in ["app.py", "test_app.py", "weir/__init__.py", "cases.toml", "README.md"] {
        assert!(root.join(file).is_file(), "weir new --lang python made no {file}");
    }
    // The author's tests: plain Python, no wasm, nothing installed.
    let tested = Command::new("python3").arg("test_app.py").env("PYTHONDONTWRITEBYTECODE", "1").current_dir(&root).output().unwrap();
    let out = String::from_utf8_lossy(&tested.stdout);
    assert!(tested.status.success() && out.contains("3 passed"), "{out}{}", String::from_utf8_lossy(&tested.stderr));

    let built = weir(&root, &["build", "app.py"]);
    assert!(built.status.success(), "weir build failed:\n{}", String::from_utf8_lossy(&built.stderr));
    let run = weir(&root, &["test", "app.wasm", "--cases", "cases.toml"]);
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success() && report.contains("3 cases passed, 0 failed"), "{report}{}", String::from_utf8_lossy(&run.stderr));
    let cases = std::fs::read_to_string(root.join("cases.toml")).unwrap().replace("mean = 3.0", "mean = 4.0");
    std::fs::write(root.join("cases.toml"), cases).unwrap();
    let run = weir(&root, &["test", "app.wasm", "--cases", "cases.toml"]);
    assert!(!run.status.success(), "a wrong case passed: {}", String::from_utf8_lossy(&run.stdout));

    // A one-stage project serves that stage only.
    let fold = weir(dir.path(), &["new", "fold", "py-fold", "--lang", "python"]);
    assert!(fold.status.success(), "{}", String::from_utf8_lossy(&fold.stderr));
    let app = std::fs::read_to_string(dir.path().join("py-fold/app.py")).unwrap();
    assert!(app.contains("@weir.fold(") && !app.contains("@weir.format("), "{app}");
    assert!(!dir.path().join("py-fold/cases.toml").exists());
}

#[test]
fn weir_build_refuses_what_it_cannot_build_saying_why() {
    let dir = tempfile::tempdir().unwrap();
    let out = weir(dir.path(), &["build", "missing.py"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("missing.py: no such file"), "{err}");
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let out = weir(dir.path(), &["build", "notes.txt"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("notes.txt: expected a Python file"), "{err}");
    // A JavaScript module whose exports match no world of the contract.
    std::fs::write(dir.path().join("app.js"), "export const deserialize = {};\nexport const fold = {};\n").unwrap();
    let out = weir(dir.path(), &["build", "app.js"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("exports the stages [deserialize, fold]") && err.contains("[fold, format] (aggregator)"), "{err}");
    // Without Node.js on the PATH, the message says what to install.
    std::fs::write(dir.path().join("app.js"), "export const fold = {};\n").unwrap();
    let out = Command::new(weir_binary()).args(["build", "app.js"]).current_dir(dir.path()).env("PATH", dir.path()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("`node` was not found") && err.contains("Node.js"), "{err}");
}
