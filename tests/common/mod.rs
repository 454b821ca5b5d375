//! The harness shared by every `tests/*.rs`: each one says `mod common;` and takes what
//! it needs from the modules below.
//!
//! * [`paths`]: the repository, `target/`, the library to link against, scratch
//!   directories;
//! * [`net`]: free loopback ports, bounded waits;
//! * [`proc`]: commands run to their end within a limit, background processes killed
//!   by PID when dropped, servers started on a free port;
//! * [`cc`]: C and C++ programs compiled against `include/` and the built library;
//! * [`py`]: the Python peers under tests/ (python3 with `websockets`);
//! * [`tools`]: whether python3 `websockets`, valgrind, Autobahn... are there, and the
//!   skip-or-fail policy when they are not;
//! * [`ws`]: a raw WebSocket client on a plain socket, frames written by hand.

// Each test file uses a different part of the harness.
#![allow(dead_code)]

pub mod cc;
pub mod net;
pub mod paths;
pub mod proc;
pub mod py;
pub mod tools;
pub mod ws;

/// `len` deterministic pseudo-random bytes (xorshift) for `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
