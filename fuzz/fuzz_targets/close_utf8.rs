//! Close-payload validation and the incremental UTF-8 validator, both against std.
//!
//! Input: one byte choosing chunk sizes, then the bytes under test (both the close
//! payload and the UTF-8 sample).
#![no_main]

use libfuzzer_sys::fuzz_target;
use websockets::engine::ws::{parse_close_payload, validate_complete, Utf8Validator};

fn valid_code(c: u16) -> bool {
    (1000..=1003).contains(&c) || (1007..=1011).contains(&c) || (3000..=4999).contains(&c)
}

/// Index of the first byte at which the input can no longer be a prefix of UTF-8, from
/// std's error (None when the input is a valid prefix).
fn first_bad_byte(bytes: &[u8]) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => None,
        Err(e) => {
            let at = e.valid_up_to();
            let len = e.error_len()?;
            // A byte that can never start a sequence is itself the bad one; otherwise
            // the sequence went wrong at the byte after the `len` accepted ones.
            let lead = bytes[at];
            if (0x80..=0xc1).contains(&lead) || lead >= 0xf5 {
                Some(at)
            } else {
                Some(at + len)
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };

    // 1. Close payloads.
    match parse_close_payload(bytes) {
        Ok(None) => assert!(bytes.is_empty()),
        Ok(Some((code, reason))) => {
            assert!(bytes.len() >= 2);
            assert_eq!(code, u16::from_be_bytes([bytes[0], bytes[1]]));
            assert!(valid_code(code), "accepted code {code}");
            assert_eq!(reason, &bytes[2..]);
            assert!(std::str::from_utf8(reason).is_ok());
        }
        Err(e) => {
            let expect = match bytes {
                [_] => 1002,
                [hi, lo, ..] if !valid_code(u16::from_be_bytes([*hi, *lo])) => 1002,
                [_, _, reason @ ..] => {
                    assert!(std::str::from_utf8(reason).is_err(), "valid close rejected");
                    1007
                }
                [] => panic!("empty close payload rejected"),
            };
            assert_eq!(e.close_code, expect);
        }
    }

    // 2. One-shot validation agrees with std.
    let std_ok = std::str::from_utf8(bytes).is_ok();
    assert_eq!(validate_complete(bytes), std_ok, "validate_complete");

    // 3. Byte by byte: fails exactly at the first impossible byte.
    let bad = first_bad_byte(bytes);
    let mut v = Utf8Validator::new();
    let mut failed_at = None;
    for (i, b) in bytes.iter().enumerate() {
        if v.feed(std::slice::from_ref(b)).is_err() {
            failed_at = Some(i);
            break;
        }
    }
    assert_eq!(failed_at, bad, "fail-fast position");
    if failed_at.is_none() {
        assert_eq!(v.is_complete(), std_ok);
    } else {
        // Stays failed.
        assert!(v.feed(b"a").is_err());
        assert!(!v.is_complete());
    }

    // 4. In chunks chosen by `sel` (sizes 0..=sel%32 cycling through the data): the
    //    first failing chunk is the one holding the bad byte.
    let mut v = Utf8Validator::new();
    let mut off = 0;
    let mut step = 0usize;
    let mut chunk_failed = None;
    while off < bytes.len() {
        let mut size = (usize::from(sel) + step * 7) % (usize::from(sel % 32) + 2);
        step += 1;
        if size == 0 {
            // An empty chunk changes nothing; then always make progress.
            assert!(v.feed(&[]).is_ok());
            size = 1;
        }
        let end = (off + size).min(bytes.len());
        if v.feed(&bytes[off..end]).is_err() {
            chunk_failed = Some((off, end));
            break;
        }
        off = end;
    }
    match (chunk_failed, bad) {
        (None, None) => assert_eq!(v.is_complete(), std_ok),
        (Some((s, e)), Some(b)) => assert!(s <= b && b < e, "failed in [{s},{e}) bad at {b}"),
        (got, want) => panic!("chunked {got:?} vs std {want:?}"),
    }
    // Reset makes it usable again.
    v.reset();
    assert!(v.feed("ok \u{10ffff}".as_bytes()).is_ok() && v.is_complete());
});
