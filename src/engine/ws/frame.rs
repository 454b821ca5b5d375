//! Opcodes and frame-header encoding (RFC 6455 section 5.2).

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The RSV1 bit as it sits in the first header byte (the compression extensions' bit).
pub const RSV1: u8 = 0x40;

/// 2 fixed bytes + 8 extended-length bytes + 4 mask-key bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// Largest payload a control frame may carry.
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Control opcodes have the high bit of the 4-bit opcode set (0x8..=0xF).
pub fn is_control(opcode: u8) -> bool {
    opcode & 0x08 != 0
}

/// Length of the header [`encode_header`] writes for these parameters, so callers can
/// reserve room in front of a payload before encoding.
pub fn header_len(masked: bool, payload_len: u64) -> usize {
    let base = match payload_len {
        0..=125 => 2,
        126..=0xffff => 4,
        _ => 10,
    };
    if masked {
        base + 4
    } else {
        base
    }
}

/// Writes a frame header (FIN, RSV bits (`rsv` is the 3 bits already shifted:
/// 0x40/0x20/0x10 = RSV1/2/3), opcode, mask bit + key when `mask` is Some,
/// minimal-length payload length encoding) into the start of `out` and returns its
/// length (2..=14).
///
/// `payload_len` must be below 2^63 (RFC 6455 forbids the top bit); larger values are
/// a caller bug and trip a debug assertion.
pub fn encode_header(
    out: &mut [u8; MAX_HEADER_LEN],
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload_len: u64,
) -> usize {
    debug_assert!(
        payload_len >> 63 == 0,
        "payload length uses the reserved top bit"
    );
    out[0] = if fin { 0x80 } else { 0 } | (rsv & 0x70) | (opcode & 0x0f);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut len = match payload_len {
        0..=125 => {
            out[1] = mask_bit | payload_len as u8;
            2
        }
        126..=0xffff => {
            out[1] = mask_bit | 126;
            out[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        }
        _ => {
            out[1] = mask_bit | 127;
            out[2..10].copy_from_slice(&payload_len.to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        out[len..len + 4].copy_from_slice(&key);
        len += 4;
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        let mut out = [0u8; MAX_HEADER_LEN];
        for (len, expect) in [
            (0u64, 2usize),
            (1, 2),
            (125, 2),
            (126, 4),
            (65535, 4),
            (65536, 10),
            (1 << 20, 10),
            ((1 << 63) - 1, 10),
        ] {
            for mask in [None, Some([1, 2, 3, 4])] {
                let extra = if mask.is_some() { 4 } else { 0 };
                let n = encode_header(&mut out, true, 0, OP_BINARY, mask, len);
                assert_eq!(n, expect + extra, "len {len}");
                assert_eq!(header_len(mask.is_some(), len), n);
                assert_eq!(out[1] & 0x80 != 0, mask.is_some());
                if let Some(k) = mask {
                    assert_eq!(out[n - 4..n], k);
                }
            }
        }
    }

    #[test]
    fn exact_bytes() {
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut out, true, 0, OP_TEXT, None, 5);
        assert_eq!(&out[..n], &[0x81, 0x05]);
        let n = encode_header(
            &mut out,
            false,
            0x40,
            OP_BINARY,
            Some([0xa, 0xb, 0xc, 0xd]),
            256,
        );
        assert_eq!(&out[..n], &[0x42, 0xfe, 0x01, 0x00, 0xa, 0xb, 0xc, 0xd]);
        let n = encode_header(&mut out, true, 0x70, OP_PING, None, 65536);
        assert_eq!(&out[..n], &[0xf9, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn control_opcodes() {
        for op in 0u8..16 {
            assert_eq!(is_control(op), op >= 8);
        }
    }
}
