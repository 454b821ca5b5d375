//! v1.23 fidelity of the write and receive path (issue 14, items 0, 7, 8, 10),
//! through the C API over 127.0.0.1:
//!
//! * `tests/c/fragments_test.c`: fragmented messages written one fragment per
//!   WRITEABLE (`LWS_WRITE_NO_FIN` / `LWS_WRITE_CONTINUATION`) and reassembled with
//!   `libwebsocket_is_final_fragment` / `libwebsockets_remaining_packet_payload`, as
//!   the original's test-fraggle does: server and client of this library in one
//!   process (deflate-frame, no extension, permessage-deflate), and each of them
//!   against a Python `websockets` peer (`tests/fidelity/peer.py`).
//! * `tests/c/write_fidelity_test.c`: `libwebsocket_write` return values (control
//!   frames count their header and mask), empty messages and fragments,
//!   `LWS_WRITE_CLIENT_IGNORE_XOR_MASK` (frames stay masked), the ignored return
//!   value of ESTABLISHED, `libwebsocket_rx_flow_control` inside ESTABLISHED and
//!   `libwebsocket_callback_on_writable_all_protocol` reaching HTTP connections; in
//!   one process and against Python peers.
//!
//! Programs are compiled into target/ctests/fidelity-write/ against
//! include/libwebsockets.h and the newest libwebsockets.so under target/ (or
//! LWS_LIB_DIR). Every process is started here, held by PID and killed when its
//! guard drops; every wait has a deadline.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime};

// ------------------------------------------------------------------ locations

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/ (the test binary is target/<profile>/deps/fidelity_write-*).
fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| repo().join("target"))
}

/// The directory of the newest libwebsockets.so (release or debug), or LWS_LIB_DIR.
fn lib_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LWS_LIB_DIR") {
        return PathBuf::from(d);
    }
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for profile in ["release", "debug"] {
        let dir = target_dir().join(profile);
        let Ok(t) = fs::metadata(dir.join("libwebsockets.so")).and_then(|m| m.modified()) else {
            continue;
        };
        if newest.as_ref().is_none_or(|(n, _)| t > *n) {
            newest = Some((t, dir));
        }
    }
    match newest {
        Some((_, d)) => d,
        None => panic!(
            "no libwebsockets.so under {}: run cargo build --release first",
            target_dir().display()
        ),
    }
}

fn out_dir() -> PathBuf {
    let d = target_dir().join("ctests").join("fidelity-write");
    fs::create_dir_all(&d).unwrap_or_else(|e| panic!("cannot create {}: {e}", d.display()));
    d
}

static SEQ: AtomicU64 = AtomicU64::new(0);

// ------------------------------------------------------------------ building

struct Progs {
    fragments: PathBuf,
    write: PathBuf,
}

fn cc(src: &str, name: &str) -> Result<PathBuf, String> {
    let exe = out_dir().join(name);
    let lib = lib_dir();
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-Wall", "-Wextra", "-Werror", "-O1", "-g"])
        .arg(format!("-I{}", repo().join("include").display()))
        .arg(repo().join(src))
        .arg("-o")
        .arg(&exe)
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lwebsockets")
        .output()
        .map_err(|e| format!("cannot run the C compiler: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "compiling {src} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(exe)
}

fn progs() -> &'static Progs {
    static P: OnceLock<Result<Progs, String>> = OnceLock::new();
    let r = P.get_or_init(|| {
        Ok(Progs {
            fragments: cc("tests/c/fragments_test.c", "fragments_test")?,
            write: cc("tests/c/write_fidelity_test.c", "write_fidelity_test")?,
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

fn peer_script() -> PathBuf {
    repo().join("tests/fidelity/peer.py")
}

// ------------------------------------------------------------------ processes

/// A process with stdout and stderr in a log file; killed by PID and reaped on drop.
struct Proc {
    name: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    status: Option<ExitStatus>,
}

impl Proc {
    fn start(program: &Path, args: &[&str]) -> Proc {
        let name = program.file_name().unwrap().to_string_lossy().into_owned();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let base = out_dir().join(format!("{name}-{}-{n}", std::process::id()));
        let stdout = base.with_extension("out");
        let stderr = base.with_extension("err");
        // cargo test puts target/<profile> on LD_LIBRARY_PATH, which would win over
        // the programs' RUNPATH (and over LWS_LIB_DIR).
        let child = Command::new(program)
            .args(args)
            .env("LD_LIBRARY_PATH", lib_dir())
            .stdin(Stdio::null())
            .stdout(fs::File::create(&stdout).expect("log file"))
            .stderr(fs::File::create(&stderr).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Proc {
            name,
            child,
            stdout,
            stderr,
            status: None,
        }
    }

    fn python(args: &[&str]) -> Proc {
        python_ready();
        let script = peer_script();
        let mut all = vec![script.to_str().unwrap()];
        all.extend_from_slice(args);
        let mut p = Proc::start(Path::new("python3"), &all);
        p.name = format!("peer.py {}", args[0]);
        p
    }

    fn out(&self) -> String {
        fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    fn describe(&self) -> String {
        let err = fs::read_to_string(&self.stderr).unwrap_or_default();
        let tail: Vec<&str> = err
            .lines()
            .filter(|l| !l.contains("NOTICE:"))
            .rev()
            .take(40)
            .collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(
            "{} ({:?})\n--- stdout\n{}--- stderr (last lines)\n{}",
            self.name,
            self.status,
            self.out(),
            tail.join("\n")
        )
    }

    /// The first stdout line starting with `prefix`, waiting up to `within`.
    fn wait_line(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(l) = self.out().lines().find(|l| l.starts_with(prefix)) {
                return l.to_string();
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
                panic!("exited before printing {prefix:?}: {}", self.describe());
            }
            if Instant::now() > deadline {
                panic!("no {prefix:?} line within {within:?}: {}", self.describe());
            }
            sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit; true when it exited with status 0 in time.
    fn finish(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => {
                    self.status = Some(st);
                    return st.success();
                }
                Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return false;
                }
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_file(&self.stdout);
        let _ = fs::remove_file(&self.stderr);
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

fn port_of(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no port in {line:?}"))
        .to_string()
}

/// A self-checking program run alone: exit 0 and "0 failure(s)".
fn run_self_test(exe: &Path) {
    let mut p = Proc::start(exe, &[]);
    let ok = p.finish(Duration::from_secs(90));
    assert!(
        ok && p.out().contains(": 0 failure(s)"),
        "self-test failed: {}",
        p.describe()
    );
}

/// Our side `c_args` (with "{port}") against a Python peer; when `ours_serves`, ours
/// listens on a free port and the peer connects, otherwise the peer listens.
/// Returns the peer's JSON report line.
fn against_python(ours: &Path, c_args: &[&str], peer_args: &[&str], ours_serves: bool) -> String {
    let (mut c, mut py);
    if ours_serves {
        let port = free_port().to_string();
        let args: Vec<String> = c_args.iter().map(|a| a.replace("{port}", &port)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c = Proc::start(ours, &args);
        c.wait_line("listening", Duration::from_secs(15));
        let pa: Vec<String> = peer_args
            .iter()
            .map(|a| a.replace("{port}", &port))
            .collect();
        let pa: Vec<&str> = pa.iter().map(String::as_str).collect();
        py = Proc::python(&pa);
    } else {
        py = Proc::python(peer_args);
        let port = port_of(&py.wait_line("port ", Duration::from_secs(15)));
        let args: Vec<String> = c_args.iter().map(|a| a.replace("{port}", &port)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        c = Proc::start(ours, &args);
    }
    let c_ok = c.finish(Duration::from_secs(90));
    let py_ok = py.finish(Duration::from_secs(30));
    assert!(
        c_ok && c.out().contains(": 0 failure(s)"),
        "our side failed: {}\n\npeer: {}",
        c.describe(),
        py.describe()
    );
    assert!(
        py_ok,
        "the Python peer failed: {}\n\nours: {}",
        py.describe(),
        c.describe()
    );
    py.out()
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no report from the peer: {}", py.describe()))
        .to_string()
}

// ------------------------------------------------------------------ item 0: fragments

/// Server and client of this library: deflate-frame (each frame reaches RECEIVE in one
/// piece, as v1.23 delivered it), no extension (pieces of at most rx_buffer_size), and
/// permessage-deflate. Before the fix, is_final_fragment was 1 on every piece of a FIN
/// frame and deflate-frame frames came in rx_buffer_size pieces: test-fraggle's way of
/// reading cut messages apart.
#[test]
fn fragments_between_server_and_client_of_this_library() {
    run_self_test(&progs().fragments);
}

/// A Python `websockets` server sends fragmented messages (frames up to 8000 bytes,
/// empty ones, permessage-deflate or none) to our client, which finds message ends
/// with is_final_fragment alone; the Python side checks our fragmented messages frame
/// by frame.
#[test]
fn fragments_python_server_and_our_client() {
    for exts in ["internal", "none"] {
        let report = against_python(
            &progs().fragments,
            &["client", "{port}", exts, "10"],
            &["frag-server", "10"],
            false,
        );
        assert!(
            report.contains("\"received\": 10") && report.contains("\"errors\": []"),
            "extensions {exts}: {report}"
        );
    }
}

/// The same with our server and a Python client.
#[test]
fn fragments_our_server_and_python_client() {
    for exts in ["internal", "none"] {
        let report = against_python(
            &progs().fragments,
            &["server", "{port}", exts, "10"],
            &["frag-client", "{port}", "10"],
            true,
        );
        assert!(
            report.contains("\"received\": 10") && report.contains("\"errors\": []"),
            "extensions {exts}: {report}"
        );
    }
}

// ------------------------------------------------------------------ items 7, 8, 10

/// Return values of libwebsocket_write (PING 4 bytes: 6 from a server, 10 from a
/// client; data and HTTP: len; len 0: 0 and an empty frame on the wire), an empty
/// final fragment, IGNORE_XOR_MASK (still masked: our server used to close with
/// 1002), -1 from ESTABLISHED and CLIENT_ESTABLISHED ignored, rx_flow_control(0)
/// inside ESTABLISHED holding RECEIVE back, and callback_on_writable_all_protocol
/// delivering HTTP_WRITEABLE to an HTTP connection of protocols[0].
#[test]
fn write_path_between_server_and_client_of_this_library() {
    run_self_test(&progs().write);
}

/// Our client's writes as an independent server sees them: the empty text message,
/// the binary message ended by an empty fragment, and the IGNORE_XOR_MASK frame (a
/// `websockets` server fails the connection on an unmasked frame).
#[test]
fn write_path_our_client_and_python_server() {
    let report = against_python(
        &progs().write,
        &["client", "{port}"],
        &["write-server"],
        false,
    );
    let want = concat!(
        "\"messages\": [{\"text\": \"hello\"}, {\"text\": \"\"}, ",
        "{\"binary\": 3, \"head\": \"616263\", \"pattern\": false}, ",
        "{\"binary\": 70000, \"head\": \"00070e151c232a31\", \"pattern\": true}, ",
        "{\"text\": \"masked\"}, {\"text\": \"bye\"}], \"errors\": []"
    );
    assert!(report.contains(want), "got {report}\nwant {want}");
}

/// Our server's writes as an independent client sees them (the empty text message
/// arrives as one), and our server reading a Python client's messages held back by
/// rx_flow_control(0) in ESTABLISHED until it resumes.
#[test]
fn write_path_our_server_and_python_client() {
    let report = against_python(
        &progs().write,
        &["server", "{port}"],
        &["write-client", "{port}"],
        true,
    );
    let want = concat!(
        "\"messages\": [{\"text\": \"hello\"}, {\"text\": \"\"}, ",
        "{\"binary\": 1048576, \"head\": \"00070e151c232a31\", \"pattern\": true}, ",
        "{\"text\": \"end\"}], \"errors\": [], \"close_code\": 1000"
    );
    assert!(report.contains(want), "got {report}\nwant {want}");
}
