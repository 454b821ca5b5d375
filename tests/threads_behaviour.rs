//! Threads: `libwebsocket_callback_on_writable`, `_all_protocol` and
//! `libwebsocket_rx_flow_control` called from threads that do not serve the context,
//! and several contexts in one process, each served by its own thread on one port
//! (LWS_REUSEPORT=1).
//!
//! * `tests/threads/threads_check.c`: a self-checking C program (server contexts on
//!   their own threads with long service timeouts, raw-socket clients): wake-up
//!   latency, external poll, all_protocol, rx_flow_control, closed connections,
//!   hand-over between threads, and a stress run with churning connections. Run
//!   plainly, and under valgrind's helgrind, drd and memcheck (skipped with a notice
//!   when valgrind is missing).
//! * `examples/test-threads.c` driven by 200 WebSocket clients
//!   (`tests/threads/clients.py`, Python `websockets`): every client gets every
//!   message of the producer thread once, in order, with 2 and 4 service threads,
//!   with `--per-connection` and `--extpoll`, and under helgrind.
//!
//! Processes are killed by PID when their guard drops; every wait is bounded.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::cc::{built_once, require_library, CBuild};
use common::net::free_ports_below_ephemeral as free_ports;
use common::paths::{ctests_dir, release_dir};
use common::proc::{wrapped, Background};
use common::py::python;
use common::tools::optional_tool;

/// Compiles a C program against include/ and the built library, with `-pthread`.
fn build(src: &str) -> Result<PathBuf, String> {
    let lib = std::env::var_os("LWS_LIB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(release_dir);
    require_library(&lib)?;
    CBuild::new(src, &ctests_dir("threads"), &lib)
        .flag("-pthread")
        .build()
}

fn threads_check() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built_once::<PathBuf>(&BIN, || build("tests/threads/threads_check.c"))
}

fn test_threads() -> &'static Path {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built_once::<PathBuf>(&BIN, || build("examples/test-threads.c"))
}

/// `cmd` in the background without `LWS_REUSEPORT` from the environment.
fn start(name: &str, mut cmd: Command) -> Background {
    Background::start(name, cmd.env_remove("LWS_REUSEPORT"))
}

/// Waits (bounded) for its exit; its status code (None: killed or still running).
fn wait_code(p: &mut Background, within: Duration) -> Option<i32> {
    p.wait_exit(within).and_then(|st| st.code())
}

// ----------------------------------------------------------------- threads_check

fn run_threads_check(wrapper: &[&str], extra: &[&str], within: Duration) {
    let base = free_ports(8);
    let mut cmd = wrapped(wrapper, threads_check());
    cmd.args(["--port", &base.to_string()]).args(extra);
    let mut p = start("threads_check", cmd);
    let code = wait_code(&mut p, within);
    let out = p.stdout();
    assert_eq!(
        code,
        Some(0),
        "threads_check {wrapper:?} {extra:?} failed\n{}",
        p.output()
    );
    assert!(
        out.contains(" passed, 0 failed") && !out.contains("FAIL"),
        "threads_check output\n{}",
        p.output()
    );
    println!("{out}");
}

/// Every check, natively: a request from another thread wakes a service call that
/// would otherwise sleep 20 s, and reaches the right connection on the right thread.
#[test]
fn any_thread_calls_wake_the_loop_and_run_on_the_service_thread() {
    run_threads_check(&[], &[], Duration::from_secs(120));
}

fn valgrind_run(tool: &str) {
    if !optional_tool("valgrind", &format!("the {tool} run")) {
        return;
    }
    let tool_arg = format!("--tool={tool}");
    let mut wrapper = vec!["valgrind", tool_arg.as_str(), "-q", "--error-exitcode=97"];
    if tool == "memcheck" {
        wrapper.push("--leak-check=no");
    }
    run_threads_check(&wrapper, &["--slow"], Duration::from_secs(600));
}

/// helgrind: no data race between the service threads, the threads making requests
/// and the connection churn.
#[test]
fn any_thread_calls_are_race_free_under_helgrind() {
    valgrind_run("helgrind");
}

/// drd, the other valgrind thread checker, on the same program.
#[test]
fn any_thread_calls_are_race_free_under_drd() {
    valgrind_run("drd");
}

/// memcheck: a connection closed (and freed) before the call is never dereferenced.
#[test]
fn closed_connections_are_never_dereferenced_under_memcheck() {
    valgrind_run("memcheck");
}

// ----------------------------------------------------------------- test-threads

struct Run<'a> {
    threads: u32,
    clients: u32,
    messages: u32,
    interval_ms: u32,
    size: u32,
    flags: &'a [&'a str],
    valgrind: Option<&'a str>,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Run {
            threads: 2,
            clients: 200,
            messages: 200,
            interval_ms: 10,
            size: 0,
            flags: &[],
            valgrind: None,
        }
    }
}

/// One number from a "key=value" summary line.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
}

/// Starts test-threads, drives it with `clients.py`, stops it with SIGTERM and
/// checks both sides' accounts.
fn drive(run: Run) {
    let port = free_ports(1);
    let mut cmd = match run.valgrind {
        Some(tool) => {
            let mut c = Command::new("valgrind");
            c.args([&format!("--tool={tool}"), "-q", "--error-exitcode=97"])
                .arg(test_threads());
            c
        }
        None => Command::new(test_threads()),
    };
    cmd.args([
        "--port",
        &port.to_string(),
        "--threads",
        &run.threads.to_string(),
        "--interval-ms",
        &run.interval_ms.to_string(),
        "--messages",
        &run.messages.to_string(),
        "--wait-clients",
        &run.clients.to_string(),
        "--size",
        &run.size.to_string(),
    ])
    .args(run.flags);
    let mut server = start("test-threads", cmd);
    let slow = if run.valgrind.is_some() { 10 } else { 1 };
    assert!(
        server.wait_for_stdout(
            |out| out.contains("test-threads:"),
            Duration::from_secs(20 * slow)
        ),
        "test-threads did not start\n{}",
        server.output()
    );

    let mut c = python("tests/threads/clients.py");
    c.args([
        "--port",
        &port.to_string(),
        "--clients",
        &run.clients.to_string(),
        "--messages",
        &run.messages.to_string(),
        "--size",
        &run.size.to_string(),
        "--connect-timeout",
        &(20 * slow).to_string(),
        "--message-timeout",
        &(20 * slow).to_string(),
    ]);
    let mut clients = start("clients.py", c);
    let budget = Duration::from_millis(
        (30_000 + u64::from(run.messages) * u64::from(run.interval_ms)) * slow,
    );
    let code = wait_code(&mut clients, budget);
    let client_out = clients.stdout();
    let server_code = server
        .stop(libc::SIGTERM, Duration::from_secs(30 * slow))
        .and_then(|st| st.code());
    let out = server.stdout();
    assert_eq!(
        code,
        Some(0),
        "clients failed\n{}\n--- server\n{}",
        clients.output(),
        server.output()
    );
    assert!(
        client_out.contains(&format!("ok={}", run.clients)),
        "{client_out}"
    );
    assert_eq!(
        server_code,
        Some(0),
        "test-threads exit status (97: valgrind errors, 2: callbacks on a wrong thread)\n{}",
        server.output()
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary\n{}", server.output()));
    assert_eq!(field(summary, "wrong_thread"), Some(0), "{summary}");
    assert_eq!(
        field(summary, "produced"),
        Some(run.messages.into()),
        "{summary}"
    );
    assert_eq!(
        field(summary, "connections"),
        Some(run.clients.into()),
        "{summary}"
    );
    assert_eq!(
        field(summary, "writes"),
        Some(u64::from(run.clients) * u64::from(run.messages)),
        "every message written once to every client: {summary}"
    );
    let per_thread: Vec<u64> = out
        .lines()
        .filter(|l| l.starts_with("thread "))
        .filter_map(|l| field(l, "connections"))
        .collect();
    assert_eq!(per_thread.len(), run.threads as usize, "{out}");
    if run.threads > 1 {
        // SO_REUSEPORT spreads by hash: with this many clients every thread gets some.
        let busy = per_thread.iter().filter(|&&n| n > 0).count();
        assert!(busy > 1, "only one thread got connections: {per_thread:?}");
    }
    println!("{client_out}{out}");
}

/// Issue 15 item 3: 200 clients, 2 service threads on one port, a producer thread:
/// every message arrives, in order, once.
#[test]
fn producer_thread_reaches_200_clients_over_2_service_threads() {
    drive(Run::default());
}

#[test]
fn producer_thread_reaches_200_clients_over_4_service_threads() {
    drive(Run {
        threads: 4,
        messages: 300,
        interval_ms: 5,
        ..Run::default()
    });
}

/// Requests per connection (`libwebsocket_callback_on_writable` on each listed wsi),
/// service threads on their own poll() loops, 1 KiB messages.
#[test]
fn producer_thread_per_connection_with_external_poll_loops() {
    drive(Run {
        threads: 2,
        size: 1024,
        flags: &["--per-connection", "--extpoll"],
        ..Run::default()
    });
}

/// The example as written: a message a second.
#[test]
fn producer_thread_default_interval() {
    drive(Run {
        threads: 2,
        clients: 20,
        messages: 3,
        interval_ms: 1000,
        ..Run::default()
    });
}

/// Four contexts on four threads, one process, under helgrind: no global state of the
/// library (logging, malloc tuning, mask keys, resolver, the registry of contexts) is
/// raced on.
#[test]
fn four_contexts_on_four_threads_under_helgrind() {
    if !optional_tool("valgrind", "the helgrind run") {
        return;
    }
    drive(Run {
        threads: 4,
        clients: 40,
        messages: 30,
        interval_ms: 20,
        flags: &["--per-connection"],
        valgrind: Some("helgrind"),
        ..Run::default()
    });
}
