//! The server side of the RFC 6455 opening handshake: is this an upgrade, which
//! subprotocol, and the 101 response.

use crate::engine::http::headers::*;
use crate::engine::util::sha1_base64;

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// True when the request asks for a WebSocket upgrade (both Upgrade and Connection
/// present, as the original decided between HTTP and WebSocket).
pub fn is_upgrade_request(h: &HeaderTable) -> bool {
    h.total_length(TOKEN_UPGRADE) > 0 && h.total_length(TOKEN_CONNECTION) > 0
}

/// Why an upgrade request is refused, as an HTTP status plus extra headers.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub extra_headers: &'static str,
    pub why: &'static str,
}

/// Checks the RFC 6455 4.2.1 requirements. Only version 13 is spoken (the only one the
/// original v1.23 completed a handshake for); others get 426 with the version we speak.
pub fn validate_upgrade(method: &str, h: &HeaderTable) -> Result<(), Refusal> {
    let refuse = |status, why| Refusal {
        status,
        extra_headers: "",
        why,
    };
    if method != "GET" {
        return Err(refuse(400, "upgrade must use GET"));
    }
    if !h.list_contains(TOKEN_UPGRADE, "websocket") {
        return Err(refuse(400, "Upgrade is not websocket"));
    }
    if !h.list_contains(TOKEN_CONNECTION, "upgrade") {
        return Err(refuse(400, "Connection lacks upgrade"));
    }
    match h.get(TOKEN_VERSION) {
        Some(b"13") => {}
        _ => {
            return Err(Refusal {
                status: 426,
                extra_headers: "Sec-WebSocket-Version: 13\r\n",
                why: "unsupported Sec-WebSocket-Version",
            })
        }
    }
    let key = h.get(TOKEN_KEY).unwrap_or(&[]);
    let mut raw = [0u8; 20];
    if crate::engine::util::b64_decode_into(key, &mut raw) != Some(16) {
        return Err(refuse(400, "bad Sec-WebSocket-Key"));
    }
    Ok(())
}

/// Chooses the protocol index for the request. `names` are the application's protocol
/// names in array order (None for a NULL name).
///
/// No `Sec-WebSocket-Protocol` header selects protocols[0]. Otherwise the whole header
/// value is first matched exactly (what the original did), then each comma-separated
/// offer in the client's order. `None` when nothing matches: the original refused.
pub fn select_protocol(offer: Option<&[u8]>, names: &[Option<&[u8]>]) -> Option<usize> {
    let Some(offer) = offer else {
        return if names.is_empty() { None } else { Some(0) };
    };
    if let Some(i) = names.iter().position(|n| *n == Some(offer)) {
        return Some(i);
    }
    for candidate in offer.split(|&b| b == b',').map(|s| s.trim_ascii()) {
        if candidate.is_empty() {
            continue;
        }
        if let Some(i) = names.iter().position(|n| *n == Some(candidate)) {
            return Some(i);
        }
    }
    None
}

/// Sec-WebSocket-Accept for a client key.
pub fn accept_key(key: &[u8]) -> String {
    sha1_base64(&[key, GUID])
}

/// The 101 response.
pub fn switching_protocols(
    key: &[u8],
    protocol: Option<&[u8]>,
    extensions: Option<&[u8]>,
) -> Vec<u8> {
    let mut r = Vec::with_capacity(160);
    r.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    r.extend_from_slice(accept_key(key).as_bytes());
    if let Some(p) = protocol {
        r.extend_from_slice(b"\r\nSec-WebSocket-Protocol: ");
        r.extend_from_slice(p);
    }
    if let Some(e) = extensions {
        r.extend_from_slice(b"\r\nSec-WebSocket-Extensions: ");
        r.extend_from_slice(e);
    }
    r.extend_from_slice(b"\r\n\r\n");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(usize, &str)]) -> HeaderTable {
        let mut t = HeaderTable::new();
        for (i, v) in pairs {
            t.add(*i, v.as_bytes());
        }
        t
    }

    #[test]
    fn valid_upgrade() {
        let t = table(&[
            (TOKEN_UPGRADE, "websocket"),
            (TOKEN_CONNECTION, "keep-alive, Upgrade"),
            (TOKEN_VERSION, "13"),
            (TOKEN_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert!(is_upgrade_request(&t));
        assert_eq!(validate_upgrade("GET", &t), Ok(()));
        assert_eq!(validate_upgrade("POST", &t).unwrap_err().status, 400);
    }

    #[test]
    fn bad_version_and_key() {
        let t = table(&[
            (TOKEN_UPGRADE, "websocket"),
            (TOKEN_CONNECTION, "Upgrade"),
            (TOKEN_VERSION, "8"),
            (TOKEN_KEY, "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(validate_upgrade("GET", &t).unwrap_err().status, 426);
        let t = table(&[
            (TOKEN_UPGRADE, "websocket"),
            (TOKEN_CONNECTION, "Upgrade"),
            (TOKEN_VERSION, "13"),
            (TOKEN_KEY, "c2hvcnQ="),
        ]);
        assert_eq!(validate_upgrade("GET", &t).unwrap_err().status, 400);
    }

    #[test]
    fn protocol_selection() {
        let names: [Option<&[u8]>; 3] = [Some(b"http-only"), Some(b"chat"), Some(b"mirror")];
        assert_eq!(select_protocol(None, &names), Some(0));
        assert_eq!(select_protocol(Some(b"mirror"), &names), Some(2));
        assert_eq!(select_protocol(Some(b"x, chat ,mirror"), &names), Some(1));
        assert_eq!(select_protocol(Some(b"nope"), &names), None);
    }

    #[test]
    fn response_contains_accept() {
        let r = String::from_utf8(switching_protocols(
            b"dGhlIHNhbXBsZSBub25jZQ==",
            Some(b"chat"),
            None,
        ))
        .unwrap();
        assert!(r.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(r.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(r.ends_with("\r\n\r\n"));
    }
}
