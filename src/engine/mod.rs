//! The protocol engine: safe Rust, no sockets, unit-testable without C.
#![forbid(unsafe_code)]

pub mod util;
