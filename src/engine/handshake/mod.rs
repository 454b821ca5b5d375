//! The RFC 6455 opening handshake, both sides, without sockets or callbacks: headers in,
//! a decision and the bytes to send out. io runs the application's callbacks between
//! the steps and moves the bytes.
//!
//! - [`server`]: request validation, the answers to bad requests, subprotocol choice,
//!   the 101 reply.
//! - [`client`]: the upgrade request, the response head parse and its verification.

pub mod client;
pub mod server;

pub use server::{
    is_upgrade_request, select_protocol, switching_protocols, validate_upgrade, Refusal,
};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha1::{Digest, Sha1};

/// The GUID RFC 6455 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Length of a `Sec-WebSocket-Accept` value: base64 of a 20-byte SHA-1.
pub const ACCEPT_LEN: usize = 28;

/// A `Sec-WebSocket-Accept` value, computed without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AcceptKey([u8; ACCEPT_LEN]);

impl AcceptKey {
    /// The accept value for a client's `Sec-WebSocket-Key` (taken as sent).
    pub fn for_key(key: &[u8]) -> AcceptKey {
        let mut h = Sha1::new();
        h.update(key);
        h.update(GUID);
        let digest = h.finalize();
        let mut out = [0u8; ACCEPT_LEN];
        let n = STANDARD
            .encode_slice(digest, &mut out)
            .expect("28 bytes hold the base64 of a SHA-1");
        debug_assert_eq!(n, ACCEPT_LEN);
        AcceptKey(out)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

/// Sec-WebSocket-Accept for a client key, as a String (tests and tools).
pub fn accept_key(key: &[u8]) -> String {
    String::from_utf8_lossy(AcceptKey::for_key(key).as_bytes()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_example_accept() {
        // RFC 6455 section 1.3.
        assert_eq!(
            AcceptKey::for_key(b"dGhlIHNhbXBsZSBub25jZQ==").as_bytes(),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            crate::engine::util::sha1_base64(&[b"dGhlIHNhbXBsZSBub25jZQ==", GUID])
        );
    }
}
