//! The server side of the opening handshake: is a request head an upgrade, is it a
//! valid one (RFC 6455 4.2.1), which subprotocol, the 101 reply, and the answers to
//! requests that are refused. io keeps the sockets, the callbacks
//! (FILTER_PROTOCOL_CONNECTION, the extension hooks) and the connection's state.

use super::AcceptKey;
use crate::engine::http::headers::*;
use crate::engine::http::response;

/// True when the request asks for a WebSocket upgrade (both Upgrade and Connection
/// present, as the original decided between HTTP and WebSocket).
pub fn is_upgrade_request(h: &HeaderTable) -> bool {
    h.total_length(TOKEN_UPGRADE) > 0 && h.total_length(TOKEN_CONNECTION) > 0
}

/// Why a request is refused, as an HTTP status plus extra headers.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub extra_headers: &'static str,
    pub why: &'static str,
}

impl Refusal {
    const fn plain(status: u16, why: &'static str) -> Refusal {
        Refusal {
            status,
            extra_headers: "",
            why,
        }
    }

    /// No protocol of the application matches the client's `Sec-WebSocket-Protocol`.
    pub const NO_PROTOCOL: Refusal = Refusal::plain(400, "requested protocol not supported");
    /// FILTER_PROTOCOL_CONNECTION returned non-zero.
    pub const DENIED: Refusal = Refusal::plain(403, "user code denied the connection");

    /// The complete error response (the connection closes after it).
    pub fn response(&self) -> Vec<u8> {
        response::error_response(self.status, self.extra_headers)
    }
}

/// A plain HTTP request (no upgrade): methods other than GET, HEAD and POST get 405
/// with `Allow`; an empty URI gets 400.
pub fn check_http_request(method: &str, uri: &[u8]) -> Result<(), Refusal> {
    if method != "GET" && method != "HEAD" && method != "POST" {
        return Err(Refusal {
            status: 405,
            extra_headers: "Allow: GET, HEAD, POST\r\n",
            why: "method not allowed",
        });
    }
    if uri.is_empty() {
        return Err(Refusal::plain(400, "empty URI"));
    }
    Ok(())
}

/// Checks the RFC 6455 4.2.1 requirements. Only version 13 is spoken (the only one the
/// original v1.23 completed a handshake for); others get 426 with the version we speak.
/// On success, the accept value for the request's key.
pub fn check_upgrade(method: &str, h: &HeaderTable) -> Result<AcceptKey, Refusal> {
    if method != "GET" {
        return Err(Refusal::plain(400, "upgrade must use GET"));
    }
    if !h.list_contains(TOKEN_UPGRADE, "websocket") {
        return Err(Refusal::plain(400, "Upgrade is not websocket"));
    }
    if !h.list_contains(TOKEN_CONNECTION, "upgrade") {
        return Err(Refusal::plain(400, "Connection lacks upgrade"));
    }
    if h.get(TOKEN_VERSION) != Some(b"13") {
        return Err(Refusal {
            status: 426,
            extra_headers: "Sec-WebSocket-Version: 13\r\n",
            why: "unsupported Sec-WebSocket-Version",
        });
    }
    let key = h.get(TOKEN_KEY).unwrap_or(&[]);
    if !is_valid_key(key) {
        return Err(Refusal::plain(400, "bad Sec-WebSocket-Key"));
    }
    Ok(AcceptKey::for_key(key))
}

/// [`check_upgrade`] without the accept value.
pub fn validate_upgrade(method: &str, h: &HeaderTable) -> Result<(), Refusal> {
    check_upgrade(method, h).map(|_| ())
}

/// Value of each byte as a base64 symbol (standard alphabet), 0xff when it is none.
const BASE64_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 64 {
        t[b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i] as usize] =
            i as u8;
        i += 1;
    }
    t
};

/// A key is base64 (padding optional) of exactly 16 bytes.
fn is_valid_key(key: &[u8]) -> bool {
    // The form clients send: 22 symbols and "==", the last symbol carrying 2 bits (the
    // other 4 zero, as the strict decoder below requires).
    if let [sym @ .., b'=', b'='] = key {
        if sym.len() == 22 {
            return sym.iter().all(|&c| BASE64_VALUE[usize::from(c)] != 0xff)
                && BASE64_VALUE[usize::from(sym[21])] & 0x0f == 0;
        }
    }
    is_valid_key_general(key)
}

fn is_valid_key_general(key: &[u8]) -> bool {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::Engine;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // Longer keys do not fit and are refused as they should be.
    let mut raw = [0u8; 20];
    LENIENT.decode_slice(key, &mut raw) == Ok(16)
}

/// What the upgrade needs from the request, copied out of the header table (which the
/// application reads through `lws_hdr_*` while its callbacks run).
#[derive(Debug)]
pub struct Upgrade {
    /// The `Sec-WebSocket-Accept` value for the request's key.
    pub accept: AcceptKey,
    /// `Sec-WebSocket-Protocol` as sent, followed by a NUL (FILTER_PROTOCOL_CONNECTION
    /// gets it as a C string).
    offer: Option<Vec<u8>>,
    /// `Sec-WebSocket-Extensions` as sent.
    pub extensions: Option<Vec<u8>>,
}

impl Upgrade {
    /// Validates an upgrade request head and keeps what the reply needs.
    pub fn from_request(method: &str, h: &HeaderTable) -> Result<Upgrade, Refusal> {
        let accept = check_upgrade(method, h)?;
        Ok(Upgrade {
            accept,
            offer: h.get(TOKEN_PROTOCOL).map(|v| {
                let mut o = Vec::with_capacity(v.len() + 1);
                o.extend_from_slice(v);
                o.push(0);
                o
            }),
            extensions: h.get(TOKEN_EXTENSIONS).map(<[u8]>::to_vec),
        })
    }

    /// The client's `Sec-WebSocket-Protocol` value, if it sent one.
    pub fn offer(&self) -> Option<&[u8]> {
        self.offer.as_deref().map(|o| &o[..o.len() - 1])
    }

    /// The offer with its terminating NUL, for the filter callback's `in`.
    pub fn offer_c(&mut self) -> Option<&mut [u8]> {
        self.offer.as_deref_mut()
    }

    /// The index of the application protocol serving this connection.
    pub fn choose_protocol<'n, I>(&self, names: I) -> Result<usize, Refusal>
    where
        I: Iterator<Item = Option<&'n [u8]>> + Clone,
    {
        select_protocol(self.offer(), names).ok_or(Refusal::NO_PROTOCOL)
    }

    /// The 101 reply. `protocol_name` is the chosen protocol's name; it is echoed only
    /// when the client asked for a protocol. `extensions` is the negotiated
    /// `Sec-WebSocket-Extensions` answer.
    pub fn reply(&self, protocol_name: Option<&[u8]>, extensions: Option<&[u8]>) -> Vec<u8> {
        switching_protocols(&self.accept, self.offer().and(protocol_name), extensions)
    }

    /// [`reply`](Self::reply) written into `out`: its length, or None when it does not
    /// fit.
    pub fn reply_into(
        &self,
        out: &mut [u8],
        protocol_name: Option<&[u8]>,
        extensions: Option<&[u8]>,
    ) -> Option<usize> {
        switching_protocols_into(
            out,
            &self.accept,
            self.offer().and(protocol_name),
            extensions,
        )
    }
}

/// Chooses the protocol index for the request. `names` are the application's protocol
/// names in array order (None for a NULL name).
///
/// No `Sec-WebSocket-Protocol` header selects protocols[0]. Otherwise the whole header
/// value is first matched exactly (what the original did), then each comma-separated
/// offer in the client's order. `None` when nothing matches: the original refused.
pub fn select_protocol<'n, I>(offer: Option<&[u8]>, names: I) -> Option<usize>
where
    I: Iterator<Item = Option<&'n [u8]>> + Clone,
{
    let Some(offer) = offer else {
        return if names.clone().next().is_none() {
            None
        } else {
            Some(0)
        };
    };
    if let Some(i) = names.clone().position(|n| n == Some(offer)) {
        return Some(i);
    }
    for candidate in offer.split(|&b| b == b',').map(|s| s.trim_ascii()) {
        if candidate.is_empty() {
            continue;
        }
        if let Some(i) = names.clone().position(|n| n == Some(candidate)) {
            return Some(i);
        }
    }
    None
}

const REPLY_HEAD: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
const PROTOCOL_LINE: &[u8] = b"\r\nSec-WebSocket-Protocol: ";
const EXTENSIONS_LINE: &[u8] = b"\r\nSec-WebSocket-Extensions: ";

/// Length of the 101 response.
fn switching_protocols_len(protocol: Option<&[u8]>, extensions: Option<&[u8]>) -> usize {
    REPLY_HEAD.len()
        + super::ACCEPT_LEN
        + protocol.map_or(0, |p| PROTOCOL_LINE.len() + p.len())
        + extensions.map_or(0, |e| EXTENSIONS_LINE.len() + e.len())
        + 4
}

/// The 101 response (one allocation, sized exactly, with a spare byte for a NUL).
pub fn switching_protocols(
    accept: &AcceptKey,
    protocol: Option<&[u8]>,
    extensions: Option<&[u8]>,
) -> Vec<u8> {
    let len = switching_protocols_len(protocol, extensions);
    let mut r = Vec::with_capacity(len + 1);
    r.resize(len, 0);
    switching_protocols_into(&mut r, accept, protocol, extensions);
    r
}

/// The 101 response written at the start of `out`: its length, or None when `out` is
/// too short.
pub fn switching_protocols_into(
    out: &mut [u8],
    accept: &AcceptKey,
    protocol: Option<&[u8]>,
    extensions: Option<&[u8]>,
) -> Option<usize> {
    let len = switching_protocols_len(protocol, extensions);
    let mut rest = out.get_mut(..len)?;
    let mut put = |bytes: &[u8]| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        rest = tail;
    };
    put(REPLY_HEAD);
    put(accept.as_bytes());
    if let Some(p) = protocol {
        put(PROTOCOL_LINE);
        put(p);
    }
    if let Some(e) = extensions {
        put(EXTENSIONS_LINE);
        put(e);
    }
    put(b"\r\n\r\n");
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn table(pairs: &[(usize, &str)]) -> HeaderTable {
        let mut t = HeaderTable::new();
        for (i, v) in pairs {
            t.add(*i, v.as_bytes());
        }
        t
    }

    fn good() -> Vec<(usize, &'static str)> {
        vec![
            (TOKEN_UPGRADE, "websocket"),
            (TOKEN_CONNECTION, "keep-alive, Upgrade"),
            (TOKEN_VERSION, "13"),
            (TOKEN_KEY, KEY),
        ]
    }

    fn with(idx: usize, value: Option<&'static str>) -> HeaderTable {
        let mut p: Vec<_> = good().into_iter().filter(|(i, _)| *i != idx).collect();
        if let Some(v) = value {
            p.push((idx, v));
        }
        table(&p)
    }

    fn names() -> [Option<&'static [u8]>; 3] {
        [Some(b"http-only"), Some(b"chat"), Some(b"mirror")]
    }

    #[test]
    fn valid_upgrade() {
        let t = table(&good());
        assert!(is_upgrade_request(&t));
        assert_eq!(validate_upgrade("GET", &t), Ok(()));
        let u = Upgrade::from_request("GET", &t).unwrap();
        assert_eq!(u.accept.as_bytes(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(u.offer(), None);
        assert!(u.extensions.is_none());
        // Case-insensitive tokens, lists.
        let t = with(TOKEN_UPGRADE, Some("WebSocket"));
        assert!(validate_upgrade("GET", &t).is_ok());
        let t = with(TOKEN_CONNECTION, Some("UPGRADE"));
        assert!(validate_upgrade("GET", &t).is_ok());
        // Unpadded key.
        let t = with(TOKEN_KEY, Some("dGhlIHNhbXBsZSBub25jZQ"));
        assert!(validate_upgrade("GET", &t).is_ok());
    }

    #[test]
    fn key_fast_path_agrees_with_decoder() {
        let mut key = *b"dGhlIHNhbXBsZSBub25jZQ==";
        assert!(is_valid_key(&key));
        // Every byte value at every symbol position, the last one included.
        for pos in 0..24 {
            let orig = key[pos];
            for b in 0..=255u8 {
                key[pos] = b;
                assert_eq!(
                    is_valid_key(&key),
                    is_valid_key_general(&key),
                    "byte {b:#x} at {pos}"
                );
            }
            key[pos] = orig;
        }
    }

    #[test]
    fn not_an_upgrade() {
        assert!(!is_upgrade_request(&with(TOKEN_UPGRADE, None)));
        assert!(!is_upgrade_request(&with(TOKEN_CONNECTION, None)));
        assert!(!is_upgrade_request(&HeaderTable::new()));
    }

    #[test]
    fn refusals() {
        let t = table(&good());
        for m in ["POST", "HEAD", "get"] {
            let r = validate_upgrade(m, &t).unwrap_err();
            assert_eq!((r.status, r.extra_headers), (400, ""), "{m}");
        }
        let cases: [(usize, Option<&'static str>, u16); 10] = [
            (TOKEN_UPGRADE, Some("h2c"), 400),
            (TOKEN_CONNECTION, Some("keep-alive"), 400),
            (TOKEN_VERSION, Some("8"), 426),
            (TOKEN_VERSION, Some("13, 8"), 426),
            (TOKEN_VERSION, None, 426),
            (TOKEN_KEY, None, 400),
            (TOKEN_KEY, Some("c2hvcnQ="), 400),
            (TOKEN_KEY, Some("not base64 at all!!!!!!!"), 400),
            // 17 bytes.
            (TOKEN_KEY, Some("AAAAAAAAAAAAAAAAAAAAAAA="), 400),
            (
                TOKEN_KEY,
                Some("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="),
                400,
            ),
        ];
        for (idx, v, status) in cases {
            let r = Upgrade::from_request("GET", &with(idx, v)).unwrap_err();
            assert_eq!(r.status, status, "{idx} {v:?}");
            let expect_extra = if status == 426 {
                "Sec-WebSocket-Version: 13\r\n"
            } else {
                ""
            };
            assert_eq!(r.extra_headers, expect_extra);
        }
    }

    #[test]
    fn refusal_responses() {
        let r = String::from_utf8(
            validate_upgrade("GET", &with(TOKEN_VERSION, Some("7")))
                .unwrap_err()
                .response(),
        )
        .unwrap();
        assert!(r.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{r}");
        assert!(r.contains("\r\nSec-WebSocket-Version: 13\r\n\r\n"), "{r}");
        assert!(r.contains("Connection: close\r\n"));
        let r = String::from_utf8(Refusal::DENIED.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        let r = String::from_utf8(Refusal::NO_PROTOCOL.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"));
    }

    #[test]
    fn http_requests() {
        assert_eq!(check_http_request("GET", b"/"), Ok(()));
        assert_eq!(check_http_request("HEAD", b"/x"), Ok(()));
        assert_eq!(check_http_request("POST", b"/x"), Ok(()));
        let r = check_http_request("PUT", b"/").unwrap_err();
        assert_eq!(
            (r.status, r.extra_headers),
            (405, "Allow: GET, HEAD, POST\r\n")
        );
        assert!(String::from_utf8(r.response())
            .unwrap()
            .contains("\r\nAllow: GET, HEAD, POST\r\n\r\n"));
        assert_eq!(check_http_request("GET", b"").unwrap_err().status, 400);
    }

    #[test]
    fn protocol_selection() {
        let n = names();
        let sel = |o: Option<&[u8]>| select_protocol(o, n.iter().copied());
        assert_eq!(sel(None), Some(0));
        assert_eq!(sel(Some(b"mirror")), Some(2));
        assert_eq!(sel(Some(b"x, chat ,mirror")), Some(1));
        assert_eq!(sel(Some(b"mirror, chat")), Some(2));
        assert_eq!(sel(Some(b"nope")), None);
        assert_eq!(sel(Some(b"")), None);
        assert_eq!(sel(Some(b" , ")), None);
        // Names are matched exactly (case matters).
        assert_eq!(sel(Some(b"CHAT")), None);
        // A whole-value match wins over the list ("a, b" as one name).
        let odd: [Option<&[u8]>; 3] = [Some(b"b"), None, Some(b"a, b")];
        assert_eq!(select_protocol(Some(b"a, b"), odd.iter().copied()), Some(2));
        // No protocols at all.
        assert_eq!(select_protocol(None, std::iter::empty()), None);
    }

    #[test]
    fn upgrade_offer_and_choice() {
        let mut u = Upgrade::from_request("GET", &with(TOKEN_PROTOCOL, Some("x, mirror"))).unwrap();
        assert_eq!(u.offer(), Some(&b"x, mirror"[..]));
        assert_eq!(
            u.offer_c().map(|c| c.to_vec()),
            Some(b"x, mirror\0".to_vec())
        );
        assert_eq!(u.choose_protocol(names().iter().copied()), Ok(2));
        let u = Upgrade::from_request("GET", &with(TOKEN_PROTOCOL, Some("nope"))).unwrap();
        assert_eq!(
            u.choose_protocol(names().iter().copied()),
            Err(Refusal::NO_PROTOCOL)
        );
        let mut u = Upgrade::from_request("GET", &table(&good())).unwrap();
        assert!(u.offer_c().is_none());
        assert_eq!(u.choose_protocol(names().iter().copied()), Ok(0));
    }

    #[test]
    fn reply_bytes() {
        let expect = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        let u = Upgrade::from_request("GET", &table(&good())).unwrap();
        // No protocol asked: none echoed even though protocols[0] serves it.
        let r = u.reply(Some(b"http-only"), None);
        assert_eq!(String::from_utf8(r.clone()).unwrap(), expect);
        assert!(
            r.capacity() > r.len(),
            "room for the NUL the extension hooks add"
        );
        let u = Upgrade::from_request("GET", &with(TOKEN_PROTOCOL, Some("x, chat"))).unwrap();
        let r = String::from_utf8(u.reply(Some(b"chat"), Some(b"permessage-deflate"))).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        );
        // A protocol with a NULL name chosen: no protocol line.
        let r = String::from_utf8(u.reply(None, None)).unwrap();
        assert_eq!(r, expect);
    }
}
