//! The demo page in headless Chromium (tests/browser/browser_check.py), when Chromium
//! is installed (or LWS_CHROMIUM names one). CI does not install it (about 100 MB
//! of packages), so there this test only says it was skipped; the full command,
//! which installs Chromium when missing, is `bash tests/browser/run.sh`.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::cc::CBuild;
use common::paths::{lib_dir, repo, target_dir};
use common::proc::run;

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LWS_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn demo_page_in_headless_chromium() {
    let Some(browser) = chromium() else {
        eprintln!("browser test skipped: no chromium (bash tests/browser/run.sh installs it)");
        return;
    };
    let out = target_dir().join("browser");
    fs::create_dir_all(&out).unwrap();
    let lib = lib_dir();
    let server = CBuild::new("examples/test-server.c", &out, &lib)
        .test_html()
        .build()
        .unwrap_or_else(|e| panic!("compiling test-server: {e}"));

    // the script bounds its own waits and stops what it started; this is the backstop
    let result = run(
        Command::new("python3")
            .arg(repo().join("tests/browser/browser_check.py"))
            .arg("--server")
            .arg(&server)
            .arg("--chromium")
            .arg(&browser)
            .arg("--out")
            .arg(&out)
            .env("LD_LIBRARY_PATH", &lib),
        Duration::from_secs(180),
    );
    eprintln!(
        "browser check: {:?} in {:.1}s",
        result.status,
        result.elapsed.as_secs_f64()
    );
    assert!(
        result.ok() && result.stdout.lines().last() == Some("OK"),
        "browser check failed: {}",
        result.describe()
    );
    assert!(out.join("test-server-tab1.png").exists());
}
