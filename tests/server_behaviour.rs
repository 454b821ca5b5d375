//! Server behaviour through real sockets on 127.0.0.1.
//!
//! Builds examples/test-server.c, examples/test-echo.c and tests/c/servers/*.c against
//! include/libwebsockets.h and the freshest libwebsockets.so under target/ into
//! target/ctests/server-behaviour/, starts them on free ports and drives them with curl
//! and the Python scripts in tests/server (`pip install -r tests/requirements.txt`).
//!
//! Every process is started by this file, recorded by PID and killed when its guard
//! drops; every wait has a deadline.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::cc::{built_once, CBuild};
use common::paths::{ctests_dir, lib_dir, repo, TempDir};
use common::pattern;
use common::proc::{run, run_merged, start_program_with, Background};
use common::py::python;
use common::tools::have;

// ------------------------------------------------------------------ locations

struct Bins {
    dir: PathBuf,
}

impl Bins {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Compiles the C programs once per test run.
fn bins() -> &'static Bins {
    static BINS: OnceLock<Result<Bins, String>> = OnceLock::new();
    built_once(&BINS, || {
        let out = ctests_dir("server-behaviour");
        let lib = lib_dir();
        eprintln!("server_behaviour: linking against {}", lib.display());
        for src in [
            "examples/test-server.c",
            "examples/test-echo.c",
            "tests/c/servers/server_flow.c",
            "tests/c/servers/server_bigsend.c",
            "tests/c/servers/server_scribble.c",
        ] {
            CBuild::new(src, &out, &lib).test_html().build()?;
        }
        Ok(Bins { dir: out })
    })
}

// ------------------------------------------------------------------ processes

/// `bin --port PORT args...` on a free port; killed by PID when dropped.
fn serve(bin: &Path, args: &[&str]) -> Background {
    serve_wrapped(&[], bin, args, Duration::from_secs(10))
}

/// As [`serve`], under `wrapper` (valgrind), in a scratch directory of its own.
fn serve_wrapped(
    wrapper: &[&str],
    bin: &Path,
    args: &[&str],
    ready_within: Duration,
) -> Background {
    let name = bin.file_name().unwrap().to_string_lossy().into_owned();
    let dir = TempDir::new(&name);
    let args = [&["--port", "{port}"], args].concat();
    let mut server = start_program_with(wrapper, bin, &args, ready_within, |cmd| {
        // cargo test puts target/<profile> on LD_LIBRARY_PATH, which beats the rpath
        cmd.env("LD_LIBRARY_PATH", lib_dir())
            .current_dir(dir.path());
    });
    server.keep_dir(dir);
    server
}

/// Runs tests/server/<script> against a server and asserts that every check passed.
fn run_script(server: &mut Background, script: &str, args: &[&str], within: Duration) -> String {
    let mut cmd = python(&format!("tests/server/{script}"));
    cmd.arg("--port").arg(server.port.to_string()).args(args);
    let o = run_merged(&mut cmd, within);
    eprintln!(
        "--- {script} {args:?} against {} ---\n{}",
        server.name, o.stdout
    );
    if !o.ok() {
        panic!(
            "{script} {args:?} failed against {}: {}\n{}",
            server.name,
            o.describe(),
            server.tail()
        );
    }
    server.assert_alive(&format!("after {script}"));
    o.stdout
}

// ------------------------------------------------------------------ curl

struct CurlResult {
    code: String,
    content_type: String,
    body: Vec<u8>,
    ok: bool,
    stderr: String,
}

fn curl(url: &str, extra: &[&str], dest: &Path) -> Command {
    let mut c = Command::new("curl");
    c.args(["-s", "-S", "--max-time", "60", "-o"])
        .arg(dest)
        .args(["-w", "%{http_code} %{content_type}"])
        .args(extra)
        .arg(url);
    c
}

fn curl_get(url: &str, extra: &[&str], scratch: &Path) -> CurlResult {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dest = scratch.join(format!("curl-{}", N.fetch_add(1, Ordering::SeqCst)));
    let out = run(&mut curl(url, extra, &dest), Duration::from_secs(70));
    CurlResult {
        code: out.stdout.split(' ').next().unwrap_or("").to_string(),
        content_type: out
            .stdout
            .split_once(' ')
            .map_or("", |(_, t)| t)
            .trim()
            .to_string(),
        body: fs::read(&dest).unwrap_or_default(),
        ok: out.ok(),
        stderr: out.stderr,
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn http_file_serving() {
    assert!(have("curl"), "curl is needed for the HTTP tests");
    let b = bins();
    let docroot = TempDir::new("docroot");
    let root = docroot.path();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.bin", vec![]),
        ("one.bin", vec![0x5a]),
        ("f100k.bin", pattern(100 * 1024, 1)),
        ("big5m.bin", pattern(5 * 1024 * 1024, 2)),
        (
            "page.html",
            b"<!DOCTYPE html><html><body>hello</body></html>\n".to_vec(),
        ),
        (
            "app.js",
            b"console.log('served by test-server');\n".to_vec(),
        ),
        (
            "image.png",
            [b"\x89PNG\r\n\x1a\n".to_vec(), pattern(3000, 3)].concat(),
        ),
    ];
    for (name, data) in &files {
        fs::write(root.join(name), data).unwrap();
    }
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("sub/inner.txt"), b"inner file\n").unwrap();

    let mut srv = serve(
        &b.path("test-server"),
        &["--resource-path", root.to_str().unwrap()],
    );
    let base = format!("http://127.0.0.1:{}", srv.port);
    let scratch = TempDir::new("curl");
    assert!(
        srv.stderr()
            .contains(&format!("test-server listening on port {}", srv.port)),
        "no 'test-server listening on port N' line on stderr:\n{}",
        srv.tail()
    );

    // byte-exact downloads
    for (name, data) in &files {
        let r = curl_get(&format!("{base}/{name}"), &[], scratch.path());
        assert!(
            r.ok && r.code == "200",
            "GET /{name}: code {} ({})\n{}",
            r.code,
            r.stderr,
            srv.tail()
        );
        assert_eq!(r.body.len(), data.len(), "GET /{name}: length differs");
        assert!(r.body == *data, "GET /{name}: content differs");
    }
    let r = curl_get(&format!("{base}/sub/inner.txt"), &[], scratch.path());
    assert_eq!(
        (r.code.as_str(), r.body.as_slice()),
        ("200", &b"inner file\n"[..]),
        "GET /sub/inner.txt"
    );

    // the demo page at /
    let r = curl_get(&format!("{base}/"), &[], scratch.path());
    let page = fs::read(repo().join("examples/test.html")).unwrap();
    assert!(
        r.code == "200" && r.body == page,
        "GET / must serve examples/test.html (code {})",
        r.code
    );
    assert!(
        r.content_type.starts_with("text/html"),
        "GET / content type {:?}",
        r.content_type
    );

    // content types
    for (name, want) in [
        ("page.html", "text/html"),
        ("app.js", "application/javascript"),
        ("image.png", "image/png"),
    ] {
        let r = curl_get(&format!("{base}/{name}"), &[], scratch.path());
        assert!(
            r.content_type.starts_with(want),
            "/{name}: Content-Type {:?}, expected {want}",
            r.content_type
        );
    }

    // missing file
    let r = curl_get(&format!("{base}/does-not-exist.txt"), &[], scratch.path());
    assert_eq!(
        r.code, "404",
        "missing file answered {} ({})",
        r.code, r.stderr
    );

    // traversal: a 4xx or a closed connection ("000"), never the file
    for path in [
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/sub/../../etc/passwd",
    ] {
        let r = curl_get(&format!("{base}{path}"), &["--path-as-is"], scratch.path());
        assert!(
            !String::from_utf8_lossy(&r.body).contains("root:"),
            "{path} served /etc/passwd"
        );
        assert!(
            r.code == "000" || r.code.starts_with('4'),
            "{path} answered {}",
            r.code
        );
    }

    // 20 parallel downloads
    let mut running = Vec::new();
    for i in 0..20 {
        let (name, _) = if i % 2 == 0 { &files[3] } else { &files[2] };
        let dest = scratch.path().join(format!("par-{i}"));
        let child = curl(&format!("{base}/{name}"), &[], &dest)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("curl");
        running.push((i, *name, dest, child));
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut failures = Vec::new();
    for (i, name, dest, mut child) in running {
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break Some(st);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            sleep(Duration::from_millis(20));
        };
        let want = &files.iter().find(|(n, _)| *n == name).unwrap().1;
        let got = fs::read(&dest).unwrap_or_default();
        if status.is_none_or(|s| !s.success()) || got != *want {
            failures.push(format!(
                "download {i} of /{name}: status {status:?}, {} of {} bytes",
                got.len(),
                want.len()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "parallel downloads failed:\n{}\n{}",
        failures.join("\n"),
        srv.tail()
    );

    // raw-socket checks: traversal spellings, malformed requests, HTTP/1.1
    run_script(&mut srv, "http_check.py", &[], Duration::from_secs(90));

    // the HTTP callback logged the request headers through lws_hdr_copy
    let log = srv.stderr();
    assert!(
        log.contains(&format!("Host: 127.0.0.1:{}", srv.port)),
        "test-server did not log the Host header from LWS_CALLBACK_HTTP:\n{}",
        srv.tail()
    );
    srv.stop_cleanly();
}

fn echo_suite(extpoll: bool) {
    let b = bins();
    let args: &[&str] = if extpoll { &["--extpoll"] } else { &[] };
    let mut srv = serve(&b.path("test-echo"), args);
    run_script(&mut srv, "echo_check.py", &[], Duration::from_secs(120));
    srv.stop_cleanly();
}

#[test]
fn websocket_echo_service_loop() {
    echo_suite(false);
}

#[test]
fn websocket_echo_extpoll() {
    echo_suite(true);
}

#[test]
fn close_handshake_and_closed_callback() {
    let b = bins();
    // also exercises --interface (an interface name, as in the original)
    let mut srv = serve(&b.path("test-echo"), &["--interface", "lo"]);
    let count = |s: &str| s.matches("LWS_CALLBACK_CLOSED").count();
    let before = count(&srv.stderr());
    run_script(
        &mut srv,
        "echo_check.py",
        &["--only", "close"],
        Duration::from_secs(60),
    );
    // the close check ends two connections: one websockets client, one raw
    let seen = srv.wait_for_stderr(|s| count(s) >= before + 2, Duration::from_secs(5));
    assert!(
        seen,
        "LWS_CALLBACK_CLOSED was not logged for both closed sessions:\n{}",
        srv.tail()
    );
    srv.stop_cleanly();
}

fn subprotocol_suite(extpoll: bool) {
    let b = bins();
    let args: &[&str] = if extpoll { &["--extpoll"] } else { &[] };
    let mut srv = serve(&b.path("test-server"), args);
    run_script(
        &mut srv,
        "subprotocol_check.py",
        &[],
        Duration::from_secs(120),
    );
    // the lagging reader made the mirror pause its sender and resume it later
    let log = srv.stderr();
    assert!(
        log.contains("mirror: a reader lags, pausing a sender")
            && log.contains("mirror: readers caught up, resuming senders"),
        "the mirror never paused and resumed a sender (rx flow control):\n{}",
        srv.tail()
    );
    srv.stop_cleanly();
}

#[test]
fn subprotocols_service_loop() {
    subprotocol_suite(false);
}

#[test]
fn subprotocols_extpoll() {
    subprotocol_suite(true);
}

#[test]
fn misbehaving_clients_and_timeouts_echo() {
    let b = bins();
    let mut srv = serve(&b.path("test-echo"), &[]);
    run_script(
        &mut srv,
        "robustness_check.py",
        &["--mode", "echo"],
        Duration::from_secs(90),
    );
    srv.stop_cleanly();
}

#[test]
fn misbehaving_clients_and_timeouts_test_server_extpoll() {
    let b = bins();
    let mut srv = serve(&b.path("test-server"), &["--extpoll"]);
    run_script(
        &mut srv,
        "robustness_check.py",
        &["--mode", "test-server"],
        Duration::from_secs(90),
    );
    srv.stop_cleanly();
}

#[test]
fn rx_flow_control() {
    let b = bins();
    let mut srv = serve(&b.path("server_flow"), &[]);
    run_script(
        &mut srv,
        "flow_check.py",
        &["--count", "50", "--pause-ms", "200"],
        Duration::from_secs(60),
    );
    let found = srv.wait_for_stderr(
        |s| s.contains("server_flow: closed"),
        Duration::from_secs(5),
    );
    let log = srv.stderr();
    assert!(found, "server_flow never logged the close:\n{}", srv.tail());
    let line = log
        .lines()
        .find(|l| l.contains("server_flow: closed"))
        .unwrap();
    let field = |k: &str| -> i64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k}= in {line:?}"))
    };
    assert_eq!(field("rx"), 50, "{line}");
    assert_eq!(field("pauses"), 50, "{line}");
    assert_eq!(
        field("violations"),
        0,
        "messages arrived while receiving was off: {line}"
    );
    assert!(field("resumes") >= 49, "{line}");
    assert!(
        field("min_gap_ms") >= 190,
        "a message arrived less than 200 ms after a pause: {line}"
    );
    srv.stop_cleanly();
}

/// RECEIVE hands out `in` with PRE padding before and POST padding plus a NUL after;
/// frames that arrived in the same read as the one being delivered must not be hurt by
/// an application that writes over all of that (and over the data) before returning.
#[test]
fn receive_buffer_padding_is_the_applications() {
    let b = bins();
    let mut srv = serve(&b.path("server_scribble"), &[]);
    run_script(
        &mut srv,
        "scribble_check.py",
        &["--count", "400"],
        Duration::from_secs(90),
    );
    let found = srv.wait_for_stderr(
        |s| s.contains("server_scribble: closed"),
        Duration::from_secs(5),
    );
    assert!(
        found,
        "server_scribble never logged the close:\n{}",
        srv.tail()
    );
    let log = srv.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("server_scribble: closed"))
        .unwrap();
    assert!(line.contains("rx=1600 "), "{line}");
    assert!(line.contains("nul_missing=0"), "{line}");
    srv.stop_cleanly();
}

#[test]
fn partial_writes_big_messages() {
    let b = bins();
    let mut srv = serve(&b.path("server_bigsend"), &[]);
    for proto in ["bigsend", "bigsend-buffered"] {
        run_script(
            &mut srv,
            "bigsend_check.py",
            &["--protocol", proto, "--delay", "0.1"],
            Duration::from_secs(150),
        );
        let done = format!("server_bigsend: done {proto} ");
        assert!(
            srv.wait_for_stderr(|s| s.contains(&done), Duration::from_secs(5)),
            "server_bigsend did not report finishing {proto}:\n{}",
            srv.tail()
        );
    }
    for l in srv
        .stderr()
        .lines()
        .filter(|l| l.contains("server_bigsend: done"))
    {
        eprintln!("{l}");
    }
    srv.stop_cleanly();
}

/// Runs `bin` under valgrind: `script` first, then live sessions held open by
/// hold_open.py (one per protocol, data in flight) while the server gets SIGTERM.
/// valgrind must report no error and nothing definitely lost.
fn valgrind_session(bin: &str, script: &str, script_args: &[&str], hold: &[&str]) {
    if !have("valgrind") {
        eprintln!("NOTICE: valgrind is not installed; valgrind check of {bin} skipped");
        return;
    }
    let b = bins();
    let logs = TempDir::new("valgrind");
    let vlog = logs.path().join("valgrind.log");
    let log_arg = format!("--log-file={}", vlog.display());
    let wrapper = [
        "valgrind",
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite",
        log_arg.as_str(),
    ];
    let mut srv = serve_wrapped(&wrapper, &b.path(bin), &[], Duration::from_secs(60));
    run_script(&mut srv, script, script_args, Duration::from_secs(120));

    // sessions still open (and busy) when the server is told to stop
    let mut cmd = python("tests/server/hold_open.py");
    cmd.arg("--port")
        .arg(srv.port.to_string())
        .args(["--seconds", "60"]);
    for p in hold {
        cmd.arg("--protocol").arg(p);
    }
    let holder = Background::start("hold_open.py", &mut cmd);
    assert!(
        holder.wait_for_stdout(|s| s.contains("holding"), Duration::from_secs(20)),
        "hold_open.py did not get its connections open:\n{}\n{}",
        holder.output(),
        srv.tail()
    );
    sleep(Duration::from_millis(300));

    let status = srv.stop(libc::SIGTERM, Duration::from_secs(60));
    drop(holder);
    let report = fs::read_to_string(&vlog).unwrap_or_default();
    let status = status
        .unwrap_or_else(|| panic!("{bin} under valgrind did not exit after SIGTERM:\n{report}"));
    assert_ne!(
        status.code(),
        Some(99),
        "valgrind reported errors:\n{report}"
    );
    assert!(
        status.success(),
        "{bin} under valgrind exited with {status}:\n{report}"
    );
    assert!(
        report.contains("definitely lost: 0 bytes") || report.contains("no leaks are possible"),
        "memory definitely lost:\n{report}"
    );
}

#[test]
fn valgrind_echo_session() {
    valgrind_session(
        "test-echo",
        "echo_check.py",
        &["--quick", "--timeout", "60"],
        &["echo", "echo"],
    );
}

#[test]
fn valgrind_test_server_session() {
    valgrind_session(
        "test-server",
        "subprotocol_check.py",
        &[
            "--only",
            "dumb_increment,mirror,no_subprotocol",
            "--timeout",
            "60",
        ],
        &[
            "dumb-increment-protocol",
            "lws-mirror-protocol",
            "lws-mirror-protocol",
        ],
    );
}
