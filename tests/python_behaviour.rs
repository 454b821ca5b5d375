//! The Python binding (python/libwebsockets_ctypes.py) and its examples
//! (python/echo_server.py, python/echo_client.py), through the scripts in
//! tests/python/ (plain python3 scripts, no pytest; `pip install -r
//! tests/requirements.txt` for the `websockets` client they drive the examples with).
//!
//! Each script gets LWS_LIBRARY pointing at the freshest libwebsockets.so under
//! target/, prints one line per check and "OK" last. Every child is waited for with a
//! deadline and killed by PID when it overruns.

use std::fs;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// target/ (the test executable lives in target/<profile>/deps/).
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

fn library() -> PathBuf {
    lib_dir().join("libwebsockets.so")
}

fn python_ready() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import websockets.sync.client, websockets.asyncio.server",
            ])
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

/// A free loopback port below Linux's ephemeral range (32768-60999), so that
/// outgoing connections of other programs cannot take it before it is bound.
fn free_port() -> u16 {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        ^ ((std::process::id() as u64) << 16)
        ^ call.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut x = seed | 1;
    for _ in 0..1000 {
        // xorshift
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 20000 + (x % 12000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

/// Waits for `child` up to `within`, killing it (by PID, through the handle) after.
fn wait_output(mut child: Child, within: Duration, what: &str) -> Output {
    let deadline = Instant::now() + within;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "{what} did not finish within {within:?}; output so far:\n{}\n{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    child.wait_with_output().expect("collect output")
}

/// Runs a script of tests/python (or python/) with LWS_LIBRARY set; returns its output.
fn run_python(script: &Path, args: &[String], within: Duration) -> Output {
    python_ready();
    let child = Command::new("python3")
        .arg(script)
        .args(args)
        .env("LWS_LIBRARY", library())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"));
    wait_output(child, within, &script.display().to_string())
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
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let ok = out.status.success() && stdout.lines().last() == Some("OK");
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
        || vec![free_port().to_string(), free_port().to_string()],
        Duration::from_secs(90),
    );
}

#[test]
fn python_echo_server_driven_by_websockets_client() {
    check_script(
        "echo_server_check.py",
        || vec![free_port().to_string()],
        Duration::from_secs(120),
    );
}

#[test]
fn python_echo_server_with_permessage_deflate() {
    check_script(
        "echo_server_check.py",
        || vec![free_port().to_string(), "--deflate".into()],
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
    python_ready();
    let out_dir = target_dir().join("ctests").join("python");
    fs::create_dir_all(&out_dir).unwrap();
    let bin = out_dir.join("test-echo");
    let lib = lib_dir();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(cc)
        .args(["-O1", "-Wall", "-Werror"])
        .arg(format!("-I{}", repo().join("include").display()))
        .arg("-o")
        .arg(&bin)
        .arg(repo().join("examples/test-echo.c"))
        .arg(format!("-L{}", lib.display()))
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lwebsockets")
        .output()
        .expect("run the C compiler");
    assert!(
        built.status.success(),
        "compiling test-echo: {}",
        String::from_utf8_lossy(&built.stderr)
    );

    let mut attempt = 0;
    let (mut server, port, log) = loop {
        attempt += 1;
        let port = free_port();
        let log = out_dir.join(format!("test-echo-{port}.log"));
        let mut child = Command::new(&bin)
            .args(["--port", &port.to_string(), "--interface", "127.0.0.1"])
            .env("LD_LIBRARY_PATH", &lib)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start test-echo");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut up = false;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                up = true;
                break;
            }
            sleep(Duration::from_millis(50));
        }
        if up {
            break (child, port, log);
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(attempt < 3, "test-echo did not start listening");
    };

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
    let _ = server.kill();
    let _ = server.wait();
    let mut server_log = String::new();
    let _ = fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut server_log));
    let _ = fs::remove_file(&log);
    for (extra, out) in results {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("14 messages echoed"),
            "echo_client.py {extra:?} against test-echo: {:?}\n{stdout}\n{}\nserver log:\n{server_log}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
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
    python_ready();
    let release = repo().join("target/release/libwebsockets.so.4.0.0");
    if !release.exists() {
        eprintln!("no {}; skipped", release.display());
        return;
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys; sys.path.insert(0, sys.argv[1]); import libwebsockets_ctypes as l; \
             print(l.library_path()); print(l.get_library_version())",
        )
        .arg(repo().join("python"))
        .env_remove("LWS_LIBRARY")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines.next().map(PathBuf::from), Some(release));
    assert!(lines.next().is_some_and(|v| v.starts_with("1.3 ")));
}
