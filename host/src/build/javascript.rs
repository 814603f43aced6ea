//! A JavaScript plugin (an ES module exporting the interfaces of
//! `weir:stream@0.2.0` as objects: `export const fold = { ... }`) to a
//! component, with componentize-js from npm installed once into
//! `tools/jsenv`. The world is chosen from what the module exports.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BuildError, WIT, install_step};

/// The componentize-js release weir builds with.
pub const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js@0.19.3";

/// The driver: componentize-js's API with the WIT, world and output given
/// as arguments. Features a plugin has no use for (HTTP, fetch events) are
/// left out, so the component imports only what the host offers.
const DRIVER: &str = r#"import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";
import { basename } from "node:path";
const [source, wit, world, out] = process.argv.slice(2);
const { component } = await componentize(await readFile(source, "utf8"), {
  sourceName: basename(source),
  witPath: wit,
  worldName: world,
  disableFeatures: ["http", "fetch-event"],
});
await writeFile(out, component);
"#;

/// The worlds of the contract, by the stages they export.
const WORLDS: [(&[&str], &str); 6] = [
    (&["deserialize", "key", "fold", "format"], "pipeline"),
    (&["fold", "format"], "aggregator"),
    (&["deserialize"], "deserializer"),
    (&["key"], "keyer"),
    (&["fold"], "folder"),
    (&["format"], "formatter"),
];

/// componentize-js, installed into `tools/jsenv` first when missing.
/// Returns the folder whose `node_modules` holds it.
pub fn componentize_js(tools: &Path) -> Result<PathBuf, BuildError> {
    let dir = tools.join("jsenv");
    let version = COMPONENTIZE_JS.rsplit_once('@').map_or("", |(_, v)| v);
    let installed = dir.join("node_modules/@bytecodealliance/componentize-js/package.json");
    let tools: &[&str] = if std::fs::read_to_string(&installed).is_ok_and(|text| text.contains(&format!("\"version\": \"{version}\""))) {
        &["node"]
    } else {
        &["node", "npm"]
    };
    for tool in tools {
        if Command::new(tool).arg("--version").output().is_err() {
            return Err(BuildError::Missing { tool: (*tool).to_owned(), need: "Node.js 18 or newer with npm (for example `apt-get install nodejs npm`)" });
        }
    }
    if tools.len() == 1 {
        return Ok(dir);
    }
    eprintln!("weir: installing {COMPONENTIZE_JS} into {} (once)", dir.display());
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), "{\"private\": true, \"type\": \"module\"}\n")?;
    install_step(
        Command::new("npm").args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"]).arg(&dir).arg(COMPONENTIZE_JS),
        COMPONENTIZE_JS,
        &dir,
    )?;
    Ok(dir)
}

/// The stages `source` exports: `export const fold = ...`,
/// `export function key ...` or `export { fold, format }`.
pub fn exported_stages(source: &str) -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    let words: Vec<&str> = source.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '{' || c == '}')).filter(|w| !w.is_empty()).collect();
    let mut i = 0;
    while i < words.len() {
        if words[i] == "export" {
            match words.get(i + 1).copied() {
                Some("const" | "let" | "var" | "function") => names.extend(words.get(i + 2).copied()),
                Some(w) if w.starts_with('{') => {
                    let mut j = i + 1;
                    while let Some(w) = words.get(j) {
                        let name = w.trim_matches(|c| c == '{' || c == '}');
                        // `export { a as fold }` exports `fold`.
                        if words.get(j + 1) != Some(&"as") && !name.is_empty() {
                            names.push(name);
                        }
                        if w.ends_with('}') {
                            break;
                        }
                        j += 1;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    ["deserialize", "key", "fold", "format"].into_iter().filter(|stage| names.contains(stage)).collect()
}

/// The world a module exporting `stages` builds to.
pub fn world(stages: &[&str]) -> Option<&'static str> {
    WORLDS.iter().find(|(set, _)| *set == stages).map(|(_, world)| *world)
}

/// Builds `app` into the component `out` (an absolute path).
pub fn build(app: &Path, out: &Path) -> Result<(), BuildError> {
    let source = std::fs::read_to_string(app)?;
    let stages = exported_stages(&source);
    let world = world(&stages).ok_or_else(|| BuildError::World {
        path: app.to_owned(),
        detail: format!(
            "exports the stages [{}]; a plugin exports one of: {}",
            stages.join(", "),
            WORLDS.iter().map(|(set, world)| format!("[{}] ({world})", set.join(", "))).collect::<Vec<_>>().join(", ")
        ),
    })?;
    let env = componentize_js(&super::tools_dir())?;
    let work = tempfile::tempdir()?;
    std::fs::write(work.path().join("stream.wit"), WIT)?;
    // The driver lives beside node_modules so that node resolves the package.
    let driver = tempfile::Builder::new().prefix("weir-build-").suffix(".mjs").tempfile_in(&env)?;
    std::fs::write(driver.path(), DRIVER)?;
    let output = Command::new("node").arg(driver.path()).arg(app).arg(work.path().join("stream.wit")).arg(world).arg(out).output()?;
    if !output.status.success() {
        let detail = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        return Err(BuildError::Componentize { tool: "componentize-js", path: app.to_owned(), detail: detail.trim().to_owned() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_exported_stages_and_their_world() {
        let src = "const x = 1;\nexport const fold = {\n};\nexport const format = { fold: 1 };\n";
        assert_eq!(exported_stages(src), ["fold", "format"]);
        assert_eq!(world(&exported_stages(src)), Some("aggregator"));
        assert_eq!(exported_stages("function f() {}\nexport { f as key };\n"), ["key"]);
        assert_eq!(exported_stages("export {fold, format}"), ["fold", "format"]);
        assert_eq!(exported_stages("export function key(events) {}"), ["key"]);
        assert_eq!(world(&["deserialize", "fold"]), None);
    }
}
