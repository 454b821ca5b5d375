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

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(t) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            if t.join("release").exists() || t.join("debug").exists() {
                return t.to_path_buf();
            }
        }
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The directory holding libwebsockets.so (target/release), or LWS_LIB_DIR.
fn lib_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LWS_LIB_DIR") {
        return PathBuf::from(d);
    }
    let d = target_dir().join("release");
    assert!(
        d.join("libwebsockets.so").exists(),
        "no libwebsockets.so in {}: run cargo build --release",
        d.display()
    );
    d
}

fn out_dir() -> PathBuf {
    let d = target_dir().join("ctests").join("threads");
    fs::create_dir_all(&d).unwrap();
    d
}

/// Compiles a C program against include/ and the built library (once per test run).
fn build(src: &str, name: &str) -> PathBuf {
    let bin = out_dir().join(name);
    let lib = lib_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(cc)
        .args(["-O1", "-g", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg(format!("-I{}", repo().join("include").display()))
        .arg("-o")
        .arg(&bin)
        .arg(repo().join(src))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lwebsockets")
        .output()
        .expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling {src}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

fn threads_check() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("tests/threads/threads_check.c", "threads_check"))
}

fn test_threads() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build("examples/test-threads.c", "test-threads"))
}

fn random() -> u64 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut x = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        ^ ((std::process::id() as u64) << 16)
        ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// `n` consecutive free loopback ports below Linux's ephemeral range; returns the first.
fn free_ports(n: u16) -> u16 {
    for _ in 0..1000 {
        let base = 20000 + (random() % 12000) as u16;
        if (base..base + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free ports in 20000..32000");
}

fn tool_exists(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A child process, killed by PID when dropped; stdout and stderr go to files.
struct Proc {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Proc {
    fn start(mut cmd: Command, tag: &str) -> Proc {
        let stem = format!("{tag}-{}-{}", std::process::id(), random() % 100_000);
        let out = out_dir().join(format!("{stem}.out"));
        let err = out_dir().join(format!("{stem}.err"));
        cmd.stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .env("LD_LIBRARY_PATH", lib_dir())
            .env_remove("LWS_REUSEPORT");
        let child = cmd.spawn().expect("start a test program");
        Proc { child, out, err }
    }

    fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits for the exit (bounded); its status code (None: killed or still running).
    fn wait(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            sleep(Duration::from_millis(20));
        }
        None
    }

    fn wait_for_output(&mut self, text: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.stdout().contains(text) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.stdout().contains(text);
            }
            sleep(Duration::from_millis(20));
        }
        false
    }

    fn terminate(&mut self, within: Duration) -> Option<i32> {
        // SAFETY: signalling our own child by its PID.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        self.wait(within)
    }

    fn describe(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr (last 4000 bytes)\n{}",
            self.stdout(),
            tail(&self.stderr(), 4000)
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.out);
            let _ = fs::remove_file(&self.err);
        }
    }
}

fn tail(s: &str, n: usize) -> &str {
    let mut i = s.len().saturating_sub(n);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..]
}

// ----------------------------------------------------------------- threads_check

fn run_threads_check(wrapper: &[&str], extra: &[&str], within: Duration) {
    let base = free_ports(8);
    let mut cmd = if wrapper.is_empty() {
        Command::new(threads_check())
    } else {
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..]).arg(threads_check());
        c
    };
    cmd.args(["--port", &base.to_string()]).args(extra);
    let mut p = Proc::start(cmd, "threads_check");
    let code = p.wait(within);
    let out = p.stdout();
    assert_eq!(
        code,
        Some(0),
        "threads_check {wrapper:?} {extra:?} failed\n{}",
        p.describe()
    );
    assert!(
        out.contains(" passed, 0 failed") && !out.contains("FAIL"),
        "threads_check output\n{}",
        p.describe()
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
    if !tool_exists("valgrind") {
        println!("NOTICE: valgrind not installed; {tool} run skipped");
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
    let mut server = Proc::start(cmd, "test-threads");
    let slow = if run.valgrind.is_some() { 10 } else { 1 };
    assert!(
        server.wait_for_output("test-threads:", Duration::from_secs(20 * slow)),
        "test-threads did not start\n{}",
        server.describe()
    );

    let mut c = Command::new("python3");
    c.arg(repo().join("tests/threads/clients.py")).args([
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
    let mut clients = Proc::start(c, "clients");
    let budget = Duration::from_millis(
        (30_000 + u64::from(run.messages) * u64::from(run.interval_ms)) * slow,
    );
    let code = clients.wait(budget);
    let client_out = clients.stdout();
    let server_code = server.terminate(Duration::from_secs(30 * slow));
    let out = server.stdout();
    assert_eq!(
        code,
        Some(0),
        "clients failed\n{}\n--- server\n{}",
        clients.describe(),
        server.describe()
    );
    assert!(
        client_out.contains(&format!("ok={}", run.clients)),
        "{client_out}"
    );
    assert_eq!(
        server_code,
        Some(0),
        "test-threads exit status (97: valgrind errors, 2: callbacks on a wrong thread)\n{}",
        server.describe()
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary\n{}", server.describe()));
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
    if !tool_exists("valgrind") {
        println!("NOTICE: valgrind not installed; helgrind run skipped");
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
