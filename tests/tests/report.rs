//! Seed 001 as it was meant: the profile plugin's windows, turned into an
//! HTML page by `weir report`, rendered by a real headless browser
//! (Debian's chromium, which scripts/test.sh installs). The screenshot is
//! kept as a test artefact in the cargo target's tmp folder.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use weir_tests::services::weir;

fn chromium() -> &'static str {
    let found = Command::new("chromium").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "chromium is not installed: the report test renders the page in a real browser; scripts/test.sh installs Debian's chromium with apt-get");
    "chromium"
}

// Width and height from a PNG's header.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

#[test]
fn the_profile_report_renders_in_a_headless_browser() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("profiles.jsonl");
    let run = weir(&["run", "examples/seed-001-telemetry/profile.toml", "--workers", "1"], Duration::from_secs(120));
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    std::fs::write(&profiles, &run.stdout).unwrap();
    let windows = String::from_utf8_lossy(&run.stdout).lines().count();
    assert_eq!(windows, 3, "one window per device in the hour the data spans");

    let page = dir.path().join("report.html");
    let report = weir(&["report", profiles.to_str().unwrap(), "--out", page.to_str().unwrap(), "--title", "seed 001 telemetry"], Duration::from_secs(60));
    assert!(report.status.success(), "{}", String::from_utf8_lossy(&report.stderr));

    // What the browser built from the page: a chart per column per window.
    let url = format!("file://{}", page.display());
    let profile_dir = format!("--user-data-dir={}", dir.path().join("chromium").display());
    let common = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", profile_dir.as_str()];
    let dom = Command::new(browser).args(common).args(["--dump-dom", &url]).output().expect("chromium runs");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 3 * 7, "7 columns × 3 windows, each with its chart:\n{}", &dom[..dom.len().min(2000)]);
    assert_eq!(dom.matches("<section class=\"window\"").count(), 3);
    assert!(dom.contains("<h1>seed 001 telemetry</h1>") && dom.contains("b8:27:eb:bf:9d:51"));

    // And the picture it paints, kept for a person to look at.
    let artefacts = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shot = artefacts.join("seed-001-profile-report.png");
    let _ = std::fs::remove_file(&shot);
    let painted = Command::new(browser)
        .args(common)
        .args(["--window-size=1280,1600", &format!("--screenshot={}", shot.display()), &url])
        .output()
        .expect("chromium runs");
    let bytes = std::fs::read(&shot).unwrap_or_else(|_| panic!("no screenshot from chromium: {}", String::from_utf8_lossy(&painted.stderr)));
    assert_eq!(png_size(&bytes), (1280, 1600));
    // A blank page compresses to a few kilobytes; tables and charts do not.
    assert!(bytes.len() > 30_000, "the screenshot is {} bytes: is the page blank?", bytes.len());
    eprintln!("report screenshot: {} ({} bytes)", shot.display(), bytes.len());
}
