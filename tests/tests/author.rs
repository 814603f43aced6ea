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
    let made = Command::new(weir_binary()).args(["new", "pipeline", "my-plugin", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let root = dir.path().join("my-plugin");
    for file in ["Cargo.toml", "src/lib.rs", "cases.toml", "README.md"] {
        assert!(root.join(file).is_file(), "weir new made no {file}");
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
