//! Compression extensions (permessage-deflate, RFC 7692, and deflate-frame) end to end
//! over 127.0.0.1, plus the zip-bomb limit at the engine level.
//!
//! Builds examples/test-echo.c (which registers `libwebsocket_get_internal_extensions()`)
//! and tests/ext/client_pmd.c against include/libwebsockets.h and the freshest
//! libwebsockets.so under target/ into target/ctests/ext/, and drives them with the
//! Python scripts in tests/ext (`pip install -r tests/requirements.txt`: the `websockets`
//! library, which negotiates permessage-deflate by default, plus raw-socket helpers).
//!
//! Every process is started here, recorded by PID and killed when its guard drops;
//! every wait has a deadline. The Autobahn groups 12 and 13 run in their own test
//! function (several minutes) so that the others can run alongside.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{self, sleep};
use std::time::{Duration, Instant, SystemTime};

use flate2::{Compress, Compression, FlushCompress};
use websockets::engine::extensions::deflate_frame::DeflateFrameSession;
use websockets::engine::extensions::pmd::{PmdError, PmdParams, PmdSession, Role};

// ------------------------------------------------------------------ locations

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    // the test executable lives in target/<profile>/deps/
    if let Ok(exe) = std::env::current_exe() {
        if let Some(t) = exe.parent().and_then(Path::parent).and_then(Path::parent) {
            if t.join("release").exists() || t.join("debug").exists() {
                return t.to_path_buf();
            }
        }
    }
    repo().join("target")
}

/// LWS_LIB_DIR, else the target/<profile> holding the newest libwebsockets.so.
fn lib_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LWS_LIB_DIR") {
        return PathBuf::from(d);
    }
    let t = target_dir();
    let mut best: Option<(SystemTime, PathBuf)> = None;
    for profile in ["release", "debug"] {
        let so = t.join(profile).join("libwebsockets.so");
        if let Ok(m) = fs::metadata(&so).and_then(|m| m.modified()) {
            if best.as_ref().is_none_or(|(b, _)| m > *b) {
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

fn out_dir() -> PathBuf {
    target_dir().join("ctests").join("ext")
}

fn script(name: &str) -> PathBuf {
    repo().join("tests").join("ext").join(name)
}

struct Programs {
    echo: PathBuf,
    client: PathBuf,
}

/// Compiles examples/test-echo.c and tests/ext/client_pmd.c once per test run.
fn programs() -> &'static Programs {
    static P: OnceLock<Result<Programs, String>> = OnceLock::new();
    let r = P.get_or_init(|| {
        let out = out_dir();
        fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let lib = lib_dir();
        eprintln!("extensions_behaviour: linking against {}", lib.display());
        let compile = |src: &str, name: &str| -> Result<PathBuf, String> {
            let bin = out.join(name);
            let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
            let o = Command::new(cc)
                .args(["-Wall", "-Werror", "-O1", "-g"])
                .arg(format!("-I{}", repo().join("include").display()))
                .arg("-o")
                .arg(&bin)
                .arg(repo().join(src))
                .arg(format!("-L{}", lib.display()))
                .arg(format!("-Wl,-rpath,{}", lib.display()))
                .arg("-lwebsockets")
                .output()
                .map_err(|e| format!("cannot run the C compiler: {e}"))?;
            if !o.status.success() {
                return Err(format!(
                    "compiling {src} failed:\n{}",
                    String::from_utf8_lossy(&o.stderr)
                ));
            }
            Ok(bin)
        };
        Ok(Programs {
            echo: compile("examples/test-echo.c", "test-echo")?,
            client: compile("tests/ext/client_pmd.c", "client_pmd")?,
        })
    });
    match r {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn python_ready() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let o = Command::new("python3")
            .args([
                "-c",
                "import websockets, websockets.asyncio.client, websockets.extensions.permessage_deflate as p; \
                 assert int(websockets.__version__.split('.')[0]) >= 13, websockets.__version__",
            ])
            .output()
            .map_err(|e| format!("python3 not runnable: {e}"))?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "python3 lacks websockets >= 13 (pip install -r tests/requirements.txt): {}",
                String::from_utf8_lossy(&o.stderr)
            ))
        }
    });
    if let Err(e) = r {
        panic!("{e}");
    }
}

// ------------------------------------------------------------------ scratch files

fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = out_dir().join("run").join(format!(
        "{}-{}-{}",
        tag,
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&p);
    fs::create_dir_all(&p).unwrap();
    p
}

// ------------------------------------------------------------------ processes

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child by its PID (SIGKILL) and reaps it, within a bounded time.
fn kill_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = child.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        sleep(Duration::from_millis(20));
    }
}

/// examples/test-echo on a free port; killed by PID when dropped.
struct Echo {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Echo {
    fn start(args: &[&str]) -> Echo {
        let bin = &programs().echo;
        for attempt in 1..=3 {
            let dir = scratch("echo");
            let log = dir.join("stderr.log");
            let port = free_port();
            let child = Command::new(bin)
                .arg("--port")
                .arg(port.to_string())
                .args(args)
                // cargo test puts target/<profile>/deps first, which beats the rpath
                .env("LD_LIBRARY_PATH", lib_dir())
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut e = Echo { child, port, log };
            if e.wait_listening(Duration::from_secs(10)) {
                return e;
            }
            let exited = e.child.try_wait().ok().flatten();
            kill_child(&mut e.child);
            if attempt == 3 || exited.is_none() {
                panic!(
                    "test-echo did not listen on {port} (exit {exited:?}):\n{}",
                    e.log_tail()
                );
            }
        }
        unreachable!()
    }

    fn wait_listening(&mut self, within: Duration) -> bool {
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return true;
            }
            sleep(Duration::from_millis(30));
        }
        false
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let s = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn assert_alive(&mut self, when: &str) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("test-echo died ({st}) {when}:\n{}", self.log_tail());
        }
    }

    /// (VmRSS, VmHWM) in bytes.
    fn memory(&self) -> (u64, u64) {
        proc_memory(self.pid())
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

fn proc_memory(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Finished {
    ok: bool,
    output: String,
}

/// Runs a command to its end or kills it after `within`; output through a file.
fn run_bounded(cmd: &mut Command, within: Duration) -> Finished {
    run_bounded_opt(cmd, within, false)
}

/// As `run_bounded`; with `group` the command leads a process group of its own, and
/// the whole group (its ID is the child's PID) is killed at the deadline, so that
/// grandchildren (wstest under the Autobahn runner) do not outlive the test.
fn run_bounded_opt(cmd: &mut Command, within: Duration, group: bool) -> Finished {
    use std::os::unix::process::CommandExt;
    let dir = scratch("run");
    let path = dir.join("out.log");
    let f = fs::File::create(&path).unwrap();
    if group {
        cmd.process_group(0);
    }
    let mut child = cmd
        .env("LD_LIBRARY_PATH", lib_dir())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + within;
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() >= deadline {
            if group {
                let pgid = child.id() as libc::pid_t;
                // SAFETY: plain kill(2) on the process group this function created
                unsafe {
                    libc::kill(-pgid, libc::SIGTERM);
                }
                sleep(Duration::from_secs(2));
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
            kill_child(&mut child);
            break None;
        }
        sleep(Duration::from_millis(25));
    };
    let mut output = fs::read_to_string(&path).unwrap_or_default();
    if status.is_none() {
        output.push_str(&format!("\n[killed after {} s]\n", within.as_secs()));
    }
    let _ = fs::remove_dir_all(&dir);
    Finished {
        ok: status.is_some_and(|s| s.success()),
        output,
    }
}

/// Runs tests/ext/<name> against `echo` and asserts that all its checks passed
/// (exit 0 and a closing "<script>: N passed, 0 failed").
fn run_script(echo: &mut Echo, name: &str, args: &[&str], within: Duration) -> String {
    python_ready();
    let mut cmd = Command::new("python3");
    cmd.arg("-u")
        .arg(script(name))
        .arg("--port")
        .arg(echo.port.to_string())
        .args(args);
    let f = run_bounded(&mut cmd, within);
    eprintln!("--- {name} {args:?} ---\n{}", f.output);
    let stem = name.trim_end_matches(".py");
    let closing = f
        .output
        .lines()
        .rev()
        .find(|l| l.starts_with(&format!("{stem}: ")))
        .unwrap_or("");
    assert!(
        f.ok && closing.ends_with(" 0 failed") && !closing.contains(": 0 passed"),
        "{name} {args:?} failed:\n{}\n--- test-echo stderr (tail) ---\n{}",
        f.output,
        echo.log_tail()
    );
    echo.assert_alive(&format!("after {name}"));
    f.output
}

/// Reads a child's stdout lines on a thread: they go to a channel and to a shared log.
fn line_reader(child: &mut Child) -> (Receiver<String>, Arc<Mutex<Vec<String>>>) {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = channel();
    let all = Arc::new(Mutex::new(Vec::new()));
    let all2 = Arc::clone(&all);
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            all2.lock().unwrap().push(line.clone());
            let _ = tx.send(line);
        }
    });
    (rx, all)
}

/// Waits for a line starting with `prefix`.
fn wait_line(rx: &Receiver<String>, prefix: &str, within: Duration) -> Option<String> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.starts_with(prefix) => return Some(l),
            Ok(_) => continue,
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

// ------------------------------------------------------------------ 1. server side

/// Python `websockets` client with compression against test-echo: text and binary
/// 0 B .. 16 MiB, compressed fragments, many messages, context takeover, every
/// no_context_takeover / window-bits combination (response checked against
/// RFC 7692 7.1 and the offer).
#[test]
fn server_pmd_echo_with_python_client() {
    let mut echo = Echo::start(&[]);
    run_script(&mut echo, "pmd_echo.py", &[], Duration::from_secs(170));
}

// ------------------------------------------------------------------ 2. negotiation

/// Raw-socket offers: bad ones declined with a plain 101, a good offer after a bad
/// one taken, deflate-frame names answered, one compression extension at most; a
/// --no-extensions server ignores every offer.
#[test]
fn server_negotiation_edge_cases() {
    let mut echo = Echo::start(&[]);
    let plain = Echo::start(&["--no-extensions"]);
    let port = plain.port.to_string();
    run_script(
        &mut echo,
        "negotiate_raw.py",
        &["--plain-port", &port],
        Duration::from_secs(60),
    );
}

// ------------------------------------------------------------------ 3. hand-made frames

/// Corrupt streams (1007), RSV1 on continuations (1002), RSV2/RSV3 (1002), bad UTF-8
/// after inflating (1007), plain messages on a pmd connection, BFINAL blocks,
/// 1-byte frames, pings between compressed fragments.
#[test]
fn server_hand_made_frames() {
    let mut echo = Echo::start(&[]);
    run_script(
        &mut echo,
        "frames_raw.py",
        &[
            "--only",
            "plain-ok,tiny-frames,bfinal,empty,corrupt,rsv1-cont,rsv23,utf8",
        ],
        Duration::from_secs(60),
    );
}

/// RSV1 on ping, pong and close frames of a connection with permessage-deflate must
/// fail the connection with 1002 (RFC 7692 6.1 defines RSV1 for data messages only;
/// RFC 6455 5.2 forbids other non-zero RSV bits).
#[test]
fn server_rsv1_on_control_frames_closes_1002() {
    let mut echo = Echo::start(&[]);
    run_script(
        &mut echo,
        "frames_raw.py",
        &["--only", "rsv1-control"],
        Duration::from_secs(60),
    );
}

/// A 257 MiB message of zeros, compressed to about 260 KB, sent to test-echo: the
/// server closes with 1009 at its 256 MiB message limit. (There is no knob to lower
/// the limit yet; see `pmd_session_zip_bomb_stops_at_the_limit` for a small limit.)
#[test]
fn server_zip_bomb_closes_1009() {
    let mut echo = Echo::start(&[]);
    run_script(
        &mut echo,
        "frames_raw.py",
        &["--only", "bomb", "--bomb"],
        Duration::from_secs(90),
    );
    let (rss, hwm) = echo.memory();
    eprintln!(
        "zip bomb: test-echo VmHWM {} MiB, VmRSS after {} MiB (the echo app itself \
         buffers the message up to the limit)",
        hwm >> 20,
        rss >> 20
    );
    // 256 MiB of message in the application plus the library's share: far below this
    assert!(
        hwm < 1 << 30,
        "test-echo peaked at {} MiB for a bomb",
        hwm >> 20
    );
    // still serving
    run_script(
        &mut echo,
        "frames_raw.py",
        &["--only", "plain-ok"],
        Duration::from_secs(30),
    );
}

// ------------------------------------------------------------------ zip bomb, engine level

/// Raw DEFLATE of `total` bytes of `byte`, sync-flushed, `00 00 ff ff` removed.
fn deflate_raw(total: usize, byte: u8) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(9), false, 15);
    let block = vec![byte; 1 << 20];
    let mut out: Vec<u8> = Vec::with_capacity(total / 512 + 4096);
    let mut left = total;
    while left > 0 {
        let n = left.min(block.len());
        let mut input = &block[..n];
        while !input.is_empty() {
            if out.capacity() - out.len() < 4096 {
                out.reserve(1 << 16);
            }
            let before = c.total_in();
            c.compress_vec(input, &mut out, FlushCompress::None)
                .unwrap();
            input = &input[(c.total_in() - before) as usize..];
        }
        left -= n;
    }
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(1 << 16);
        }
        c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
        if out.capacity() - out.len() >= 64 {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "no sync tail");
    out.truncate(out.len() - 4);
    out
}

/// PmdSession with a 1 MiB limit, as the server uses it with its message limit:
/// a 64 MiB bomb (about 64 KB compressed) fails with TooBig (close 1009) having
/// produced at most limit + 1 bytes, whether it comes in one frame or in many;
/// exactly the limit passes, one byte more fails; the limit is per message; the
/// session stays failed; corrupt data is Corrupt (1007). The same for deflate-frame.
#[test]
fn pmd_session_zip_bomb_stops_at_the_limit() {
    const LIMIT: usize = 1 << 20;
    let bomb = deflate_raw(64 << 20, 0);
    assert!(bomb.len() < 200_000, "bomb is {} bytes", bomb.len());

    // one frame
    let start = Instant::now();
    let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    let mut out = Vec::new();
    let r = s.decompress_fragment(&bomb, true, &mut out);
    assert_eq!(r, Err(PmdError::TooBig));
    assert_eq!(PmdError::TooBig.close_code(), 1009);
    assert!(out.len() <= LIMIT + 1, "produced {} bytes", out.len());
    assert!(
        out.capacity() <= LIMIT + 64 * 1024,
        "output buffer grew to {} bytes",
        out.capacity()
    );
    eprintln!(
        "bomb of {} compressed bytes stopped after {} output bytes in {:?}",
        bomb.len(),
        out.len(),
        start.elapsed()
    );
    // poisoned: the connection is failed anyway, nothing more is inflated
    let mut more = Vec::new();
    assert_eq!(
        s.decompress_fragment(&deflate_raw(10, b'a'), true, &mut more),
        Err(PmdError::TooBig)
    );
    assert!(more.is_empty());

    // many fragments: fails before the end, never holding more than the limit
    let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = bomb.chunks(1024).collect();
    let mut failed_at = None;
    for (i, p) in pieces.iter().enumerate() {
        match s.decompress_fragment(p, i + 1 == pieces.len(), &mut out) {
            Ok(()) => assert!(out.len() <= LIMIT, "{} bytes after fragment {i}", out.len()),
            Err(e) => {
                assert_eq!(e, PmdError::TooBig);
                failed_at = Some(i);
                break;
            }
        }
    }
    let at = failed_at.expect("fragmented bomb accepted");
    assert!(at + 1 < pieces.len(), "failed only at the last fragment");
    assert!(out.len() <= LIMIT + 1);

    // exactly the limit, and one byte more
    for (len, want_ok) in [(LIMIT, true), (LIMIT + 1, false)] {
        let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
        let mut out = Vec::new();
        let r = s.decompress_fragment(&deflate_raw(len, b'z'), true, &mut out);
        assert_eq!(r.is_ok(), want_ok, "message of {len} bytes: {r:?}");
        if want_ok {
            assert_eq!(out.len(), LIMIT);
            assert!(out.iter().all(|&b| b == b'z'));
        }
    }

    // the limit is per message: three messages of 3/4 of it each, context kept
    let mut tx = PmdSession::new(Role::Client, PmdParams::default(), LIMIT);
    let mut rx = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    for i in 0..3u8 {
        let msg = vec![b'a' + i; LIMIT * 3 / 4];
        let mut wire = Vec::new();
        tx.compress_message(&msg, &mut wire).unwrap();
        let mut out = Vec::new();
        rx.decompress_fragment(&wire, true, &mut out)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(out, msg);
    }

    // corrupt
    let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    let r = s.decompress_fragment(&[0x07, 0xff, 0xff, 0xff], true, &mut Vec::new());
    assert_eq!(r, Err(PmdError::Corrupt));
    assert_eq!(PmdError::Corrupt.close_code(), 1007);

    // deflate-frame: the limit applies to each frame
    let mut df = DeflateFrameSession::new(LIMIT);
    let mut out = Vec::new();
    assert_eq!(df.decompress_frame(&bomb, &mut out), Err(PmdError::TooBig));
    assert!(out.len() <= LIMIT + 1);
    assert!(out.capacity() <= LIMIT + 64 * 1024);
}

// ------------------------------------------------------------------ 4. deflate-frame

/// A small deflate-frame client (per-frame raw deflate, RSV1 per frame, context kept)
/// against test-echo, under both names.
#[test]
fn server_deflate_frame_interop() {
    let mut echo = Echo::start(&[]);
    run_script(&mut echo, "dframe_client.py", &[], Duration::from_secs(60));
}

/// deflate-frame: a message of two compressed frames, each inflating to 129 MiB (below
/// the 256 MiB limit on its own), is over the message limit: close 1009 rather than
/// delivering 258 MiB to the application.
///
/// BUG (found by this test): ws_rx.rs inflates deflate-frame frames with the message
/// limit per frame (`DeflateFrameSession::decompress_frame`), so the application gets
/// all 258 MiB. Ignored until fixed; run with `cargo test --release --test
/// extensions_behaviour -- --ignored deflate_frame_message_limit`.
#[test]
fn server_deflate_frame_message_limit_closes_1009() {
    let mut echo = Echo::start(&[]);
    run_script(
        &mut echo,
        "dframe_client.py",
        &["--only", "df-limit", "--limit"],
        Duration::from_secs(90),
    );
}

// ------------------------------------------------------------------ 5. client side

/// tests/ext/pmd_server.py: Python `websockets` echo servers (compression with
/// websockets' defaults, 15-bit, no-context-takeover with 10/9-bit windows, and
/// none). Killed by PID when dropped.
struct PyServer {
    child: Child,
    ports: Vec<(String, u16)>,
    lines: Arc<Mutex<Vec<String>>>,
    rx: Receiver<String>,
}

impl PyServer {
    fn start() -> PyServer {
        python_ready();
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(script("pmd_server.py"))
            .args(["--lifetime", "240"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start pmd_server.py");
        let (rx, lines) = line_reader(&mut child);
        let Some(line) = wait_line(&rx, "ports ", Duration::from_secs(20)) else {
            kill_child(&mut child);
            panic!("pmd_server.py did not report its ports");
        };
        let ports = line
            .trim_start_matches("ports ")
            .split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        PyServer {
            child,
            ports,
            lines,
            rx,
        }
    }

    fn port(&self, name: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.ports))
    }

    /// The "closed listener=NAME path=PATH ..." line of one finished connection.
    fn closed_line(&self, listener: &str, path: &str) -> String {
        let want = format!("closed listener={listener} path={path} ");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(&want))
            {
                return l.clone();
            }
            assert!(
                Instant::now() < deadline,
                "pmd_server.py never logged the end of {listener} {path}; its lines: {:?}",
                self.lines.lock().unwrap()
            );
            // drain the channel so the reader thread never blocks
            while self.rx.try_recv().is_ok() {}
            sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// "key=value" of a pmd_server.py line (values are up to the next " key=").
fn field(line: &str, key: &str) -> String {
    let keys = [
        "listener=",
        " path=",
        " offer=",
        " reply=",
        " msgs=",
        " rsv1=",
        " code=",
    ];
    let pat = if key == "listener" {
        "listener=".to_string()
    } else {
        format!(" {key}=")
    };
    let Some(i) = line.find(&pat) else {
        return String::new();
    };
    let rest = &line[i + pat.len()..];
    let end = keys
        .iter()
        .filter_map(|k| rest.find(k))
        .min()
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

fn run_client(args: &[String], within: Duration) -> Finished {
    run_bounded(Command::new(&programs().client).args(args), within)
}

/// Number of whole (non-fragmented) messages client_pmd sends, which the library
/// compresses, and of all its messages (with --max 1048576).
const CLIENT_MSGS: u32 = 70;
const CLIENT_FRAGMENTED: u32 = 3;

/// tests/ext/client_pmd.c with the internal extensions against Python servers: with
/// compression on, permessage-deflate is negotiated (seen by the server) and every
/// whole message arrives compressed, also under the nct listener's no-context-takeover
/// and 9/10-bit windows (which a client ignoring them cannot pass); echoes also come
/// back as compressed fragments; with compression off the echo still works without
/// extension; and against test-echo.
#[test]
fn client_pmd_against_python_servers() {
    let py = PyServer::start();
    let runs = [
        ("default", "/default-ext"),
        ("full", "/full-ext"),
        ("nct", "/nct-ext"),
        ("plain", "/plain-ext"),
        // echoes come back in three (compressed) fragments
        ("default", "/frag-default"),
        ("nct", "/frag-nct"),
        ("plain", "/frag-plain"),
    ];
    for (listener, path) in runs {
        let path = path.to_string();
        let f = run_client(
            &[
                "--port".into(),
                py.port(listener).to_string(),
                "--path".into(),
                path.clone(),
            ],
            Duration::from_secs(70),
        );
        eprintln!("--- client_pmd against {listener} ---\n{}", f.output);
        assert!(
            f.ok && f
                .output
                .contains("client_pmd: 70 messages, 0 failed checks"),
            "client_pmd against {listener}:\n{}",
            f.output
        );
        let line = py.closed_line(listener, &path);
        eprintln!("{line}");
        let offer = field(&line, "offer");
        let reply = field(&line, "reply");
        assert!(
            offer.contains("permessage-deflate; client_max_window_bits"),
            "{listener}: offer {offer:?}"
        );
        assert_eq!(field(&line, "msgs"), CLIENT_MSGS.to_string(), "{line}");
        if listener == "plain" {
            assert_eq!(reply, "-", "{line}");
            assert_eq!(field(&line, "rsv1"), "0", "{line}");
        } else {
            assert!(reply.starts_with("permessage-deflate"), "{line}");
            assert_eq!(
                field(&line, "rsv1"),
                (CLIENT_MSGS - CLIENT_FRAGMENTED).to_string(),
                "{listener}: whole messages must go out compressed, fragmented ones plain: {line}"
            );
        }
        assert!(
            ["1000", "1005"].contains(&field(&line, "code").as_str()),
            "{line}"
        );
    }
    // without extensions registered nothing is offered
    let f = run_client(
        &[
            "--port".into(),
            py.port("default").to_string(),
            "--path".into(),
            "/no-ext".into(),
            "--no-extensions".into(),
            "--expect-rsv1".into(),
            "no".into(),
        ],
        Duration::from_secs(70),
    );
    assert!(f.ok, "client_pmd --no-extensions:\n{}", f.output);
    let line = py.closed_line("default", "/no-ext");
    assert_eq!(field(&line, "offer"), "-", "{line}");
    assert_eq!(field(&line, "rsv1"), "0", "{line}");

    // the library's client against the library's server (deflate-frame or pmd)
    let mut echo = Echo::start(&[]);
    let f = run_client(
        &[
            "--port".into(),
            echo.port.to_string(),
            "--path".into(),
            "/".into(),
        ],
        Duration::from_secs(70),
    );
    assert!(f.ok, "client_pmd against test-echo:\n{}", f.output);
    echo.assert_alive("after client_pmd");
}

/// tests/ext/reply_server.py: answers each handshake with the extension value the
/// request path asks for, then echoes (inflating as agreed). Killed by PID on drop.
struct ReplyServer {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl ReplyServer {
    fn start() -> ReplyServer {
        python_ready();
        let mut child = Command::new("python3")
            .arg("-u")
            .arg(script("reply_server.py"))
            .args(["--lifetime", "240"])
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start reply_server.py");
        let (rx, lines) = line_reader(&mut child);
        let Some(line) = wait_line(&rx, "port ", Duration::from_secs(20)) else {
            kill_child(&mut child);
            panic!("reply_server.py did not report its port");
        };
        let port = line[5..].trim().parse().expect("port number");
        // the reader thread keeps filling `lines`; the channel is not needed any more
        drop(rx);
        ReplyServer { child, port, lines }
    }

    /// The "done ext=VALUE ..." line of the connection that asked for `ext`.
    fn done_line(&self, ext: &str) -> Option<String> {
        let want = format!("done ext={} offer=", if ext.is_empty() { "-" } else { ext });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.starts_with(&want))
            {
                return Some(l.clone());
            }
            sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ReplyServer {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The client's handling of the server's choice (reply_server.py answers with a
/// chosen Sec-WebSocket-Extensions): replies RFC 7692 allows are taken and honoured
/// (the client compresses within the granted window, resets its context when told;
/// the server inflates accordingly and would close 1007 otherwise); replies with bad
/// or unknown parameters, window bits outside 8..15, a valueless
/// client_max_window_bits, two compression extensions, or an extension never offered
/// fail the handshake (CLIENT_CONNECTION_ERROR once).
///
/// BUG (found by this test): `deflate-frame; max_window_bits=10` is accepted
/// (accept_client_response in src/io/extensions.rs does not call
/// `deflate_frame_client_accept_response`). Ignored until fixed; run with
/// `cargo test --release --test extensions_behaviour -- --ignored client_takes`.
#[test]
fn client_takes_only_valid_replies() {
    let srv = ReplyServer::start();
    let accepted = [
        "",
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits=9",
        "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=8",
        "deflate-frame",
    ];
    let refused = [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=1a",
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate, permessage-deflate",
        "deflate-frame, permessage-deflate",
        "permessage-deflate, deflate-frame",
        "deflate-frame; max_window_bits=10",
        "foo-unknown",
        "permessage-deflate;;",
    ];
    let mut bad = Vec::new();
    for (ext, refuse) in accepted
        .iter()
        .map(|e| (*e, false))
        .chain(refused.iter().map(|e| (*e, true)))
    {
        let mut args: Vec<String> = vec![
            "--port".into(),
            srv.port.to_string(),
            "--path".into(),
            format!("/?ext={}", url_encode(ext)),
            "--max".into(),
            "300000".into(),
        ];
        if refuse {
            args.push("--expect-error".into());
        }
        let f = run_client(&args, Duration::from_secs(70));
        let line = srv.done_line(ext).unwrap_or_default();
        let ok = f.ok
            && (refuse
                || (line.contains(" close=close ")
                    && (ext.is_empty() || !line.contains(" compressed=0 "))));
        eprintln!("reply {ext:?}: client ok={}, server: {line}", f.ok);
        if !ok {
            bad.push(format!(
                "reply {ext:?} ({}): {}\n  server: {line}",
                if refuse { "must fail" } else { "must work" },
                f.output
                    .lines()
                    .filter(|l| l.starts_with("FAIL"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The client's offer with the internal extensions: v1.23's deflate-frame vetoed the
/// `x-webkit-deflate-frame` name on the client side
/// (`LWS_EXT_CALLBACK_CHECK_OK_TO_PROPOSE_EXTENSION`, before the application's
/// CLIENT_CONFIRM_EXTENSION_SUPPORTED), so the offer is
/// `deflate-frame, permessage-deflate; client_max_window_bits` and the application is
/// asked about those two names only.
///
/// BUG (found by this test): client_offer() in src/io/extensions.rs offers every
/// entry, `x-webkit-deflate-frame` first. Ignored until fixed; run with
/// `cargo test --release --test extensions_behaviour -- --ignored client_offer`.
#[test]
fn client_offer_leaves_out_x_webkit_deflate_frame() {
    let py = PyServer::start();
    let f = run_client(
        &[
            "--port".into(),
            py.port("plain").to_string(),
            "--path".into(),
            "/offer".into(),
            "--max".into(),
            "1000".into(),
        ],
        Duration::from_secs(70),
    );
    assert!(f.ok, "client_pmd:\n{}", f.output);
    let line = py.closed_line("plain", "/offer");
    assert_eq!(
        field(&line, "offer"),
        "deflate-frame, permessage-deflate; client_max_window_bits",
        "{line}"
    );
    assert!(
        f.output
            .contains("offered: deflate-frame,permessage-deflate\n"),
        "names CLIENT_CONFIRM_EXTENSION_SUPPORTED was called with:\n{}",
        f.output
    );
}

/// `libwebsocket_get_reserved_bits()` in CLIENT_RECEIVE of a compressed message: v1.23
/// returns the header bits unshifted (`wsi->u.ws.rsv = c & 0x70`), so RSV1 is 0x40;
/// uncompressed messages give 0.
///
/// BUG (found by this test): src/capi/connection_exports.rs returns
/// `(rsv >> 4) & 7`, i.e. 0x04 for RSV1. Ignored until fixed; run with
/// `cargo test --release --test extensions_behaviour -- --ignored reserved_bits`.
#[test]
fn client_reserved_bits_match_v1_23() {
    let py = PyServer::start();
    for (listener, expect) in [("default", "yes"), ("plain", "no")] {
        let f = run_client(
            &[
                "--port".into(),
                py.port(listener).to_string(),
                "--path".into(),
                "/rsv".into(),
                "--expect-rsv1".into(),
                expect.into(),
            ],
            Duration::from_secs(70),
        );
        assert!(
            f.ok,
            "client_pmd --expect-rsv1 {expect} against {listener}:\n{}",
            f.output
        );
    }
}

// ------------------------------------------------------------------ 6. memory

/// Opens `count` idle connections with `offer` to a fresh test-echo (one message
/// echoed on each) and returns the server's RSS growth per connection in bytes.
fn idle_growth_per_conn(count: usize, offer: &str) -> f64 {
    python_ready();
    let mut echo = Echo::start(&["--debug", "0"]);
    // settle: one connection first, so lazily made buffers are counted in the base
    let _ = run_bounded(
        Command::new("python3").arg(script("idle_conns.py")).args([
            "--port",
            &echo.port.to_string(),
            "--count",
            "1",
            "--offer",
            offer,
            "--hold",
            "0",
        ]),
        Duration::from_secs(20),
    );
    sleep(Duration::from_millis(300));
    let (before, _) = echo.memory();
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(script("idle_conns.py"))
        .args([
            "--port",
            &echo.port.to_string(),
            "--count",
            &count.to_string(),
            "--offer",
            offer,
            "--hold",
            "60",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start idle_conns.py");
    let stdin: Option<ChildStdin> = child.stdin.take();
    let (rx, lines) = line_reader(&mut child);
    let ready = wait_line(&rx, "ready ", Duration::from_secs(60));
    let Some(ready) = ready else {
        kill_child(&mut child);
        panic!(
            "idle_conns.py ({offer}) never got ready: {:?}",
            lines.lock().unwrap()
        );
    };
    sleep(Duration::from_millis(500)); // let the last echoes' buffers go
    let (after, _) = echo.memory();
    echo.assert_alive("holding idle connections");
    drop(stdin); // EOF: the script closes its connections and exits
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        sleep(Duration::from_millis(50));
    }
    kill_child(&mut child);
    let want_neg = if offer == "none" { 0 } else { count };
    assert!(
        ready.contains(&format!("ready {count} negotiated={want_neg}")),
        "{offer}: {ready}"
    );
    let per = (after.saturating_sub(before)) as f64 / count as f64;
    eprintln!(
        "idle memory, {count} connections, offer {offer:?}: RSS {} -> {} KiB = {:.0} bytes/connection",
        before >> 10,
        after >> 10,
        per
    );
    per
}

/// 1000 idle connections after one compressed message each: RSS growth per
/// connection, reported; asserted below 1 MB only (a leak catcher, not a budget).
/// For comparison the same with no context takeover both ways and without compression.
#[test]
fn idle_compressed_connections_memory() {
    const N: usize = 1000;
    let pmd = idle_growth_per_conn(N, "permessage-deflate");
    let nct = idle_growth_per_conn(
        N,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    );
    let plain = idle_growth_per_conn(N, "none");
    let report = format!(
        "idle RSS per connection: permessage-deflate (context takeover) {pmd:.0} B, \
         no context takeover {nct:.0} B, no compression {plain:.0} B\n"
    );
    eprint!("{report}");
    let _ = fs::create_dir_all(out_dir());
    if let Ok(mut f) = fs::File::create(out_dir().join("idle-memory.txt")) {
        let _ = f.write_all(report.as_bytes());
    }
    assert!(pmd < 1e6, "{pmd:.0} bytes per idle compressed connection");
    assert!(nct < 1e6, "{nct:.0} bytes per idle nct connection");
}

// ------------------------------------------------------------------ 7. Autobahn 12, 13

/// Autobahn|Testsuite groups 12 (permessage-deflate payloads) and 13 (parameters)
/// against test-echo: 0 failed. Skipped with a notice when Autobahn is not installed
/// and CI is unset. Takes several minutes.
#[test]
fn autobahn_compression_groups_12_13() {
    let runner = repo().join("../shared/tools/autobahn/run-server-tests");
    if !runner.exists() || !Path::new("/opt/autobahn/venv/bin/wstest").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("Autobahn is not installed (.ci/run runs ../shared/tools/autobahn/setup)");
        }
        eprintln!("NOTICE: Autobahn not installed; skipping groups 12 and 13");
        return;
    }
    let mut echo = Echo::start(&["--debug", "0"]);
    let report = out_dir().join("autobahn-12-13");
    // wstest (CPython 2.7) is the bottleneck: 216 cases took 27 min on a 2-core
    // machine shared with other jobs, the slowest case 92 s, hence the generous
    // per-case limit (the runner's default is 120 s).
    let f = run_bounded_opt(
        Command::new(&runner)
            .arg(format!("ws://127.0.0.1:{}/", echo.port))
            .arg("12.*,13.*")
            .arg("--outdir")
            .arg(&report)
            .arg("--timeout")
            .arg("2400")
            .arg("--case-timeout")
            .arg("600"),
        Duration::from_secs(2500),
        true,
    );
    println!("{}", f.output);
    let summary = f
        .output
        .lines()
        .rev()
        .find(|l| l.starts_with("autobahn-server:"))
        .unwrap_or("no summary line")
        .to_string();
    echo.assert_alive("after Autobahn 12/13");
    assert!(
        f.ok && summary.contains(" 0 failed") && !summary.contains("unimplemented"),
        "Autobahn 12/13: {summary} (report in {})",
        report.display()
    );
    assert!(
        f.output
            .contains("close-behavior failures (FAILED/UNCLEAN): 0"),
        "unclean closes in Autobahn 12/13 (report in {})",
        report.display()
    );
}
