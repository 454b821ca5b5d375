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
        AcceptKey(base64_of_digest(&sha1_with_guid(key)))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// SHA-1 of `key` followed by the GUID. A key of up to 83 bytes (every valid one has
/// 22 to 24) is padded here and hashed with one call of the compression function (SHA-NI
/// where the CPU has it); longer ones go through the streaming hasher.
fn sha1_with_guid(key: &[u8]) -> [u8; 20] {
    use sha1::digest::generic_array::GenericArray;
    let len = key.len() + GUID.len();
    if len > 119 {
        let mut h = Sha1::new();
        h.update(key);
        h.update(GUID);
        return h.finalize().into();
    }
    let mut buf = [0u8; 128];
    buf[..key.len()].copy_from_slice(key);
    buf[key.len()..len].copy_from_slice(GUID);
    buf[len] = 0x80;
    let end = if len < 56 { 64 } else { 128 };
    buf[end - 8..end].copy_from_slice(&((len as u64) * 8).to_be_bytes());
    let blocks = [
        *GenericArray::from_slice(&buf[..64]),
        *GenericArray::from_slice(&buf[64..]),
    ];
    let mut state: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    sha1::compress(&mut state, &blocks[..end / 64]);
    let mut out = [0u8; 20];
    for (o, w) in out.chunks_exact_mut(4).zip(state) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// The standard base64 alphabet.
const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (standard alphabet, padded) of a 20-byte digest: six whole 3-byte groups,
/// then 2 bytes (3 symbols and one '=').
fn base64_of_digest(d: &[u8; 20]) -> [u8; ACCEPT_LEN] {
    let sym = |v: u32| BASE64[(v & 63) as usize];
    let mut out = [b'='; ACCEPT_LEN];
    for (o, i) in out.chunks_exact_mut(4).zip(d.chunks_exact(3)) {
        let v = u32::from(i[0]) << 16 | u32::from(i[1]) << 8 | u32::from(i[2]);
        o.copy_from_slice(&[sym(v >> 18), sym(v >> 12), sym(v >> 6), sym(v)]);
    }
    let v = u32::from(d[18]) << 16 | u32::from(d[19]) << 8;
    out[24] = sym(v >> 18);
    out[25] = sym(v >> 12);
    out[26] = sym(v >> 6);
    out
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

    #[test]
    fn accept_for_every_key_length() {
        // One block, two blocks and the streaming hasher, against the crates' own
        // SHA-1 and base64.
        let key: Vec<u8> = (0..200u32).map(|i| b'A' + (i * 7 % 26) as u8).collect();
        for n in 0..key.len() {
            assert_eq!(
                accept_key(&key[..n]),
                crate::engine::util::sha1_base64(&[&key[..n], GUID]),
                "key length {n}"
            );
        }
    }
}
