//! Helpers shared by the fuzz targets: input splitting, header-table checks and an
//! independent, deliberately simple reference model of the RFC 6455 frame rules that
//! the incremental parser is compared against.

use websockets::engine::http::headers::HeaderTable;
use websockets::engine::ws::{Event, FrameParser, ParserConfig, ProtocolError, Role};

/// Slot indices probed through the header accessors: every real slot plus a few
/// out-of-range ones (the C API passes any int).
pub const PROBE_SLOTS: usize = 30;

/// Checks `total_length` / `copy_to` / `get` of every slot against each other, with
/// destination buffers that are too small, exactly big enough and larger.
pub fn check_header_table(t: &HeaderTable) {
    let mut big = vec![0xa5u8; 64 * 1024];
    for idx in 0..PROBE_SLOTS {
        let len = t.total_length(idx);
        let value = t.get(idx);
        assert_eq!(len, value.map_or(0, <[u8]>::len), "slot {idx}");
        if idx >= websockets::engine::http::headers::TOKEN_COUNT {
            assert!(value.is_none(), "slot {idx} out of range but present");
        }
        // Buffers of 0, 1, 8 bytes, len (no room for the NUL) and len + 1.
        for size in [0usize, 1, 8, len, len + 1] {
            let mut dst = vec![0xa5u8; size];
            match t.copy_to(idx, &mut dst) {
                Some(n) => {
                    assert_eq!(n, len, "slot {idx}");
                    assert!(size > len);
                    assert_eq!(&dst[..n], value.unwrap_or(&[]));
                    assert_eq!(dst[n], 0);
                    assert!(dst[n + 1..].iter().all(|&b| b == 0xa5), "wrote past NUL");
                }
                None => {
                    assert!(size <= len, "slot {idx}: {size} bytes should fit {len}");
                    assert!(dst.iter().all(|&b| b == 0xa5), "failed copy wrote");
                }
            }
        }
        if len < big.len() {
            assert_eq!(t.copy_to(idx, &mut big), Some(len));
        }
        // list_contains must never panic, whatever the token.
        let _ = t.list_contains(idx, "upgrade");
        let _ = t.list_contains(idx, "");
    }
}

/// Splits the fuzz input into (read sizes, flags byte, stream).
///
/// Layout: `flags`, `n`, then `n % 16` size bytes, then the byte stream. A size byte of
/// 0 means "an empty read" (the parser must cope with zero-length input); otherwise it is
/// the size of the next read. Sizes are used cyclically; with none, the stream is fed
/// in one read.
pub struct Split<'a> {
    pub flags: u8,
    pub sizes: Vec<usize>,
    pub stream: &'a [u8],
}

impl<'a> Split<'a> {
    pub fn new(data: &'a [u8]) -> Split<'a> {
        let flags = data.first().copied().unwrap_or(0);
        let n = data.get(1).map_or(0, |&b| usize::from(b % 16));
        let start = (2 + n).min(data.len());
        let sizes = data
            .get(2..start)
            .unwrap_or(&[])
            .iter()
            .map(|&b| usize::from(b))
            .collect();
        Split {
            flags,
            sizes,
            stream: &data[start..],
        }
    }

    /// The read sizes as an endless cycle (one whole read when there are none).
    pub fn reads(&self) -> impl FnMut() -> usize + '_ {
        let mut i = 0;
        move || {
            if self.sizes.is_empty() {
                return usize::MAX;
            }
            let s = self.sizes[i % self.sizes.len()];
            i += 1;
            s
        }
    }
}

/// What a frame stream decodes to, reassembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Msg(u8, Vec<u8>),
    Ctl(u8, Vec<u8>),
}

/// Outcome of feeding a whole stream: the completed items and the close code of the
/// error that stopped it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub items: Vec<Item>,
    pub error: Option<u16>,
    /// Total payload bytes delivered in Data events (whole or partial messages).
    pub data_bytes: usize,
}

/// Feeds `stream` to `p` in reads of the sizes `next_read` gives (each read in its own
/// buffer, as from a socket), checking the per-event invariants of the parser API.
pub fn drive(p: &mut FrameParser, stream: &[u8], mut next_read: impl FnMut() -> usize) -> Outcome {
    let cfg = p.config();
    let mut items = Vec::new();
    let mut cur: Option<(u8, Vec<u8>)> = None;
    let mut data_bytes = 0usize;
    let mut off = 0;
    let mut reads = 0usize;
    let mut error: Option<ProtocolError> = None;
    'outer: while off < stream.len() {
        reads += 1;
        let want = next_read();
        // Bound the number of empty reads so a stream of zero sizes still progresses.
        let n = if want == 0 && reads % 4 != 0 {
            0
        } else {
            want.clamp(1, stream.len() - off)
        };
        let mut buf = stream[off..off + n].to_vec();
        off += n;
        let mut pos = 0;
        let mut events_this_read = 0usize;
        loop {
            let before = pos;
            let r = p.next_event(&mut buf, &mut pos);
            match r {
                Err(e) => {
                    assert!(matches!(e.close_code, 1002 | 1007 | 1009), "{e:?}");
                    assert_eq!(p.error(), Some(e));
                    error = Some(e);
                    break 'outer;
                }
                Ok(None) => {
                    assert_eq!(pos, n, "Ok(None) must mean the whole read was consumed");
                    break;
                }
                Ok(Some(ev)) => {
                    events_this_read += 1;
                    // A read of n bytes holds at most n / 2 + 1 frames; each frame gives
                    // at most one event per read (plus one for a frame that began
                    // earlier). Anything beyond means the parser is spinning.
                    assert!(events_this_read <= n + 2, "parser loops without progress");
                    match ev {
                        Event::Extended { .. } => {
                            panic!("Extended event without ParserConfig::extended_opcodes")
                        }
                        Event::Control { opcode, payload } => {
                            assert!(matches!(opcode, 0x8..=0xa), "control opcode {opcode:#x}");
                            assert!(payload.len() <= 125);
                            items.push(Item::Ctl(opcode, payload.to_vec()));
                        }
                        Event::Data {
                            payload,
                            message_opcode,
                            frame_opcode,
                            fin,
                            rsv,
                            frame_remaining,
                            message_start,
                        } => {
                            assert!(pos >= before || payload.is_empty());
                            assert!(matches!(message_opcode, 1 | 2), "{message_opcode}");
                            assert!(matches!(frame_opcode, 0..=2));
                            assert_eq!(rsv & !cfg.allowed_rsv, 0, "un-negotiated rsv passed");
                            assert!(payload.len() <= n);
                            data_bytes += payload.len();
                            assert_eq!(message_start, cur.is_none());
                            if message_start {
                                assert_eq!(frame_opcode, message_opcode);
                            } else {
                                // Later slices of the first frame, or continuations.
                                assert!(frame_opcode == 0 || frame_opcode == message_opcode);
                            }
                            let payload = payload.to_vec();
                            assert_eq!(p.frame_remaining(), frame_remaining);
                            let (op, data) =
                                cur.get_or_insert_with(|| (message_opcode, Vec::new()));
                            assert_eq!(*op, message_opcode);
                            data.extend_from_slice(&payload);
                            if fin && frame_remaining == 0 {
                                let (op, data) = cur.take().unwrap();
                                if op == 1 && cfg.validate_utf8 {
                                    assert!(std::str::from_utf8(&data).is_ok());
                                }
                                items.push(Item::Msg(op, data));
                                assert!(!p.in_message());
                            } else {
                                assert!(p.in_message());
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(data_bytes <= stream.len(), "more payload than input");
    if let Some(e) = error {
        // Poisoned: the same error forever, whatever is fed.
        for extra in [&b""[..], b"\x81\x80\0\0\0\0", b"\x88\x00"] {
            let mut buf = extra.to_vec();
            let mut pos = 0;
            assert_eq!(p.next_event(&mut buf, &mut pos), Err(e));
        }
    }
    Outcome {
        items,
        error: error.map(|e| e.close_code),
        data_bytes,
    }
}

/// Parser settings derived from the flags byte: bit 0 turns UTF-8 validation off,
/// bit 1 sets a small message limit (64 << bits 2-3), bits 4-6 are the allowed RSV bits.
pub fn config_from_flags(role: Role, flags: u8) -> ParserConfig {
    let mut c = ParserConfig::new(role);
    c.validate_utf8 = flags & 1 == 0;
    if flags & 2 != 0 {
        c.max_message_size = 64u64 << ((flags >> 2) & 3);
    }
    c.allowed_rsv = flags & 0x70;
    c
}

/// Reference decoder: applies RFC 6455 section 5 to a complete byte stream, written for
/// clarity, not speed. Errors are reported at the same point the incremental parser is
/// specified to find them (first header byte, second header byte, full header, payload).
pub fn reference(cfg: &ParserConfig, s: &[u8]) -> Outcome {
    let mut items = Vec::new();
    let mut data_bytes = 0usize;
    let mut i = 0usize;
    // The message in progress: (opcode, bytes so far, announced length so far).
    let mut msg: Option<(u8, Vec<u8>, u64)> = None;
    let out = |items, error, data_bytes| Outcome {
        items,
        error,
        data_bytes,
    };
    while i < s.len() {
        let b0 = s[i];
        let opcode = b0 & 0x0f;
        let fin = b0 & 0x80 != 0;
        let control = opcode >= 8;
        // Negotiated RSV bits apply to data frames only (RFC 7692 6.1 for RSV1).
        if b0 & 0x70 & !cfg.allowed_rsv != 0 || (control && b0 & 0x70 != 0) {
            return out(items, Some(1002), data_bytes);
        }
        match opcode {
            0 if msg.is_none() => return out(items, Some(1002), data_bytes),
            1 | 2 if msg.is_some() => return out(items, Some(1002), data_bytes),
            0..=2 => {}
            8..=10 if !fin => return out(items, Some(1002), data_bytes),
            8..=10 => {}
            _ => return out(items, Some(1002), data_bytes),
        }
        let Some(&b1) = s.get(i + 1) else { break };
        let masked = b1 & 0x80 != 0;
        if masked != (cfg.role == Role::Server) {
            return out(items, Some(1002), data_bytes);
        }
        let len7 = b1 & 0x7f;
        if control && len7 > 125 {
            return out(items, Some(1002), data_bytes);
        }
        let ext = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let hlen = 2 + ext + if masked { 4 } else { 0 };
        if s.len() < i + hlen {
            break;
        }
        let len: u64 = match len7 {
            126 => u64::from(s[i + 2]) << 8 | u64::from(s[i + 3]),
            127 => s[i + 2..i + 10]
                .iter()
                .fold(0u64, |a, &b| a << 8 | u64::from(b)),
            n => u64::from(n),
        };
        if len >= 1 << 63 {
            return out(items, Some(1002), data_bytes);
        }
        let key = if masked {
            [
                s[i + hlen - 4],
                s[i + hlen - 3],
                s[i + hlen - 2],
                s[i + hlen - 1],
            ]
        } else {
            [0; 4]
        };
        i += hlen;
        let avail = (s.len() - i) as u64;
        let take = len.min(avail) as usize;
        let payload: Vec<u8> = s[i..i + take]
            .iter()
            .enumerate()
            .map(|(j, &b)| b ^ key[j % 4])
            .collect();
        i += take;
        let complete = take as u64 == len;
        if control {
            if !complete {
                break;
            }
            items.push(Item::Ctl(opcode, payload));
            continue;
        }
        let (mop, mut data, announced) = msg.take().unwrap_or((opcode, Vec::new(), 0));
        if len > cfg.max_message_size || announced > cfg.max_message_size - len {
            return out(items, Some(1009), data_bytes);
        }
        data.extend_from_slice(&payload);
        data_bytes += payload.len();
        if mop == 1 && cfg.validate_utf8 {
            if let Err(e) = std::str::from_utf8(&data) {
                let definitely_bad = e.error_len().is_some();
                let ended = fin && complete;
                if definitely_bad || ended {
                    return out(items, Some(1007), data_bytes);
                }
            }
        }
        if !complete {
            break;
        }
        if fin {
            items.push(Item::Msg(mop, data));
        } else {
            msg = Some((mop, data, announced + len));
        }
    }
    out(items, None, data_bytes)
}

/// The whole frame-target body for one role.
pub fn fuzz_frames(role: Role, data: &[u8]) {
    let split = Split::new(data);
    let cfg = config_from_flags(role, split.flags);

    let mut p = FrameParser::new(cfg);
    let got = drive(&mut p, split.stream, split.reads());

    let mut whole = FrameParser::new(cfg);
    let one_read = drive(&mut whole, split.stream, || usize::MAX);

    let want = reference(&cfg, split.stream);
    assert_eq!(one_read.items, want.items, "one read vs reference");
    assert_eq!(one_read.error, want.error, "one read vs reference");
    assert_eq!(got.items, want.items, "split reads vs reference");
    assert_eq!(got.error, want.error, "split reads vs reference");
    if want.error.is_none() {
        assert_eq!(got.data_bytes, want.data_bytes);
        assert_eq!(one_read.data_bytes, want.data_bytes);
    }
}
