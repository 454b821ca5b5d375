//! WebSocket compression extensions, as I/O-free engine code.
//!
//! * [`negotiate`]: `Sec-WebSocket-Extensions` header parsing.
//! * [`pmd`]: permessage-deflate (RFC 7692): negotiation for both sides and
//!   the per-connection [`PmdSession`].
//! * [`deflate_frame`]: the older per-frame `deflate-frame` /
//!   `x-webkit-deflate-frame` extension as libwebsockets v1.23 shipped it.
//!
//! * [`app_hooks`]: decisions behind the v1.23 callbacks delivered to extensions the
//!   application implements in C (token checks, spill loops, DO_SEND units).
//!
//! Compression is done by `flate2` on its pure-Rust `zlib-rs` backend (raw
//! DEFLATE, window bits 9..=15; a negotiated 8 runs as 9, see [`pmd`]). No
//! `unsafe` code here.

pub mod app_hooks;
pub mod deflate_frame;
pub mod negotiate;
pub mod pmd;

pub use deflate_frame::{
    deflate_frame_client_accept_response, deflate_frame_client_offer_string,
    deflate_frame_server_accept, DeflateFrameSession,
};
pub use negotiate::{parse_extensions, ExtOffer, NegotiationError};
pub use pmd::{
    client_accept_response, client_offer_string, server_accept, ClientOffer, PmdError, PmdParams,
    PmdSession, Role, ServerPolicy,
};
