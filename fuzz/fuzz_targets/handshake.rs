//! validate_upgrade and select_protocol on header tables and protocol lists built from
//! the fuzz input; an accepted handshake's 101 response must parse back.
//!
//! Input: method selector byte, then records `slot len bytes...`; a record with slot
//! 0xff starts the protocol-name list (records `len bytes...`, len 0xff = NULL name).
#![no_main]

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use websockets::engine::handshake::client::parse_response;
use websockets::engine::handshake::{
    accept_key, is_upgrade_request, select_protocol, switching_protocols, validate_upgrade,
    AcceptKey,
};
use websockets::engine::http::headers::*;

const METHODS: [&str; 6] = ["GET", "POST", "get", "HEAD", "GET ", ""];

fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let n = n.min(data.len());
    let (a, b) = data.split_at(n);
    *data = b;
    a
}

fn list_has(v: Option<&[u8]>, tok: &str) -> bool {
    v.is_some_and(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(tok.as_bytes()))
    })
}

fn key_ok(key: &[u8]) -> bool {
    let lenient = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    lenient.decode(key).is_ok_and(|k| k.len() == 16)
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let method_sel = take(&mut data, 1).first().copied().unwrap_or(0);
    let method = METHODS[usize::from(method_sel) % METHODS.len()];

    let mut table = HeaderTable::new();
    let mut names_raw: Vec<Option<Vec<u8>>> = Vec::new();
    let mut in_names = false;
    while !data.is_empty() {
        if !in_names {
            let slot = take(&mut data, 1)[0];
            if slot == 0xff {
                in_names = true;
                continue;
            }
            let len = take(&mut data, 1).first().copied().unwrap_or(0);
            let value = take(&mut data, usize::from(len));
            // Slots 0..32: real token slots plus some out of range.
            table.add(usize::from(slot % 32), value);
        } else {
            let len = take(&mut data, 1)[0];
            if len == 0xff {
                names_raw.push(None);
            } else {
                names_raw.push(Some(take(&mut data, usize::from(len)).to_vec()));
            }
        }
    }
    websockets_fuzz::check_header_table(&table);
    let names: Vec<Option<&[u8]>> = names_raw.iter().map(|n| n.as_deref()).collect();

    let _ = is_upgrade_request(&table);
    let verdict = validate_upgrade(method, &table);
    let expect_ok = method == "GET"
        && list_has(table.get(TOKEN_UPGRADE), "websocket")
        && list_has(table.get(TOKEN_CONNECTION), "upgrade")
        && table.get(TOKEN_VERSION) == Some(b"13")
        && key_ok(table.get(TOKEN_KEY).unwrap_or(b""));
    match &verdict {
        Ok(()) => assert!(expect_ok, "accepted an invalid upgrade"),
        Err(r) => {
            assert!(!expect_ok, "refused a valid upgrade: {}", r.why);
            assert!(matches!(r.status, 400 | 426));
            if r.status == 426 {
                assert_eq!(r.extra_headers, "Sec-WebSocket-Version: 13\r\n");
            }
        }
    }

    // Protocol selection against a model.
    let offer = table.get(TOKEN_PROTOCOL);
    let chosen = select_protocol(offer, names.iter().copied());
    match offer {
        None => assert_eq!(chosen, if names.is_empty() { None } else { Some(0) }),
        Some(o) => {
            let whole = names.iter().position(|n| *n == Some(o));
            let per_offer = o
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .filter(|c| !c.is_empty())
                .find_map(|c| names.iter().position(|n| *n == Some(c)));
            assert_eq!(chosen, whole.or(per_offer));
        }
    }

    // An accepted handshake produces a response our own client accepts.
    if verdict.is_ok() {
        let key = table.get(TOKEN_KEY).unwrap();
        let proto = chosen
            .and_then(|i| names[i])
            .filter(|p| !p.is_empty() && p.iter().all(|&b| b.is_ascii_graphic()));
        let resp = switching_protocols(&AcceptKey::for_key(key), proto, None);
        match parse_response(&resp) {
            Ok(Some((101, t, n))) => {
                assert_eq!(n, resp.len());
                assert_eq!(t.get(TOKEN_ACCEPT), Some(accept_key(key).as_bytes()));
                assert!(t.list_contains(TOKEN_UPGRADE, "websocket"));
                assert!(t.list_contains(TOKEN_CONNECTION, "upgrade"));
                assert_eq!(t.get(TOKEN_PROTOCOL), proto);
            }
            other => panic!("101 response does not parse: {other:?}"),
        }
    }
});
