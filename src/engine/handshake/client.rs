//! The client side of the opening handshake: the upgrade request (and the CONNECT
//! request for a proxy), the check of what the application appends to it, the parse
//! of a response head and its verification (status 101, Upgrade, Connection,
//! Sec-WebSocket-Accept, a subprotocol or extension we did not offer). io keeps the
//! sockets, the callbacks (CLIENT_APPEND_HANDSHAKE_HEADER, the extension offer and
//! confirmation, CLIENT_FILTER_PRE_ESTABLISH) and the connection's state.

use super::AcceptKey;
use crate::engine::http::headers::*;
use std::fmt::Write as _;

/// Room the CLIENT_APPEND_HANDSHAKE_HEADER callback may fill.
pub const APPEND_ROOM: usize = 2048;
/// Longest response head accepted from a server or proxy.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Length of a `Sec-WebSocket-Key`: base64 of 16 bytes.
pub const KEY_LEN: usize = 24;

/// The `Sec-WebSocket-Key` for 16 random bytes.
pub fn key_from_random(raw: &[u8; 16]) -> String {
    let mut key = [0u8; KEY_LEN + 1];
    let n = crate::engine::util::b64_encode_into(raw, &mut key).unwrap_or(0);
    String::from_utf8_lossy(&key[..n]).into_owned()
}

/// What the upgrade request is built from (the application's strings as given).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub path: &'a str,
    pub host: &'a str,
    pub origin: Option<&'a str>,
    pub protocols: Option<&'a str>,
    pub key: &'a str,
    /// The `Sec-WebSocket-Extensions` offer, when any extension is proposed.
    pub extensions: Option<&'a str>,
}

/// Appends `s` without CR and LF (the application's strings cannot add header lines).
fn push_clean(out: &mut String, s: &str) {
    out.extend(s.chars().filter(|&c| c != '\r' && c != '\n'));
}

fn cleaned_is_empty(s: &str) -> bool {
    s.chars().all(|c| c == '\r' || c == '\n')
}

/// The upgrade request without its final blank line: what the application appends
/// (see [`check_appended`]) goes after it, then [`finish_request`].
///
/// `Origin` is sent as given when it contains `://`, else as `http://<origin>` (the
/// original's form); an empty origin or protocol list sends no header.
pub fn build_request(r: &Request) -> Vec<u8> {
    let mut req = String::with_capacity(256 + r.path.len() + r.host.len());
    req.push_str("GET ");
    push_clean(&mut req, r.path);
    req.push_str(" HTTP/1.1\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nHost: ");
    push_clean(&mut req, r.host);
    req.push_str("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    req.push_str(r.key);
    req.push_str("\r\n");
    if let Some(o) = r.origin.filter(|o| !cleaned_is_empty(o)) {
        req.push_str("Origin: ");
        let at = req.len();
        push_clean(&mut req, o);
        if !req[at..].contains("://") {
            req.insert_str(at, "http://");
        }
        req.push_str("\r\n");
    }
    if let Some(p) = r.protocols.filter(|p| !cleaned_is_empty(p)) {
        req.push_str("Sec-WebSocket-Protocol: ");
        push_clean(&mut req, p);
        req.push_str("\r\n");
    }
    if let Some(e) = r.extensions {
        let _ = write!(req, "Sec-WebSocket-Extensions: {e}\r\n");
    }
    req.push_str("Sec-WebSocket-Version: 13\r\n");
    req.into_bytes()
}

/// Ends the request after any appended header lines.
pub fn finish_request(req: &mut Vec<u8>) {
    req.extend_from_slice(b"\r\n");
}

/// What CLIENT_APPEND_HANDSHAKE_HEADER left in its buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// Nothing written.
    Nothing,
    /// Complete `Name: value\r\n` lines inside the buffer: sent as they are.
    Lines,
    /// It claims to have written past the buffer's room: ignored.
    Overflow,
    /// Not complete header lines (a blank line, a continuation, a line without a
    /// colon, a bare CR, no final CRLF): ignored, so no header-block injection.
    Malformed,
}

/// Checks the `written` bytes at the start of `buf` (room: [`APPEND_ROOM`]).
pub fn check_appended(buf: &[u8], written: usize) -> Appended {
    if written == 0 {
        return Appended::Nothing;
    }
    if written > APPEND_ROOM || written > buf.len() {
        return Appended::Overflow;
    }
    let added = &buf[..written];
    let valid = added.ends_with(b"\r\n")
        && added[..added.len() - 2].split(|&b| b == b'\n').all(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            !line.is_empty() && line.contains(&b':') && !line.contains(&b'\r') && line[0] != b' '
        });
    if valid {
        Appended::Lines
    } else {
        Appended::Malformed
    }
}

/// An IPv6 literal in brackets for an authority (`host:port`).
pub fn host_for_authority(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

/// The request that asks an HTTP proxy for a tunnel to `address:port`.
pub fn proxy_connect_request(address: &str, port: u16) -> Vec<u8> {
    let target = format!("{}:{}", host_for_authority(address), port);
    format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: libwebsockets\r\n\r\n")
        .into_bytes()
}

/// The response head could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedHead;

/// A complete response head: status, headers (the status line in `TOKEN_HTTP`) and the
/// bytes the head occupied.
pub type ParsedHead = Option<(u16, HeaderTable, usize)>;

/// Parses a response head (server or proxy): Ok(None) while incomplete.
pub fn parse_response(buf: &[u8]) -> Result<ParsedHead, MalformedHead> {
    const MAX_HEADERS: usize = 64;
    let mut storage = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut storage);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(n)) => {
            let status = resp.code.unwrap_or(0);
            let mut status_line = String::with_capacity(8 + resp.reason.map_or(0, str::len));
            let _ = write!(status_line, "{} {}", status, resp.reason.unwrap_or(""));
            // (slot, value) pairs on the stack: the status line, then the known headers.
            let mut pairs: [(usize, &[u8]); MAX_HEADERS + 1] = [(0, &[]); MAX_HEADERS + 1];
            pairs[0] = (TOKEN_HTTP, status_line.trim_end().as_bytes());
            let mut count = 1;
            for h in resp.headers.iter() {
                if let Some(idx) = token_for_name(h.name) {
                    pairs[count] = (idx, h.value.trim_ascii());
                    count += 1;
                }
            }
            let t = HeaderTable::from_pairs(&pairs[..count]);
            Ok(Some((status, t, n)))
        }
        Err(_) => Err(MalformedHead),
    }
}

/// Verifies the upgrade answer up to the extensions: status 101, `Upgrade: websocket`,
/// `Connection: upgrade`, the accept value for our `key`. The error says why.
pub fn verify_response(status: u16, h: &HeaderTable, key: &[u8]) -> Result<(), &'static str> {
    if status != 101 {
        return Err("status is not 101");
    }
    if !h.list_contains(TOKEN_UPGRADE, "websocket") {
        return Err("Upgrade is not websocket");
    }
    if !h.list_contains(TOKEN_CONNECTION, "upgrade") {
        return Err("Connection lacks upgrade");
    }
    if h.get(TOKEN_ACCEPT) != Some(AcceptKey::for_key(key).as_bytes()) {
        return Err("Sec-WebSocket-Accept does not match");
    }
    Ok(())
}

/// The server's `Sec-WebSocket-Extensions` answer, to be confirmed against our offer
/// (io runs the extensions' hooks on it). None: the server chose none. An answer when we
/// offered nothing is refused.
pub fn chosen_extensions<'h>(
    h: &'h HeaderTable,
    offered: Option<&str>,
) -> Result<Option<&'h [u8]>, &'static str> {
    match (h.get(TOKEN_EXTENSIONS), offered) {
        (None, _) => Ok(None),
        (Some(_), None) => Err("server chose an extension we did not offer"),
        (Some(c), Some(_)) => Ok(Some(c)),
    }
}

/// The protocol index the connection runs: protocols[0] when the server names none;
/// else the name must be one we offered (in our comma-separated `offered` list) and one
/// of the application's `names`.
pub fn chosen_protocol<'n, I>(
    h: &HeaderTable,
    offered: Option<&str>,
    mut names: I,
) -> Result<usize, &'static str>
where
    I: Iterator<Item = Option<&'n [u8]>>,
{
    let Some(chosen) = h.get(TOKEN_PROTOCOL) else {
        return Ok(0);
    };
    let was_offered = offered.is_some_and(|o| o.split(',').any(|p| p.trim().as_bytes() == chosen));
    if !was_offered {
        return Err("server chose a protocol we did not offer");
    }
    names
        .position(|n| n == Some(chosen))
        .ok_or("server chose a protocol we do not have")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn req<'a>() -> Request<'a> {
        Request {
            path: "/chat",
            host: "example.com:80",
            origin: None,
            protocols: None,
            key: KEY,
            extensions: None,
        }
    }

    fn text(r: &Request) -> String {
        let mut v = build_request(r);
        finish_request(&mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn key_is_base64_of_16_bytes() {
        let k = key_from_random(&[0u8; 16]);
        assert_eq!(k, "AAAAAAAAAAAAAAAAAAAAAA==");
        assert_eq!(key_from_random(&[0xff; 16]).len(), KEY_LEN);
    }

    #[test]
    fn minimal_request() {
        assert_eq!(
            text(&req()),
            "GET /chat HTTP/1.1\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nHost: example.com:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
    }

    #[test]
    fn full_request_in_order() {
        let r = Request {
            origin: Some("example.com"),
            protocols: Some("chat, superchat"),
            extensions: Some("permessage-deflate; client_max_window_bits, deflate-frame"),
            ..req()
        };
        assert_eq!(
            text(&r),
            "GET /chat HTTP/1.1\r\nPragma: no-cache\r\nCache-Control: no-cache\r\nHost: example.com:80\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, deflate-frame\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
    }

    #[test]
    fn origin_rule() {
        let with = |o| {
            text(&Request {
                origin: Some(o),
                ..req()
            })
        };
        assert!(with("https://a.example").contains("\r\nOrigin: https://a.example\r\n"));
        assert!(with("a.example").contains("\r\nOrigin: http://a.example\r\n"));
        assert!(with("file://").contains("\r\nOrigin: file://\r\n"));
        assert!(!with("").contains("Origin"));
        assert!(!with("\r\n").contains("Origin"));
        // The rule looks at the origin as sent (CR and LF removed).
        assert!(with("a:\r//b").contains("\r\nOrigin: a://b\r\n"));
        assert!(!text(&req()).contains("Origin"));
    }

    #[test]
    fn strings_cannot_add_lines() {
        let r = Request {
            path: "/a\r\nX-Evil: 1",
            host: "h\r\nX-Evil: 2",
            origin: Some("o\nX-Evil: 3"),
            protocols: Some("p\r\n\r\nX-Evil: 4"),
            ..req()
        };
        let t = text(&r);
        assert!(t.starts_with("GET /aX-Evil: 1 HTTP/1.1\r\n"), "{t}");
        assert!(t.contains("\r\nHost: hX-Evil: 2\r\n"));
        assert!(t.contains("\r\nOrigin: http://oX-Evil: 3\r\n"));
        assert!(t.contains("\r\nSec-WebSocket-Protocol: pX-Evil: 4\r\n"));
        assert_eq!(t.matches("\r\n\r\n").count(), 1);
        // An empty protocol list sends no header.
        assert!(!text(&Request {
            protocols: Some(""),
            ..req()
        })
        .contains("Protocol"));
    }

    #[test]
    fn appended_headers() {
        let mut buf = vec![0u8; APPEND_ROOM + 1];
        let mut put = |s: &[u8]| {
            buf[..s.len()].copy_from_slice(s);
            check_appended(&buf, s.len())
        };
        assert_eq!(put(b"X-A: 1\r\n"), Appended::Lines);
        assert_eq!(put(b"X-A: 1\r\nX-B:2\r\n"), Appended::Lines);
        assert_eq!(put(b"X-A: 1"), Appended::Malformed, "no CRLF");
        assert_eq!(put(b"X-A: 1\r\n\r\n"), Appended::Malformed, "blank line");
        assert_eq!(
            put(b"X-A: 1\r\n\r\nGET / HTTP/1.1\r\n"),
            Appended::Malformed
        );
        assert_eq!(put(b"no colon\r\n"), Appended::Malformed);
        assert_eq!(put(b"X-A: 1\r\n folded\r\n"), Appended::Malformed);
        assert_eq!(put(b"X-A: 1\rX-B: 2\r\n"), Appended::Malformed, "bare CR");
        assert_eq!(put(b"\r\n"), Appended::Malformed);
        assert_eq!(check_appended(&buf, 0), Appended::Nothing);
        assert_eq!(check_appended(&buf, APPEND_ROOM + 1), Appended::Overflow);
        // Exactly the room is fine when it is well formed.
        let mut full = vec![b'a'; APPEND_ROOM];
        full[1] = b':';
        full[APPEND_ROOM - 2] = b'\r';
        full[APPEND_ROOM - 1] = b'\n';
        assert_eq!(check_appended(&full, APPEND_ROOM), Appended::Lines);
    }

    #[test]
    fn proxy_request() {
        assert_eq!(
            proxy_connect_request("example.com", 443),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nUser-Agent: libwebsockets\r\n\r\n"
        );
        assert!(String::from_utf8(proxy_connect_request("::1", 80))
            .unwrap()
            .starts_with("CONNECT [::1]:80 HTTP/1.1\r\n"));
        assert_eq!(host_for_authority("[::1]"), "[::1]");
    }

    fn response(extra: &str) -> (u16, HeaderTable, usize) {
        let r = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
        );
        parse_response(r.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn response_parse() {
        let full = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x00";
        assert!(matches!(parse_response(&full[..20]), Ok(None)));
        let (status, t, n) = parse_response(full).unwrap().unwrap();
        assert_eq!((status, n), (101, full.len() - 2));
        assert_eq!(t.get(TOKEN_HTTP), Some(&b"101 Switching Protocols"[..]));
        assert_eq!(t.get(TOKEN_UPGRADE), Some(&b"websocket"[..]));
        let (_, t, _) = parse_response(b"HTTP/1.1 200 \r\n\r\n").unwrap().unwrap();
        assert_eq!(t.get(TOKEN_HTTP), Some(&b"200"[..]));
        assert!(matches!(
            parse_response(b"garbage\r\n\r\n"),
            Err(MalformedHead)
        ));
    }

    #[test]
    fn accepted_response() {
        let (s, t, _) = response("");
        assert_eq!(verify_response(s, &t, KEY.as_bytes()), Ok(()));
        assert_eq!(chosen_extensions(&t, None), Ok(None));
        let names: [Option<&[u8]>; 2] = [Some(b"a"), Some(b"b")];
        assert_eq!(chosen_protocol(&t, Some("b"), names.iter().copied()), Ok(0));
        // Case-insensitive tokens.
        let (s, t, _) = parse_response(
            format!("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\nsec-websocket-accept: {ACCEPT}\r\n\r\n").as_bytes(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(verify_response(s, &t, KEY.as_bytes()), Ok(()));
    }

    #[test]
    fn rejected_responses() {
        let key = KEY.as_bytes();
        let check = |r: &str| {
            let (s, t, _) = parse_response(r.as_bytes()).unwrap().unwrap();
            verify_response(s, &t, key)
        };
        let ok_tail = format!(
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
        );
        assert_eq!(
            check(&format!("HTTP/1.1 200 OK\r\n{ok_tail}")),
            Err("status is not 101")
        );
        assert_eq!(
            check(&format!("HTTP/1.1 403 Forbidden\r\n{ok_tail}")),
            Err("status is not 101")
        );
        assert_eq!(
            check(&format!("HTTP/1.1 101 OK\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n")),
            Err("Upgrade is not websocket")
        );
        assert_eq!(
            check(&format!(
                "HTTP/1.1 101 OK\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n"
            )),
            Err("Upgrade is not websocket")
        );
        assert_eq!(
            check(&format!("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: close\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n")),
            Err("Connection lacks upgrade")
        );
        assert_eq!(
            check("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"),
            Err("Sec-WebSocket-Accept does not match")
        );
        assert_eq!(
            check("HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            Err("Sec-WebSocket-Accept does not match")
        );
        // The accept of another key.
        let (s, t, _) = response("");
        assert_eq!(
            verify_response(s, &t, b"AAAAAAAAAAAAAAAAAAAAAA=="),
            Err("Sec-WebSocket-Accept does not match")
        );
    }

    #[test]
    fn extensions_we_did_not_offer() {
        let (_, t, _) = response("Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert_eq!(
            chosen_extensions(&t, None),
            Err("server chose an extension we did not offer")
        );
        assert_eq!(
            chosen_extensions(&t, Some("permessage-deflate")),
            Ok(Some(&b"permessage-deflate"[..]))
        );
    }

    #[test]
    fn protocols() {
        let names: [Option<&[u8]>; 3] = [Some(b"chat"), None, Some(b"mirror")];
        let pick = |extra: &str, offered: Option<&str>| {
            let (_, t, _) = response(extra);
            chosen_protocol(&t, offered, names.iter().copied())
        };
        let chosen = "Sec-WebSocket-Protocol: mirror\r\n";
        assert_eq!(pick(chosen, Some("chat, mirror")), Ok(2));
        assert_eq!(pick(chosen, Some("mirror")), Ok(2));
        assert_eq!(
            pick(chosen, None),
            Err("server chose a protocol we did not offer")
        );
        assert_eq!(
            pick(chosen, Some("chat")),
            Err("server chose a protocol we did not offer")
        );
        assert_eq!(
            pick("Sec-WebSocket-Protocol: other\r\n", Some("other")),
            Err("server chose a protocol we do not have")
        );
        assert_eq!(pick("", Some("mirror")), Ok(0));
    }
}
