//! The protocol engine: safe Rust, no sockets, unit-testable without C.
#![forbid(unsafe_code)]

pub mod extensions;
pub mod handshake;
pub mod http;
pub mod timers;
pub mod tls;
pub mod util;
pub mod ws;
