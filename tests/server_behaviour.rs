//! Server behaviour through real sockets on 127.0.0.1.
//!
//! Builds examples/test-server.c, examples/test-echo.c and tests/c/servers/*.c against
//! include/libwebsockets.h and the freshest libwebsockets.so under target/ into
//! target/ctests/server-behaviour/, starts them on free ports and drives them with curl
//! and the Python scripts in tests/server (`pip install -r tests/requirements.txt`).
//!
//! Every process is started by this file, recorded by PID and killed when its guard
//! drops; every wait has a deadline.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

// ------------------------------------------------------------------ locations

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/ (the test executable lives in target/<profile>/deps/).
fn target_dir() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        if let Some(t) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            if t.join("ctests").exists() || t.join("release").exists() || t.join("debug").exists() {
                return t.to_path_buf();
            }
        }
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
}

/// The directory holding the newest libwebsockets.so (release or debug), or
/// LWS_LIB_DIR when set.
fn lib_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LWS_LIB_DIR") {
        return PathBuf::from(d);
    }
    let t = target_dir();
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for profile in ["release", "debug"] {
        let so = t.join(profile).join("libwebsockets.so");
        if let Ok(m) = fs::metadata(&so).and_then(|m| m.modified()) {
            if best.as_ref().is_none_or(|(bm, _)| m > *bm) {
                best = Some((m, t.join(profile)));
            }
        }
    }
    best.map(|(_, p)| p).unwrap_or_else(|| {
        panic!(
            "no libwebsockets.so under {}: run cargo build --release",
            t.display()
        )
    })
}

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
    let r = BINS.get_or_init(|| {
        let root = repo();
        let out = target_dir().join("ctests").join("server-behaviour");
        fs::create_dir_all(&out).map_err(|e| e.to_string())?;
        let lib = lib_dir();
        eprintln!("server_behaviour: linking against {}", lib.display());
        let html = root.join("examples").join("test.html");
        let sources = [
            ("test-server", root.join("examples/test-server.c")),
            ("test-echo", root.join("examples/test-echo.c")),
            ("server_flow", root.join("tests/c/servers/server_flow.c")),
            (
                "server_bigsend",
                root.join("tests/c/servers/server_bigsend.c"),
            ),
        ];
        for (name, src) in sources {
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let output = Command::new(cc)
                .args(["-Wall", "-Werror", "-O1", "-g"])
                .arg(format!("-I{}", root.join("include").display()))
                .arg(format!("-DLWS_TEST_HTML=\"{}\"", html.display()))
                .arg("-o")
                .arg(out.join(name))
                .arg(&src)
                .arg(format!("-L{}", lib.display()))
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lwebsockets")
                .output()
                .map_err(|e| format!("cannot run the C compiler: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "compiling {} failed:\n{}",
                    src.display(),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
        }
        Ok(Bins { dir: out })
    });
    match r {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    }
}

fn python_ready() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let out = Command::new("python3")
            .args(["-c", "import websockets.asyncio.client"])
            .output()
            .map_err(|e| format!("python3 not runnable: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "python3 cannot import websockets (pip install -r tests/requirements.txt): {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

// ------------------------------------------------------------------ temp dirs

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "lws-sb-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ------------------------------------------------------------------ processes

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A server process: killed by PID when dropped.
struct Server {
    name: String,
    child: Child,
    port: u16,
    stderr_path: PathBuf,
    _dir: TempDir,
}

impl Server {
    fn start(bin: &Path, args: &[&str]) -> Server {
        Self::start_wrapped(&[], bin, args, Duration::from_secs(10))
    }

    /// `wrapper` is a command put in front of the binary (valgrind).
    fn start_wrapped(
        wrapper: &[&str],
        bin: &Path,
        args: &[&str],
        ready_within: Duration,
    ) -> Server {
        let name = bin.file_name().unwrap().to_string_lossy().into_owned();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let dir = TempDir::new(&name);
            let stderr_path = dir.path().join("stderr.log");
            let stdout_path = dir.path().join("stdout.log");
            let port = free_port();
            let mut cmd = if wrapper.is_empty() {
                Command::new(bin)
            } else {
                let mut c = Command::new(wrapper[0]);
                c.args(&wrapper[1..]).arg(bin);
                c
            };
            // cargo test puts target/<profile> on LD_LIBRARY_PATH, which beats the rpath
            cmd.env("LD_LIBRARY_PATH", lib_dir());
            cmd.arg("--port")
                .arg(port.to_string())
                .args(args)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(fs::File::create(&stdout_path).unwrap())
                .stderr(fs::File::create(&stderr_path).unwrap());
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
            let mut s = Server {
                name: name.clone(),
                child,
                port,
                stderr_path,
                _dir: dir,
            };
            if s.wait_listening(ready_within) {
                return s;
            }
            let log = s.stderr();
            let exited = s.child.try_wait().ok().flatten();
            s.kill();
            // an early exit may mean the port was taken meanwhile: try another one
            if attempt >= 3 || exited.is_none() {
                panic!("{name} did not start listening on port {port} (exit: {exited:?}); stderr:\n{log}");
            }
        }
    }

    fn wait_listening(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            sleep(Duration::from_millis(50));
        }
        false
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn stderr(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    fn tail(&self) -> String {
        let s = self.stderr();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    fn assert_running(&mut self, context: &str) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!(
                "{} died ({st}) {context}; stderr:\n{}",
                self.name,
                self.tail()
            );
        }
    }

    /// SIGTERM, then up to `within` for it to exit (SIGKILL after that).
    fn terminate(&mut self, within: Duration) -> Option<ExitStatus> {
        if let Ok(Some(st)) = self.child.try_wait() {
            return Some(st);
        }
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st);
            }
            sleep(Duration::from_millis(50));
        }
        self.kill();
        None
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            sleep(Duration::from_millis(20));
        }
    }

    fn wait_for_stderr(&self, pred: impl Fn(&str) -> bool, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if pred(&self.stderr()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(50));
        }
    }

    /// Terminates with SIGTERM and asserts a clean exit.
    fn stop_cleanly(mut self) {
        let st = self.terminate(Duration::from_secs(10));
        match st {
            Some(st) if st.success() => {}
            other => panic!(
                "{} did not exit cleanly on SIGTERM ({other:?}); stderr:\n{}",
                self.name,
                self.tail()
            ),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

struct Outcome {
    ok: bool,
    output: String,
}

/// Runs a command with a deadline, output captured through a file.
fn run_bounded(cmd: &mut Command, within: Duration) -> Outcome {
    let dir = TempDir::new("run");
    let out_path = dir.path().join("out.log");
    let out = fs::File::create(&out_path).unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        sleep(Duration::from_millis(25));
    };
    let mut output = fs::read_to_string(&out_path).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!("\n[killed after {} s]\n", within.as_secs()));
    }
    Outcome {
        ok: status.is_some_and(|s| s.success()),
        output,
    }
}

/// Runs tests/server/<script> against a server and asserts that every check passed.
fn run_script(server: &mut Server, script: &str, args: &[&str], within: Duration) -> String {
    python_ready();
    let path = repo().join("tests/server").join(script);
    let mut cmd = Command::new("python3");
    cmd.arg("-u")
        .arg(&path)
        .arg("--port")
        .arg(server.port.to_string())
        .args(args);
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let o = run_bounded(&mut cmd, within);
    eprintln!(
        "--- {script} {args:?} against {} ---\n{}",
        server.name, o.output
    );
    if !o.ok {
        panic!(
            "{script} {args:?} failed against {}:\n{}\n--- server stderr (tail) ---\n{}",
            server.name,
            o.output,
            server.tail()
        );
    }
    server.assert_running(&format!("after {script}"));
    o.output
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
    let out = curl(url, extra, &dest)
        .output()
        .expect("curl is needed for these tests");
    finish_curl(out, &dest)
}

fn finish_curl(out: std::process::Output, dest: &Path) -> CurlResult {
    let w = String::from_utf8_lossy(&out.stdout).to_string();
    let mut it = w.splitn(2, ' ');
    CurlResult {
        code: it.next().unwrap_or("").to_string(),
        content_type: it.next().unwrap_or("").trim().to_string(),
        body: fs::read(dest).unwrap_or_default(),
        ok: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Deterministic pseudo-random bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
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

    let mut srv = Server::start(
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
    let mut srv = Server::start(&b.path("test-echo"), args);
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
    let mut srv = Server::start(&b.path("test-echo"), &["--interface", "lo"]);
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
    let mut srv = Server::start(&b.path("test-server"), args);
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
    let mut srv = Server::start(&b.path("test-echo"), &[]);
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
    let mut srv = Server::start(&b.path("test-server"), &["--extpoll"]);
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
    let mut srv = Server::start(&b.path("server_flow"), &[]);
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

#[test]
fn partial_writes_big_messages() {
    let b = bins();
    let mut srv = Server::start(&b.path("server_bigsend"), &[]);
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

/// A child process that is killed when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let mut srv = Server::start_wrapped(&wrapper, &b.path(bin), &[], Duration::from_secs(60));
    run_script(&mut srv, script, script_args, Duration::from_secs(120));

    // sessions still open (and busy) when the server is told to stop
    let hold_out = logs.path().join("hold.log");
    let mut cmd = Command::new("python3");
    cmd.arg("-u")
        .arg(repo().join("tests/server/hold_open.py"))
        .arg("--port")
        .arg(srv.port.to_string())
        .args(["--seconds", "60"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&hold_out).unwrap())
        .stderr(Stdio::null());
    for p in hold {
        cmd.arg("--protocol").arg(p);
    }
    let holder = ChildGuard(cmd.spawn().expect("python3"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&hold_out)
        .unwrap_or_default()
        .contains("holding")
    {
        assert!(
            Instant::now() < deadline,
            "hold_open.py did not get its connections open:\n{}",
            srv.tail()
        );
        sleep(Duration::from_millis(50));
    }
    sleep(Duration::from_millis(300));

    let status = srv.terminate(Duration::from_secs(60));
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
