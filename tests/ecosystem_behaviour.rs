//! Scale-out: several examples/test-echo.c processes on one port with
//! LWS_REUSEPORT=1 (SO_REUSEPORT), and the HAProxy recipe
//! (examples/haproxy-recipe.sh, needs haproxy, curl and the Python `websockets`
//! package; .ci/run installs them).
//!
//! Processes are started here, recorded by PID and killed when their guard drops;
//! every wait has a deadline.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::cc::CBuild;
use common::net::{free_port_below_ephemeral, wait_until};
use common::paths::{ctests_dir, lib_dir, repo};
use common::proc::{run, Background};
use common::tools::{need_tool, python_websockets};
use common::ws::Peer;

/// examples/test-echo.c, compiled once.
fn test_echo() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        CBuild::new("examples/test-echo.c", &ctests_dir("ecosystem"), &lib_dir())
            .build()
            .unwrap_or_else(|e| panic!("compiling test-echo: {e}"))
    })
}

/// One test-echo process, killed when dropped.
struct Echo(Background);

impl Echo {
    fn start(port: u16, reuseport: bool, tag: &str) -> Echo {
        let mut cmd = Command::new(test_echo());
        cmd.args(["--port", &port.to_string(), "--interface", "127.0.0.1"])
            .env("LD_LIBRARY_PATH", lib_dir())
            .env_remove("LWS_REUSEPORT");
        if reuseport {
            cmd.env("LWS_REUSEPORT", "1");
        }
        Echo(Background::start(&format!("test-echo {tag}"), &mut cmd))
    }

    fn log(&self) -> String {
        self.0.stderr()
    }

    /// Until "listening on port" is logged (true) or the process exits (false).
    fn wait_ready(&mut self) -> bool {
        wait_until(Duration::from_secs(10), || {
            self.0.stderr().contains("test-echo listening on port") || self.0.exited().is_some()
        }) && self.log().contains("test-echo listening on port")
    }

    fn exit_status(&mut self, within: Duration) -> Option<i32> {
        self.0.wait_exit(within).and_then(|st| st.code())
    }

    fn sessions(&self) -> usize {
        self.log().matches("established session").count()
    }

    fn closed(&self) -> usize {
        self.log().matches("LWS_CALLBACK_CLOSED session").count()
    }

    /// SIGTERM (test-echo then closes its connections and exits 0).
    fn terminate(&mut self) -> Option<i32> {
        self.0
            .stop(libc::SIGTERM, Duration::from_secs(10))
            .and_then(|st| st.code())
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
        let port = free_port_below_ephemeral();
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
        let mut ws = Peer::upgrade(port, None);
        assert_eq!(
            ws.echo_text(&format!("hello {i}")).unwrap(),
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
    let mut held: Vec<Peer> = (0..16)
        .map(|i| {
            let mut ws = Peer::upgrade(port, None);
            assert_eq!(
                ws.echo_text(&format!("held {i}")).unwrap(),
                format!("held {i}")
            );
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
        .map(|ws| ws.echo_text("after").is_ok_and(|e| e == "after"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(
        alive, on_b,
        "exactly the connections held by the surviving process keep working"
    );

    // new connections all reach b
    let before = b.sessions();
    for i in 0..20 {
        let mut ws = Peer::upgrade(port, None);
        assert_eq!(
            ws.echo_text(&format!("new {i}")).unwrap(),
            format!("new {i}")
        );
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
        let port = free_port_below_ephemeral();
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
        let mut ws = Peer::upgrade(port, None);
        assert_eq!(ws.echo_text("still one").unwrap(), "still one");
        assert_eq!(a.terminate(), Some(0));
    }
}

/// examples/haproxy-recipe.sh with 3 backends, both modes: balance, health checks,
/// a backend restart under long-lived connections.
#[test]
fn haproxy_recipe() {
    for (tool, pkg) in [("haproxy", "haproxy"), ("curl", "curl")] {
        need_tool(tool, pkg);
    }
    python_websockets();
    // the recipe bounds itself (RECIPE_TIMEOUT) and then stops what it started; the
    // limit here is the backstop: SIGTERM (its trap cleans up), then SIGKILL
    let out = run(
        Command::new("bash")
            .arg(repo().join("examples/haproxy-recipe.sh"))
            .args(["--backends", "3", "--mode", "both"])
            .env("NO_BUILD", "1")
            .env("LWS_LIB_DIR", lib_dir())
            .env("RECIPE_TIMEOUT", "240"),
        Duration::from_secs(300),
    );
    let stdout = &out.stdout;
    eprintln!(
        "haproxy recipe: {:?} in {:.1}s",
        out.status,
        out.elapsed.as_secs_f64()
    );
    assert!(
        out.ok() && stdout.lines().last() == Some("recipe: OK"),
        "recipe failed: {}",
        out.describe()
    );
    for want in [
        "HAProxy's health check marks b1 DOWN",
        "only the connections on backend 1 were lost",
        "3 processes listening on port",
    ] {
        assert!(stdout.contains(want), "missing '{want}':\n{stdout}");
    }
}
