//! What the tests need installed, and what happens when it is not: `.ci/run` installs
//! all of it; a test that needs a missing optional tool (valgrind, Autobahn) says so
//! and returns, except in CI (`CI` set), where that is a failure. Python `websockets`
//! is never optional.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::paths::shared_dir;
use super::proc::{run, Finished};

/// Whether this runs in CI (`CI` set, as `.ci/run` does).
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Whether `tool` is an executable file in a directory of `PATH`.
pub fn have(tool: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|d| {
        std::fs::metadata(d.join(tool))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Panics, saying which Debian package has it, unless `tool` is installed.
pub fn need_tool(tool: &str, package: &str) {
    assert!(
        have(tool),
        "{tool} is not installed: apt-get install {package} (.ci/run does)"
    );
}

/// Whether an optional `tool` may be used: true when installed; else false with a
/// notice that `what` is skipped, or a panic in CI.
pub fn optional_tool(tool: &str, what: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(!in_ci(), "{tool} is not installed (.ci/run installs it)");
    eprintln!("NOTICE: {tool} is not installed; {what} skipped");
    false
}

/// Panics unless python3 has the `websockets` package (13 or later, with the parts the
/// tests use): `pip install -r tests/requirements.txt`. Checked once per test binary.
pub fn python_websockets() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let f = run(
            Command::new("python3").args([
                "-c",
                "import websockets, websockets.asyncio.client, websockets.asyncio.server, \
                 websockets.sync.client, websockets.extensions.permessage_deflate; \
                 assert int(websockets.__version__.split('.')[0]) >= 13, websockets.__version__",
            ]),
            Duration::from_secs(60),
        );
        if f.ok() {
            Ok(())
        } else {
            Err(format!(
                "python3 lacks websockets >= 13 (pip install -r tests/requirements.txt): {}",
                f.describe()
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

/// `../shared/tools/autobahn/<runner>` (run-server-tests or run-client-tests) when
/// Autobahn is installed. Otherwise None with a notice that `what` is skipped, or a
/// panic in CI.
pub fn autobahn_runner(runner: &str, what: &str) -> Option<PathBuf> {
    let path = shared_dir().join("tools/autobahn").join(runner);
    if path.exists() && Path::new("/opt/autobahn/venv/bin/wstest").exists() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "Autobahn is not installed (.ci/run runs ../shared/tools/autobahn/setup)"
    );
    eprintln!("NOTICE: Autobahn not installed; skipping {what}");
    None
}

/// Asserts that an Autobahn runner's run passed: exit 0, its summary line (starting
/// with `prefix`, "autobahn-server:" or "autobahn-client:") with 0 failed and nothing
/// unimplemented, and no unclean close. `context` goes into the messages.
pub fn assert_autobahn_passed(f: &Finished, prefix: &str, context: &str) {
    let summary = f
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with(prefix))
        .unwrap_or("no summary line")
        .to_string();
    assert!(f.ok(), "Autobahn {context}: {summary}\n{}", f.describe());
    assert!(
        summary.contains(" 0 failed") && !summary.contains("unimplemented"),
        "Autobahn {context}: {summary}"
    );
    assert!(
        f.stdout
            .contains("close-behavior failures (FAILED/UNCLEAN): 0"),
        "Autobahn {context}: unclean closes"
    );
}
