//! Scale-out: several examples/test-echo.c processes on one port with
//! LWS_REUSEPORT=1 (SO_REUSEPORT), and the HAProxy recipe
//! (examples/haproxy-recipe.sh, needs haproxy, curl and the Python `websockets`
//! package; .ci/run installs them).
//!
//! Processes are started here, recorded by PID and killed when their guard drops;
//! every wait has a deadline.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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

fn out_dir() -> PathBuf {
    let d = target_dir().join("ctests").join("ecosystem");
    fs::create_dir_all(&d).unwrap();
    d
}

/// examples/test-echo.c, compiled once.
fn test_echo() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = out_dir().join("test-echo");
        let lib = lib_dir();
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(cc)
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
            out.status.success(),
            "compiling test-echo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        bin
    })
}

/// A free loopback port below Linux's ephemeral range (32768-60999), so that
/// outgoing connections of other programs cannot take it before the servers bind.
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

/// One test-echo process, killed when dropped.
struct Echo {
    child: Child,
    log: PathBuf,
}

impl Echo {
    fn start(port: u16, reuseport: bool, tag: &str) -> Echo {
        let log = out_dir().join(format!("echo-{}-{port}-{tag}.log", std::process::id()));
        let mut cmd = Command::new(test_echo());
        cmd.args(["--port", &port.to_string(), "--interface", "127.0.0.1"])
            .env("LD_LIBRARY_PATH", lib_dir())
            .env_remove("LWS_REUSEPORT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        if reuseport {
            cmd.env("LWS_REUSEPORT", "1");
        }
        let child = cmd.spawn().expect("start test-echo");
        Echo { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Until "listening on port" is logged (true) or the process exits (false).
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains("test-echo listening on port") {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            sleep(Duration::from_millis(20));
        }
        false
    }

    fn exit_status(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            sleep(Duration::from_millis(20));
        }
        None
    }

    fn sessions(&self) -> usize {
        self.log().matches("established session").count()
    }

    fn closed(&self) -> usize {
        self.log().matches("LWS_CALLBACK_CLOSED session").count()
    }

    /// SIGTERM (test-echo then closes its connections and exits 0).
    fn terminate(&mut self) -> Option<i32> {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.exit_status(Duration::from_secs(10))
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.log);
        }
    }
}

/// A minimal WebSocket client: upgrade, then masked text frames under 126 bytes.
struct Ws {
    s: TcpStream,
}

impl Ws {
    fn connect(port: u16) -> std::io::Result<Ws> {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_nodelay(true)?;
        write!(
            s,
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )?;
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b)? == 0 || head.len() > 8192 {
                return Err(std::io::Error::other("no upgrade response"));
            }
            head.push(b[0]);
        }
        if !head.starts_with(b"HTTP/1.1 101") {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&head).into_owned(),
            ));
        }
        Ok(Ws { s })
    }

    /// Sends `text`, returns the echo.
    fn echo(&mut self, text: &str) -> std::io::Result<String> {
        let p = text.as_bytes();
        assert!(p.len() < 126);
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut f = vec![0x81, 0x80 | p.len() as u8];
        f.extend_from_slice(&mask);
        f.extend(p.iter().enumerate().map(|(i, c)| c ^ mask[i % 4]));
        self.s.write_all(&f)?;
        let mut h = [0u8; 2];
        self.s.read_exact(&mut h)?;
        if h[0] != 0x81 || h[1] as usize >= 126 {
            return Err(std::io::Error::other(format!("unexpected frame {h:?}")));
        }
        let mut body = vec![0u8; h[1] as usize];
        self.s.read_exact(&mut body)?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

fn wait_until(within: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(20));
    }
}

/// Two processes with LWS_REUSEPORT=1 listen on one port; the kernel spreads
/// connections over both; when one stops, the connections on the other go on and
/// new connections all reach the survivor.
#[test]
fn reuseport_processes_share_a_port() {
    let mut attempt = 0;
    let (port, mut a, mut b) = loop {
        attempt += 1;
        let port = free_port();
        let mut a = Echo::start(port, true, "a");
        let ok_a = a.wait_ready();
        let mut b = Echo::start(port, true, "b");
        let ok_b = b.wait_ready();
        if ok_a && ok_b {
            break (port, a, b);
        }
        assert!(
            attempt < 3,
            "two LWS_REUSEPORT=1 processes could not share port {port}:\n{}\n{}",
            a.log(),
            b.log()
        );
    };

    // 40 connections: the chance that one process gets none is 2^-39
    let n = 40;
    for i in 0..n {
        let mut ws = Ws::connect(port).expect("connect");
        assert_eq!(
            ws.echo(&format!("hello {i}")).unwrap(),
            format!("hello {i}")
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || a.closed() + b.closed() == n),
        "sessions: a {} b {}",
        a.sessions(),
        b.sessions()
    );
    let (sa, sb) = (a.sessions(), b.sessions());
    eprintln!("reuseport: {n} connections -> {sa} + {sb}");
    assert_eq!(sa + sb, n);
    assert!(
        sa > 0 && sb > 0,
        "both processes got connections: {sa} {sb}"
    );

    // long-lived connections, then process a stops
    let mut held: Vec<Ws> = (0..16)
        .map(|i| {
            let mut ws = Ws::connect(port).expect("connect");
            assert_eq!(ws.echo(&format!("held {i}")).unwrap(), format!("held {i}"));
            ws
        })
        .collect();
    assert!(wait_until(Duration::from_secs(5), || a.sessions()
        + b.sessions()
        == n + 16));
    let on_b = b.sessions() - b.closed();
    assert_eq!(
        a.terminate(),
        Some(0),
        "test-echo a exits cleanly on SIGTERM"
    );
    let alive = held
        .iter_mut()
        .map(|ws| ws.echo("after").is_ok_and(|e| e == "after"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(
        alive, on_b,
        "exactly the connections held by the surviving process keep working"
    );

    // new connections all reach b
    let before = b.sessions();
    for i in 0..20 {
        let mut ws = Ws::connect(port).expect("connect after a stopped");
        assert_eq!(ws.echo(&format!("new {i}")).unwrap(), format!("new {i}"));
    }
    assert!(wait_until(Duration::from_secs(5), || b.sessions() == before + 20));
    drop(held);
    assert_eq!(b.terminate(), Some(0));
}

/// Without LWS_REUSEPORT=1 (in either process) the second one cannot bind the port:
/// the opt-in changes nothing for programs that do not ask for it.
#[test]
fn without_reuseport_a_second_process_cannot_bind() {
    for (first, second) in [(false, false), (true, false), (false, true)] {
        let port = free_port();
        let mut a = Echo::start(port, first, "first");
        assert!(a.wait_ready(), "first process:\n{}", a.log());
        let mut b = Echo::start(port, second, "second");
        let status = b.exit_status(Duration::from_secs(10));
        assert_eq!(
            status,
            Some(1),
            "reuseport {first}/{second}: the second process must fail:\n{}",
            b.log()
        );
        assert!(
            b.log().contains("Address already in use"),
            "the reason is logged:\n{}",
            b.log()
        );
        let mut ws = Ws::connect(port).unwrap();
        assert_eq!(ws.echo("still one").unwrap(), "still one");
        assert_eq!(a.terminate(), Some(0));
    }
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// examples/haproxy-recipe.sh with 3 backends, both modes: balance, health checks,
/// a backend restart under long-lived connections.
#[test]
fn haproxy_recipe() {
    for (tool, pkg) in [("haproxy", "haproxy"), ("curl", "curl")] {
        assert!(have(tool), "{tool} is not installed: apt-get install {pkg}");
    }
    let py = Command::new("python3")
        .args(["-c", "import websockets.asyncio.client"])
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "python3 needs websockets: pip install -r tests/requirements.txt"
    );
    let start = Instant::now();
    let mut child = Command::new("bash")
        .arg(repo().join("examples/haproxy-recipe.sh"))
        .args(["--backends", "3", "--mode", "both"])
        .env("NO_BUILD", "1")
        .env("LWS_LIB_DIR", lib_dir())
        .env("RECIPE_TIMEOUT", "240")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the recipe");
    // the recipe bounds itself (RECIPE_TIMEOUT) and then stops what it started;
    // this is the backstop: SIGTERM (its trap cleans up), then SIGKILL
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
    }
    if child.try_wait().ok().flatten().is_none() {
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        sleep(Duration::from_secs(5));
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "haproxy recipe: {:?} in {:.1}s",
        out.status,
        start.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success() && stdout.lines().last() == Some("recipe: OK"),
        "recipe failed ({:?}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    for want in [
        "HAProxy's health check marks b1 DOWN",
        "only the connections on backend 1 were lost",
        "3 processes listening on port",
    ] {
        assert!(stdout.contains(want), "missing '{want}':\n{stdout}");
    }
}
