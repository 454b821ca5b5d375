//! One WebSocket connection's protocol state, without I/O (in the manner of
//! tungstenite's `WebSocketContext`): received bytes in, [`RxEvent`]s out; application
//! writes and automatic replies (pong, close echo) in, bytes out in the output queue
//! ([`OutBuf`]), which io moves to the socket (`out().pending()`, `consume`).
//!
//! What it keeps: the frame parser, the receive chunking to `rx_buffer_size` (a chunk
//! being assembled across reads), the input stashed while the application paused
//! receiving, what the receive callbacks can ask ([`RxInfo`]), the close handshake
//! (close sent / received), the pong owed for a ping received while output was backed
//! up, and the output queue. The rarely used parts sit behind one pointer that is NULL
//! while they are empty, so an idle connection costs the parser, one word of RxInfo and
//! two pointers.
//!
//! The caller (io) pulls events with [`Connection::next_event`] and runs the application
//! for each with no borrow of the connection held; events carry offsets into the input,
//! not slices, for the same reason. The common message (a whole masked frame of at most
//! 125 bytes) is parsed here in one step ([`whole_small_frame`]); everything else goes
//! through [`FrameParser`].

use super::close::parse_close_payload;
use super::frame::{encode_header, MAX_HEADER_LEN, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT};
use super::mask::apply_mask;
use super::parser::{Event, FrameParser, Role, State};
use super::write_protocol::{WRITE_CLOSE, WRITE_PING, WRITE_PONG};

/// What the receive callbacks can ask about the data being delivered.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct RxInfo {
    pub final_fragment: bool,
    pub binary: bool,
    pub rsv: u8,
    /// Payload bytes of the current frame not yet delivered.
    pub remaining: u64,
}

/// [`RxInfo`] packed into one word: the remaining count in the low 56 bits (saturating:
/// no frame here is that long), RSV bits 56..=58, binary bit 59, final bit 60.
#[derive(Clone, Copy, Default, Debug)]
pub struct PackedRxInfo(u64);

impl PackedRxInfo {
    const REMAINING: u64 = (1 << 56) - 1;

    pub fn get(self) -> RxInfo {
        let v = self.0;
        RxInfo {
            final_fragment: v & (1 << 60) != 0,
            binary: v & (1 << 59) != 0,
            rsv: ((v >> 56) as u8 & 0x07) << 4,
            remaining: v & Self::REMAINING,
        }
    }

    pub fn pack(info: RxInfo) -> Self {
        Self(
            info.remaining.min(Self::REMAINING)
                | u64::from((info.rsv >> 4) & 0x07) << 56
                | u64::from(info.binary) << 59
                | u64::from(info.final_fragment) << 60,
        )
    }
}

/// The storage of an [`OutBuf`] while it holds bytes (pooled by io's context).
#[derive(Default, Debug)]
pub struct OutQ {
    pub buf: Vec<u8>,
    pub start: usize,
}

/// Bytes queued for the socket, oldest first. One pointer, NULL while nothing is
/// queued: most connections, most of the time.
#[derive(Default, Debug)]
pub struct OutBuf(Option<Box<OutQ>>);

impl OutBuf {
    #[inline]
    pub fn pending(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |q| &q.buf[q.start..])
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |q| q.buf.len() - q.start)
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// True when storage is attached (see [`OutBuf::install`]).
    #[inline]
    pub fn has_storage(&self) -> bool {
        self.0.is_some()
    }
    /// Attaches storage (from a pool) to an empty buffer.
    #[inline]
    pub fn install(&mut self, q: Box<OutQ>) {
        if self.0.is_none() {
            self.0 = Some(q);
        }
    }
    /// The underlying vector, bytes from `start` on pending; storage is attached
    /// (unpooled) when there was none.
    #[inline]
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0.get_or_insert_with(Default::default).buf
    }
    /// Drops `n` sent bytes. When everything is sent the storage is handed back (for
    /// the pool), so idle connections hold no output memory.
    #[inline]
    pub fn consume(&mut self, n: usize) -> Option<Box<OutQ>> {
        let q = self.0.as_mut()?;
        q.start += n;
        if q.start >= q.buf.len() {
            let mut q = self.0.take()?;
            q.start = 0;
            q.buf.clear();
            return Some(q);
        } else if q.start > 64 * 1024 && q.start * 2 > q.buf.len() {
            q.buf.drain(..q.start);
            q.start = 0;
        }
        None
    }
    #[inline]
    pub fn extend(&mut self, data: &[u8]) {
        self.buf_mut().extend_from_slice(data);
    }
}

/// A payload being cut into receive chunks: `buf[pos..end]` still to hand over (`buf`
/// is the caller's input, or for io's extension path the inflated data), the frame's
/// info and how many payload bytes of its frame follow `end`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Span {
    pub pos: usize,
    pub end: usize,
    pub info: RxInfo,
    pub frame_remaining: u64,
    /// Not looked at yet (an empty frame end is delivered once, empty).
    pub fresh: bool,
}

impl Span {
    pub fn new(at: usize, len: usize, info: RxInfo, frame_remaining: u64) -> Self {
        Self {
            pos: at,
            end: at + len,
            info,
            frame_remaining,
            fresh: true,
        }
    }
}

/// One receive chunk, ready for RECEIVE: `buf[at..at + len]` of the span's buffer, or
/// an assembled chunk; `info` is what `libwebsocket_is_final_fragment` and friends
/// report for it (also stored as the connection's current [`RxInfo`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    Slice { at: usize, len: usize, info: RxInfo },
    Owned { data: Vec<u8>, info: RxInfo },
}

/// What [`Connection::next_event`] found in the input.
#[derive(Debug, PartialEq, Eq)]
pub enum RxEvent {
    /// Everything is consumed (parsed, buffered, or stashed while receiving is paused).
    NeedMore,
    /// Data for RECEIVE in the input, unmasked in place. `whole`: a whole frame in one
    /// chunk (nothing assembled before it), which io may deliver in place.
    Deliver {
        at: usize,
        len: usize,
        info: RxInfo,
        whole: bool,
    },
    /// A receive chunk assembled across reads.
    DeliverOwned { data: Vec<u8>, info: RxInfo },
    /// Data of a connection with extensions (`RxConfig::raw_data`), as parsed: io
    /// applies RSV rules and decompression, then cuts it with [`Connection::next_chunk`].
    ExtData {
        at: usize,
        len: usize,
        info: RxInfo,
        frame_remaining: u64,
        frame_opcode: u8,
        message_start: bool,
    },
    /// Payload of a frame with a reserved opcode (application extensions only).
    Extended {
        at: usize,
        len: usize,
        opcode: u8,
        frame_remaining: u64,
    },
    /// A pong on a client connection (CLIENT_RECEIVE_PONG).
    Pong { payload: [u8; 125], len: u8 },
    /// The peer's close frame, with the status to echo (None: an empty close). The
    /// close handshake is io's to finish: queue the echo with [`Connection::queue_close`]
    /// unless [`Connection::close_sent`] (after the extension hooks), then close.
    PeerClose(Option<u16>),
    /// A protocol violation: close with this status.
    ProtocolError(u16),
    /// An automatic reply (a pong) of this many bytes was appended to the queue.
    Queued(usize),
}

/// One parser event, detached from the parser's borrow.
enum Step {
    Data {
        at: usize,
        len: usize,
        info: RxInfo,
        frame_remaining: u64,
        frame_opcode: u8,
        message_start: bool,
    },
    Extended {
        at: usize,
        len: usize,
        opcode: u8,
        frame_remaining: u64,
    },
    Control {
        opcode: u8,
        payload: [u8; 125],
        len: usize,
    },
}

/// Where [`Connection::next_event`] is in one input buffer: the parse position, and
/// the rest of a payload bigger than one chunk still to deliver from it. Kept by the
/// caller with the buffer (not in the connection), so that a nested delivery (input
/// handed over from inside a callback) cannot mix the two buffers up.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cursor {
    pub pos: usize,
    carry: Option<Span>,
}

impl Cursor {
    /// Parsing starts at `input[pos]`.
    pub fn at(pos: usize) -> Self {
        Self { pos, carry: None }
    }
}

/// Per-call receive settings (from the protocol and the context's limits).
#[derive(Clone, Copy, Debug)]
pub struct RxConfig {
    /// The largest piece RECEIVE gets (the protocol's rx_buffer_size).
    pub chunk: usize,
    /// Data events go out raw as [`RxEvent::ExtData`] (extensions are negotiated).
    pub raw_data: bool,
    /// More output queued than this: a ping's pong is owed instead of queued.
    pub backlog: usize,
    /// Masking keys for the frames a client generates.
    pub mask_key: fn() -> [u8; 4],
}

const CLOSE_SENT: u8 = 1 << 0;
const CLOSE_RCVD: u8 = 1 << 1;
const RX_PAUSED: u8 = 1 << 2;

/// The rarely used parts of a connection.
#[derive(Default, Debug)]
struct Rare {
    /// A receive chunk being assembled across reads.
    pending: Vec<u8>,
    /// Received bytes not parsed yet because the application paused receiving.
    stash: Vec<u8>,
    /// Payload of the latest ping received while output was backed up.
    owed_pong: Option<Vec<u8>>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.pending.capacity() == 0 && self.stash.capacity() == 0 && self.owed_pong.is_none()
    }
}

/// One connection's WebSocket protocol state; see the module docs.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    flags: u8,
    /// None until the connection upgrades (and after it is torn down).
    parser: Option<FrameParser>,
    rx_info: PackedRxInfo,
    out: OutBuf,
    rare: Option<Box<Rare>>,
}

impl Connection {
    pub fn new(role: Role) -> Self {
        Self {
            role,
            flags: 0,
            parser: None,
            rx_info: PackedRxInfo::default(),
            out: OutBuf::default(),
            rare: None,
        }
    }

    /// Enters the WebSocket phase with this parser.
    pub fn upgrade(&mut self, parser: FrameParser) {
        self.parser = Some(parser);
    }

    pub fn parser_mut(&mut self) -> Option<&mut FrameParser> {
        self.parser.as_mut()
    }

    /// Drops all protocol state and queued output (the socket is closed).
    pub fn reset(&mut self) {
        self.parser = None;
        self.out = OutBuf::default();
        self.rare = None;
    }

    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Default::default)
    }

    fn tidy(&mut self) {
        if self.rare.as_ref().is_some_and(|r| r.is_empty()) {
            self.rare = None;
        }
    }

    // ---- close handshake and flow control ----

    pub fn close_sent(&self) -> bool {
        self.flags & CLOSE_SENT != 0
    }
    pub fn close_received(&self) -> bool {
        self.flags & CLOSE_RCVD != 0
    }
    /// Our close frame is queued: no more data goes out or is delivered.
    pub fn mark_close_sent(&mut self) {
        self.flags |= CLOSE_SENT;
    }
    /// Both close frames seen.
    pub fn close_complete(&self) -> bool {
        self.flags & (CLOSE_SENT | CLOSE_RCVD) == CLOSE_SENT | CLOSE_RCVD
    }
    pub fn rx_paused(&self) -> bool {
        self.flags & RX_PAUSED != 0
    }
    /// `libwebsocket_rx_flow_control`: true when the state changed.
    pub fn set_rx_paused(&mut self, paused: bool) -> bool {
        if paused == self.rx_paused() {
            return false;
        }
        self.flags ^= RX_PAUSED;
        true
    }
    /// True when input stashed while paused waits to be parsed.
    pub fn has_stash(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| !r.stash.is_empty())
    }
    /// Takes the stashed input (to be fed to `next_event` again, first).
    pub fn take_stash(&mut self) -> Vec<u8> {
        let v = self.rare.as_mut().map(|r| std::mem::take(&mut r.stash));
        self.tidy();
        v.unwrap_or_default()
    }
    /// Keeps received bytes for later (input read while receiving is paused).
    pub fn stash(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.rare().stash.extend_from_slice(data);
        }
    }

    // ---- receive ----

    /// What the receive callbacks report now.
    pub fn rx_info(&self) -> RxInfo {
        self.rx_info.get()
    }
    pub fn set_rx_info(&mut self, info: RxInfo) {
        self.rx_info = PackedRxInfo::pack(info);
    }

    /// Parses `input[cur.pos..]` up to the next event for io (see [`RxEvent`]); `cur`
    /// starts as `Cursor::default()` for each new input.
    #[inline]
    pub fn next_event(&mut self, input: &mut [u8], cur: &mut Cursor, cfg: &RxConfig) -> RxEvent {
        if self.rare.is_none() && self.flags & RX_PAUSED == 0 && cur.carry.is_none() {
            if let Some(p) = self.parser.as_mut() {
                if let Some((at, len, opcode)) = whole_small_frame(p, input, cur.pos) {
                    cur.pos = at + len;
                    if let Some(ev) = self.on_whole_frame(input, at, len, opcode, cur, cfg) {
                        return ev;
                    }
                }
            }
        }
        self.next_event_general(input, cur, cfg)
    }

    /// A whole frame of at most 125 bytes, a message by itself.
    #[inline]
    fn on_whole_frame(
        &mut self,
        input: &[u8],
        at: usize,
        len: usize,
        opcode: u8,
        cur: &mut Cursor,
        cfg: &RxConfig,
    ) -> Option<RxEvent> {
        let info = RxInfo {
            final_fragment: true,
            binary: opcode == OP_BINARY,
            rsv: 0,
            remaining: 0,
        };
        if self.close_sent() {
            return None; // closing: data after our close frame is discarded
        }
        if cfg.raw_data {
            return Some(RxEvent::ExtData {
                at,
                len,
                info,
                frame_remaining: 0,
                frame_opcode: opcode,
                message_start: true,
            });
        }
        if len < cfg.chunk {
            self.rx_info = PackedRxInfo::pack(info);
            return Some(RxEvent::Deliver {
                at,
                len,
                info,
                whole: true,
            });
        }
        let mut span = Span::new(at, len, info, 0);
        let c = self.next_chunk(input, &mut span, cfg.chunk)?;
        if span.pos < span.end {
            cur.carry = Some(span);
        }
        Some(self.chunk_event(c))
    }

    fn next_event_general(
        &mut self,
        input: &mut [u8],
        cur: &mut Cursor,
        cfg: &RxConfig,
    ) -> RxEvent {
        loop {
            if let Some(mut span) = cur.carry.take() {
                if !self.close_sent() {
                    if let Some(c) = self.next_chunk(input, &mut span, cfg.chunk) {
                        if span.pos < span.end {
                            cur.carry = Some(span);
                        }
                        return self.chunk_event(c);
                    }
                }
            }
            if self.rx_paused() {
                if cur.pos < input.len() {
                    let rest = &input[cur.pos..];
                    self.stash(rest);
                    cur.pos = input.len();
                }
                return RxEvent::NeedMore;
            }
            let Some(p) = self.parser.as_mut() else {
                return RxEvent::NeedMore;
            };
            let base = input.as_ptr() as usize;
            // Detached from the parser's borrow (a control payload may live in it).
            let step = match p.next_event(input, &mut cur.pos) {
                Err(e) => return RxEvent::ProtocolError(e.close_code),
                Ok(None) => return RxEvent::NeedMore,
                Ok(Some(Event::Data {
                    payload,
                    message_opcode,
                    frame_opcode,
                    fin,
                    rsv,
                    frame_remaining,
                    message_start,
                })) => Step::Data {
                    at: payload.as_ptr() as usize - base,
                    len: payload.len(),
                    info: RxInfo {
                        final_fragment: fin,
                        binary: message_opcode == OP_BINARY,
                        rsv,
                        remaining: 0,
                    },
                    frame_remaining,
                    frame_opcode,
                    message_start,
                },
                Ok(Some(Event::Extended {
                    payload,
                    opcode,
                    frame_remaining,
                    ..
                })) => Step::Extended {
                    at: payload.as_ptr() as usize - base,
                    len: payload.len(),
                    opcode,
                    frame_remaining,
                },
                Ok(Some(Event::Control { opcode, payload })) => {
                    let mut copy = [0u8; 125];
                    let n = payload.len().min(125);
                    copy[..n].copy_from_slice(&payload[..n]);
                    Step::Control {
                        opcode,
                        payload: copy,
                        len: n,
                    }
                }
            };
            match step {
                Step::Data {
                    at,
                    len,
                    info,
                    frame_remaining,
                    frame_opcode,
                    message_start,
                } => {
                    if self.close_sent() {
                        continue; // closing: data after our close frame is discarded
                    }
                    if cfg.raw_data {
                        return RxEvent::ExtData {
                            at,
                            len,
                            info,
                            frame_remaining,
                            frame_opcode,
                            message_start,
                        };
                    }
                    if frame_remaining == 0 && len < cfg.chunk && !self.has_pending_chunk() {
                        self.rx_info = PackedRxInfo::pack(info);
                        return RxEvent::Deliver {
                            at,
                            len,
                            info,
                            whole: true,
                        };
                    }
                    let mut span = Span::new(at, len, info, frame_remaining);
                    if let Some(c) = self.next_chunk(input, &mut span, cfg.chunk) {
                        if span.pos < span.end {
                            cur.carry = Some(span);
                        }
                        return self.chunk_event(c);
                    }
                }
                Step::Extended {
                    at,
                    len,
                    opcode,
                    frame_remaining,
                } => {
                    if self.close_sent() {
                        continue;
                    }
                    return RxEvent::Extended {
                        at,
                        len,
                        opcode,
                        frame_remaining,
                    };
                }
                Step::Control {
                    opcode,
                    payload,
                    len,
                } => {
                    if let Some(ev) = self.on_control(opcode, &payload[..len], cfg) {
                        return ev;
                    }
                }
            }
        }
    }

    /// Ping, pong and close: the automatic replies are queued here.
    fn on_control(&mut self, opcode: u8, payload: &[u8], cfg: &RxConfig) -> Option<RxEvent> {
        match opcode {
            OP_PING if !self.close_sent() => {
                if self.out.len() > cfg.backlog {
                    // A peer that pings but does not read (a ping flood) must not grow
                    // the queue: answer only the most recent ping, once the queue has
                    // drained (RFC 6455 5.5.3 allows that). Reading goes on.
                    self.rare().owed_pong = Some(payload.to_vec());
                    None
                } else {
                    let mask = self.client_mask(cfg.mask_key);
                    Some(RxEvent::Queued(
                        self.queue_frame(OP_PONG, true, 0, payload, mask),
                    ))
                }
            }
            OP_PONG if self.role == Role::Client => {
                let mut copy = [0u8; 125];
                copy[..payload.len()].copy_from_slice(payload);
                Some(RxEvent::Pong {
                    payload: copy,
                    len: payload.len() as u8,
                })
            }
            OP_CLOSE => {
                self.flags |= CLOSE_RCVD;
                Some(match parse_close_payload(payload) {
                    Err(e) => RxEvent::ProtocolError(e.close_code),
                    Ok(parsed) => RxEvent::PeerClose(parsed.map(|(code, _)| code)),
                })
            }
            _ => None,
        }
    }

    fn has_pending_chunk(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| !r.pending.is_empty())
    }

    fn chunk_event(&mut self, c: Chunk) -> RxEvent {
        match c {
            Chunk::Slice { at, len, info } => RxEvent::Deliver {
                at,
                len,
                info,
                whole: false,
            },
            Chunk::Owned { data, info } => RxEvent::DeliverOwned { data, info },
        }
    }

    /// The next RECEIVE chunk of `span` (a payload in `buf`): chunks of `chunk` bytes,
    /// shorter only at the end of a frame, assembled across reads as needed (the
    /// original's semantics). None when the span is used up (its tail kept for the next
    /// read). Sets the connection's [`RxInfo`] for the chunk.
    pub fn next_chunk(&mut self, buf: &[u8], span: &mut Span, chunk: usize) -> Option<Chunk> {
        let chunk = chunk.max(1);
        let fr = span.frame_remaining;
        let rest_len = span.end - span.pos;
        let pending_len = self.rare.as_ref().map_or(0, |r| r.pending.len());
        if std::mem::take(&mut span.fresh) && rest_len == 0 && fr == 0 && pending_len == 0 {
            return Some(self.chunk(
                Chunk::Slice {
                    at: span.pos,
                    len: 0,
                    info: span.info,
                },
                0,
            ));
        }
        if pending_len > 0 {
            let take = (chunk - pending_len).min(rest_len);
            let r = self.rare();
            if r.pending.capacity() == 0 {
                r.pending.reserve_exact(chunk);
            }
            r.pending.extend_from_slice(&buf[span.pos..span.pos + take]);
            span.pos += take;
            let left = (span.end - span.pos) as u64;
            if pending_len + take == chunk || (left == 0 && fr == 0) {
                let data = std::mem::take(&mut r.pending);
                let info = span.info;
                return Some(self.chunk(Chunk::Owned { data, info }, left + fr));
            }
            return None; // the rest of this chunk arrives in a later read
        }
        if rest_len == 0 {
            return None;
        }
        if rest_len >= chunk {
            let at = span.pos;
            span.pos += chunk;
            let left = (span.end - span.pos) as u64;
            return Some(self.chunk(
                Chunk::Slice {
                    at,
                    len: chunk,
                    info: span.info,
                },
                left + fr,
            ));
        }
        let at = span.pos;
        span.pos = span.end;
        if fr == 0 {
            return Some(self.chunk(
                Chunk::Slice {
                    at,
                    len: rest_len,
                    info: span.info,
                },
                0,
            ));
        }
        let r = self.rare();
        if r.pending.capacity() == 0 {
            r.pending.reserve_exact(chunk);
        }
        r.pending.extend_from_slice(&buf[at..at + rest_len]);
        None
    }

    /// Completes a chunk's info: what is left of the frame after it, and
    /// `libwebsocket_is_final_fragment` true only for the last piece of a FIN frame
    /// (v1.23 reported the frame's FIN bit for every piece, so code that ended a message
    /// on it alone cut messages whose last frame spanned several RECEIVE calls; later
    /// libwebsockets releases made the same change).
    fn chunk(&mut self, mut c: Chunk, remaining: u64) -> Chunk {
        let info = match &mut c {
            Chunk::Slice { info, .. } | Chunk::Owned { info, .. } => info,
        };
        info.remaining = remaining;
        info.final_fragment = info.final_fragment && remaining == 0;
        self.rx_info = PackedRxInfo::pack(*info);
        self.tidy();
        c
    }

    // ---- send ----

    /// The output queue.
    pub fn out(&self) -> &OutBuf {
        &self.out
    }
    pub fn out_mut(&mut self) -> &mut OutBuf {
        &mut self.out
    }

    fn client_mask(&self, key: fn() -> [u8; 4]) -> Option<[u8; 4]> {
        (self.role == Role::Client).then(key)
    }

    /// Appends a frame (header, then the payload masked with `mask`); returns the bytes
    /// appended.
    pub fn queue_frame(
        &mut self,
        opcode: u8,
        fin: bool,
        rsv: u8,
        payload: &[u8],
        mask: Option<[u8; 4]>,
    ) -> usize {
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let hl = encode_header(&mut hdr, fin, rsv, opcode, mask, payload.len() as u64);
        self.queue_parts(&hdr[..hl], payload, mask)
    }

    /// Appends `hdr` then `payload` (masked with `mask`); returns the bytes appended.
    pub fn queue_parts(&mut self, hdr: &[u8], payload: &[u8], mask: Option<[u8; 4]>) -> usize {
        let buf = self.out.buf_mut();
        buf.reserve(hdr.len() + payload.len());
        buf.extend_from_slice(hdr);
        let start = buf.len();
        buf.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut buf[start..], key, 0);
        }
        hdr.len() + payload.len()
    }

    /// The common write in one step: a whole TEXT / BINARY message of at most 125 bytes,
    /// unmasked (a server's), appended to the queue. Returns the queue's length after.
    #[inline]
    pub fn queue_small(&mut self, opcode: u8, payload: &[u8]) -> usize {
        debug_assert!(payload.len() <= 125 && (opcode == OP_TEXT || opcode == OP_BINARY));
        let buf = self.out.buf_mut();
        buf.reserve(2 + payload.len());
        buf.push(0x80 | opcode);
        buf.push(payload.len() as u8);
        buf.extend_from_slice(payload);
        self.out.len()
    }

    /// Queues a close frame with `code` (None: empty payload) and `reason` (cut to 123
    /// bytes), masked with `mask`, and marks the close sent. Returns the bytes appended
    /// (0 when a close was already sent).
    pub fn queue_close(
        &mut self,
        code: Option<u16>,
        reason: &[u8],
        mask: Option<[u8; 4]>,
    ) -> usize {
        if self.close_sent() {
            return 0;
        }
        let mut body = [0u8; 125];
        let mut n = 0;
        if let Some(c) = code {
            body[..2].copy_from_slice(&c.to_be_bytes());
            let r = reason.len().min(123);
            body[2..2 + r].copy_from_slice(&reason[..r]);
            n = 2 + r;
        }
        let queued = self.queue_frame(OP_CLOSE, true, 0, &body[..n], mask);
        self.flags |= CLOSE_SENT;
        queued
    }

    /// True while a pong is owed for a ping received while output was backed up.
    pub fn has_owed_pong(&self) -> bool {
        self.rare.as_ref().is_some_and(|r| r.owed_pong.is_some())
    }

    /// Takes the pong owed for a ping received while output was backed up, once the
    /// queue is down to `backlog` bytes or less.
    pub fn take_owed_pong(&mut self, backlog: usize) -> Option<Vec<u8>> {
        if self.out.len() > backlog {
            return None;
        }
        let p = self.rare.as_mut()?.owed_pong.take();
        self.tidy();
        p
    }
}

/// What `libwebsocket_write` returns for a frame sent with `protocol` (an LWS_WRITE_*
/// value with its flags): as v1.23, the payload length for data frames, the whole frame
/// (header, mask key and payload) for CLOSE / PING / PONG without flags, which v1.23
/// sent raw and for which it returned what the socket took.
pub fn write_return(protocol: u32, header_len: usize, wire_len: usize, payload_len: usize) -> i32 {
    if matches!(protocol, WRITE_CLOSE | WRITE_PING | WRITE_PONG) {
        (header_len + wire_len) as i32
    } else {
        payload_len as i32
    }
}

/// The whole-frame fast path of the parser: at a message boundary, a FIN TEXT (when no
/// UTF-8 check is due) or BINARY frame of at most 125 bytes without RSV bits, masked
/// as the role requires and wholly in `input[pos..]`, is unmasked in place and the
/// parser's state set as its general path would leave it. Returns (payload offset,
/// length, opcode); None: use the general path.
#[inline(always)]
pub(super) fn whole_small_frame(
    p: &mut FrameParser,
    input: &mut [u8],
    pos: usize,
) -> Option<(usize, usize, u8)> {
    if p.state != State::Header || p.hdr_len != 0 || p.msg_opcode != 0 || p.failed.is_some() {
        return None;
    }
    let rest = input.get_mut(pos..)?;
    let (b0, b1) = (*rest.first()?, *rest.get(1)?);
    let opcode = b0 & 0x0f;
    let ok_opcode = opcode == OP_BINARY || (opcode == OP_TEXT && !p.validate_utf8);
    let masked = b1 & 0x80 != 0;
    let len = usize::from(b1 & 0x7f);
    if b0 & 0xf0 != 0x80
        || !ok_opcode
        || masked != (p.role == Role::Server)
        || len > 125
        || len as u64 > p.max_message_size
    {
        return None;
    }
    let hl = if masked { 6 } else { 2 };
    if rest.len() < hl + len {
        return None;
    }
    if masked {
        let key = [rest[2], rest[3], rest[4], rest[5]];
        apply_mask(&mut rest[hl..hl + len], key, 0);
        p.key = key;
        p.phase = (len & 3) as u8;
    }
    // What the general path leaves behind after this frame.
    p.ctrl = None;
    p.b0 = b0;
    p.frame_remaining = 0;
    p.message_start = false;
    p.message_len = len as u64;
    Some((pos + hl, len, opcode))
}

#[cfg(test)]
mod tests {
    //! The WebSocket state machine without sockets: bytes in, events out, queue out.
    use super::*;
    use crate::engine::ws::close::{CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR};
    use crate::engine::ws::parser::ParserConfig;

    const KEY: [u8; 4] = [0x11, 0x22, 0x33, 0x44];

    fn key() -> [u8; 4] {
        KEY
    }

    fn cfg(chunk: usize) -> RxConfig {
        RxConfig {
            chunk,
            raw_data: false,
            backlog: 1000,
            mask_key: key,
        }
    }

    fn conn(role: Role) -> Connection {
        let mut c = Connection::new(role);
        c.upgrade(FrameParser::new(ParserConfig::new(role)));
        c
    }

    /// A frame as the peer of `role` sends it (masked towards a server).
    fn frame(to: Role, fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = (to == Role::Server).then_some(KEY);
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let hl = encode_header(&mut hdr, fin, 0, opcode, mask, payload.len() as u64);
        let mut v = hdr[..hl].to_vec();
        let start = v.len();
        v.extend_from_slice(payload);
        if let Some(k) = mask {
            apply_mask(&mut v[start..], k, 0);
        }
        v
    }

    /// What io would see: every event, data resolved to bytes.
    #[derive(Debug, PartialEq, Eq)]
    enum Seen {
        Data(Vec<u8>, RxInfo),
        Pong(Vec<u8>),
        PeerClose(Option<u16>),
        Error(u16),
        Queued(usize),
    }

    fn feed(c: &mut Connection, input: &[u8], cfg: &RxConfig) -> Vec<Seen> {
        let mut buf = input.to_vec();
        let mut pos = Cursor::default();
        let mut seen = Vec::new();
        for _ in 0..10_000 {
            match c.next_event(&mut buf, &mut pos, cfg) {
                RxEvent::NeedMore => return seen,
                RxEvent::Deliver { at, len, info, .. } => {
                    assert_eq!(c.rx_info(), info);
                    seen.push(Seen::Data(buf[at..at + len].to_vec(), info))
                }
                RxEvent::DeliverOwned { data, info } => {
                    assert_eq!(c.rx_info(), info);
                    seen.push(Seen::Data(data, info))
                }
                RxEvent::Pong { payload, len } => {
                    seen.push(Seen::Pong(payload[..usize::from(len)].to_vec()))
                }
                RxEvent::PeerClose(code) => seen.push(Seen::PeerClose(code)),
                RxEvent::ProtocolError(code) => {
                    seen.push(Seen::Error(code));
                    return seen;
                }
                RxEvent::Queued(n) => seen.push(Seen::Queued(n)),
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("no end of events");
    }

    fn data(seen: &[Seen]) -> Vec<u8> {
        seen.iter()
            .filter_map(|s| match s {
                Seen::Data(d, _) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn take_out(c: &mut Connection) -> Vec<u8> {
        let v = c.out().pending().to_vec();
        c.out_mut().consume(v.len());
        v
    }

    #[test]
    fn whole_small_frame_is_delivered_in_one_event_in_place() {
        let mut c = conn(Role::Server);
        let mut buf = frame(Role::Server, true, OP_BINARY, b"hello");
        let mut pos = Cursor::default();
        let ev = c.next_event(&mut buf, &mut pos, &cfg(4096));
        let RxEvent::Deliver {
            at,
            len,
            info,
            whole,
        } = ev
        else {
            panic!("{ev:?}")
        };
        assert_eq!((&buf[at..at + len], whole, at), (&b"hello"[..], true, 6));
        assert!(info.final_fragment && info.binary && info.remaining == 0);
        assert_eq!(
            c.next_event(&mut buf, &mut pos, &cfg(4096)),
            RxEvent::NeedMore
        );
        assert!(c.rare.is_none());
    }

    #[test]
    fn server_initiated_close_then_peer_echo() {
        let mut c = conn(Role::Server);
        assert_eq!(c.queue_close(Some(CLOSE_NORMAL), b"bye", None), 2 + 5);
        assert!(c.close_sent() && !c.close_complete());
        assert_eq!(take_out(&mut c), [0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
        // A second close is not queued.
        assert_eq!(c.queue_close(Some(CLOSE_GOING_AWAY), b"", None), 0);
        assert!(c.out().is_empty());
        // Data after our close is discarded; the peer's close completes the handshake.
        let mut input = frame(Role::Server, true, OP_TEXT, b"late");
        input.extend(frame(Role::Server, true, OP_CLOSE, &1000u16.to_be_bytes()));
        let seen = feed(&mut c, &input, &cfg(4096));
        assert_eq!(seen, vec![Seen::PeerClose(Some(1000))]);
        assert!(c.close_complete());
    }

    #[test]
    fn peer_initiated_close_is_reported_with_the_code_to_echo() {
        for (payload, want) in [
            (&[][..], Seen::PeerClose(None)),
            (&[0x03, 0xe9, b'x'][..], Seen::PeerClose(Some(1001))),
            (&[0x03][..], Seen::Error(CLOSE_PROTOCOL_ERROR)),
            (&[0x03, 0xed][..], Seen::Error(CLOSE_PROTOCOL_ERROR)), // 1005 may not be sent
        ] {
            let mut c = conn(Role::Server);
            let seen = feed(
                &mut c,
                &frame(Role::Server, true, OP_CLOSE, payload),
                &cfg(4096),
            );
            assert_eq!(seen, vec![want]);
            assert!(c.close_received() && !c.close_sent());
            if let Seen::PeerClose(code) = seen[0] {
                // io echoes it.
                c.queue_close(code, b"", None);
                let echo = take_out(&mut c);
                assert_eq!(echo[0], 0x88);
                assert_eq!(
                    &echo[2..],
                    code.map_or(vec![], |c| c.to_be_bytes().to_vec())
                );
                assert!(c.close_complete());
            }
        }
    }

    #[test]
    fn simultaneous_close_sends_one_close_frame() {
        let mut c = conn(Role::Client);
        c.queue_close(Some(CLOSE_NORMAL), b"", Some(KEY));
        let ours = take_out(&mut c);
        assert_eq!((ours[0], ours[1]), (0x88, 0x80 | 2));
        let seen = feed(
            &mut c,
            &frame(Role::Client, true, OP_CLOSE, &1000u16.to_be_bytes()),
            &cfg(4096),
        );
        assert_eq!(seen, vec![Seen::PeerClose(Some(1000))]);
        // io queues the echo only when no close was sent: here nothing more goes out.
        assert_eq!(c.queue_close(Some(1000), b"", Some(KEY)), 0);
        assert!(c.out().is_empty() && c.close_complete());
    }

    #[test]
    fn flow_control_stashes_and_resumes_in_order() {
        let mut c = conn(Role::Server);
        let mut input = frame(Role::Server, true, OP_TEXT, b"one");
        input.extend(frame(Role::Server, true, OP_TEXT, b"two"));
        input.extend(frame(Role::Server, true, OP_TEXT, b"three"));
        let mut buf = input.clone();
        let mut pos = Cursor::default();
        let first = c.next_event(&mut buf, &mut pos, &cfg(4096));
        assert!(matches!(first, RxEvent::Deliver { len: 3, .. }));
        // The application pauses from its RECEIVE callback.
        assert!(c.set_rx_paused(true));
        assert!(!c.set_rx_paused(true));
        assert_eq!(
            c.next_event(&mut buf, &mut pos, &cfg(4096)),
            RxEvent::NeedMore
        );
        assert_eq!(pos.pos, buf.len());
        // More input while paused is stashed behind it.
        let more = frame(Role::Server, true, OP_TEXT, b"four");
        assert_eq!(feed(&mut c, &more, &cfg(4096)), vec![]);
        assert!(c.has_stash());
        assert!(c.set_rx_paused(false));
        let stash = c.take_stash();
        assert!(!c.has_stash() && c.rare.is_none());
        let seen = feed(&mut c, &stash, &cfg(4096));
        assert_eq!(data(&seen), b"twothreefour");
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn pause_holds_back_whole_small_frames_too() {
        // Binary frames take the one-step path: pausing must stop it as well.
        let mut c = conn(Role::Server);
        let mut buf = frame(Role::Server, true, OP_BINARY, b"1");
        buf.extend(frame(Role::Server, true, OP_BINARY, b"2"));
        let mut pos = Cursor::default();
        let first = c.next_event(&mut buf, &mut pos, &cfg(4096));
        assert!(matches!(
            first,
            RxEvent::Deliver {
                len: 1,
                whole: true,
                ..
            }
        ));
        c.set_rx_paused(true);
        assert_eq!(
            c.next_event(&mut buf, &mut pos, &cfg(4096)),
            RxEvent::NeedMore
        );
        c.set_rx_paused(false);
        let stash = c.take_stash();
        assert_eq!(data(&feed(&mut c, &stash, &cfg(4096))), b"2");
    }

    #[test]
    fn partial_writes_consume_the_front_of_the_queue() {
        let mut c = conn(Role::Server);
        c.queue_small(OP_TEXT, b"abc");
        c.queue_frame(OP_BINARY, true, 0, &[7; 200], None);
        let all = c.out().pending().to_vec();
        assert_eq!(&all[..5], &[0x81, 3, b'a', b'b', b'c']);
        assert_eq!(&all[5..9], &[0x82, 126, 0, 200]);
        assert_eq!(c.out().len(), 5 + 4 + 200);
        assert!(c.out_mut().consume(3).is_none());
        assert_eq!(c.out().pending(), &all[3..]);
        assert!(c.out_mut().consume(100).is_none());
        assert_eq!(c.out().pending(), &all[103..]);
        // The last byte sent hands the storage back, emptied.
        let q = c.out_mut().consume(all.len() - 103).expect("storage back");
        assert!(q.buf.is_empty() && q.start == 0);
        assert!(!c.out().has_storage() && c.out().is_empty());
    }

    #[test]
    fn client_frames_are_masked_and_return_values_are_v123s() {
        let mut c = conn(Role::Client);
        let n = c.queue_frame(OP_TEXT, true, 0, b"hi", Some(KEY));
        assert_eq!(n, 2 + 4 + 2);
        let out = take_out(&mut c);
        assert_eq!(&out[..6], &[0x81, 0x82, 0x11, 0x22, 0x33, 0x44]);
        assert_eq!(&out[6..], &[b'h' ^ 0x11, b'i' ^ 0x22]);
        assert_eq!(write_return(WRITE_PING, 6, 2, 2), 8);
        assert_eq!(write_return(WRITE_CLOSE, 2, 0, 0), 2);
        assert_eq!(
            write_return(super::super::write_protocol::WRITE_TEXT, 6, 2, 2),
            2
        );
        assert_eq!(write_return(WRITE_PING | 0x40, 2, 5, 5), 5);
    }

    #[test]
    fn chunks_to_rx_buffer_size_across_reads() {
        let mut c = conn(Role::Server);
        let payload: Vec<u8> = (0..100u8).collect();
        let wire = frame(Role::Server, true, OP_BINARY, &payload);
        let cfg = cfg(32);
        // In one read: 32, 32, 32, 4, the last one final.
        let seen = feed(&mut c, &wire, &cfg);
        let sizes: Vec<_> = seen
            .iter()
            .map(|s| match s {
                Seen::Data(d, i) => (d.len(), i.remaining, i.final_fragment),
                _ => panic!(),
            })
            .collect();
        assert_eq!(
            sizes,
            vec![
                (32, 68, false),
                (32, 36, false),
                (32, 4, false),
                (4, 0, true)
            ]
        );
        assert_eq!(data(&seen), payload);
        // Byte by byte: the same chunks, assembled.
        let mut c = conn(Role::Server);
        let mut seen = Vec::new();
        for b in &wire {
            seen.extend(feed(&mut c, std::slice::from_ref(b), &cfg));
        }
        let sizes: Vec<_> = seen
            .iter()
            .map(|s| match s {
                Seen::Data(d, i) => (d.len(), i.remaining),
                _ => panic!(),
            })
            .collect();
        assert_eq!(sizes, vec![(32, 68), (32, 36), (32, 4), (4, 0)]);
        assert_eq!(data(&seen), payload);
        assert!(c.rare.is_none(), "nothing kept once delivered");
    }

    #[test]
    fn nested_input_does_not_take_the_outer_inputs_rest() {
        // A callback may hand over input of its own (libwebsocket_read) while the chunks
        // of a bigger payload of the outer input are being delivered.
        let mut c = conn(Role::Server);
        let mut outer = frame(Role::Server, true, OP_BINARY, &[1u8; 10]);
        let mut cur = Cursor::default();
        let first = c.next_event(&mut outer, &mut cur, &cfg(4));
        assert!(matches!(first, RxEvent::Deliver { len: 4, .. }));
        let inner = frame(Role::Server, true, OP_BINARY, &[2u8; 3]);
        assert_eq!(data(&feed(&mut c, &inner, &cfg(4))), [2u8; 3]);
        let rest = feed_from(&mut c, &mut outer, cur, &cfg(4));
        assert_eq!(data(&rest), [1u8; 6]);
    }

    fn feed_from(c: &mut Connection, buf: &mut [u8], mut cur: Cursor, cfg: &RxConfig) -> Vec<Seen> {
        let mut seen = Vec::new();
        loop {
            match c.next_event(buf, &mut cur, cfg) {
                RxEvent::NeedMore => return seen,
                RxEvent::Deliver { at, len, info, .. } => {
                    seen.push(Seen::Data(buf[at..at + len].to_vec(), info))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn empty_frame_is_delivered_once() {
        let mut c = conn(Role::Server);
        let seen = feed(&mut c, &frame(Role::Server, true, OP_TEXT, b""), &cfg(16));
        assert_eq!(seen.len(), 1);
        assert_eq!(data(&seen), b"");
    }

    #[test]
    fn control_frames_between_fragments() {
        let mut c = conn(Role::Client);
        let mut input = frame(Role::Client, false, OP_TEXT, b"Hel");
        input.extend(frame(Role::Client, true, OP_PING, b"p1"));
        input.extend(frame(Role::Client, true, OP_PONG, b"q"));
        input.extend(frame(Role::Client, true, 0, b"lo"));
        let seen = feed(&mut c, &input, &cfg(4096));
        assert!(matches!(&seen[0], Seen::Data(d, i) if d == b"Hel" && !i.final_fragment));
        assert_eq!(seen[1], Seen::Queued(2 + 4 + 2));
        assert_eq!(seen[2], Seen::Pong(b"q".to_vec()));
        assert!(
            matches!(&seen[3], Seen::Data(d, i) if d == b"lo" && i.final_fragment && !i.binary)
        );
        // The pong went out masked (a client's), with the ping's payload.
        let out = take_out(&mut c);
        assert_eq!(&out[..2], &[0x8a, 0x82]);
        let mut p = out[6..].to_vec();
        apply_mask(&mut p, [out[2], out[3], out[4], out[5]], 0);
        assert_eq!(p, b"p1");
        // A server ignores pongs.
        let mut s = conn(Role::Server);
        assert_eq!(
            feed(
                &mut s,
                &frame(Role::Server, true, OP_PONG, b"x"),
                &cfg(4096)
            ),
            vec![]
        );
    }

    #[test]
    fn pong_is_owed_under_backlog_and_only_the_latest() {
        let mut c = conn(Role::Server);
        c.queue_frame(OP_BINARY, true, 0, &[0; 2000], None);
        let mut input = frame(Role::Server, true, OP_PING, b"a");
        input.extend(frame(Role::Server, true, OP_PING, b"b"));
        assert_eq!(feed(&mut c, &input, &cfg(4096)), vec![]);
        assert_eq!(c.take_owed_pong(1000), None, "still backed up");
        let before = c.out().len();
        c.out_mut().consume(before);
        assert_eq!(c.take_owed_pong(1000), Some(b"b".to_vec()));
        assert_eq!(c.take_owed_pong(1000), None);
        assert!(c.rare.is_none());
        // No pong once our close is out.
        c.queue_close(None, b"", None);
        take_out(&mut c);
        assert_eq!(
            feed(
                &mut c,
                &frame(Role::Server, true, OP_PING, b"c"),
                &cfg(4096)
            ),
            vec![]
        );
        assert!(c.out().is_empty());
    }

    #[test]
    fn protocol_errors_carry_their_close_code() {
        let mut c = conn(Role::Server);
        // Unmasked frame to a server.
        let seen = feed(
            &mut c,
            &frame(Role::Client, true, OP_TEXT, b"x"),
            &cfg(4096),
        );
        assert_eq!(seen, vec![Seen::Error(CLOSE_PROTOCOL_ERROR)]);
        let mut c = conn(Role::Server);
        let seen = feed(
            &mut c,
            &frame(Role::Server, true, OP_TEXT, &[0xff]),
            &cfg(4096),
        );
        assert_eq!(seen, vec![Seen::Error(1007)]);
    }

    #[test]
    fn extension_hook_points_get_raw_data_and_chunk_it_themselves() {
        // With extensions, data comes out raw (for io's RSV, inflate and PAYLOAD_RX
        // steps), then goes through `next_chunk` like any payload.
        let mut c = conn(Role::Server);
        let raw = RxConfig {
            raw_data: true,
            ..cfg(4)
        };
        let mut buf = frame(Role::Server, false, OP_TEXT, b"abcdef");
        let mut pos = Cursor::default();
        let ev = c.next_event(&mut buf, &mut pos, &raw);
        let RxEvent::ExtData {
            at,
            len,
            info,
            frame_remaining,
            frame_opcode,
            message_start,
        } = ev
        else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (
                &buf[at..at + len],
                frame_remaining,
                frame_opcode,
                message_start
            ),
            (&b"abcdef"[..], 0, OP_TEXT, true)
        );
        // io hands (possibly transformed) bytes back for chunking.
        let inflated = b"0123456789".to_vec();
        let mut span = Span::new(0, inflated.len(), info, 0);
        let mut got = Vec::new();
        while let Some(ch) = c.next_chunk(&inflated, &mut span, 4) {
            match ch {
                Chunk::Slice { at, len, info } => {
                    got.push((inflated[at..at + len].to_vec(), info.remaining))
                }
                Chunk::Owned { .. } => panic!(),
            }
        }
        assert_eq!(
            got,
            vec![
                (b"0123".to_vec(), 6),
                (b"4567".to_vec(), 2),
                (b"89".to_vec(), 0)
            ]
        );
        // Extended opcodes (application extensions) come out as such.
        let mut pc = ParserConfig::new(Role::Server);
        pc.extended_opcodes = true;
        let mut c = Connection::new(Role::Server);
        c.upgrade(FrameParser::new(pc));
        let mut buf = frame(Role::Server, true, 0x3, b"ext");
        let mut pos = Cursor::default();
        let ev = c.next_event(&mut buf, &mut pos, &cfg(4096));
        assert!(matches!(
            ev,
            RxEvent::Extended {
                len: 3,
                opcode: 3,
                frame_remaining: 0,
                ..
            }
        ));
    }

    #[test]
    fn packed_rx_info_round_trips_and_saturates() {
        for rsv in [0u8, 0x10, 0x20, 0x40, 0x70] {
            for (fin, bin) in [(false, false), (true, false), (false, true), (true, true)] {
                for remaining in [0u64, 1, 125, 1 << 40, (1 << 56) - 1] {
                    let i = RxInfo {
                        final_fragment: fin,
                        binary: bin,
                        rsv,
                        remaining,
                    };
                    assert_eq!(PackedRxInfo::pack(i).get(), i);
                }
            }
        }
        let big = RxInfo {
            remaining: u64::MAX >> 1,
            ..RxInfo::default()
        };
        assert_eq!(PackedRxInfo::pack(big).get().remaining, (1 << 56) - 1);
    }

    #[test]
    fn idle_connection_is_compact() {
        assert!(std::mem::size_of::<Connection>() <= 88);
    }
}
