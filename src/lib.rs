//! libwebsockets v1.23, API- and ABI-compatible, in Rust.
//!
//! Three layers: `capi` (the C boundary: exported functions, `#[repr(C)]` types, the
//! calls into the application's callbacks), `engine` (safe, I/O-free protocol logic)
//! and `io` (sockets, the mio service loop, the external-poll path), which reports to
//! the application through its own `io::app::Application` trait that capi implements.
//! capi uses io and engine, io uses engine; nothing uses capi.

pub mod log;

pub mod capi;
pub mod engine;
pub mod io;
