//! libwebsockets v1.23, API- and ABI-compatible, in Rust.
//!
//! Three layers: `capi` (the C boundary: exported functions, `#[repr(C)]` types, raw
//! pointers), `engine` (safe, I/O-free protocol logic) and `io` (sockets, the mio
//! service loop, the external-poll path).

pub mod log;

pub mod capi;
pub mod engine;
pub mod io;
