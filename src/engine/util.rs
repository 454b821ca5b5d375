//! Small pure helpers behind the utility exports: base64, SHA-1, hex dumps.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use sha1::{Digest, Sha1};

/// Standard-alphabet base64 that accepts input with or without `=` padding.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes `input` into `out` followed by a NUL. Returns the encoded length, or `None`
/// when `out` cannot hold the text and its terminator.
pub fn b64_encode_into(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let n = base64::encoded_len(input.len(), true)?;
    if out.len() < n + 1 {
        return None;
    }
    let written = STANDARD.encode_slice(input, &mut out[..n]).ok()?;
    out[written] = 0;
    Some(written)
}

/// Decodes base64 text into `out`; a NUL follows the bytes when there is room.
/// Returns the decoded length, or `None` on malformed input or a too-small `out`.
pub fn b64_decode_into(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let decoded = LENIENT.decode(text).ok()?;
    if decoded.len() > out.len() {
        return None;
    }
    out[..decoded.len()].copy_from_slice(&decoded);
    if decoded.len() < out.len() {
        out[decoded.len()] = 0;
    }
    Some(decoded.len())
}

/// SHA-1 digest of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    Sha1::digest(data).into()
}

/// Base64 of the SHA-1 of `parts` concatenated (used for Sec-WebSocket-Accept).
pub fn sha1_base64(parts: &[&[u8]]) -> String {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    STANDARD.encode(h.finalize())
}

/// Formats `data` as lines of `offset: 16 hex bytes  ascii`.
pub fn hexdump_lines(data: &[u8]) -> Vec<String> {
    data.chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let mut line = format!("{:04X}: ", i * 16);
            for b in chunk {
                line.push_str(&format!("{:02X} ", b));
            }
            for _ in chunk.len()..16 {
                line.push_str("   ");
            }
            line.push_str("   ");
            for &b in chunk {
                line.push(if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                });
            }
            line
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&str, &str); 7] = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, enc) in cases {
            let mut out = [0u8; 16];
            let n = b64_encode_into(plain.as_bytes(), &mut out).unwrap();
            assert_eq!(&out[..n], enc.as_bytes());
            assert_eq!(out[n], 0);
            let mut dec = [0u8; 16];
            let m = b64_decode_into(enc.as_bytes(), &mut dec).unwrap();
            assert_eq!(&dec[..m], plain.as_bytes());
        }
    }

    #[test]
    fn b64_rejects_small_buffers_and_garbage() {
        let mut out = [0u8; 4];
        assert_eq!(b64_encode_into(b"foo", &mut out), None);
        let mut out = [0u8; 5];
        assert_eq!(b64_encode_into(b"foo", &mut out), Some(4));
        let mut dec = [0u8; 2];
        assert_eq!(b64_decode_into(b"Zm9v", &mut dec), None);
        let mut dec = [0u8; 8];
        assert_eq!(b64_decode_into(b"Zm9v!!", &mut dec), None);
        assert_eq!(b64_decode_into(b"Zm8", &mut dec), Some(2));
    }

    #[test]
    fn sha1_fips_vectors() {
        assert_eq!(
            sha1(b"abc"),
            [
                0xa9, 0x99, 0x3e, 0x36, 0x47, 0x06, 0x81, 0x6a, 0xba, 0x3e, 0x25, 0x71, 0x78, 0x50,
                0xc2, 0x6c, 0x9c, 0xd0, 0xd8, 0x9d
            ]
        );
    }

    #[test]
    fn accept_key_rfc6455_example() {
        assert_eq!(
            sha1_base64(&[
                b"dGhlIHNhbXBsZSBub25jZQ==",
                b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            ]),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn hexdump_format() {
        let l = hexdump_lines(b"AB\x00");
        assert_eq!(l.len(), 1);
        assert!(l[0].starts_with("0000: 41 42 00 "));
        assert!(l[0].ends_with("AB."));
    }
}
