//! Sec-WebSocket-Extensions parsing and permessage-deflate / deflate-frame negotiation.
//!
//! Input: 4 bytes choosing a ServerPolicy and a ClientOffer, then header text.
//! * the header parses, or fails, without panicking; a parsed list re-serialises to
//!   text that parses to the same list;
//! * server_accept on it yields a response our client-side check accepts when the
//!   offer came from our own client_offer_string, with identical parameters;
//! * every accepted window size is 8..=15.
#![no_main]

use libfuzzer_sys::fuzz_target;
use websockets::engine::extensions::negotiate::is_tchar;
use websockets::engine::extensions::{
    client_accept_response, client_offer_string, deflate_frame_client_accept_response,
    deflate_frame_server_accept, parse_extensions, server_accept, ClientOffer, ExtOffer, PmdParams,
    ServerPolicy,
};

fn bits(b: u8) -> u8 {
    // Mostly 8..=15, sometimes out of range (the API clamps).
    if b & 0x80 != 0 {
        b & 0x1f
    } else {
        8 + (b & 7)
    }
}

fn policy_from(a: u8, b: u8) -> ServerPolicy {
    ServerPolicy {
        server_max_window_bits: bits(a),
        client_max_window_bits: bits(b),
        server_no_context_takeover: a & 0x40 != 0,
        client_no_context_takeover: b & 0x40 != 0,
    }
}

fn offer_from(c: u8, d: u8) -> ClientOffer {
    ClientOffer {
        server_no_context_takeover: c & 1 != 0,
        client_no_context_takeover: c & 2 != 0,
        server_max_window_bits: (c & 4 != 0).then(|| bits(d)),
        client_max_window_bits: match (c >> 3) & 3 {
            0 => None,
            1 => Some(None),
            _ => Some(Some(bits(d.rotate_left(3)))),
        },
    }
}

fn check_params(p: &PmdParams) {
    assert!((8..=15).contains(&p.server_max_window_bits), "{p:?}");
    assert!((8..=15).contains(&p.client_max_window_bits), "{p:?}");
}

fn check_parsed(list: &[ExtOffer]) {
    for o in list {
        assert!(!o.name.is_empty() && o.name.bytes().all(is_tchar), "{o:?}");
        for (n, v) in &o.params {
            assert!(!n.is_empty() && n.bytes().all(is_tchar), "{o:?}");
            if let Some(v) = v {
                assert!(!v.is_empty() && v.bytes().all(is_tchar), "{o:?}");
            }
        }
    }
    // Round trip through the header syntax.
    let text: Vec<String> = list.iter().map(ExtOffer::to_header_value).collect();
    let again = parse_extensions(text.join(", ").as_bytes()).expect("re-serialised list parses");
    assert_eq!(again, list, "round trip of {text:?}");
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (sel, header) = data.split_at(4);
    let policy = policy_from(sel[0], sel[1]);
    let client = offer_from(sel[2], sel[3]);

    // 1. Arbitrary header text, as a server receives it.
    if let Ok(list) = parse_extensions(header) {
        check_parsed(&list);
        if let Some((params, resp)) = server_accept(&list, &policy) {
            check_params(&params);
            let parsed = parse_extensions(resp.as_bytes()).expect("our response parses");
            assert_eq!(parsed.len(), 1);
            assert!(parsed[0].name.eq_ignore_ascii_case("permessage-deflate"));
        }
        // ... and as a client receives it, against our offer.
        for r in &list {
            if let Ok(p) = client_accept_response(&client, r) {
                check_params(&p);
                if client.server_no_context_takeover {
                    assert!(p.server_no_context_takeover);
                }
                if let Some(asked) = client.server_max_window_bits {
                    assert!(p.server_max_window_bits <= asked.clamp(8, 15));
                }
                if client.client_max_window_bits.is_none() {
                    assert_eq!(p.client_max_window_bits, 15);
                }
            }
            if let Some(name) = deflate_frame_server_accept(r) {
                assert!(r.params.is_empty());
                assert!(name.eq_ignore_ascii_case(&r.name));
            }
            let _ = deflate_frame_client_accept_response(r);
        }
    }

    // 2. Our own offer, accepted by our own server, must satisfy our own client.
    let offer_text = client_offer_string(&client);
    let offers = parse_extensions(offer_text.as_bytes()).expect("our offer parses");
    assert_eq!(offers.len(), 1);
    let (server_params, resp) =
        server_accept(&offers, &policy).expect("the server declined our own offer");
    check_params(&server_params);
    let resp = parse_extensions(resp.as_bytes()).expect("response parses");
    let client_params = client_accept_response(&client, &resp[0])
        .unwrap_or_else(|e| panic!("{offer_text:?} -> {resp:?}: {e}"));
    assert_eq!(client_params, server_params, "{offer_text:?} -> {resp:?}");
});
