//! parse_request_head with the default limits on arbitrary bytes; for a complete head,
//! every header-table accessor on every slot 0..30.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websockets::engine::http::headers::TOKEN_GET_URI;
use websockets::engine::http::request::{parse_request_head, HeadLimits, HeadParse};

fuzz_target!(|data: &[u8]| {
    let limits = HeadLimits::default();
    match parse_request_head(data, &limits) {
        HeadParse::Partial => {
            assert!(
                data.len() <= limits.max_head_bytes,
                "partial past the head limit"
            );
        }
        HeadParse::Reject(status) => {
            assert!(matches!(status, 400 | 414 | 431 | 505), "status {status}");
        }
        HeadParse::Complete(head) => {
            assert!(head.head_len <= data.len());
            assert!(head.head_len <= limits.max_head_bytes);
            assert!(data[..head.head_len].ends_with(b"\n"));
            assert!(head.uri().len() <= limits.max_uri);
            assert!(!head.method.is_empty());
            assert_eq!(head.headers.get(TOKEN_GET_URI), Some(head.uri()));
            // The table never holds more than a bounded multiple of the head (repeated
            // headers are joined, each join adding ", ").
            assert!(
                head.headers.heap_bytes() <= 64 * 1024 + 64 * head.head_len,
                "header table {} bytes for a {} byte head",
                head.headers.heap_bytes(),
                head.head_len
            );
            websockets_fuzz::check_header_table(&head.headers);
            // The same head parses identically when it arrives with more data behind it.
            let mut longer = data[..head.head_len].to_vec();
            longer.extend_from_slice(b"\x81\x85trailing");
            match parse_request_head(&longer, &limits) {
                HeadParse::Complete(again) => {
                    assert_eq!(again.head_len, head.head_len);
                    assert_eq!(again.uri(), head.uri());
                    assert_eq!(again.method, head.method);
                }
                other => panic!("head no longer complete with data behind it: {other:?}"),
            }
            // Every strict prefix is Partial (or already rejected) -- never Complete.
            for cut in [0, head.head_len / 2, head.head_len.saturating_sub(1)] {
                if cut < head.head_len {
                    if let HeadParse::Complete(h) = parse_request_head(&data[..cut], &limits) {
                        panic!(
                            "prefix of {cut} bytes complete with head_len {}",
                            h.head_len
                        );
                    }
                }
            }
        }
    }
});
