//! The framing values of `libwebsocket_write` (`enum libwebsocket_write_protocol`):
//! one of the kinds, optionally OR-ed with the two flag bits. The one definition in
//! Rust; capi checks its C mirror of the enum against it.

pub const WRITE_TEXT: u32 = 0;
pub const WRITE_BINARY: u32 = 1;
pub const WRITE_CONTINUATION: u32 = 2;
/// Raw bytes, no framing (HTTP responses, the handshake).
pub const WRITE_HTTP: u32 = 3;
pub const WRITE_CLOSE: u32 = 4;
pub const WRITE_PING: u32 = 5;
pub const WRITE_PONG: u32 = 6;
/// Flag: the frame is not the last of its message (FIN clear).
pub const WRITE_NO_FIN: u32 = 0x40;
/// Flag: a client frame goes out unmasked.
pub const WRITE_CLIENT_IGNORE_XOR_MASK: u32 = 0x80;
