//! permessage-deflate and deflate-frame (de)compression.
//!
//! Input: flags byte, split byte, then data. Checks:
//! * arbitrary bytes as compressed input never panic and never grow the output past
//!   the documented bound (limit + 1 bytes per message); after an error the session
//!   keeps returning it;
//! * compress -> split into fragments -> decompress gives back the data, for both
//!   roles and the negotiated window sizes and context-takeover modes, over several
//!   messages (context carried across them unless no_context_takeover).
#![no_main]

use libfuzzer_sys::fuzz_target;
use websockets::engine::extensions::{DeflateFrameSession, PmdError, PmdParams, PmdSession, Role};

const LIMIT: usize = 64 * 1024;

fn params(flags: u8, bits: u8) -> PmdParams {
    PmdParams {
        server_no_context_takeover: flags & 2 != 0,
        client_no_context_takeover: flags & 4 != 0,
        server_max_window_bits: 8 + (bits & 7),
        client_max_window_bits: 8 + ((bits >> 3) & 7),
    }
}

/// Cuts `data` into pieces whose sizes come from `seed` (some empty).
fn pieces(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut s = u32::from(seed) | 1;
    while !rest.is_empty() {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = ((s >> 16) as usize % (usize::from(seed % 64) + 2)).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (flags, split, bits, body) = (data[0], data[1], data[2], &data[3..]);
    let role = if flags & 1 != 0 {
        Role::Client
    } else {
        Role::Server
    };
    let p = params(flags, bits);

    // 1. Garbage in: bounded output, sticky errors, no panic.
    let mut s = PmdSession::new(role, p, LIMIT);
    let parts = pieces(body, split);
    for round in 0..2 {
        let mut out = Vec::new();
        let mut err = None;
        for (i, part) in parts.iter().enumerate() {
            let fin = i + 1 == parts.len();
            match s.decompress_fragment(part, fin, &mut out) {
                Ok(()) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
            assert!(
                out.len() <= LIMIT + 1,
                "output {} past the limit",
                out.len()
            );
        }
        if parts.is_empty() {
            let _ = s.decompress_fragment(&[], true, &mut out);
        }
        assert!(
            out.len() <= LIMIT + 1,
            "output {} past the limit",
            out.len()
        );
        if let Some(e) = err {
            assert!(matches!(e, PmdError::Corrupt | PmdError::TooBig));
            assert_eq!(
                s.decompress_fragment(b"\x00", true, &mut out),
                Err(e),
                "round {round}"
            );
            break;
        }
    }
    let mut df = DeflateFrameSession::new(LIMIT);
    let mut out = Vec::new();
    for part in &parts {
        if df
            .decompress_frame_with_limit(part, LIMIT / 4, &mut out)
            .is_err()
        {
            break;
        }
        assert!(out.len() <= (LIMIT / 4 + 1) * parts.len());
        out.clear();
    }

    // 2. Round trips: the body as three messages, sender and receiver in opposite roles.
    let (tx_role, rx_role) = match role {
        Role::Server => (Role::Server, Role::Client),
        Role::Client => (Role::Client, Role::Server),
    };
    let mut tx = PmdSession::new(tx_role, p, usize::MAX);
    tx.set_compression_level(u32::from(split % 10));
    let mut rx = PmdSession::new(rx_role, p, body.len() + 1);
    rx.set_retain_state(flags & 8 != 0);
    let thirds = [&body[..body.len() / 3], &body[body.len() / 3..], body];
    for (m, msg) in thirds.iter().enumerate() {
        let mut wire = Vec::new();
        tx.compress_message(msg, &mut wire).expect("compress");
        let mut back = Vec::new();
        let frags = pieces(&wire, split.wrapping_add(m as u8));
        if frags.is_empty() {
            rx.decompress_fragment(&[], true, &mut back)
                .expect("empty message");
        }
        for (i, f) in frags.iter().enumerate() {
            rx.decompress_fragment(f, i + 1 == frags.len(), &mut back)
                .unwrap_or_else(|e| panic!("message {m}: {e}"));
        }
        assert!(!rx.in_incoming_message());
        assert_eq!(&back[..], *msg, "message {m} came back different");
    }

    let mut dtx = DeflateFrameSession::new(usize::MAX);
    let mut drx = DeflateFrameSession::new(body.len() + 1);
    for (m, msg) in thirds.iter().enumerate() {
        let mut wire = Vec::new();
        dtx.compress_frame(msg, &mut wire).expect("compress frame");
        let mut back = Vec::new();
        drx.decompress_frame(&wire, &mut back)
            .unwrap_or_else(|e| panic!("deflate-frame {m}: {e}"));
        assert_eq!(&back[..], *msg, "deflate-frame {m} came back different");
    }
});
