//! Incremental, fail-fast UTF-8 validation (RFC 3629) for text messages.
//!
//! WebSocket text arrives in arbitrary fragments and reads, and Autobahn (6.x) expects
//! the connection to fail as soon as the bytes received so far can no longer be the
//! start of valid UTF-8, so the validator is a tiny resumable DFA that rejects on the
//! first impossible byte (e.g. the `A0` in `ED A0`, a surrogate) rather than at the end
//! of the sequence.

/// DFA states. Each "need" state says how many continuation bytes are still missing;
/// the special second-byte states narrow the range of the next byte to exclude
/// overlongs (`E0`, `F0`), surrogates (`ED`) and code points above U+10FFFF (`F4`).
const ACCEPT: u8 = 0;
const NEED1: u8 = 1;
const NEED2: u8 = 2;
const NEED3: u8 = 3;
const AFTER_E0: u8 = 4;
const AFTER_ED: u8 = 5;
const AFTER_F0: u8 = 6;
const AFTER_F4: u8 = 7;
const REJECT: u8 = 8;

/// Every byte of the word has its high bit clear, i.e. it is all ASCII.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Invalid UTF-8 was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utf8Error;

impl std::fmt::Display for Utf8Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid UTF-8")
    }
}

impl std::error::Error for Utf8Error {}

/// Incremental UTF-8 validator (RFC 3629: no overlongs, no surrogates, max U+10FFFF)
/// that fails as soon as the bytes seen so far cannot start a valid sequence,
/// across arbitrary chunk splits. One byte of state.
#[derive(Clone, Copy, Default, Debug)]
pub struct Utf8Validator {
    state: u8,
}

impl Utf8Validator {
    pub fn new() -> Self {
        Self { state: ACCEPT }
    }

    /// Ok if all bytes so far are a valid prefix of UTF-8 text. Once an error has been
    /// reported the validator stays failed until [`reset`](Self::reset).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), Utf8Error> {
        let mut state = self.state;
        if state == REJECT {
            return Err(Utf8Error);
        }
        let mut i = 0;
        while i < bytes.len() {
            if state == ACCEPT {
                i = skip_ascii(bytes, i);
                if i == bytes.len() {
                    break;
                }
            }
            state = step(state, bytes[i]);
            if state == REJECT {
                self.state = REJECT;
                return Err(Utf8Error);
            }
            i += 1;
        }
        self.state = state;
        Ok(())
    }

    /// True when the text so far ends on a character boundary (and nothing was invalid).
    pub fn is_complete(&self) -> bool {
        self.state == ACCEPT
    }

    pub fn reset(&mut self) {
        self.state = ACCEPT;
    }
}

/// Returns the index of the first non-ASCII byte at or after `i` (or `bytes.len()`),
/// examining 8 bytes per step.
fn skip_ascii(bytes: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Little-endian load: the lowest set high bit belongs to the earliest byte.
        let high = u64::from_le_bytes(word) & HIGH_BITS;
        if high != 0 {
            return i + (high.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && bytes[i] < 0x80 {
        i += 1;
    }
    i
}

/// One DFA transition.
fn step(state: u8, b: u8) -> u8 {
    let cont = |next: u8, lo: u8, hi: u8| if (lo..=hi).contains(&b) { next } else { REJECT };
    match state {
        ACCEPT => match b {
            0x00..=0x7f => ACCEPT,
            0xc2..=0xdf => NEED1,
            0xe0 => AFTER_E0,
            0xe1..=0xec | 0xee..=0xef => NEED2,
            0xed => AFTER_ED,
            0xf0 => AFTER_F0,
            0xf1..=0xf3 => NEED3,
            0xf4 => AFTER_F4,
            // 80..=BF stray continuation, C0/C1 always overlong, F5..=FF beyond U+10FFFF.
            _ => REJECT,
        },
        NEED1 => cont(ACCEPT, 0x80, 0xbf),
        NEED2 => cont(NEED1, 0x80, 0xbf),
        NEED3 => cont(NEED2, 0x80, 0xbf),
        AFTER_E0 => cont(NEED1, 0xa0, 0xbf),
        AFTER_ED => cont(NEED1, 0x80, 0x9f),
        AFTER_F0 => cont(NEED2, 0x90, 0xbf),
        AFTER_F4 => cont(NEED2, 0x80, 0x8f),
        _ => REJECT,
    }
}

/// One-shot check of a complete string.
pub fn validate_complete(bytes: &[u8]) -> bool {
    let mut v = Utf8Validator::new();
    v.feed(bytes).is_ok() && v.is_complete()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Index of the byte at which a byte-by-byte fail-fast validator must fail,
    /// derived from std: the shortest prefix that is neither valid nor merely truncated.
    fn oracle_fail_index(bytes: &[u8]) -> Option<usize> {
        (1..=bytes.len())
            .find(
                |&k| matches!(std::str::from_utf8(&bytes[..k]), Err(e) if e.error_len().is_some()),
            )
            .map(|k| k - 1)
    }

    fn fail_index(bytes: &[u8]) -> Option<usize> {
        let mut v = Utf8Validator::new();
        (0..bytes.len()).find(|&i| v.feed(&bytes[i..i + 1]).is_err())
    }

    #[test]
    fn valid_multibyte() {
        assert!(validate_complete(b""));
        assert!(validate_complete("Hello-µ@ßöäüàá-UTF-8!!".as_bytes()));
        assert!(validate_complete("κόσμε".as_bytes()));
        assert!(validate_complete(
            "\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}".as_bytes()
        ));
        assert!(validate_complete(b"\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbd"));
        assert!(validate_complete(&[0u8; 20]));
    }

    #[test]
    fn overlongs_rejected_at_first_impossible_byte() {
        assert_eq!(fail_index(b"\xc0\xaf"), Some(0));
        assert_eq!(fail_index(b"\xc1\xbf"), Some(0));
        assert_eq!(fail_index(b"\xe0\x80\xaf"), Some(1));
        assert_eq!(fail_index(b"\xe0\x9f\xbf"), Some(1));
        assert_eq!(fail_index(b"\xf0\x80\x80\xaf"), Some(1));
        assert_eq!(fail_index(b"\xf0\x8f\xbf\xbf"), Some(1));
    }

    #[test]
    fn surrogates_and_out_of_range() {
        assert_eq!(fail_index(b"\xed\xa0\x80"), Some(1));
        assert_eq!(fail_index(b"\xed\xbf\xbf"), Some(1));
        assert_eq!(fail_index(b"\xf4\x90\x80\x80"), Some(1));
        assert_eq!(fail_index(b"\xf5\x80\x80\x80"), Some(0));
        assert_eq!(fail_index(b"\xff"), Some(0));
        assert_eq!(fail_index(b"\x80"), Some(0));
        assert_eq!(fail_index(b"a\xc3a"), Some(2));
        assert!(validate_complete(b"\xf4\x8f\xbf\xbf"));
    }

    #[test]
    fn truncated_at_end_is_valid_prefix_but_incomplete() {
        for s in [&b"\xce"[..], b"\xe1\xbd", b"\xf0\x9f\x98", b"ab\xf4"] {
            let mut v = Utf8Validator::new();
            assert!(v.feed(s).is_ok());
            assert!(!v.is_complete());
            assert!(!validate_complete(s));
        }
    }

    #[test]
    fn autobahn_fail_fast_position() {
        let bytes = [
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
        ];
        let mut v = Utf8Validator::new();
        assert!(
            v.feed(&bytes[..12]).is_ok(),
            "up to and including ED is a valid prefix"
        );
        assert_eq!(v.feed(&bytes[12..13]), Err(Utf8Error), "ED A0 must fail");
        assert_eq!(v.feed(b"a"), Err(Utf8Error), "stays failed");
        assert_eq!(fail_index(&bytes), Some(12));
        assert!(Utf8Validator::new().feed(&bytes).is_err());
    }

    #[test]
    fn reset_clears_failure() {
        let mut v = Utf8Validator::new();
        assert!(v.feed(b"\xff").is_err());
        v.reset();
        assert!(v.feed(b"ok").is_ok() && v.is_complete());
        assert!(std::mem::size_of::<Utf8Validator>() <= 8);
    }

    #[test]
    fn ascii_fast_path_edges() {
        // Non-ASCII at every position relative to the 8-byte words.
        for pos in 0..20 {
            let mut s = vec![b'a'; 24];
            s[pos] = 0xff;
            assert_eq!(fail_index(&s), Some(pos));
            assert!(Utf8Validator::new().feed(&s).is_err());
            assert!(Utf8Validator::new().feed(&s[..pos]).is_ok());
        }
    }

    proptest! {
        #[test]
        fn agrees_with_std_and_fails_fast_across_splits(
            bytes in prop::collection::vec(
                prop_oneof![
                    4 => 0x20u8..0x7f,
                    4 => 0x80u8..=0xbf,
                    1 => 0xc0u8..=0xc2,
                    1 => 0xdfu8..=0xe1,
                    1 => 0xedu8..=0xef,
                    1 => 0xf0u8..=0xf5,
                    1 => any::<u8>(),
                ],
                0..40,
            ),
            cuts in prop::collection::vec(1usize..10, 0..20),
        ) {
            let oracle = oracle_fail_index(&bytes);
            prop_assert_eq!(fail_index(&bytes), oracle);
            prop_assert_eq!(validate_complete(&bytes), std::str::from_utf8(&bytes).is_ok());
            // Chunked feeding fails exactly on the chunk containing the failing byte.
            let mut v = Utf8Validator::new();
            let mut start = 0usize;
            let mut failed_in = None;
            for cut in cuts.iter().copied().chain(std::iter::once(usize::MAX)) {
                let end = start.saturating_add(cut).min(bytes.len());
                if v.feed(&bytes[start..end]).is_err() {
                    failed_in = Some((start, end));
                    break;
                }
                start = end;
                if start == bytes.len() {
                    break;
                }
            }
            match (oracle, failed_in) {
                (None, None) => prop_assert_eq!(v.is_complete(), std::str::from_utf8(&bytes).is_ok()),
                (Some(i), Some((s, e))) => prop_assert!(s <= i && i < e),
                other => prop_assert!(false, "mismatch {:?}", other),
            }
        }

        #[test]
        fn valid_strings_accepted_in_any_split(s in "\\PC{0,64}", cut in 0usize..300) {
            let b = s.as_bytes();
            let cut = cut.min(b.len());
            let mut v = Utf8Validator::new();
            prop_assert!(v.feed(&b[..cut]).is_ok());
            prop_assert!(v.feed(&b[cut..]).is_ok());
            prop_assert!(v.is_complete());
        }
    }
}
