//! `deflate-frame` / `x-webkit-deflate-frame`: the pre-RFC 7692 per-frame
//! compression extension (draft-tyoshino-hybi-websocket-perframe-deflate), as
//! libwebsockets v1.23 shipped it.
//!
//! What v1.23 did, and what this module does:
//! * Names: the server knows both `x-webkit-deflate-frame` and
//!   `deflate-frame` and replies with the name that was offered, without
//!   parameters. A v1.23 client offers only `deflate-frame` (it vetoes the
//!   `x-webkit-` name on the client side).
//! * Parameters: v1.23 split the header on `,`, space and tab only, so an
//!   offer such as `deflate-frame; max_window_bits=10` became the token
//!   `deflate-frame;`, matched nothing and was effectively declined. Here an
//!   offer carrying any parameter (the draft's `max_window_bits`,
//!   `no_context_takeover`, or anything else) is declined, which is what
//!   v1.23 did for the usual `name; param` spelling and never leaves a
//!   parameter silently ignored.
//! * Each data frame's payload is compressed on its own (sync flush, the
//!   trailing `00 00 ff ff` removed) and sent with RSV1; the receiver
//!   inflates a frame only if its RSV1 is set, after appending the 4 octets.
//!   Both directions keep their LZ77 context across frames and messages for
//!   the life of the connection (never reset), raw deflate with a 15-bit
//!   window.
//! * Compression level: v1.23 used 1 on a server and zlib's default (6) on a
//!   client; [`DeflateFrameSession::new`] uses the server's 1,
//!   [`DeflateFrameSession::for_role`] picks by role. (zlib-rs level 1 is the
//!   "quick" static-Huffman strategy, larger output than C zlib's level 1.)
//! * Limits: v1.23 failed a frame whose inflated size went past its
//!   64 KiB buffer cap (`LWS_MAX_ZLIB_CONN_BUFFER`). Here the cap is the
//!   `max_message` given to the session (per frame), or any per-call limit
//!   via [`DeflateFrameSession::decompress_frame_with_limit`] so the caller
//!   can pass what is left of its message budget.
//! * v1.23 produced a negative length for an empty payload once a flush had
//!   already happened; here an empty payload is always the single octet `00`.

use flate2::{Compress, Decompress};

use super::negotiate::{ExtOffer, NegotiationError};
use super::pmd::{
    compress_sync_stripped, deflate_state_bytes, inflate_bounded, new_compressor, new_decompressor,
    PmdError, Role, INFLATE_STATE_BYTES, SYNC_TAIL,
};

/// The name a v1.23 client offers and a server accepts.
pub const DEFLATE_FRAME_NAME: &str = "deflate-frame";
/// The WebKit-prefixed name (Chrome / Safari of the time); server side only.
pub const X_WEBKIT_DEFLATE_FRAME_NAME: &str = "x-webkit-deflate-frame";
/// Compression level v1.23 used on the server side.
pub const DEFLATE_FRAME_SERVER_LEVEL: u32 = 1;
/// Compression level v1.23 used on the client side (zlib's default).
pub const DEFLATE_FRAME_CLIENT_LEVEL: u32 = 6;
/// LZ77 window bits used in both directions.
pub const DEFLATE_FRAME_WINDOW_BITS: u8 = 15;

/// Server side: the response element for a `deflate-frame` or
/// `x-webkit-deflate-frame` offer (the name as offered, canonical case), or
/// `None` to decline (other names, or any parameter present).
pub fn deflate_frame_server_accept(offer: &ExtOffer) -> Option<String> {
    if !offer.params.is_empty() {
        return None;
    }
    [X_WEBKIT_DEFLATE_FRAME_NAME, DEFLATE_FRAME_NAME]
        .into_iter()
        .find(|n| offer.name.eq_ignore_ascii_case(n))
        .map(str::to_owned)
}

/// The offer element a client sends (`deflate-frame`, as v1.23 did).
pub fn deflate_frame_client_offer_string() -> &'static str {
    DEFLATE_FRAME_NAME
}

/// Client side: checks the server's response element. Only `deflate-frame`
/// without parameters (what was offered) is accepted.
pub fn deflate_frame_client_accept_response(resp: &ExtOffer) -> Result<(), NegotiationError> {
    if !resp.name.eq_ignore_ascii_case(DEFLATE_FRAME_NAME) {
        return Err(NegotiationError("response is not deflate-frame"));
    }
    if !resp.params.is_empty() {
        return Err(NegotiationError("unexpected deflate-frame parameter"));
    }
    Ok(())
}

/// Per-connection deflate-frame state: one compressor and one decompressor,
/// created on first use and kept for the connection's life (context takeover
/// across frames). After any error the session is poisoned and keeps
/// returning that error.
pub struct DeflateFrameSession {
    level: u32,
    max_message: usize,
    compressor: Option<Compress>,
    decompressor: Option<Decompress>,
    poisoned: Option<PmdError>,
}

impl DeflateFrameSession {
    /// Server-side session (compression level 1, as v1.23's server).
    /// `max_message` caps the inflated size of each received frame.
    pub fn new(max_message: usize) -> Self {
        DeflateFrameSession {
            level: DEFLATE_FRAME_SERVER_LEVEL,
            max_message,
            compressor: None,
            decompressor: None,
            poisoned: None,
        }
    }

    /// Session with v1.23's compression level for `role` (server 1,
    /// client 6).
    pub fn for_role(role: Role, max_message: usize) -> Self {
        let mut s = Self::new(max_message);
        if role == Role::Client {
            s.level = DEFLATE_FRAME_CLIENT_LEVEL;
        }
        s
    }

    /// zlib level 0..=9 (above 9 acts as 9); only effective before the first
    /// frame is compressed.
    pub fn set_compression_level(&mut self, level: u32) {
        self.level = level.min(9);
    }

    /// Compresses one frame's payload; appends the bytes to send (with RSV1
    /// set on this frame) to `out`.
    pub fn compress_frame(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), PmdError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let level = self.level;
        let c = self
            .compressor
            .get_or_insert_with(|| new_compressor(level, DEFLATE_FRAME_WINDOW_BITS));
        compress_sync_stripped(c, payload, out).inspect_err(|&e| {
            self.poisoned = Some(e);
            self.compressor = None;
        })
    }

    /// Inflates the payload of one received frame that had RSV1 set and
    /// appends the result to `out`; fails with `TooBig` past `max_message`
    /// output bytes for this frame.
    pub fn decompress_frame(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), PmdError> {
        self.decompress_frame_with_limit(input, self.max_message, out)
    }

    /// As [`DeflateFrameSession::decompress_frame`] with an explicit output
    /// limit for this frame (e.g. what remains of the message budget). `out`
    /// never grows more than `limit + 1` bytes past its length on entry
    /// (plus capacity it already had).
    pub fn decompress_frame_with_limit(
        &mut self,
        input: &[u8],
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), PmdError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let d = self
            .decompressor
            .get_or_insert_with(|| new_decompressor(DEFLATE_FRAME_WINDOW_BITS));
        let mut produced = 0usize;
        let result = inflate_bounded(d, input, out, &mut produced, limit).and_then(|ended| {
            if ended {
                Ok(true)
            } else {
                inflate_bounded(d, &SYNC_TAIL, out, &mut produced, limit)
            }
        });
        match result {
            // The peer ended its DEFLATE stream (BFINAL): the rest of the
            // frame is ignored and the next frame starts a fresh stream.
            Ok(true) => {
                self.decompressor = None;
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => {
                self.poisoned = Some(e);
                self.decompressor = None;
                Err(e)
            }
        }
    }

    /// Estimated heap held by the zlib state (0 before first use; about
    /// 371 KiB for the compressor and 46 KiB for the decompressor with
    /// zlib-rs 0.6 once both exist).
    pub fn state_bytes(&self) -> usize {
        let c = if self.compressor.is_some() {
            deflate_state_bytes(DEFLATE_FRAME_WINDOW_BITS)
        } else {
            0
        };
        let d = if self.decompressor.is_some() {
            INFLATE_STATE_BYTES
        } else {
            0
        };
        c + d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::extensions::negotiate::parse_extensions;
    use proptest::prelude::*;

    fn one(s: &str) -> ExtOffer {
        let mut v = parse_extensions(s.as_bytes()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn server_accepts_both_names_without_params() {
        assert_eq!(
            deflate_frame_server_accept(&one("x-webkit-deflate-frame")).as_deref(),
            Some("x-webkit-deflate-frame")
        );
        assert_eq!(
            deflate_frame_server_accept(&one("deflate-frame")).as_deref(),
            Some("deflate-frame")
        );
        assert_eq!(
            deflate_frame_server_accept(&one("X-WebKit-Deflate-Frame")).as_deref(),
            Some("x-webkit-deflate-frame")
        );
    }

    #[test]
    fn server_declines_params_and_other_names() {
        for s in [
            "deflate-frame; max_window_bits=10",
            "x-webkit-deflate-frame; no_context_takeover",
            "x-webkit-deflate-frame; max_window_bits=15",
            "permessage-deflate",
            "deflate-stream",
            "x-webkit-deflate-frames",
        ] {
            assert_eq!(deflate_frame_server_accept(&one(s)), None, "{s}");
        }
    }

    #[test]
    fn client_side_negotiation() {
        assert_eq!(deflate_frame_client_offer_string(), "deflate-frame");
        assert_eq!(
            deflate_frame_client_accept_response(&one("deflate-frame")),
            Ok(())
        );
        assert!(deflate_frame_client_accept_response(&one("x-webkit-deflate-frame")).is_err());
        assert!(deflate_frame_client_accept_response(&one("deflate-frame; a=1")).is_err());
        assert!(deflate_frame_client_accept_response(&one("permessage-deflate")).is_err());
        // a server built on this module answers a v1.23 client acceptably
        let r = deflate_frame_server_accept(&one(deflate_frame_client_offer_string())).unwrap();
        assert_eq!(deflate_frame_client_accept_response(&one(&r)), Ok(()));
    }

    #[test]
    fn hello_with_context_across_frames() {
        // client level (6) reproduces the RFC 7692 byte examples, which use
        // the same deflate framing
        let mut tx = DeflateFrameSession::for_role(Role::Client, 1 << 16);
        let mut rx = DeflateFrameSession::for_role(Role::Server, 1 << 16);
        let mut f1 = Vec::new();
        tx.compress_frame(b"Hello", &mut f1).unwrap();
        assert_eq!(f1, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        let mut f2 = Vec::new();
        tx.compress_frame(b"Hello", &mut f2).unwrap();
        assert_eq!(f2, [0xf2, 0x00, 0x11, 0x00, 0x00]);
        let mut out = Vec::new();
        rx.decompress_frame(&f1, &mut out).unwrap();
        rx.decompress_frame(&f2, &mut out).unwrap();
        assert_eq!(out, b"HelloHello");
        // context is never dropped
        assert_eq!(tx.state_bytes(), deflate_state_bytes(15));
        assert_eq!(rx.state_bytes(), INFLATE_STATE_BYTES);
        let mut back = Vec::new();
        rx.compress_frame(b"Hi", &mut back).unwrap();
        assert_eq!(
            rx.state_bytes(),
            deflate_state_bytes(15) + INFLATE_STATE_BYTES
        );
        let mut out = Vec::new();
        tx.decompress_frame(&back, &mut out).unwrap();
        assert_eq!(out, b"Hi");
    }

    #[test]
    fn fresh_session_holds_nothing() {
        assert_eq!(DeflateFrameSession::new(100).state_bytes(), 0);
    }

    #[test]
    fn empty_payloads() {
        let mut tx = DeflateFrameSession::new(1 << 16);
        let mut rx = DeflateFrameSession::new(1 << 16);
        for p in [&b""[..], b"", b"abc", b"", b"abc"] {
            let mut f = Vec::new();
            tx.compress_frame(p, &mut f).unwrap();
            if p.is_empty() {
                assert_eq!(f, [0x00]);
            }
            let mut out = Vec::new();
            rx.decompress_frame(&f, &mut out).unwrap();
            assert_eq!(out, p);
        }
    }

    #[test]
    fn bfinal_frame_restarts_stream() {
        let m = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut rx = DeflateFrameSession::new(1 << 16);
        for _ in 0..2 {
            let mut out = Vec::new();
            rx.decompress_frame(&m, &mut out).unwrap();
            assert_eq!(out, b"Hello");
            assert_eq!(rx.state_bytes(), 0);
        }
    }

    #[test]
    fn limits() {
        let mut tx = DeflateFrameSession::new(1 << 20);
        let mut f = Vec::new();
        tx.compress_frame(&[7u8; 70_000], &mut f).unwrap();
        let mut rx = DeflateFrameSession::new(65_536);
        let mut out = Vec::new();
        assert_eq!(rx.decompress_frame(&f, &mut out), Err(PmdError::TooBig));
        assert!(out.capacity() <= 65_537);
        // poisoned afterwards
        assert_eq!(
            rx.decompress_frame(&[0x00], &mut out),
            Err(PmdError::TooBig)
        );
        // explicit per-call limit
        let mut rx = DeflateFrameSession::new(1 << 20);
        let mut out = Vec::new();
        assert_eq!(
            rx.decompress_frame_with_limit(&f, 69_999, &mut out),
            Err(PmdError::TooBig)
        );
        let mut rx = DeflateFrameSession::new(1);
        let mut out = Vec::new();
        rx.decompress_frame_with_limit(&f, 70_000, &mut out)
            .unwrap();
        assert_eq!(out.len(), 70_000);
    }

    #[test]
    fn zip_bomb_frame() {
        // 64 MiB of zeros in one frame, decompressed with a 1 MiB cap
        let mut c = new_compressor(9, 15);
        let zeros = vec![0u8; 1 << 20];
        let mut chunks = Vec::new();
        for _ in 0..3 {
            let mut out = Vec::new();
            compress_sync_stripped(&mut c, &zeros, &mut out).unwrap();
            out.extend_from_slice(&SYNC_TAIL);
            chunks.push(out);
        }
        assert_eq!(chunks[1], chunks[2]);
        let mut bomb = chunks[0].clone();
        for _ in 1..64 {
            bomb.extend_from_slice(&chunks[1]);
        }
        bomb.truncate(bomb.len() - 4);
        let mut rx = DeflateFrameSession::new(1 << 20);
        let mut out = Vec::new();
        assert_eq!(rx.decompress_frame(&bomb, &mut out), Err(PmdError::TooBig));
        assert!(out.capacity() <= (1 << 20) + 1);
    }

    #[test]
    fn corrupt_frames() {
        for bad in [&[0xff, 0xff][..], &[0x00, 0x01, 0x00, 0x00, 0x00, 0x41]] {
            let mut rx = DeflateFrameSession::new(1 << 16);
            let mut out = Vec::new();
            assert_eq!(rx.decompress_frame(bad, &mut out), Err(PmdError::Corrupt));
            assert_eq!(rx.state_bytes(), 0);
            assert_eq!(rx.compress_frame(b"x", &mut out), Err(PmdError::Corrupt));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(
            frames in proptest::collection::vec(
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..1500),
                    proptest::collection::vec(0u8..3, 0..4000),
                ],
                1..8,
            ),
            level in 0u32..=9,
        ) {
            let mut tx = DeflateFrameSession::new(1 << 20);
            tx.set_compression_level(level);
            let mut rx = DeflateFrameSession::new(1 << 20);
            for f in &frames {
                let mut c = Vec::new();
                tx.compress_frame(f, &mut c).unwrap();
                let mut out = Vec::new();
                rx.decompress_frame(&c, &mut out).unwrap();
                prop_assert_eq!(&out, f);
            }
        }

        #[test]
        fn random_frames_never_panic(
            frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..4),
        ) {
            let mut rx = DeflateFrameSession::new(10_000);
            for f in &frames {
                let mut out = Vec::new();
                if let Err(e) = rx.decompress_frame(f, &mut out) {
                    prop_assert!(e == PmdError::Corrupt || e == PmdError::TooBig);
                    prop_assert!(out.len() <= 10_001);
                }
            }
        }
    }
}
