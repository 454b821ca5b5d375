//! The Python binding (python/libwebsockets_ctypes.py) and its examples
//! (python/echo_server.py, python/echo_client.py), through the scripts in
//! tests/python/ (plain python3 scripts, no pytest; `pip install -r
//! tests/requirements.txt` for the `websockets` client they drive the examples with).
//!
//! Each script gets LWS_LIBRARY pointing at the freshest libwebsockets.so under
//! target/, prints one line per check and "OK" last. Every child is waited for with a
//! deadline and killed by PID when it overruns.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::cc::CBuild;
use common::net::free_port_below_ephemeral;
use common::paths::{ctests_dir, lib_dir, repo};
use common::proc::{run, start_server, Finished};
use common::tools::python_websockets;

fn library() -> PathBuf {
    lib_dir().join("libwebsockets.so")
}

/// Runs a script of tests/python (or python/) with LWS_LIBRARY set; returns its output.
fn run_python(script: &Path, args: &[String], within: Duration) -> Finished {
    python_websockets();
    let out = run(
        Command::new("python3")
            .arg(script)
            .args(args)
            .env("LWS_LIBRARY", library())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .current_dir(std::env::temp_dir()),
        within,
    );
    assert!(
        !out.timed_out,
        "{} did not finish within {within:?}: {}",
        script.display(),
        out.describe()
    );
    out
}

/// A check script: exit 0 and "OK" as the last line of stdout. Retried once with new
/// ports when a port turned out to be taken meanwhile.
fn check_script(name: &str, make_args: impl Fn() -> Vec<String>, within: Duration) {
    let script = repo().join("tests/python").join(name);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let args = make_args();
        let start = Instant::now();
        let out = run_python(&script, &args, within);
        let (stdout, stderr) = (&out.stdout, &out.stderr);
        let ok = out.ok() && stdout.lines().last() == Some("OK");
        eprintln!(
            "{name} {args:?}: {:?} in {:.1}s",
            out.status,
            start.elapsed().as_secs_f64()
        );
        if ok {
            return;
        }
        let port_clash = stdout.contains("FAIL echo_server.py listening")
            || stderr.contains("Address already in use");
        if attempt < 2 && port_clash {
            continue;
        }
        panic!(
            "{name} failed ({:?}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
    }
}

#[test]
fn binding_layouts_logging_server_and_client_calls() {
    check_script(
        "binding_check.py",
        || {
            vec![
                free_port_below_ephemeral().to_string(),
                free_port_below_ephemeral().to_string(),
            ]
        },
        Duration::from_secs(90),
    );
}

#[test]
fn python_echo_server_driven_by_websockets_client() {
    check_script(
        "echo_server_check.py",
        || vec![free_port_below_ephemeral().to_string()],
        Duration::from_secs(120),
    );
}

#[test]
fn python_echo_server_with_permessage_deflate() {
    check_script(
        "echo_server_check.py",
        || vec![free_port_below_ephemeral().to_string(), "--deflate".into()],
        Duration::from_secs(120),
    );
}

#[test]
fn python_echo_client_against_websockets_server() {
    check_script("client_check.py", Vec::new, Duration::from_secs(120));
}

/// python/echo_client.py against the C example server examples/test-echo.c.
#[test]
fn python_echo_client_against_c_test_echo() {
    python_websockets();
    let lib = lib_dir();
    let bin = CBuild::new("examples/test-echo.c", &ctests_dir("python"), &lib)
        .build()
        .unwrap_or_else(|e| panic!("compiling test-echo: {e}"));
    let mut server = start_server("test-echo", 3, Duration::from_secs(10), |port| {
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", &port.to_string(), "--interface", "127.0.0.1"])
            .env("LD_LIBRARY_PATH", &lib);
        cmd
    });
    let port = server.port;

    let client = repo().join("python/echo_client.py");
    let mut results = Vec::new();
    for extra in [&[][..], &["--deflate"][..]] {
        let mut args = vec![
            "--port".to_string(),
            port.to_string(),
            "--timeout".into(),
            "30".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        results.push((extra, run_python(&client, &args, Duration::from_secs(60))));
    }
    server.kill();
    let server_log = server.stderr();
    for (extra, out) in results {
        assert!(
            out.ok() && out.stdout.contains("14 messages echoed"),
            "echo_client.py {extra:?} against test-echo: {}\nserver log:\n{server_log}",
            out.describe()
        );
    }
    assert_eq!(
        server_log.matches("established session").count(),
        2,
        "test-echo saw both clients:\n{server_log}"
    );
}

/// Without LWS_LIBRARY the module loads this repository's target/release build.
#[test]
fn module_finds_target_release_by_default() {
    python_websockets();
    let release = repo().join("target/release/libwebsockets.so.4.0.0");
    if !release.exists() {
        eprintln!("no {}; skipped", release.display());
        return;
    }
    let out = run(
        Command::new("python3")
            .arg("-c")
            .arg(
                "import sys; sys.path.insert(0, sys.argv[1]); import libwebsockets_ctypes as l; \
                 print(l.library_path()); print(l.get_library_version())",
            )
            .arg(repo().join("python"))
            .env_remove("LWS_LIBRARY")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(std::env::temp_dir()),
        Duration::from_secs(60),
    );
    let mut lines = out.stdout.lines();
    assert!(out.ok(), "{}", out.describe());
    assert_eq!(lines.next().map(PathBuf::from), Some(release));
    assert!(lines.next().is_some_and(|v| v.starts_with("1.3 ")));
}
