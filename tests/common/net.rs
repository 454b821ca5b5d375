//! Loopback ports and bounded waits.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// 127.0.0.1:`port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A loopback port the kernel just handed out (from the ephemeral range) and released.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A free loopback port below Linux's ephemeral range (32768-60999), so that outgoing
/// connections of other programs cannot take it before a program given it binds it.
pub fn free_port_below_ephemeral() -> u16 {
    free_ports_below_ephemeral(1)
}

/// `n` consecutive free loopback ports below Linux's ephemeral range (as
/// [`free_port_below_ephemeral`]); returns the first.
pub fn free_ports_below_ephemeral(n: u16) -> u16 {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let call = CALLS.fetch_add(1, Ordering::Relaxed);
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
        let base = 20000 + (x % 12000) as u16;
        if (base..base + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free port(s) in 20000..32000");
}

/// Whether 127.0.0.1:`port` accepts a connection (within 200 ms).
pub fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&addr(port), Duration::from_millis(200)).is_ok()
}

/// Polls `f` every 50 ms until it holds (true) or `within` has passed (false).
pub fn wait_until(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}
