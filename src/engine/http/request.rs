//! Parsing a request head with httparse under the library's limits.

use super::headers::{token_for_name, HeaderTable, TOKEN_GET_URI};

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
    pub method: String,
    pub uri: Vec<u8>,
    pub minor_version: u8,
    pub headers: HeaderTable,
    /// Bytes of the input the head occupied (data after it belongs to the next layer).
    pub head_len: usize,
}

/// The result of feeding what has arrived so far.
#[derive(Debug)]
pub enum HeadParse {
    /// The head is not complete yet.
    Partial,
    Complete(Box<RequestHead>),
    /// The request is malformed or over a limit: answer with this status and close.
    Reject(u16),
}

/// Parses `buf` (everything received so far on the connection).
pub fn parse_request_head(buf: &[u8], limits: &HeadLimits) -> HeadParse {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let max = limits.max_headers.min(storage.len());
    let mut req = httparse::Request::new(&mut storage[..max]);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes {
                // Too long: is it the request line or the header block?
                let line_done = buf.windows(2).any(|w| w == b"\r\n");
                return HeadParse::Reject(if line_done { 431 } else { 414 });
            }
            HeadParse::Partial
        }
        Ok(httparse::Status::Complete(head_len)) => {
            if head_len > limits.max_head_bytes {
                return HeadParse::Reject(431);
            }
            let method = req.method.unwrap_or("").to_string();
            let path = req.path.unwrap_or("");
            if path.len() > limits.max_uri {
                return HeadParse::Reject(414);
            }
            let mut pairs: Vec<(usize, &[u8])> = Vec::with_capacity(req.headers.len() + 1);
            pairs.push((TOKEN_GET_URI, path.as_bytes()));
            for h in req.headers.iter() {
                if h.value.len() > limits.max_header_value {
                    return HeadParse::Reject(431);
                }
                if let Some(idx) = token_for_name(h.name) {
                    pairs.push((idx, h.value.trim_ascii()));
                }
            }
            let table = HeaderTable::from_pairs(&pairs);
            HeadParse::Complete(Box::new(RequestHead {
                method,
                uri: path.as_bytes().to_vec(),
                minor_version: req.version.unwrap_or(0),
                headers: table,
                head_len,
            }))
        }
        Err(httparse::Error::TooManyHeaders) => HeadParse::Reject(431),
        Err(httparse::Error::Version) => HeadParse::Reject(505),
        Err(_) => HeadParse::Reject(400),
    }
}

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
                assert_eq!(h.uri, b"/chat?x=1");
                assert_eq!(h.headers.get(TOKEN_UPGRADE), Some(&b"websocket"[..]));
                assert_eq!(h.headers.get(TOKEN_GET_URI), Some(&b"/chat?x=1"[..]));
                assert_eq!(h.head_len, raw.len() - 2);
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
