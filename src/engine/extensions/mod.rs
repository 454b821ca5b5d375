//! WebSocket extensions (temporary stand-in until the compression module lands).
pub mod deflate_frame;
pub mod negotiate;
pub mod pmd;
