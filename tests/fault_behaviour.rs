//! Fault behaviour through the C API over 127.0.0.1: slow, idle, abusive and broken
//! peers against examples/test-echo.c (and the small servers in tests/fault/), the
//! context destroyed with connections in every state under valgrind, and the C tests
//! built with AddressSanitizer.
//!
//! Programs are compiled into target/ctests/fault/ against include/libwebsockets.h and
//! the newest libwebsockets.so under target/ (or LWS_LIB_DIR). Every process is started
//! here, held by PID and killed when its guard drops; every wait has a deadline. Peers
//! are plain sockets (tests/common/ws.rs), so the frames on the wire are exactly the
//! ones written here.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use common::cc::{build_all, built_once, compiler, CBuild, Lang};
use common::net::{addr, free_port, wait_until};
use common::paths::{ctests_dir, lib_dir};
use common::pattern;
use common::proc::{run_merged, start_program, wrapped, Background};
use common::tools::have;
use common::ws::{close_frame, echo_ok, frame, frame_raw, reset, upgrade_request, Peer};

// ------------------------------------------------------------------ where things are

fn out_dir() -> PathBuf {
    ctests_dir("fault")
}

struct Progs {
    echo: PathBuf,
    flood: PathBuf,
    destroy: PathBuf,
}

fn progs() -> &'static Progs {
    static P: OnceLock<Result<Progs, String>> = OnceLock::new();
    built_once(&P, || {
        let [echo, flood, destroy] = build_all(
            [
                "examples/test-echo.c",
                "tests/fault/flood_server.c",
                "tests/fault/destroy_states.c",
            ],
            &out_dir(),
            &lib_dir(),
        )?;
        Ok(Progs {
            echo,
            flood,
            destroy,
        })
    })
}

// ------------------------------------------------------------------ processes

fn echo_server(args: &[&str]) -> Background {
    let mut a = vec!["--port", "{port}"];
    a.extend_from_slice(args);
    start_program(&[], &progs().echo, &a, Duration::from_secs(15))
}

/// The descriptor count once it stops changing (the readiness probe and other short
/// connections take a moment to be noticed as closed).
fn settled_fds(srv: &Background) -> usize {
    let mut last = srv.fds();
    for _ in 0..40 {
        sleep(Duration::from_millis(250));
        let now = srv.fds();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Raises this process's soft RLIMIT_NOFILE to the hard limit (children inherit it).
fn raise_nofile() -> libc::rlim_t {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max.min(1 << 20),
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                r = want;
            }
        }
    }
    r.rlim_cur
}

// ------------------------------------------------------------------ slow and idle peers

/// 20 connections trickle a request head at 1 byte/s: the server must drop each within
/// 15 s, and keep echoing for a normal client meanwhile.
#[test]
fn slowloris_heads_are_dropped_while_echo_continues() {
    let srv = echo_server(&[]);
    let head = upgrade_request(None).into_bytes();
    let start = Instant::now();
    let mut slow: Vec<(TcpStream, Option<Duration>)> = (0..20)
        .map(|_| {
            let s = TcpStream::connect_timeout(&addr(srv.port), Duration::from_secs(5))
                .expect("connect");
            s.set_nonblocking(true).unwrap();
            (s, None)
        })
        .collect();
    let mut echoes = 0;
    let mut sent = 0usize;
    let mut next_byte = Instant::now();
    while start.elapsed() < Duration::from_secs(20) && slow.iter().any(|(_, t)| t.is_none()) {
        if Instant::now() >= next_byte {
            for (s, closed) in slow.iter_mut().filter(|(_, c)| c.is_none()) {
                if (&*s).write(&head[sent % head.len()..][..1]).is_err() {
                    *closed = Some(start.elapsed());
                }
            }
            sent += 1;
            next_byte += Duration::from_secs(1);
            echo_ok(srv.port, &format!("during slowloris {sent}")).unwrap();
            echoes += 1;
        }
        for (s, closed) in slow.iter_mut().filter(|(_, c)| c.is_none()) {
            let mut b = [0u8; 512];
            match (&*s).read(&mut b) {
                Ok(0) => *closed = Some(start.elapsed()),
                Ok(_) => {} // a 408 before the close
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => *closed = Some(start.elapsed()),
            }
        }
        sleep(Duration::from_millis(20));
    }
    let late: Vec<String> = slow
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| t.is_none_or(|t| t > Duration::from_secs(15)))
        .map(|(i, (_, t))| format!("#{i}: {t:?}"))
        .collect();
    assert!(
        late.is_empty(),
        "slow heads not dropped within 15 s: {late:?}"
    );
    assert!(sent < head.len(), "the head was completed; test is void");
    assert!(echoes >= 3, "too few echo checks ({echoes})");
    echo_ok(srv.port, "after slowloris").unwrap();
    let worst = slow.iter().filter_map(|(_, t)| *t).max().unwrap();
    eprintln!("slowloris: 20 heads dropped, last after {worst:?}; {echoes} echoes meanwhile");
}

/// Connections that send nothing (and ones that only half-close) are closed within 15 s.
#[test]
fn idle_and_half_closed_connections_are_closed() {
    let mut srv = echo_server(&[]);
    let baseline = settled_fds(&srv);
    let start = Instant::now();
    let mut conns: Vec<(TcpStream, Option<Duration>)> = (0..25)
        .map(|i| {
            let s = TcpStream::connect_timeout(&addr(srv.port), Duration::from_secs(5))
                .expect("connect");
            if i >= 20 {
                // half-open from our side: FIN without a single byte
                s.shutdown(Shutdown::Write).unwrap();
            }
            s.set_nonblocking(true).unwrap();
            (s, None)
        })
        .collect();
    while start.elapsed() < Duration::from_secs(18) && conns.iter().any(|(_, t)| t.is_none()) {
        for (s, closed) in conns.iter_mut().filter(|(_, c)| c.is_none()) {
            let mut b = [0u8; 512];
            match (&*s).read(&mut b) {
                Ok(0) => *closed = Some(start.elapsed()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => *closed = Some(start.elapsed()),
            }
        }
        sleep(Duration::from_millis(50));
    }
    let late: Vec<String> = conns
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| t.is_none_or(|t| t > Duration::from_secs(15)))
        .map(|(i, (_, t))| format!("#{i}: {t:?}"))
        .collect();
    assert!(
        late.is_empty(),
        "idle connections not closed within 15 s: {late:?}"
    );
    drop(conns);
    srv.assert_alive("after idle connections");
    echo_ok(srv.port, "after idle").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || srv.fds() <= baseline + 1),
        "server fds {} vs baseline {baseline}",
        srv.fds()
    );
}

// ------------------------------------------------------------------ resets

/// 2000 upgraded connections dropped with RST: the server keeps serving and its
/// descriptor count returns to the baseline.
#[test]
fn two_thousand_upgraded_connections_reset() {
    const N: usize = 2000;
    let limit = raise_nofile();
    assert!(
        limit as usize > N + 200,
        "RLIMIT_NOFILE {limit} is too low for {N} connections"
    );
    let mut srv = echo_server(&["--debug", "3"]);
    let baseline = settled_fds(&srv);
    let req = upgrade_request(None);
    let mut conns: Vec<TcpStream> = Vec::with_capacity(N);
    for batch in 0..N / 200 {
        let mut fresh = Vec::with_capacity(200);
        for _ in 0..200 {
            let s = TcpStream::connect_timeout(&addr(srv.port), Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("connect #{}: {e}", conns.len() + fresh.len()));
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            (&s).write_all(req.as_bytes()).expect("send upgrade");
            fresh.push(s);
        }
        for (i, s) in fresh.iter().enumerate() {
            let mut got = Vec::new();
            let mut b = [0u8; 1024];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                match (&*s).read(&mut b) {
                    Ok(0) => panic!("batch {batch} #{i}: EOF during upgrade"),
                    Ok(n) => got.extend_from_slice(&b[..n]),
                    Err(e) => panic!("batch {batch} #{i}: {e}"),
                }
            }
            assert!(got.starts_with(b"HTTP/1.1 101"), "batch {batch} #{i}");
        }
        conns.extend(fresh);
    }
    let peak = srv.fds();
    assert!(
        peak >= baseline + N,
        "server holds {peak} fds for {N} connections (baseline {baseline})"
    );
    for s in conns {
        reset(s);
    }
    srv.assert_alive("after 2000 resets");
    echo_ok(srv.port, "after 2000 resets").unwrap();
    let settled = wait_until(Duration::from_secs(20), || srv.fds() <= baseline + 2);
    assert!(
        settled,
        "server fds stay at {} after the resets (baseline {baseline}, peak {peak})",
        srv.fds()
    );
    eprintln!(
        "2000 resets: fds baseline {baseline}, peak {peak}, after {}",
        srv.fds()
    );
}

/// Peers that reset while the server writes a 16 MiB echo, or in the middle of the
/// request head.
#[test]
fn resets_mid_write_and_mid_handshake() {
    let mut srv = echo_server(&[]);
    let baseline = settled_fds(&srv);
    let big = pattern(16 << 20, 7);
    let big_frame = frame(true, 2, &big);
    for round in 0..3 {
        let mut p = Peer::upgrade(srv.port, None);
        p.s.set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        p.s.write_all(&big_frame).expect("send 16 MiB");
        if round > 0 {
            // Let the echo start flowing, read a little of it, then vanish.
            let mut b = vec![0u8; 64 * 1024];
            let mut got = 0;
            while got < 64 * 1024 * round {
                match p.s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
        }
        reset(p.s);
        srv.assert_alive(&format!("after reset mid-write #{round}"));
    }
    let half = upgrade_request(None);
    for cut in [1, 10, half.len() / 2, half.len() - 1] {
        let mut s = TcpStream::connect_timeout(&addr(srv.port), Duration::from_secs(5)).unwrap();
        s.write_all(&half.as_bytes()[..cut]).unwrap();
        sleep(Duration::from_millis(20));
        reset(s);
    }
    // A reset right after the whole request, before the 101 can be read.
    for _ in 0..5 {
        let mut s = TcpStream::connect_timeout(&addr(srv.port), Duration::from_secs(5)).unwrap();
        s.write_all(half.as_bytes()).unwrap();
        reset(s);
    }
    srv.assert_alive("after resets mid-handshake");
    echo_ok(srv.port, "after resets").unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || srv.fds() <= baseline + 1),
        "server fds {} vs baseline {baseline}",
        srv.fds()
    );
}

/// Peers that reset in the middle of sending a frame: every server-side connection
/// must be closed and its descriptor released.
///
/// Regression test (bug found by the soak test): when data and the peer's RST arrived
/// together, `conn_readable` read the data, saw a short read and returned, trusting a
/// later edge; with edge-triggered epoll the RST's edge was the one just consumed, so
/// about a third of such WebSocket connections (which have no timeout) leaked their
/// descriptor and buffers forever.
#[test]
fn reset_mid_frame_releases_the_connection() {
    let srv = echo_server(&["--debug", "3"]);
    let baseline = settled_fds(&srv);
    let partial = frame(true, 2, &pattern(50_000, 21));
    let partial = &partial[..30_000];
    for _ in 0..200 {
        let mut p = Peer::upgrade(srv.port, None);
        p.s.write_all(partial).unwrap();
        reset(p.s);
    }
    let released = wait_until(Duration::from_secs(15), || srv.fds() <= baseline + 1);
    assert!(
        released,
        "after 200 peers reset mid-frame the server still holds {} descriptors (baseline \
         {baseline}): connections leaked",
        srv.fds()
    );
}

// ------------------------------------------------------------------ a peer that never reads

/// A client that sends large messages and never reads: test-echo pauses receiving above
/// its 4 MiB queue, so the server's memory must stay bounded.
#[test]
fn never_reading_client_keeps_server_memory_bounded() {
    let mut srv = echo_server(&[]);
    // Warm up allocator and buffers with one ordinary exchange.
    echo_ok(srv.port, "warm-up").unwrap();
    sleep(Duration::from_millis(200));
    let baseline = srv.rss_kib();
    let p = Peer::upgrade(srv.port, None);
    let msg = frame(true, 2, &pattern(1 << 20, 3));
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let s = p.s.try_clone().unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let (sent, done) = (sent.clone(), done.clone());
        thread::spawn(move || {
            let start = Instant::now();
            let mut s = s;
            // Up to 512 MiB or 12 s; a 3 s stall means the server stopped reading.
            while start.elapsed() < Duration::from_secs(12) && sent.load(Ordering::Relaxed) < 512 {
                if s.write_all(&msg).is_err() {
                    break;
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            done.store(true, Ordering::Relaxed);
        })
    };
    let mut max = baseline;
    let start = Instant::now();
    while !done.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
        max = max.max(srv.rss_kib());
        sleep(Duration::from_millis(100));
    }
    writer.join().unwrap();
    // A few more samples after the writer stopped.
    for _ in 0..10 {
        max = max.max(srv.rss_kib());
        sleep(Duration::from_millis(100));
    }
    srv.assert_alive("with a non-reading client");
    echo_ok(srv.port, "beside the non-reading client").unwrap();
    let sent_mib = sent.load(Ordering::Relaxed);
    eprintln!(
        "non-reading client: sent {sent_mib} MiB; server VmRSS baseline {baseline} KiB, max {max} KiB"
    );
    assert!(
        max < baseline + 64 * 1024,
        "server VmRSS grew from {baseline} KiB to {max} KiB while a client sent {sent_mib} MiB \
         and read nothing"
    );
    reset(p.s);
}

/// A client that floods pings and never reads: the server owes a pong for each, but
/// must not buffer them without bound (RFC 6455 5.5.3 allows answering only the most
/// recent ping; stopping to read while output is backed up works as well).
///
/// Regression test: every pong used to be appended to the output queue while the
/// socket stayed choked and reading continued, so VmRSS grew by about 150 MiB per
/// second of flooding (1.6 GiB after 10 s).
#[test]
fn ping_flood_from_non_reading_client_keeps_memory_bounded() {
    let mut srv = echo_server(&["--debug", "3"]);
    echo_ok(srv.port, "warm-up").unwrap();
    sleep(Duration::from_millis(200));
    let baseline = srv.rss_kib();
    let p = Peer::upgrade(srv.port, None);
    let ping = frame(true, 9, &[b'p'; 125]);
    let batch: Vec<u8> = ping
        .iter()
        .copied()
        .cycle()
        .take(ping.len() * 1000)
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let writer = {
        let mut s = p.s.try_clone().unwrap();
        s.set_write_timeout(Some(Duration::from_secs(3))).unwrap();
        let (stop, sent) = (stop.clone(), sent.clone());
        thread::spawn(move || {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(8) {
                if s.write_all(&batch).is_err() {
                    break;
                }
                sent.fetch_add(1000, Ordering::Relaxed);
            }
            stop.store(true, Ordering::Relaxed);
        })
    };
    let mut max = baseline;
    let limit = baseline + 64 * 1024;
    while !stop.load(Ordering::Relaxed) {
        max = max.max(srv.rss_kib());
        if max > limit + 192 * 1024 {
            break; // clearly unbounded: no need to eat more memory
        }
        sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    max = max.max(srv.rss_kib());
    srv.assert_alive("during the ping flood");
    let pings = sent.load(Ordering::Relaxed);
    reset(p.s);
    eprintln!("ping flood: {pings} pings sent; VmRSS baseline {baseline} KiB, max {max} KiB");
    assert!(
        max < limit,
        "server VmRSS grew from {baseline} KiB to {max} KiB while a client sent {pings} \
         pings and read nothing"
    );
}

/// While a connection's output is backed up, pings are not answered one pong each but
/// with one pong for the most recent ping once the queue has drained (RFC 6455 5.5.3),
/// and the server keeps reading meanwhile (it used to stop reading instead, which
/// deadlocked two peers that both had output queued: see client_behaviour.rs,
/// pipelined_large_messages_between_our_client_and_server_do_not_stall).
#[test]
fn pong_owed_while_output_is_backed_up_goes_out_when_it_drains() {
    let srv = echo_server(&["--debug", "3"]);
    let mut p = Peer::upgrade(srv.port, None);
    // 24 MiB: more than the socket buffers hold, so most of its echo stays queued in
    // the server while we do not read.
    let big = pattern(24 << 20, 7);
    p.s.write_all(&frame(true, 2, &big)).expect("send 24 MiB");
    sleep(Duration::from_millis(1000));
    for i in 0..50 {
        p.s.write_all(&frame(true, 9, format!("ping-{i:02}").as_bytes()))
            .expect("send ping");
    }
    sleep(Duration::from_millis(300));
    let mut pongs = Vec::new();
    let mut echo = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while pongs.last().map(Vec::as_slice) != Some(&b"ping-49"[..]) && Instant::now() < deadline {
        match p.read_frame() {
            Ok((b0, payload)) if b0 & 0x0f == 10 => pongs.push(payload),
            Ok((b0, payload)) if b0 & 0x0f == 2 => echo = Some(payload),
            Ok((b0, _)) => panic!("unexpected frame 0x{b0:02x}"),
            Err(e) => panic!("reading: {e}; {} pongs so far", pongs.len()),
        }
    }
    let names: Vec<String> = pongs
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    eprintln!("pongs for 50 pings sent while backed up: {names:?}");
    assert!(
        echo.as_deref() == Some(&big[..]),
        "the 24 MiB echo did not come back intact"
    );
    assert_eq!(
        names.last().map(String::as_str),
        Some("ping-49"),
        "the most recent ping got no pong: {names:?}"
    );
    assert!(
        names.len() < 10,
        "{} pongs for 50 pings sent while backed up: {names:?}",
        names.len()
    );
    // the connection still works
    p.s.write_all(&frame(true, 1, b"after")).unwrap();
    let (b0, payload) = p.read_frame().expect("echo after the pongs");
    assert_eq!((b0 & 0x0f, payload.as_slice()), (1, &b"after"[..]));
    reset(p.s);
}

/// test-echo limited to 40 descriptors (RLIMIT_NOFILE), with 80 connections waiting:
/// returns the server (pinned at its limit) and the connections.
fn echo_at_descriptor_limit() -> Option<(Background, Vec<TcpStream>)> {
    if !have("prlimit") {
        eprintln!("NOTICE: prlimit is not installed; descriptor exhaustion test skipped");
        return None;
    }
    let mut srv = start_program(
        &["prlimit", "--nofile=40:40"],
        &progs().echo,
        &["--port", "{port}", "--debug", "1"],
        Duration::from_secs(15),
    );
    let req = upgrade_request(None);
    let conns: Vec<TcpStream> = (0..80)
        .map(|_| {
            let mut s = TcpStream::connect_timeout(&addr(srv.port), Duration::from_secs(5))
                .expect("connect (the kernel backlog takes it)");
            s.write_all(req.as_bytes()).unwrap();
            s
        })
        .collect();
    sleep(Duration::from_millis(1500));
    srv.assert_alive("at the descriptor limit");
    // (Descriptors numbered above the limit can be inherited, so count the low ones.)
    let at_limit = fs::read_dir(format!("/proc/{}/fd", srv.pid()))
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter(|&fd| fd < 40)
                .count()
        })
        .unwrap_or(0);
    assert!(
        at_limit >= 36,
        "server not at its descriptor limit: {at_limit} fds"
    );
    Some((srv, conns))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |n: usize| {
        f.get(n - 3)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(14) + field(15)
}

/// The server runs out of descriptors: it keeps the connections it has, does not die,
/// and accepts again once some close.
#[test]
fn descriptor_exhaustion_is_survived() {
    let Some((mut srv, conns)) = echo_at_descriptor_limit() else {
        return;
    };
    sleep(Duration::from_secs(1));
    srv.assert_alive("pinned at the descriptor limit");
    drop(conns);
    assert!(
        wait_until(Duration::from_secs(15), || echo_ok(
            srv.port,
            "after the limit"
        )
        .is_ok()),
        "server does not serve again after descriptors were freed\n{}",
        srv.tail()
    );
}

/// While accepts are paused at the descriptor limit, the service loop must sleep, not
/// spin.
///
/// Regression test: `has_deferred()` used to count `accept_pending` as deferred work
/// even while `accept_paused_until` lay in the future, so `libwebsocket_service`
/// polled with a zero timeout and the process burnt a whole core for as long as it
/// was at RLIMIT_NOFILE.
#[test]
fn descriptor_limit_does_not_spin() {
    let Some((srv, conns)) = echo_at_descriptor_limit() else {
        return;
    };
    let hz = 100; // USER_HZ on Linux
    let t0 = cpu_ticks(srv.pid());
    sleep(Duration::from_secs(3));
    let used = cpu_ticks(srv.pid()) - t0;
    drop(conns);
    assert!(
        used < 3 * hz / 5,
        "server used {used} clock ticks ({}% of a core) in 3 s while pinned at its \
         descriptor limit",
        used * 100 / (3 * hz)
    );
}

// ------------------------------------------------------------------ garbage

/// Garbage, 64 KiB of noise, an HTTP/2 preface and oversized heads: answered with 4xx
/// or closed, promptly, and the server stays up.
#[test]
fn garbage_noise_and_http2_preface() {
    let mut srv = echo_server(&[]);
    let mut long_header = b"GET / HTTP/1.1\r\nHost: a\r\nX-Long: ".to_vec();
    long_header.extend(std::iter::repeat_n(b'a', 20000));
    long_header.extend_from_slice(b"\r\n\r\n");
    let mut long_uri = b"GET /".to_vec();
    long_uri.extend(std::iter::repeat_n(b'u', 20000));
    long_uri.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    let mut many_headers = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        many_headers.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many_headers.extend_from_slice(b"\r\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "tls-hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
        ),
        ("noise-64k", pattern(64 * 1024, 11)),
        (
            "http2-preface-version",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        ),
        ("nul-bytes", vec![0u8; 4096]),
        ("bad-version", b"GET / HTTP/9.9\r\nHost: a\r\n\r\n".to_vec()),
        ("http2-prior-knowledge-frames-version", {
            // preface followed by a SETTINGS frame, as an h2c client sends it
            let mut v = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
            v.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
            v
        }),
        ("no-method", b" / HTTP/1.1\r\n\r\n".to_vec()),
        ("long-header", long_header),
        ("long-uri", long_uri),
        ("many-headers", many_headers),
        (
            "bad-upgrade-key",
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n"
                .to_vec(),
        ),
    ];
    for (name, bytes) in &cases {
        let mut p = Peer::connect(srv.port);
        let t0 = Instant::now();
        let _ = p.s.write_all(bytes); // the server may hang up before taking it all
        let end = p.read_until_closed(Duration::from_secs(10), false);
        let took = t0.elapsed();
        let text = String::from_utf8_lossy(&p.buf).into_owned();
        assert!(!end.timed_out, "{name}: connection still open after 10 s");
        // 4xx, or 505 for a request line naming an HTTP version other than 1.x.
        let status_ok = text.starts_with("HTTP/1.1 4")
            || text.starts_with("HTTP/1.0 4")
            || (text.starts_with("HTTP/1.1 505") && name.contains("version"));
        assert!(p.buf.is_empty() || status_ok, "{name}: answered {text:?}");
        eprintln!(
            "garbage {name}: {} in {took:?}",
            text.lines()
                .next()
                .unwrap_or(if end.reset { "reset" } else { "closed" })
        );
        srv.assert_alive(&format!("after {name}"));
    }
    echo_ok(srv.port, "after garbage").unwrap();
}

// ------------------------------------------------------------------ invalid frames

/// Every class of invalid frame from RFC 6455 section 5 after a valid handshake: the
/// server answers with a close frame carrying 1002 (1007 for bad UTF-8) and closes.
#[test]
fn invalid_frames_fail_with_the_right_close_code() {
    let mut srv = echo_server(&[]);
    let mut cases: Vec<(String, Vec<u8>, u16)> = vec![
        (
            "unmasked frame".into(),
            frame_raw(0x81, b"hello", false, None),
            1002,
        ),
        ("RSV1".into(), frame_raw(0xc1, b"x", true, None), 1002),
        ("RSV2".into(), frame_raw(0xa1, b"x", true, None), 1002),
        ("RSV3".into(), frame_raw(0x91, b"x", true, None), 1002),
        ("RSV on ping".into(), frame_raw(0xc9, b"", true, None), 1002),
        (
            "ping of 126 bytes".into(),
            frame(true, 9, &[b'p'; 126]),
            1002,
        ),
        (
            "close of 126 bytes".into(),
            close_frame(1000, &[b'r'; 124]),
            1002,
        ),
        (
            "ping 16-bit length".into(),
            frame_raw(0x89, b"", true, Some(200)),
            1002,
        ),
        ("fragmented ping".into(), frame(false, 9, b"p"), 1002),
        (
            "fragmented close".into(),
            frame_raw(0x08, &[3, 0xe8], true, None),
            1002,
        ),
        (
            "continuation without start".into(),
            frame(true, 0, b"cont"),
            1002,
        ),
        (
            "continuation no fin without start".into(),
            frame(false, 0, b"c"),
            1002,
        ),
        (
            "text during fragmented message".into(),
            [frame(false, 1, b"first"), frame(true, 1, b"second")].concat(),
            1002,
        ),
        (
            "binary during fragmented text".into(),
            [frame(false, 1, b"first"), frame(true, 2, b"second")].concat(),
            1002,
        ),
        (
            "64-bit length with top bit".into(),
            frame_raw(0x82, b"", true, Some(0x8000_0000_0000_0000)),
            1002,
        ),
        (
            "64-bit length all ones".into(),
            frame_raw(0x82, b"", true, Some(u64::MAX)),
            1002,
        ),
        (
            "invalid UTF-8 (surrogate)".into(),
            frame(
                true,
                1,
                b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            ),
            1007,
        ),
        (
            "invalid UTF-8 (0xff)".into(),
            frame(true, 1, b"ab\xffcd"),
            1007,
        ),
        (
            "invalid UTF-8 across fragments".into(),
            [frame(false, 1, b"\xce\xba\xe1"), frame(true, 0, b"\xbd")].concat(),
            1007,
        ),
        (
            "UTF-8 truncated at FIN".into(),
            [frame(false, 1, b"ok"), frame(true, 0, b"\xe2\x82")].concat(),
            1007,
        ),
        ("close with 1 byte".into(), frame(true, 8, b"\x03"), 1002),
        (
            "close reason not UTF-8".into(),
            close_frame(1000, b"\xff\xfe"),
            1007,
        ),
    ];
    for op in [3u8, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf] {
        cases.push((
            format!("reserved opcode {op:#x}"),
            frame(true, op, b""),
            1002,
        ));
    }
    for code in [
        0u16, 999, 1004, 1005, 1006, 1012, 1016, 2000, 2999, 5000, 65535,
    ] {
        cases.push((format!("close code {code}"), close_frame(code, b""), 1002));
    }

    let mut failures = Vec::new();
    for (name, bytes, want) in &cases {
        let mut p = Peer::upgrade(srv.port, None);
        let _ = p.s.write_all(bytes);
        let end = p.read_to_end(Duration::from_secs(10));
        let got = end.close_code();
        let closed = end.eof || end.reset;
        let data_frames = end.frames.iter().filter(|(b0, _)| b0 & 0x0f != 8).count();
        if got != Some(*want) || !closed || end.reset || data_frames != 0 {
            failures.push(format!(
                "{name}: close code {got:?} (want {want}), eof {}, reset {}, timed out {}, \
                 {} other frames",
                end.eof, end.reset, end.timed_out, data_frames
            ));
        }
        srv.assert_alive(&format!("after {name}"));
    }
    assert!(
        failures.is_empty(),
        "{} of {} invalid-frame cases misbehaved:\n  {}",
        failures.len(),
        cases.len(),
        failures.join("\n  ")
    );
    echo_ok(srv.port, "after invalid frames").unwrap();
}

// ------------------------------------------------------------------ compression

/// Upgrades with `Sec-WebSocket-Extensions: <ext>` and checks it was accepted.
fn upgrade_with_extension(port: u16, ext: &str, want: &str) -> Peer {
    let mut p = Peer::connect(port);
    let req = upgrade_request(None).replace(
        "\r\n\r\n",
        &format!("\r\nSec-WebSocket-Extensions: {ext}\r\n\r\n"),
    );
    p.s.write_all(req.as_bytes()).expect("send upgrade");
    let head = p.read_head().expect("101 head");
    assert!(
        head.starts_with("HTTP/1.1 101"),
        "expected 101, got {head:?}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("sec-websocket-extensions: {want}")),
        "{ext} not accepted: {head:?}"
    );
    p
}

/// Compression bombs and corrupt compressed data: a permessage-deflate message that
/// inflates far past the message limit (LWS_MAX_MESSAGE=1 MiB here) fails with 1009
/// while the server's memory stays bounded; broken DEFLATE data fails with 1007; the
/// same for deflate-frame; RSV1 on a continuation frame is 1002.
#[test]
fn compression_bombs_and_corrupt_deflate() {
    use websockets::engine::extensions::{PmdParams, PmdSession, Role};
    let mut srv = start_program(
        &["env", "LWS_MAX_MESSAGE=1048576"],
        &progs().echo,
        &["--port", "{port}", "--debug", "3"],
        Duration::from_secs(15),
    );
    // A compressed echo works at all.
    let mut tx = PmdSession::new(Role::Client, PmdParams::default(), usize::MAX);
    let mut p = upgrade_with_extension(srv.port, "permessage-deflate", "permessage-deflate");
    let mut wire = Vec::new();
    tx.compress_message(b"compressed hello", &mut wire).unwrap();
    p.s.write_all(&frame_raw(0xc1, &wire, true, None)).unwrap();
    let (b0, payload) = p.read_frame().expect("compressed echo");
    let back = if b0 & 0x40 != 0 {
        // The server compressed its echo; we receive as the client.
        let mut d = PmdSession::new(Role::Client, PmdParams::default(), 1 << 20);
        let mut out = Vec::new();
        d.decompress_fragment(&payload, true, &mut out).unwrap();
        out
    } else {
        payload
    };
    assert_eq!(back, b"compressed hello");
    drop(p);

    echo_ok(srv.port, "warm-up").unwrap();
    sleep(Duration::from_millis(200));
    let baseline = srv.rss_kib();
    // 64 MiB of zeros compress to about 64 KiB.
    let mut bomb = Vec::new();
    PmdSession::new(Role::Client, PmdParams::default(), usize::MAX)
        .compress_message(&vec![0u8; 64 << 20], &mut bomb)
        .unwrap();
    let mut max = baseline;
    for round in 0..3 {
        let mut p = upgrade_with_extension(srv.port, "permessage-deflate", "permessage-deflate");
        let _ = p.s.write_all(&frame_raw(0xc2, &bomb, true, None));
        let end = p.read_to_end(Duration::from_secs(10));
        max = max.max(srv.rss_kib());
        assert_eq!(end.close_code(), Some(1009), "bomb #{round}: {end:?}");
    }
    let corrupt = [
        (
            "corrupt deflate",
            frame_raw(0xc1, &[0xff, 0xfe, 0xfd, 0xfc], true, None),
            1007,
        ),
        (
            "RSV1 on continuation",
            [frame(false, 1, b"plain"), frame_raw(0x40, b"x", true, None)].concat(),
            1002,
        ),
    ];
    let mut failures = Vec::new();
    for (name, bytes, want) in &corrupt {
        let mut p = upgrade_with_extension(srv.port, "permessage-deflate", "permessage-deflate");
        let _ = p.s.write_all(bytes);
        let end = p.read_to_end(Duration::from_secs(10));
        if end.close_code() != Some(*want) || !end.eof {
            failures.push(format!("{name}: want close {want}, got {end:?}"));
        }
    }
    // deflate-frame: the same bomb and garbage, per frame.
    for (name, payload, want) in [
        ("deflate-frame bomb", bomb.clone(), 1009u16),
        ("deflate-frame corrupt", vec![0xff, 0xfe, 0xfd, 0xfc], 1007),
    ] {
        let mut p = upgrade_with_extension(srv.port, "deflate-frame", "deflate-frame");
        let _ = p.s.write_all(&frame_raw(0xc2, &payload, true, None));
        let end = p.read_to_end(Duration::from_secs(10));
        max = max.max(srv.rss_kib());
        assert_eq!(end.close_code(), Some(want), "{name}: {end:?}");
    }
    srv.assert_alive("after compression bombs");
    echo_ok(srv.port, "after compression bombs").unwrap();
    eprintln!("compression bombs: VmRSS baseline {baseline} KiB, max {max} KiB");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        max < baseline + 64 * 1024,
        "server VmRSS grew from {baseline} KiB to {max} KiB on 64 MiB compression bombs"
    );
}

/// RFC 7692 section 6: with permessage-deflate negotiated, a control frame with RSV1
/// set must fail the connection (RSV1 means "compressed" only on the first frame of a
/// data message). The same holds for deflate-frame, which never compresses control
/// frames.
///
/// Regression test: the frame parser used to allow the negotiated RSV bits on every
/// frame, and control frames bypassed the extension's RSV checks, so a ping with RSV1
/// was answered with a pong instead of a close 1002.
#[test]
fn rsv1_on_control_frames_fails_with_compression_negotiated() {
    let srv = echo_server(&["--debug", "3"]);
    let mut failures = Vec::new();
    for (ext, b0) in [
        ("permessage-deflate", 0xc9u8),
        ("permessage-deflate", 0xca),
        ("permessage-deflate", 0xc8),
        ("deflate-frame", 0xc9),
    ] {
        let mut p = upgrade_with_extension(srv.port, ext, ext);
        let payload: &[u8] = if b0 & 0x0f == 8 { &[0x03, 0xe8] } else { b"" };
        let _ = p.s.write_all(&frame_raw(b0, payload, true, None));
        let end = p.read_to_end(Duration::from_secs(10));
        if end.close_code() != Some(1002) || !end.eof {
            failures.push(format!("{ext}, first byte {b0:#04x}: {end:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "control frames with RSV1 not failed with 1002:\n{}",
        failures.join("\n")
    );
}

/// deflate-frame inflates each frame on its own, but the message limit is about the
/// whole message: a fragmented message of many small compressed frames must fail with
/// 1009 once its inflated size passes LWS_MAX_MESSAGE (1 MiB here).
///
/// Regression test: io/ws_rx.rs used to inflate every deflate-frame frame with the full
/// limit while the parser only counts compressed bytes, so a message of 64 frames of
/// ~1 KB, each inflating to 1 MiB, was delivered whole (64 MiB from 64 KB on the wire;
/// no bound at all on such a message).
#[test]
fn deflate_frame_message_limit_spans_fragments() {
    use websockets::engine::extensions::DeflateFrameSession;
    let mut srv = start_program(
        &["env", "LWS_MAX_MESSAGE=1048576"],
        &progs().echo,
        &["--port", "{port}", "--debug", "3"],
        Duration::from_secs(15),
    );
    echo_ok(srv.port, "warm-up").unwrap();
    sleep(Duration::from_millis(200));
    let baseline = srv.rss_kib();
    let mut p = upgrade_with_extension(srv.port, "deflate-frame", "deflate-frame");
    let mut tx = DeflateFrameSession::new(usize::MAX);
    let chunk = vec![0u8; 1 << 20];
    p.s.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut closed_at = None;
    let mut max = baseline;
    for i in 0..64 {
        let mut wire = Vec::new();
        tx.compress_frame(&chunk, &mut wire).unwrap();
        // RSV1 on every compressed frame; binary first, then continuations; no FIN.
        let b0 = 0x40 | if i == 0 { 2 } else { 0 };
        if p.s.write_all(&frame_raw(b0, &wire, true, None)).is_err() {
            closed_at = Some(i);
            break;
        }
        max = max.max(srv.rss_kib());
        let mut b = [0u8; 16];
        match p.s.read(&mut b) {
            Ok(n) if n > 0 => {
                closed_at = Some(i);
                p.buf.extend_from_slice(&b[..n]);
                break;
            }
            Ok(_) => {
                closed_at = Some(i);
                break;
            }
            Err(_) => {}
        }
    }
    let end = p.read_to_end(Duration::from_secs(10));
    max = max.max(srv.rss_kib());
    srv.assert_alive("after the deflate-frame message");
    eprintln!(
        "deflate-frame fragments: closed after frame {closed_at:?}, VmRSS baseline {baseline} \
         KiB, max {max} KiB"
    );
    assert_eq!(
        end.close_code(),
        Some(1009),
        "no 1009 for a 64 MiB deflate-frame message with a 1 MiB limit (closed after frame \
         {closed_at:?}, VmRSS {baseline} -> {max} KiB)"
    );
    assert!(
        closed_at.is_some_and(|i| i <= 2),
        "closed only after frame {closed_at:?}"
    );
}

// ------------------------------------------------------------------ SIGPIPE

/// Peers vanish while the server writes as fast as it can, with SIGPIPE at its default
/// disposition: the server must survive (the library sends with MSG_NOSIGNAL).
#[test]
fn sigpipe_is_never_raised() {
    let dir = out_dir().join(format!("sigpipe-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.bin");
    fs::write(&file, pattern(8 << 20, 5)).unwrap();
    let mut srv = start_program(
        &[],
        &progs().flood,
        &["{port}", file.to_str().unwrap()],
        Duration::from_secs(15),
    );
    // SIGPIPE (13) must be neither ignored nor blocked, or the test proves nothing.
    let status = fs::read_to_string(format!("/proc/{}/status", srv.pid())).unwrap();
    for field in ["SigIgn:", "SigBlk:"] {
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(mask & (1 << 12), 0, "flood_server has SIGPIPE in {field}");
    }
    for wave in 0..4 {
        let mut peers = Vec::new();
        for i in 0..8 {
            let mut p = Peer::upgrade(srv.port, Some("flood"));
            let mut b = vec![0u8; 64 * 1024];
            let _ = p.s.read(&mut b);
            peers.push((i, p.s));
        }
        for i in 0..4 {
            let mut s =
                TcpStream::connect_timeout(&addr(srv.port), Duration::from_secs(5)).unwrap();
            s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut b = vec![0u8; 64 * 1024];
            let _ = s.read(&mut b);
            peers.push((100 + i, s));
        }
        sleep(Duration::from_millis(100));
        for (i, s) in peers {
            match (i + wave) % 3 {
                0 => reset(s),
                1 => {
                    let _ = s.shutdown(Shutdown::Both);
                }
                _ => drop(s), // unread data: the kernel answers further writes with RST
            }
        }
        // The server keeps writing into the dead sockets for a while.
        sleep(Duration::from_millis(400));
        srv.assert_alive(&format!("after wave {wave}"));
    }
    let mut p = Peer::upgrade(srv.port, Some("flood"));
    let (b0, payload) = p.read_frame().expect("flood data after the waves");
    assert_eq!((b0, payload.len()), (0x82, 64 * 1024));
    drop(p);
    let st = srv.stop(libc::SIGTERM, Duration::from_secs(10));
    assert!(
        st.is_some_and(|s| s.success()),
        "flood_server did not exit cleanly on SIGTERM: {st:?}\n{}",
        srv.tail()
    );
    let _ = fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------ valgrind

fn valgrind_args(log: &Path) -> Vec<String> {
    vec![
        "valgrind".into(),
        "--error-exitcode=99".into(),
        "--leak-check=full".into(),
        "--errors-for-leak-kinds=definite".into(),
        "--show-leak-kinds=definite".into(),
        format!("--log-file={}", log.display()),
    ]
}

/// Reads a valgrind log and checks "0 errors" and nothing definitely lost.
fn valgrind_clean(log: &Path) -> Result<(), String> {
    let text = fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let errors_ok = text.contains("ERROR SUMMARY: 0 errors");
    let lost_ok =
        !text.contains("definitely lost:") || text.contains("definitely lost: 0 bytes in 0 blocks");
    if errors_ok && lost_ok {
        if let Some(l) = text.lines().rev().find(|l| l.contains("ERROR SUMMARY")) {
            eprintln!("valgrind: {}", l.trim());
        }
        Ok(())
    } else {
        Err(text)
    }
}

/// libwebsocket_context_destroy with connections in every state (see
/// tests/fault/destroy_states.c), under valgrind.
#[test]
fn context_destroy_with_connections_in_every_state() {
    let p = progs();
    let dir = out_dir().join(format!("destroy-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.bin");
    fs::write(&file, pattern(32 << 20, 9)).unwrap();
    let vlog = dir.join("valgrind.log");
    let use_valgrind = have("valgrind");
    if !use_valgrind {
        eprintln!("NOTICE: valgrind is not installed; destroy_states runs without it");
    }
    // The program listens itself; retry with another port if this one was taken.
    let mut last = String::new();
    for _ in 0..3 {
        let port = free_port().to_string();
        let valgrind = if use_valgrind {
            valgrind_args(&vlog)
        } else {
            Vec::new()
        };
        let wrapper: Vec<&str> = valgrind.iter().map(String::as_str).collect();
        let mut cmd = wrapped(&wrapper, &p.destroy);
        cmd.arg(&port).arg(&file);
        let f = run_merged(&mut cmd, Duration::from_secs(120));
        let out = f.stdout.clone();
        if out.contains("create_context failed") {
            last = out;
            continue;
        }
        assert!(
            f.ok() && out.contains("destroy_states: ok"),
            "destroy_states failed: {}\n{}",
            f.describe(),
            fs::read_to_string(&vlog).unwrap_or_default()
        );
        if use_valgrind {
            if let Err(log) = valgrind_clean(&vlog) {
                panic!("valgrind reported problems in destroy_states:\n{log}");
            }
        }
        eprintln!("{}", out.trim());
        let _ = fs::remove_dir_all(&dir);
        return;
    }
    panic!("destroy_states could not listen: {last}");
}

/// test-echo under valgrind, with concurrent echo load and abusive peers, then stopped
/// with SIGINT while sessions are open: no memcheck errors, nothing definitely lost.
#[test]
fn test_echo_under_load_in_valgrind() {
    if !have("valgrind") {
        eprintln!("NOTICE: valgrind is not installed; valgrind load test skipped");
        return;
    }
    let dir = out_dir().join(format!("valgrind-echo-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let vlog = dir.join("valgrind.log");
    let wrapper = valgrind_args(&vlog);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut srv = start_program(
        &wrapper,
        &progs().echo,
        &["--port", "{port}"],
        Duration::from_secs(60),
    );
    let port = srv.port;
    // Eight clients, each echoing messages of growing size (fragmented and whole).
    let workers: Vec<_> = (0..8)
        .map(|w| {
            thread::spawn(move || -> Result<usize, String> {
                let mut p = Peer::upgrade(port, None);
                p.s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut bytes = 0;
                for i in 0..12usize {
                    let len = (1usize << i) * 16 + w;
                    let data = pattern(len, (w * 100 + i) as u64 + 1);
                    if i % 3 == 2 {
                        let (a, b) = data.split_at(len / 2);
                        p.s.write_all(&[frame(false, 2, a), frame(true, 0, b)].concat())
                            .map_err(|e| e.to_string())?;
                    } else {
                        p.s.write_all(&frame(true, 2, &data))
                            .map_err(|e| e.to_string())?;
                    }
                    let mut got = Vec::new();
                    while got.len() < len {
                        let (_, part) = p.read_frame()?;
                        got.extend_from_slice(&part);
                    }
                    if got != data {
                        return Err(format!("worker {w} message {i}: echo differs"));
                    }
                    bytes += len;
                }
                let _ = p.s.write_all(&close_frame(1000, b"bye"));
                Ok(bytes)
            })
        })
        .collect();
    // Abuse meanwhile: resets mid-message, garbage, an invalid frame.
    for i in 0..4 {
        let mut p = Peer::upgrade(port, None);
        let _ =
            p.s.write_all(&frame_raw(0x82, &pattern(1000, i), true, Some(100_000)));
        reset(p.s);
        let mut s = TcpStream::connect_timeout(&addr(port), Duration::from_secs(10)).unwrap();
        let _ = s.write_all(&pattern(2048, i + 50));
        reset(s);
        let mut p = Peer::upgrade(port, None);
        let _ = p.s.write_all(&frame(true, 1, b"\xff"));
        let end = p.read_to_end(Duration::from_secs(20));
        assert_eq!(end.close_code(), Some(1007), "invalid UTF-8 under valgrind");
    }
    for (w, h) in workers.into_iter().enumerate() {
        match h.join().unwrap() {
            Ok(_) => {}
            Err(e) => panic!("echo worker {w}: {e}\n{}", srv.tail()),
        }
    }
    // Sessions still open (one mid-message) when the server is told to stop.
    let mut held = Peer::upgrade(port, None);
    held.s
        .write_all(&frame(false, 1, b"half a message"))
        .unwrap();
    let _held2 = Peer::upgrade(port, None);
    sleep(Duration::from_millis(500));
    let st = srv.stop(libc::SIGINT, Duration::from_secs(60));
    let log = fs::read_to_string(&vlog).unwrap_or_default();
    assert!(
        st.is_some(),
        "test-echo under valgrind did not exit after SIGINT\n{log}"
    );
    if let Err(log) = valgrind_clean(&vlog) {
        panic!("valgrind reported problems in test-echo under load:\n{log}");
    }
    assert!(
        st.is_some_and(|s| s.success()),
        "test-echo under valgrind exited with {st:?}\n{log}"
    );
    let _ = fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------ AddressSanitizer

/// tests/c/util_test.c and null_args_test.c built with -fsanitize=address and linked
/// against our .so. Only the C side is instrumented: the Rust code in the library is
/// not (ASan still sees its heap through the malloc interceptors, so C code writing
/// past a buffer the library allocated, or freeing it twice, is caught).
#[test]
fn c_tests_under_address_sanitizer() {
    let probe = out_dir().join("asan-probe.c");
    fs::write(&probe, "int main(void) { return 0; }\n").unwrap();
    let cc_name = compiler(Lang::C);
    let probe_build = run_merged(
        Command::new(&cc_name)
            .arg("-fsanitize=address")
            .arg("-o")
            .arg(out_dir().join("asan-probe"))
            .arg(&probe),
        Duration::from_secs(60),
    );
    if !probe_build.ok() {
        eprintln!(
            "NOTICE: {cc_name} cannot build with -fsanitize=address; skipped: {}",
            probe_build.describe()
        );
        return;
    }
    let mut failures = Vec::new();
    for name in ["util_test", "null_args_test"] {
        let exe = match CBuild::new(format!("tests/c/{name}.c"), &out_dir(), &lib_dir())
            .named(&format!("{name}-asan"))
            .flag("-fsanitize=address")
            .flag("-fno-omit-frame-pointer")
            .build()
        {
            Ok(e) => e,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let f = run_merged(
            Command::new(&exe).env(
                "ASAN_OPTIONS",
                "detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86",
            ),
            Duration::from_secs(120),
        );
        if !f.ok() || f.stdout.contains("AddressSanitizer") {
            failures.push(format!("{name} under ASan: {}", f.describe()));
        } else {
            eprintln!("asan {name}: {}", f.stdout.lines().last().unwrap_or(""));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ------------------------------------------------------------------ memory amplification

/// A request head of 16 KiB must not cost much more than that: repeated headers are
/// joined into one value, and each join should not leave the previous copy behind.
///
/// Regression test: `HeaderTable::add` used to append every joined value anew and never
/// reclaim the old span, so 63 repeated `Host:` lines of 240 bytes (a 15.6 KiB head,
/// within every limit) grew the table to ~740 KiB (47x), with quadratic copying.
#[test]
fn repeated_headers_do_not_amplify_memory() {
    use websockets::engine::http::request::{parse_request_head, HeadLimits, HeadParse};
    for (lines, len) in [(63usize, 240usize), (40, 390), (20, 790)] {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..lines {
            // alternate two headers as well, so in-place extension alone is not enough
            head.extend_from_slice(if i % 2 == 0 { b"Host: " } else { b"Origin: " });
            head.extend(std::iter::repeat_n(b'a', len));
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let HeadParse::Complete(h) = parse_request_head(&head, &HeadLimits::default()) else {
            panic!("{lines} x {len}: head not accepted");
        };
        let table = h.headers.heap_bytes();
        assert!(
            table <= 4 * head.len(),
            "{lines} headers of {len} bytes: a {} byte head takes {table} bytes of header table",
            head.len()
        );
    }
}
