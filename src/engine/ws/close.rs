//! Close-frame payload validation (RFC 6455 sections 5.5.1 and 7.4).

use super::parser::ProtocolError;
use super::utf8::validate_complete;

pub const CLOSE_NORMAL: u16 = 1000;
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_UNSUPPORTED: u16 = 1003;
/// Never sent on the wire: "no status code was present".
pub const CLOSE_NO_STATUS: u16 = 1005;
/// Never sent on the wire: "connection dropped without a close frame".
pub const CLOSE_ABNORMAL: u16 = 1006;
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;
pub const CLOSE_MESSAGE_TOO_BIG: u16 = 1009;
pub const CLOSE_EXTENSION_REQUIRED: u16 = 1010;
pub const CLOSE_UNEXPECTED_CONDITION: u16 = 1011;

/// Close codes a peer may send (RFC 6455 7.4.1/7.4.2 as Autobahn 7.7/7.9 judge them):
/// 1000-1003, 1007-1011, 3000-4999. Everything else (0-999, 1004-1006, 1012-1016, 1100,
/// 2000, 2999, >=5000) is invalid.
pub fn is_valid_received_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// Validates a received close payload: empty -> Ok(None); 1 byte -> Err(1002);
/// invalid code -> Err(1002); reason not valid UTF-8 -> Err(1007); else
/// Ok(Some((code, reason))).
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<(u16, &[u8])>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::CLOSE_PAYLOAD_TOO_SHORT),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_received_code(code) {
                Err(ProtocolError::INVALID_CLOSE_CODE)
            } else if !validate_complete(reason) {
                Err(ProtocolError::INVALID_CLOSE_REASON)
            } else {
                Ok(Some((code, reason)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_codes() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ];
        let invalid = [
            0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000,
            65535,
        ];
        for c in valid {
            assert!(is_valid_received_code(c), "{c}");
        }
        for c in invalid {
            assert!(!is_valid_received_code(c), "{c}");
        }
    }

    #[test]
    fn payloads() {
        assert_eq!(parse_close_payload(b""), Ok(None));
        assert_eq!(parse_close_payload(b"\x03").unwrap_err().close_code, 1002);
        assert_eq!(parse_close_payload(b"\x03\xe8"), Ok(Some((1000, &b""[..]))));
        assert_eq!(
            parse_close_payload(b"\x0b\xb8bye \xc2\xb5"),
            Ok(Some((3000, &b"bye \xc2\xb5"[..])))
        );
        assert_eq!(
            parse_close_payload(b"\x03\xed").unwrap_err().close_code,
            1002
        ); // 1005
        assert_eq!(
            parse_close_payload(b"\x13\x88").unwrap_err().close_code,
            1002
        ); // 5000
        assert_eq!(
            parse_close_payload(b"\x03\xe8\xce\xba\xed\xa0\x80")
                .unwrap_err()
                .close_code,
            1007
        );
        assert_eq!(
            parse_close_payload(b"\x03\xe8\xce").unwrap_err().close_code,
            1007
        );
        // Bad code wins over bad reason.
        assert_eq!(
            parse_close_payload(b"\x00\x00\xff").unwrap_err().close_code,
            1002
        );
    }
}
