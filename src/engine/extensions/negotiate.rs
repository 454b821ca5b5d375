//! `Sec-WebSocket-Extensions` header parsing (RFC 6455 section 9.1, with the
//! token / quoted-string / list syntax of RFC 7230 sections 3.2.6 and 7).
//!
//! Grammar accepted (OWS = optional spaces / horizontal tabs):
//!
//! ```text
//! header    = [ element ] *( OWS "," OWS [ element ] )
//! element   = token *( OWS ";" OWS param )
//! param     = token [ OWS "=" OWS ( token / quoted-string ) ]
//! ```
//!
//! Empty list elements (`a, , b`, a leading or trailing comma) are skipped as
//! RFC 7230 section 7 requires of recipients; an empty / all-whitespace header
//! therefore yields an empty list. Everything else that does not match the
//! grammar is an error. A quoted-string value is unescaped and, as RFC 6455
//! requires, must then itself be a (non-empty) token.
//!
//! Names and values are returned as they appear (no case folding); the
//! extension modules compare names ASCII-case-insensitively.

use std::fmt;

/// One element of a `Sec-WebSocket-Extensions` list: an extension name and
/// its parameters in order (values already unquoted). Used both for a
/// client's offers and for a server's response.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExtOffer {
    pub name: String,
    pub params: Vec<(String, Option<String>)>,
}

impl ExtOffer {
    /// An element without parameters.
    pub fn new(name: &str) -> Self {
        ExtOffer {
            name: name.to_owned(),
            params: Vec::new(),
        }
    }

    /// The first parameter called `name` (ASCII case-insensitive):
    /// `None` if absent, `Some(None)` if present without a value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }

    /// Serialises the element back to header syntax (`name; p; q=v`).
    /// Values that are not tokens are written as quoted-strings.
    pub fn to_header_value(&self) -> String {
        let mut s = self.name.clone();
        for (n, v) in &self.params {
            s.push_str("; ");
            s.push_str(n);
            if let Some(v) = v {
                s.push('=');
                if !v.is_empty() && v.bytes().all(is_tchar) {
                    s.push_str(v);
                } else {
                    s.push('"');
                    for c in v.chars() {
                        if c == '"' || c == '\\' {
                            s.push('\\');
                        }
                        s.push(c);
                    }
                    s.push('"');
                }
            }
        }
        s
    }
}

/// Why an extension header (or a negotiation response) was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NegotiationError(pub &'static str);

impl fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "extension negotiation: {}", self.0)
    }
}

impl std::error::Error for NegotiationError {}

/// RFC 7230 `tchar`.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn token(&mut self, what: &'static str) -> Result<String, NegotiationError> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        if self.pos == start {
            return Err(NegotiationError(what));
        }
        // tchar is ASCII, so this cannot fail; map defensively anyway.
        std::str::from_utf8(&self.buf[start..self.pos])
            .map(str::to_owned)
            .map_err(|_| NegotiationError(what))
    }

    /// Parses a quoted-string starting at the opening quote and returns the
    /// unescaped content.
    fn quoted(&mut self) -> Result<Vec<u8>, NegotiationError> {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let mut v = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err(NegotiationError("unterminated quoted-string"));
            };
            self.pos += 1;
            match b {
                b'"' => return Ok(v),
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err(NegotiationError("unterminated quoted-pair"));
                    };
                    // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                    if e != b'\t' && (e < 0x20 || e == 0x7f) {
                        return Err(NegotiationError("control character in quoted-pair"));
                    }
                    self.pos += 1;
                    v.push(e);
                }
                // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                b'\t' | 0x20..=0x7e | 0x80..=0xff => v.push(b),
                _ => return Err(NegotiationError("control character in quoted-string")),
            }
        }
    }
}

/// Parses a `Sec-WebSocket-Extensions` header value: comma-separated
/// elements, each a name followed by `;`-separated parameters. Several
/// header lines must be joined with `,` by the caller before parsing.
pub fn parse_extensions(header: &[u8]) -> Result<Vec<ExtOffer>, NegotiationError> {
    let mut c = Cursor {
        buf: header,
        pos: 0,
    };
    let mut offers = Vec::new();
    loop {
        c.skip_ows();
        match c.peek() {
            None => break,
            Some(b',') => {
                c.pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name = c.token("expected extension name")?;
        let mut params = Vec::new();
        loop {
            c.skip_ows();
            match c.peek() {
                None => break,
                Some(b',') => {
                    c.pos += 1;
                    break;
                }
                Some(b';') => {
                    c.pos += 1;
                    c.skip_ows();
                    let pname = c.token("expected parameter name")?;
                    c.skip_ows();
                    let value = if c.peek() == Some(b'=') {
                        c.pos += 1;
                        c.skip_ows();
                        if c.peek() == Some(b'"') {
                            let raw = c.quoted()?;
                            if raw.is_empty() || !raw.iter().copied().all(is_tchar) {
                                return Err(NegotiationError(
                                    "quoted parameter value is not a token",
                                ));
                            }
                            // all tchar -> ASCII -> valid UTF-8
                            Some(String::from_utf8(raw).map_err(|_| {
                                NegotiationError("quoted parameter value is not a token")
                            })?)
                        } else {
                            Some(c.token("expected parameter value")?)
                        }
                    } else {
                        None
                    };
                    params.push((pname, value));
                }
                Some(_) => return Err(NegotiationError("unexpected character in extension")),
            }
        }
        offers.push(ExtOffer { name, params });
    }
    Ok(offers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Vec<ExtOffer>, NegotiationError> {
        parse_extensions(s.as_bytes())
    }

    fn offer(name: &str, params: &[(&str, Option<&str>)]) -> ExtOffer {
        ExtOffer {
            name: name.into(),
            params: params
                .iter()
                .map(|(n, v)| (n.to_string(), v.map(str::to_string)))
                .collect(),
        }
    }

    #[test]
    fn single_bare() {
        assert_eq!(
            p("permessage-deflate").unwrap(),
            vec![offer("permessage-deflate", &[])]
        );
    }

    #[test]
    fn params_with_and_without_values() {
        assert_eq!(
            p("permessage-deflate; client_max_window_bits; server_max_window_bits=10").unwrap(),
            vec![offer(
                "permessage-deflate",
                &[
                    ("client_max_window_bits", None),
                    ("server_max_window_bits", Some("10"))
                ]
            )]
        );
    }

    #[test]
    fn quoted_values() {
        assert_eq!(
            p(r#"a; b="10"; c="1\5"; d = "x-y""#).unwrap(),
            vec![offer(
                "a",
                &[("b", Some("10")), ("c", Some("15")), ("d", Some("x-y"))]
            )]
        );
    }

    #[test]
    fn whitespace_everywhere() {
        let want = vec![
            offer("a", &[("b", Some("1")), ("c", None)]),
            offer("d", &[]),
        ];
        assert_eq!(p("a;b=1;c,d").unwrap(), want);
        assert_eq!(p(" \ta \t; b = 1 ;\tc\t,\t d \t").unwrap(), want);
    }

    #[test]
    fn multiple_offers_in_order() {
        let v = p(
            "permessage-deflate; client_max_window_bits=10, permessage-deflate, x-webkit-deflate-frame",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].param("client_max_window_bits"), Some(Some("10")));
        assert_eq!(v[1], offer("permessage-deflate", &[]));
        assert_eq!(v[2].name, "x-webkit-deflate-frame");
    }

    #[test]
    fn empty_list_elements_are_skipped() {
        assert_eq!(p("").unwrap(), vec![]);
        assert_eq!(p("  ").unwrap(), vec![]);
        assert_eq!(p(",").unwrap(), vec![]);
        assert_eq!(
            p(", a , ,b,").unwrap(),
            vec![offer("a", &[]), offer("b", &[])]
        );
    }

    #[test]
    fn case_is_preserved() {
        let v = p("PerMessage-Deflate; Server_No_Context_Takeover").unwrap();
        assert_eq!(v[0].name, "PerMessage-Deflate");
        assert_eq!(v[0].param("server_no_context_takeover"), Some(None));
    }

    #[test]
    fn bad_syntax() {
        for bad in [
            "a;",
            "a; ",
            "a;;b",
            ";a",
            "a b",
            "a;b c",
            "a=1",
            "a;b=",
            "a;b= ,c",
            "a;b=\"",
            "a;b=\"10",
            "a;b=\"\"",
            "a;b=\"1 0\"",
            "a;b=\"1\\",
            "a;b=\"1;\"",
            "a;b=c d",
            "a;b=c=d",
            "\"a\"",
            "a;\"b\"",
            "a/b",
            "a;b=(1)",
            "a;b=1\r\n",
            "a\u{e9}",
            "a;b=\"\u{e9}\"",
            "a;b=\"\x01\"",
        ] {
            assert!(p(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn non_utf8_is_rejected() {
        assert!(parse_extensions(b"a;b=\xff").is_err());
        assert!(parse_extensions(b"a\xff").is_err());
    }

    #[test]
    fn to_header_value_round_trips() {
        let o = offer(
            "permessage-deflate",
            &[("a", None), ("b", Some("10")), ("c", Some("x y\"z"))],
        );
        let s = o.to_header_value();
        assert_eq!(s, r#"permessage-deflate; a; b=10; c="x y\"z""#);
        // "x y\"z" is not a token, so re-parsing rejects it, as RFC 6455 wants;
        // token values do round-trip:
        let o2 = offer("x", &[("a", None), ("b", Some("10"))]);
        assert_eq!(p(&o2.to_header_value()).unwrap(), vec![o2]);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = parse_extensions(&bytes);
        }

        #[test]
        fn serialised_offers_reparse(
            names in proptest::collection::vec("[a-z][a-z0-9_-]{0,8}", 1..4),
            pv in proptest::collection::vec(("[a-z_]{1,6}", proptest::option::of("[0-9a-z]{1,3}")), 0..4),
        ) {
            let offers: Vec<ExtOffer> = names
                .iter()
                .map(|n| ExtOffer { name: n.clone(), params: pv.clone() })
                .collect();
            let header = offers.iter().map(ExtOffer::to_header_value).collect::<Vec<_>>().join(", ");
            proptest::prop_assert_eq!(parse_extensions(header.as_bytes()).unwrap(), offers);
        }
    }
}
