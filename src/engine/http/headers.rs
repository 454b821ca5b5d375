//! The header table behind `lws_hdr_total_length` / `lws_hdr_copy`: one optional value
//! per `WSI_TOKEN_*` index, stored in one contiguous buffer, freed with the request.

/// Number of header slots (`WSI_TOKEN_COUNT`).
pub const TOKEN_COUNT: usize = 23;

pub const TOKEN_GET_URI: usize = 0;
pub const TOKEN_HOST: usize = 1;
pub const TOKEN_CONNECTION: usize = 2;
pub const TOKEN_KEY1: usize = 3;
pub const TOKEN_KEY2: usize = 4;
pub const TOKEN_PROTOCOL: usize = 5;
pub const TOKEN_UPGRADE: usize = 6;
pub const TOKEN_ORIGIN: usize = 7;
pub const TOKEN_DRAFT: usize = 8;
pub const TOKEN_CHALLENGE: usize = 9;
pub const TOKEN_KEY: usize = 10;
pub const TOKEN_VERSION: usize = 11;
pub const TOKEN_SWORIGIN: usize = 12;
pub const TOKEN_EXTENSIONS: usize = 13;
pub const TOKEN_ACCEPT: usize = 14;
pub const TOKEN_NONCE: usize = 15;
pub const TOKEN_HTTP: usize = 16;
pub const TOKEN_MUXURL: usize = 17;
pub const TOKEN_CLIENT_SENT_PROTOCOLS: usize = 18;
pub const TOKEN_CLIENT_PEER_ADDRESS: usize = 19;
pub const TOKEN_CLIENT_URI: usize = 20;
pub const TOKEN_CLIENT_HOST: usize = 21;
pub const TOKEN_CLIENT_ORIGIN: usize = 22;

/// Header names (lower case) for the slots that come from request/response headers
/// (`token_for_name` dispatches on their lengths; a test checks both agree).
#[cfg(test)]
const NAMES: [(&str, usize); 14] = [
    ("host", TOKEN_HOST),
    ("connection", TOKEN_CONNECTION),
    ("sec-websocket-key1", TOKEN_KEY1),
    ("sec-websocket-key2", TOKEN_KEY2),
    ("sec-websocket-protocol", TOKEN_PROTOCOL),
    ("upgrade", TOKEN_UPGRADE),
    ("origin", TOKEN_ORIGIN),
    ("sec-websocket-draft", TOKEN_DRAFT),
    ("sec-websocket-key", TOKEN_KEY),
    ("sec-websocket-version", TOKEN_VERSION),
    ("sec-websocket-origin", TOKEN_SWORIGIN),
    ("sec-websocket-extensions", TOKEN_EXTENSIONS),
    ("sec-websocket-accept", TOKEN_ACCEPT),
    ("sec-websocket-nonce", TOKEN_NONCE),
];

/// A header name as words loaded at fixed offsets (the last one overlapping the one
/// before it, so no byte is copied), in lower case, with the bits that may differ in
/// case: 0x20 in each letter's byte, 0 elsewhere, so `(word | mask) == lower` is an
/// exact case-insensitive comparison for any input bytes. Names of 8 bytes or more use
/// 8-byte words at 0, 8, 16 (where they fit) and len - 8; shorter ones 4-byte words at
/// 0 and len - 4.
struct NamePattern {
    lower: [u64; 4],
    mask: [u64; 4],
    token: usize,
}

/// Offsets of the words compared for a name of `len` bytes.
const fn word_offsets(len: usize) -> [usize; 4] {
    if len < 8 {
        [0, len - 4, 0, len - 4]
    } else {
        let last = len - 8;
        [0, min(8, last), min(16, last), last]
    }
}

const fn min(a: usize, b: usize) -> usize {
    if a < b {
        a
    } else {
        b
    }
}

const fn pattern(name: &str, token: usize) -> NamePattern {
    let b = name.as_bytes();
    let width = if b.len() < 8 { 4 } else { 8 };
    let offs = word_offsets(b.len());
    let mut lower = [0u64; 4];
    let mut mask = [0u64; 4];
    let mut w = 0;
    while w < 4 {
        let mut i = 0;
        while i < width {
            let c = b[offs[w] + i];
            lower[w] |= (c as u64) << (i * 8);
            if c.is_ascii_lowercase() {
                mask[w] |= 0x20 << (i * 8);
            }
            i += 1;
        }
        w += 1;
    }
    NamePattern { lower, mask, token }
}

const HOST: [NamePattern; 1] = [pattern("host", TOKEN_HOST)];
const ORIGIN: [NamePattern; 1] = [pattern("origin", TOKEN_ORIGIN)];
const UPGRADE: [NamePattern; 1] = [pattern("upgrade", TOKEN_UPGRADE)];
const CONNECTION: [NamePattern; 1] = [pattern("connection", TOKEN_CONNECTION)];
const KEY: [NamePattern; 1] = [pattern("sec-websocket-key", TOKEN_KEY)];
const KEY12: [NamePattern; 2] = [
    pattern("sec-websocket-key1", TOKEN_KEY1),
    pattern("sec-websocket-key2", TOKEN_KEY2),
];
const DRAFT_NONCE: [NamePattern; 2] = [
    pattern("sec-websocket-draft", TOKEN_DRAFT),
    pattern("sec-websocket-nonce", TOKEN_NONCE),
];
const SWORIGIN_ACCEPT: [NamePattern; 2] = [
    pattern("sec-websocket-origin", TOKEN_SWORIGIN),
    pattern("sec-websocket-accept", TOKEN_ACCEPT),
];
const VERSION: [NamePattern; 1] = [pattern("sec-websocket-version", TOKEN_VERSION)];
const PROTOCOL: [NamePattern; 1] = [pattern("sec-websocket-protocol", TOKEN_PROTOCOL)];
const EXTENSIONS: [NamePattern; 1] = [pattern("sec-websocket-extensions", TOKEN_EXTENSIONS)];

/// Maps a header name (any case) to its token slot. Most names in a request are none
/// of ours: the length picks the one or two candidates before any byte is compared,
/// and a candidate is compared a word at a time.
pub fn token_for_name(name: &str) -> Option<usize> {
    let name = name.as_bytes();
    let candidates: &[NamePattern] = match name.len() {
        4 => &HOST,
        6 => &ORIGIN,
        7 => &UPGRADE,
        10 => &CONNECTION,
        17 => &KEY,
        18 => &KEY12,
        19 => &DRAFT_NONCE,
        20 => &SWORIGIN_ACCEPT,
        21 => &VERSION,
        22 => &PROTOCOL,
        24 => &EXTENSIONS,
        _ => return None,
    };
    let offs = word_offsets(name.len());
    let mut words = [0u64; 4];
    for (w, &o) in words.iter_mut().zip(offs.iter()) {
        *w = if name.len() < 8 {
            let mut b = [0u8; 4];
            b.copy_from_slice(&name[o..o + 4]);
            u64::from(u32::from_le_bytes(b))
        } else {
            let mut b = [0u8; 8];
            b.copy_from_slice(&name[o..o + 8]);
            u64::from_le_bytes(b)
        };
    }
    candidates
        .iter()
        .find(|p| (0..4).all(|i| words[i] | p.mask[i] == p.lower[i]))
        .map(|p| p.token)
}

/// `a.eq_ignore_ascii_case(b)`, a byte at a time without lowering both sides.
fn eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(&x, &y)| {
            let d = x ^ y;
            d == 0 || (d == 0x20 && (x | 0x20).is_ascii_lowercase())
        })
}

/// Values by token index. Repeated headers are joined with ", " (RFC 7230 3.2.2).
#[derive(Debug, Default, Clone)]
pub struct HeaderTable {
    data: Vec<u8>,
    spans: [(u32, u32); TOKEN_COUNT],
    present: u32,
}

impl HeaderTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the table from (slot, value) pairs in arrival order; repeated headers are
    /// joined with ", " once, so the cost is linear in the head's size. One allocation.
    pub fn from_pairs(pairs: &[(usize, &[u8])]) -> Self {
        let mut t = HeaderTable::new();
        let total: usize = pairs.iter().map(|(_, v)| v.len() + 2).sum();
        t.refill(pairs.iter().copied(), total);
        t
    }

    /// An empty table that will keep its values in `storage` (emptied first): the
    /// storage of an earlier table (see [`into_storage`](Self::into_storage)).
    pub fn with_storage(mut storage: Vec<u8>) -> Self {
        storage.clear();
        HeaderTable {
            data: storage,
            ..HeaderTable::default()
        }
    }

    /// The table's byte storage, for a later [`with_storage`](Self::with_storage).
    pub fn into_storage(self) -> Vec<u8> {
        self.data
    }

    /// Empties the table, keeping its storage for the next request.
    pub fn clear(&mut self) {
        self.data.clear();
        self.present = 0;
    }

    /// Replaces the contents with (slot, value) pairs in arrival order (as
    /// [`from_pairs`](Self::from_pairs)), reusing the storage. `capacity` is a bound on
    /// the bytes needed (the values plus 2 per pair covers the ", " joins): nothing is
    /// reallocated when the storage already holds that much. One pass over the pairs
    /// unless a slot repeats.
    pub fn refill<'a, I>(&mut self, pairs: I, capacity: usize)
    where
        I: Iterator<Item = (usize, &'a [u8])> + Clone,
    {
        self.clear();
        self.data.reserve_exact(capacity);
        let mut repeated = 0u32;
        for (idx, v) in pairs.clone() {
            if idx >= TOKEN_COUNT {
                continue;
            }
            let bit = 1u32 << idx;
            if self.present & bit != 0 {
                repeated |= bit;
            } else {
                self.set(idx, v);
            }
        }
        if repeated == 0 {
            return;
        }
        // Some slots repeat (rare): again, the single ones first, then each repeated
        // slot's values joined, so the bytes stay within `capacity`.
        self.clear();
        for (idx, v) in pairs.clone() {
            if idx < TOKEN_COUNT && repeated & (1 << idx) == 0 {
                self.set(idx, v);
            }
        }
        let mut rest = repeated;
        while rest != 0 {
            let idx = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            let start = self.data.len();
            for (n, (_, v)) in pairs.clone().filter(|(i, _)| *i == idx).enumerate() {
                if n > 0 {
                    self.data.extend_from_slice(b", ");
                }
                self.data.extend_from_slice(v);
            }
            self.spans[idx] = (start as u32, (self.data.len() - start) as u32);
            self.present |= 1 << idx;
        }
    }

    /// Sets or extends (", "-joined) the value of slot `idx`.
    pub fn add(&mut self, idx: usize, value: &[u8]) {
        if idx >= TOKEN_COUNT {
            return;
        }
        if self.present & (1 << idx) != 0 {
            let (start, len) = self.spans[idx];
            let mut joined = self.data[start as usize..(start + len) as usize].to_vec();
            joined.extend_from_slice(b", ");
            joined.extend_from_slice(value);
            self.set(idx, &joined);
        } else {
            self.set(idx, value);
        }
    }

    fn set(&mut self, idx: usize, value: &[u8]) {
        let start = self.data.len() as u32;
        self.data.extend_from_slice(value);
        self.spans[idx] = (start, value.len() as u32);
        self.present |= 1 << idx;
    }

    pub fn get(&self, idx: usize) -> Option<&[u8]> {
        if idx >= TOKEN_COUNT || self.present & (1 << idx) == 0 {
            return None;
        }
        let (s, l) = self.spans[idx];
        Some(&self.data[s as usize..(s + l) as usize])
    }

    /// Length of the value, 0 when absent (as `lws_hdr_total_length`).
    pub fn total_length(&self, idx: usize) -> usize {
        self.get(idx).map_or(0, |v| v.len())
    }

    /// Copies the value plus a NUL into `dst` (as `lws_hdr_copy`): the length copied, or
    /// `None` when it does not fit. An absent header copies as an empty string.
    pub fn copy_to(&self, idx: usize, dst: &mut [u8]) -> Option<usize> {
        let v = self.get(idx).unwrap_or(&[]);
        if v.len() >= dst.len() {
            return None;
        }
        dst[..v.len()].copy_from_slice(v);
        dst[v.len()] = 0;
        Some(v.len())
    }

    /// True when the comma-separated list in slot `idx` contains `token` (any case).
    pub fn list_contains(&self, idx: usize, token: &str) -> bool {
        let token = token.as_bytes();
        self.get(idx).is_some_and(|v| {
            // Usually the whole value is the token.
            eq_ignore_case(v, token)
                || v.split(|&b| b == b',')
                    .any(|t| eq_ignore_case(t.trim_ascii(), token))
        })
    }

    /// Bytes held, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_maps_to_its_slot() {
        for (n, t) in NAMES {
            assert_eq!(token_for_name(n), Some(t), "{n}");
            assert_eq!(token_for_name(&n.to_ascii_uppercase()), Some(t), "{n}");
            // Same length, one byte different: no slot.
            let mut other = n.to_string();
            other.replace_range(0..1, "x");
            assert_eq!(token_for_name(&other), None, "{other}");
        }
        for n in [
            "",
            "accept",
            "user-agent",
            "sec-websocket-keys",
            "cookie",
            "hosts",
        ] {
            assert_eq!(token_for_name(n), None, "{n}");
        }
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(token_for_name("SEC-WEBSOCKET-KEY"), Some(TOKEN_KEY));
        assert_eq!(token_for_name("Host"), Some(TOKEN_HOST));
        assert_eq!(token_for_name("X-Other"), None);
    }

    #[test]
    fn case_insensitive_equality_matches_std() {
        let words: [&[u8]; 9] = [
            b"upgrade",
            b"UPGRADE",
            b"UpGrAdE",
            b"websocket",
            b"",
            b"a",
            b"@",
            b"`",
            b"{",
        ];
        for a in words {
            for b in words {
                assert_eq!(
                    eq_ignore_case(a, b),
                    a.eq_ignore_ascii_case(b),
                    "{a:?} {b:?}"
                );
            }
        }
        for x in 0..=255u8 {
            for y in 0..=255u8 {
                assert_eq!(eq_ignore_case(&[x], &[y]), [x].eq_ignore_ascii_case(&[y]));
            }
        }
    }

    #[test]
    fn copy_and_lengths() {
        let mut t = HeaderTable::new();
        t.add(TOKEN_HOST, b"example.com");
        assert_eq!(t.total_length(TOKEN_HOST), 11);
        assert_eq!(t.total_length(TOKEN_ORIGIN), 0);
        let mut buf = [0xffu8; 12];
        assert_eq!(t.copy_to(TOKEN_HOST, &mut buf), Some(11));
        assert_eq!(&buf[..12], b"example.com\0");
        let mut small = [0u8; 11];
        assert_eq!(t.copy_to(TOKEN_HOST, &mut small), None);
        assert_eq!(t.copy_to(99, &mut buf), Some(0));
    }

    #[test]
    fn repeated_headers_join_and_lists() {
        let mut t = HeaderTable::new();
        t.add(TOKEN_CONNECTION, b"keep-alive");
        t.add(TOKEN_CONNECTION, b"Upgrade");
        assert_eq!(t.get(TOKEN_CONNECTION), Some(&b"keep-alive, Upgrade"[..]));
        assert!(t.list_contains(TOKEN_CONNECTION, "upgrade"));
        assert!(!t.list_contains(TOKEN_CONNECTION, "close"));
    }

    #[test]
    fn from_pairs_single_repeated_and_out_of_range() {
        let pairs: [(usize, &[u8]); 7] = [
            (TOKEN_GET_URI, b"/x"),
            (TOKEN_CONNECTION, b"keep-alive"),
            (TOKEN_HOST, b"h"),
            (99, b"ignored"),
            (TOKEN_CONNECTION, b"Upgrade"),
            (TOKEN_PROTOCOL, b""),
            (TOKEN_CONNECTION, b"x"),
        ];
        let t = HeaderTable::from_pairs(&pairs);
        assert_eq!(t.get(TOKEN_GET_URI), Some(&b"/x"[..]));
        assert_eq!(t.get(TOKEN_HOST), Some(&b"h"[..]));
        assert_eq!(
            t.get(TOKEN_CONNECTION),
            Some(&b"keep-alive, Upgrade, x"[..])
        );
        assert_eq!(t.get(TOKEN_PROTOCOL), Some(&b""[..]));
        assert_eq!(t.get(TOKEN_ORIGIN), None);
        // Same answers as adding one by one.
        let mut u = HeaderTable::new();
        for (i, v) in pairs {
            u.add(i, v);
        }
        for idx in 0..TOKEN_COUNT {
            assert_eq!(t.get(idx), u.get(idx), "slot {idx}");
        }
        // One allocation, sized up front.
        let total: usize = pairs.iter().map(|(_, v)| v.len() + 2).sum();
        assert_eq!(t.heap_bytes(), total);
    }
}
