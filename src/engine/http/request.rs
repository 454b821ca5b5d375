//! Parsing a request head with httparse under the library's limits.

use super::headers::{token_for_name, HeaderTable, TOKEN_GET_URI};
use std::borrow::Cow;
use std::mem::MaybeUninit;

/// Limits for request heads; the defaults are generous for browsers yet bounded.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    /// Whole head (request line + headers + blank line).
    pub max_head_bytes: usize,
    /// Number of header lines.
    pub max_headers: usize,
    /// Longest single header value (the original's LWS_MAX_HEADER_LEN was 1024).
    pub max_header_value: usize,
    /// Longest request URI.
    pub max_uri: usize,
}

impl Default for HeadLimits {
    fn default() -> Self {
        HeadLimits {
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_header_value: 4096,
            max_uri: 4096,
        }
    }
}

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    /// The method; the common ones borrowed from static strings, no allocation.
    pub method: Cow<'static, str>,
    pub minor_version: u8,
    pub headers: HeaderTable,
    /// Bytes of the input the head occupied (data after it belongs to the next layer).
    pub head_len: usize,
}

impl RequestHead {
    /// The request URI (kept once, in the header table's `TOKEN_GET_URI` slot).
    pub fn uri(&self) -> &[u8] {
        self.headers.get(TOKEN_GET_URI).unwrap_or(b"")
    }
}

/// Methods borrowed rather than copied.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT",
];

fn method_name(m: &str) -> Cow<'static, str> {
    match METHODS.iter().find(|&&k| k == m) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(m.to_string()),
    }
}

/// Most header lines a head may have (httparse's storage).
const MAX_HEADERS: usize = 64;

/// The result of feeding what has arrived so far.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum HeadParse {
    /// The head is not complete yet.
    Partial,
    /// Unboxed: a head is parsed once per connection, and moving it is cheaper than
    /// allocating for it.
    Complete(RequestHead),
    /// The request is malformed or over a limit: answer with this status and close.
    Reject(u16),
}

/// Parses `buf` (everything received so far on the connection).
pub fn parse_request_head(buf: &[u8], limits: &HeadLimits) -> HeadParse {
    let mut headers = HeaderTable::new();
    match parse_request_head_into(buf, limits, &mut headers) {
        HeadStatus::Partial => HeadParse::Partial,
        HeadStatus::Reject(status) => HeadParse::Reject(status),
        HeadStatus::Complete(line) => HeadParse::Complete(RequestHead {
            method: line.method,
            minor_version: line.minor_version,
            headers,
            head_len: line.head_len,
        }),
    }
}

/// A complete head's request line and length (its headers went into the table).
#[derive(Debug)]
pub struct RequestLine {
    pub method: Cow<'static, str>,
    pub minor_version: u8,
    /// Bytes of the input the head occupied.
    pub head_len: usize,
}

/// [`parse_request_head_into`]'s result.
#[derive(Debug)]
pub enum HeadStatus {
    Partial,
    Complete(RequestLine),
    Reject(u16),
}

/// [`parse_request_head`] filling `table` in place (replacing its contents only when
/// the head is complete): a table with storage from an earlier request (see
/// [`HeaderTable::with_storage`]) costs no allocation.
pub fn parse_request_head_into(
    buf: &[u8],
    limits: &HeadLimits,
    table: &mut HeaderTable,
) -> HeadStatus {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let max = limits.max_headers.min(MAX_HEADERS);
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut storage[..max]) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                // Too long: is it the request line or the header block?
                let line_done = buf.windows(2).any(|w| w == b"\r\n");
                return HeadStatus::Reject(if line_done { 431 } else { 414 });
            }
            HeadStatus::Partial
        }
        Ok(httparse::Status::Complete(head_len)) => {
            if head_len > limits.max_head_bytes {
                return HeadStatus::Reject(431);
            }
            let method = method_name(req.method.unwrap_or(""));
            let path = req.path.unwrap_or("");
            if path.len() > limits.max_uri {
                return HeadStatus::Reject(414);
            }
            // The slot of each header line (NO_SLOT: none of ours).
            let mut slots = [NO_SLOT; MAX_HEADERS];
            for (slot, h) in slots.iter_mut().zip(req.headers.iter()) {
                if h.value.len() > limits.max_header_value {
                    return HeadStatus::Reject(431);
                }
                if let Some(idx) = token_for_name(h.name) {
                    *slot = idx as u8;
                }
            }
            let known = req
                .headers
                .iter()
                .zip(slots)
                .filter(|&(_, s)| s != NO_SLOT)
                .map(|(h, s)| (usize::from(s), h.value.trim_ascii()));
            // The URI first, then the known headers. Every value lies inside the head
            // with at least 2 bytes of its line besides it, so `head_len` bounds the
            // table's bytes (", " joins included).
            table.refill(
                std::iter::once((TOKEN_GET_URI, path.as_bytes())).chain(known),
                head_len,
            );
            HeadStatus::Complete(RequestLine {
                method,
                minor_version: req.version.unwrap_or(0),
                head_len,
            })
        }
        Err(httparse::Error::TooManyHeaders) => HeadStatus::Reject(431),
        Err(httparse::Error::Version) => HeadStatus::Reject(505),
        Err(_) => HeadStatus::Reject(400),
    }
}

/// A header line that has no slot.
const NO_SLOT: u8 = u8::MAX;

#[cfg(test)]
mod tests {
    use super::super::headers::*;
    use super::*;

    #[test]
    fn complete_request_with_body_following() {
        let raw = b"GET /chat?x=1 HTTP/1.1\r\nHost: a\r\nUPGRADE: websocket\r\n\r\n\x81\x80";
        match parse_request_head(raw, &HeadLimits::default()) {
            HeadParse::Complete(h) => {
                assert_eq!(h.method, "GET");
                assert_eq!(h.uri(), b"/chat?x=1");
                assert!(matches!(h.method, Cow::Borrowed(_)));
                assert_eq!(h.headers.get(TOKEN_UPGRADE), Some(&b"websocket"[..]));
                assert_eq!(h.headers.get(TOKEN_GET_URI), Some(&b"/chat?x=1"[..]));
                assert_eq!(h.head_len, raw.len() - 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn uncommon_method_kept() {
        match parse_request_head(b"PROPFIND /x HTTP/1.1\r\n\r\n", &HeadLimits::default()) {
            HeadParse::Complete(h) => {
                assert_eq!(h.method, "PROPFIND");
                assert_eq!(h.uri(), b"/x");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_then_limits() {
        assert!(matches!(
            parse_request_head(b"GET / HTTP/1.1\r\nHost:", &HeadLimits::default()),
            HeadParse::Partial
        ));
        let long = vec![b'a'; 20000];
        assert!(matches!(
            parse_request_head(&long, &HeadLimits::default()),
            HeadParse::Reject(_)
        ));
        assert!(matches!(
            parse_request_head(b"\x16\x03\x01garbage\r\n\r\n", &HeadLimits::default()),
            HeadParse::Reject(400)
        ));
        assert!(matches!(
            parse_request_head(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &HeadLimits::default()),
            HeadParse::Reject(_)
        ));
    }
}
