//! RFC 6455 frame codec: incremental frame parser, masking, UTF-8 validation,
//! close-payload validation and frame-header encoding.
//!
//! Pure, I/O-free and allocation-free on the data path, so the connection state
//! machine can feed it straight from its receive buffer.

pub mod close;
pub mod connection;
pub mod frame;
pub mod mask;
pub mod parser;
pub mod utf8;
pub mod write_protocol;

pub use close::{is_valid_received_code, parse_close_payload};
pub use connection::{Connection, RxConfig, RxEvent, RxInfo};
pub use frame::{
    encode_header, header_len, is_control, MAX_HEADER_LEN, OP_BINARY, OP_CLOSE, OP_CONTINUATION,
    OP_PING, OP_PONG, OP_TEXT, RSV1,
};
pub use mask::apply_mask;
pub use parser::{Event, FrameParser, ParserConfig, ProtocolError, Role};
pub use utf8::{validate_complete, Utf8Error, Utf8Validator};

#[cfg(test)]
mod session_tests;
