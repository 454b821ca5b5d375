//! The client's response-head parser on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websockets::engine::handshake::client::parse_response;
use websockets::engine::http::headers::TOKEN_HTTP;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((status, table, n))) = parse_response(data) {
        assert!(n <= data.len());
        assert!(n > 0);
        assert!(status <= 999);
        // TOKEN_HTTP holds "<status> <reason>".
        let http = table.get(TOKEN_HTTP).expect("status slot");
        assert!(http.starts_with(status.to_string().as_bytes()));
        websockets_fuzz::check_header_table(&table);
        // Same result with a frame right behind the head.
        let mut longer = data[..n].to_vec();
        longer.extend_from_slice(b"\x81\x05hello");
        match parse_response(&longer) {
            Ok(Some((s2, _, n2))) => assert_eq!((s2, n2), (status, n)),
            _ => panic!("head changed meaning with data behind it"),
        }
    }
});
