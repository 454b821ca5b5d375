//! Incremental RFC 6455 frame parser.
//!
//! The parser is fed whatever the socket produced, in any split, and hands back events
//! that borrow the caller's buffer: data payload is unmasked in place and never copied.
//! Only a control frame that straddles two reads is gathered in a small heap buffer,
//! which exists just for that frame, so idle connections cost one small struct.

use super::frame::{
    is_control, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING,
    OP_PONG, OP_TEXT,
};
use super::mask::apply_mask;
use super::utf8::Utf8Validator;

/// Which end of the connection we are; decides which mask bit received frames must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Every received frame must be masked.
    Server,
    /// No received frame may be masked.
    Client,
}

/// A violation that must fail the connection with `close_code`
/// (1002 protocol error, 1007 invalid UTF-8, 1009 message too big).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError {
    pub close_code: u16,
    pub reason: &'static str,
}

impl ProtocolError {
    const fn protocol(reason: &'static str) -> Self {
        Self {
            close_code: 1002,
            reason,
        }
    }

    pub const RSV_NOT_NEGOTIATED: Self =
        Self::protocol("reserved bits set without a negotiated extension");
    pub const RESERVED_OPCODE: Self = Self::protocol("reserved opcode");
    pub const FRAGMENTED_CONTROL: Self = Self::protocol("fragmented control frame");
    pub const CONTROL_TOO_LONG: Self =
        Self::protocol("control frame payload longer than 125 bytes");
    pub const UNEXPECTED_CONTINUATION: Self =
        Self::protocol("continuation frame without a message in progress");
    pub const EXPECTED_CONTINUATION: Self =
        Self::protocol("new data frame while a fragmented message is in progress");
    pub const UNMASKED_FRAME: Self = Self::protocol("frame from client is not masked");
    pub const MASKED_FRAME: Self = Self::protocol("frame from server is masked");
    pub const LENGTH_TOP_BIT: Self = Self::protocol("64-bit payload length has the top bit set");
    pub const MESSAGE_TOO_BIG: Self = Self {
        close_code: 1009,
        reason: "message exceeds the size limit",
    };
    pub const INVALID_UTF8: Self = Self {
        close_code: 1007,
        reason: "text message is not valid UTF-8",
    };
    pub const CLOSE_PAYLOAD_TOO_SHORT: Self = Self::protocol("close payload of one byte");
    pub const INVALID_CLOSE_CODE: Self = Self::protocol("invalid close code");
    pub const INVALID_CLOSE_REASON: Self = Self {
        close_code: 1007,
        reason: "close reason is not valid UTF-8",
    };
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.close_code)
    }
}

impl std::error::Error for ProtocolError {}

/// Parser settings, fixed per connection except `allowed_rsv`, which changes once
/// extensions are negotiated.
#[derive(Clone, Copy, Debug)]
pub struct ParserConfig {
    pub role: Role,
    /// RSV bits (0x40/0x20/0x10 form) that a negotiated extension claims; others must be 0.
    pub allowed_rsv: u8,
    /// Largest accepted message (sum of fragments), in bytes; bigger -> ProtocolError 1009
    /// as soon as the header announcing it is parsed.
    pub max_message_size: u64,
    /// Validate text messages as UTF-8 (fail fast, 1007). Default true.
    pub validate_utf8: bool,
    /// Accept frames with the reserved opcodes (3-7, 0xB-0xF) and hand their payload
    /// over as [`Event::Extended`] instead of failing with 1002. Only for connections
    /// where an application extension is active (v1.23 passed such frames to
    /// `EXTENDED_PAYLOAD_RX`). Default false.
    pub extended_opcodes: bool,
}

impl ParserConfig {
    /// No extensions, no size limit, UTF-8 validation on.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            allowed_rsv: 0,
            max_message_size: u64::MAX,
            validate_utf8: true,
            extended_opcodes: false,
        }
    }
}

impl Default for ParserConfig {
    fn default() -> Self {
        Self::new(Role::Server)
    }
}

/// What [`FrameParser::next_event`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// Payload bytes of a data frame, already unmasked in place in the caller's input
    /// buffer. Emitted as soon as any payload bytes are available (one event per
    /// contiguous run in the current input; a zero-length frame emits exactly one Data
    /// event with an empty slice).
    Data {
        payload: &'a [u8],
        /// OP_TEXT or OP_BINARY: the opcode of the *message* (continuations report the
        /// first frame's opcode).
        message_opcode: u8,
        /// The raw opcode of the frame this slice belongs to (OP_CONTINUATION for later
        /// fragments).
        frame_opcode: u8,
        /// FIN bit of this frame.
        fin: bool,
        /// RSV bits of this frame (0x70 mask form).
        rsv: u8,
        /// Payload bytes of this frame still to come after this slice.
        frame_remaining: u64,
        /// True for the first slice of the first frame of a message.
        message_start: bool,
    },
    /// A complete control frame (close, ping, pong), payload unmasked (<= 125 bytes).
    /// Close payloads are not validated here (use `parse_close_payload`).
    Control { opcode: u8, payload: &'a [u8] },
    /// Payload bytes of a frame with a reserved opcode (only with
    /// `ParserConfig::extended_opcodes`), unmasked in place, emitted like `Data`. Such
    /// frames do not take part in message fragmentation: they may come between the
    /// fragments of a message, need no FIN and are not length-limited to 125 bytes
    /// (only by `max_message_size` each).
    Extended {
        payload: &'a [u8],
        opcode: u8,
        fin: bool,
        rsv: u8,
        frame_remaining: u64,
    },
}

/// Violations remembered after the fact, one byte instead of a whole `ProtocolError`
/// so the parser stays within its size budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fail {
    Rsv,
    ReservedOpcode,
    FragmentedControl,
    ControlTooLong,
    UnexpectedContinuation,
    ExpectedContinuation,
    Unmasked,
    Masked,
    LengthTopBit,
    TooBig,
    Utf8,
}

impl Fail {
    fn error(self) -> ProtocolError {
        match self {
            Fail::Rsv => ProtocolError::RSV_NOT_NEGOTIATED,
            Fail::ReservedOpcode => ProtocolError::RESERVED_OPCODE,
            Fail::FragmentedControl => ProtocolError::FRAGMENTED_CONTROL,
            Fail::ControlTooLong => ProtocolError::CONTROL_TOO_LONG,
            Fail::UnexpectedContinuation => ProtocolError::UNEXPECTED_CONTINUATION,
            Fail::ExpectedContinuation => ProtocolError::EXPECTED_CONTINUATION,
            Fail::Unmasked => ProtocolError::UNMASKED_FRAME,
            Fail::Masked => ProtocolError::MASKED_FRAME,
            Fail::LengthTopBit => ProtocolError::LENGTH_TOP_BIT,
            Fail::TooBig => ProtocolError::MESSAGE_TOO_BIG,
            Fail::Utf8 => ProtocolError::INVALID_UTF8,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// Between frames or inside a header (`hdr_len` bytes gathered).
    Header,
    /// Inside the payload of a data frame.
    Data,
    /// Inside the payload of a control frame.
    Control,
    /// Inside the payload of a frame with a reserved opcode (`extended_opcodes`).
    Extended,
}

/// Incremental frame parser; see the module docs. Fits in 64 bytes.
#[derive(Debug)]
pub struct FrameParser {
    // Configuration, stored flat because `ParserConfig` would pad to 16 bytes.
    pub(super) max_message_size: u64,
    pub(super) role: Role,
    allowed_rsv: u8,
    pub(super) validate_utf8: bool,
    extended_opcodes: bool,

    pub(super) state: State,
    /// Set once a violation was found; every later call reports it again.
    pub(super) failed: Option<Fail>,
    /// Header bytes gathered so far in `gather` (a header split across reads; only
    /// meaningful in `State::Header`).
    pub(super) hdr_len: u8,

    // The current frame.
    /// First header byte: FIN, RSV and opcode.
    pub(super) b0: u8,
    pub(super) key: [u8; 4],
    /// Payload bytes of the frame already unmasked, modulo 4.
    pub(super) phase: u8,
    pub(super) frame_remaining: u64,
    /// Payload length of the current control frame.
    ctrl_len: u8,
    /// Gathers a header or a control payload split across reads (so that the parser
    /// of an idle connection holds neither); dropped on the next call after its frame
    /// was delivered.
    pub(super) ctrl: Option<Box<[u8; MAX_CONTROL_PAYLOAD]>>,

    // The current data message.
    /// OP_TEXT / OP_BINARY while a message is in progress, 0 otherwise.
    pub(super) msg_opcode: u8,
    /// The first payload slice of the message has not been emitted yet.
    pub(super) message_start: bool,
    /// Sum of the announced frame lengths of the message so far.
    pub(super) message_len: u64,
    utf8: Utf8Validator,
}

impl FrameParser {
    pub fn new(config: ParserConfig) -> Self {
        Self {
            max_message_size: config.max_message_size,
            role: config.role,
            allowed_rsv: config.allowed_rsv & 0x70,
            validate_utf8: config.validate_utf8,
            extended_opcodes: config.extended_opcodes,
            state: State::Header,
            failed: None,
            hdr_len: 0,
            b0: 0,
            key: [0; 4],
            phase: 0,
            frame_remaining: 0,
            ctrl_len: 0,
            ctrl: None,
            msg_opcode: 0,
            message_start: false,
            message_len: 0,
            utf8: Utf8Validator::new(),
        }
    }

    /// The configuration in effect (with the current `allowed_rsv`).
    pub fn config(&self) -> ParserConfig {
        ParserConfig {
            role: self.role,
            allowed_rsv: self.allowed_rsv,
            max_message_size: self.max_message_size,
            validate_utf8: self.validate_utf8,
            extended_opcodes: self.extended_opcodes,
        }
    }

    /// Sets the RSV bits a negotiated extension may use (0x40/0x20/0x10 form).
    pub fn set_allowed_rsv(&mut self, rsv: u8) {
        self.allowed_rsv = rsv & 0x70;
    }

    /// Payload bytes of the current frame not yet delivered (0 between frames).
    pub fn frame_remaining(&self) -> u64 {
        self.frame_remaining
    }

    /// True while a data message is in progress: from the header of its first frame
    /// until the payload of its FIN frame has been delivered. Between frames this is
    /// exactly "a non-FIN data frame was seen and its message is unfinished".
    pub fn in_message(&self) -> bool {
        self.msg_opcode != 0
    }

    /// The error the parser is poisoned with, if any.
    pub fn error(&self) -> Option<ProtocolError> {
        self.failed.map(Fail::error)
    }

    /// Parses from `input[*pos..]`, unmasking payload in place, advancing `*pos` past
    /// what was consumed. Returns Ok(Some(event)) for the next event, Ok(None) when more
    /// input is needed (all of input consumed, partial header bytes kept internally), Err
    /// on a protocol violation (after which the parser is poisoned: every further call
    /// returns the same error; `*pos` is then unspecified).
    ///
    /// The event borrows both `input` and the parser (a control frame split across
    /// reads is returned from the parser's own buffer), so drop it before calling again.
    #[inline]
    pub fn next_event<'a>(
        &'a mut self,
        input: &'a mut [u8],
        pos: &mut usize,
    ) -> Result<Option<Event<'a>>, ProtocolError> {
        if let Some((start, n, opcode)) = super::connection::whole_small_frame(self, input, *pos) {
            *pos = start + n;
            return Ok(Some(Event::Data {
                payload: &input[start..start + n],
                message_opcode: opcode,
                frame_opcode: opcode,
                fin: true,
                rsv: 0,
                frame_remaining: 0,
                message_start: true,
            }));
        }
        self.next_event_general(input, pos)
    }

    /// `next_event` for everything but the common case.
    #[inline(never)]
    fn next_event_general<'a>(
        &'a mut self,
        input: &'a mut [u8],
        pos: &mut usize,
    ) -> Result<Option<Event<'a>>, ProtocolError> {
        if let Some(f) = self.failed {
            return Err(f.error());
        }
        if self.state != State::Control && self.hdr_len == 0 {
            // Any gather buffer belonged to a frame that was already delivered.
            self.ctrl = None;
        }
        if self.state == State::Header {
            match self.read_header(input, pos) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(f) => return Err(self.fail(f)),
            }
        }
        match self.state {
            State::Data => self.data_event(input, pos),
            State::Control => Ok(self.control_event(input, pos)),
            State::Extended => Ok(self.extended_event(input, pos)),
            State::Header => Ok(None),
        }
    }

    fn fail(&mut self, f: Fail) -> ProtocolError {
        self.failed = Some(f);
        f.error()
    }

    /// Full header length implied by the second header byte.
    fn header_size(b1: u8) -> usize {
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let key = if b1 & 0x80 != 0 { 4 } else { 0 };
        2 + ext + key
    }

    /// Gathers header bytes, checking each fixed byte as soon as it arrives. Returns
    /// true once a whole header was parsed and the parser moved into a payload state.
    fn read_header(&mut self, input: &[u8], pos: &mut usize) -> Result<bool, Fail> {
        let mut h = [0u8; MAX_HEADER_LEN];
        // Fast path: the whole header is in this input (the usual case).
        if self.hdr_len == 0 {
            let start = (*pos).min(input.len());
            let rest = &input[start..];
            if rest.len() >= 2 {
                let size = Self::header_size(rest[1]);
                if rest.len() >= size {
                    h[..size].copy_from_slice(&rest[..size]);
                    *pos = start + size;
                    self.check_first_byte(rest[0])?;
                    self.check_second_byte(rest[0], rest[1])?;
                    self.begin_frame(&h)?;
                    return Ok(true);
                }
            }
        }
        loop {
            let have = usize::from(self.hdr_len);
            let gathered = self.ctrl.as_deref().map_or([0u8; 2], |g| [g[0], g[1]]);
            let need = if have < 2 {
                2
            } else {
                Self::header_size(gathered[1])
            };
            if have == need {
                break;
            }
            let start = (*pos).min(input.len());
            let n = (need - have).min(input.len() - start);
            if n == 0 {
                return Ok(false);
            }
            let g = self
                .ctrl
                .get_or_insert_with(|| Box::new([0; MAX_CONTROL_PAYLOAD]));
            g[have..have + n].copy_from_slice(&input[start..start + n]);
            let (b0, b1) = (g[0], g[1]);
            *pos = start + n;
            self.hdr_len = (have + n) as u8;
            if have == 0 {
                self.check_first_byte(b0)?;
            }
            if have < 2 && have + n >= 2 {
                self.check_second_byte(b0, b1)?;
            }
        }
        if let Some(g) = self.ctrl.as_deref() {
            h.copy_from_slice(&g[..MAX_HEADER_LEN]);
        }
        self.begin_frame(&h)?;
        Ok(true)
    }

    /// True for an opcode RFC 6455 reserves, accepted because of `extended_opcodes`.
    fn is_extended(&self, opcode: u8) -> bool {
        self.extended_opcodes && matches!(opcode, 3..=7 | 0xb..=0xf)
    }

    fn check_first_byte(&self, b0: u8) -> Result<(), Fail> {
        let opcode = b0 & 0x0f;
        if b0 & 0x70 & !self.allowed_rsv != 0 {
            return Err(Fail::Rsv);
        }
        // No extension may set RSV bits on control frames (RFC 7692 6.1 for RSV1).
        // (The reserved opcodes are looked at only off the common path.)
        if b0 & 0x70 != 0 && is_control(opcode) && !self.is_extended(opcode) {
            return Err(Fail::Rsv);
        }
        match opcode {
            OP_CONTINUATION if self.msg_opcode == 0 => Err(Fail::UnexpectedContinuation),
            OP_TEXT | OP_BINARY if self.msg_opcode != 0 => Err(Fail::ExpectedContinuation),
            OP_CONTINUATION | OP_TEXT | OP_BINARY => Ok(()),
            OP_CLOSE | OP_PING | OP_PONG if b0 & 0x80 == 0 => Err(Fail::FragmentedControl),
            OP_CLOSE | OP_PING | OP_PONG => Ok(()),
            _ if self.extended_opcodes => Ok(()),
            _ => Err(Fail::ReservedOpcode),
        }
    }

    fn check_second_byte(&self, b0: u8, b1: u8) -> Result<(), Fail> {
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Server, false) => return Err(Fail::Unmasked),
            (Role::Client, true) => return Err(Fail::Masked),
            _ => {}
        }
        let opcode = b0 & 0x0f;
        if is_control(opcode)
            && usize::from(b1 & 0x7f) > MAX_CONTROL_PAYLOAD
            && !self.is_extended(opcode)
        {
            return Err(Fail::ControlTooLong);
        }
        Ok(())
    }

    /// Decodes the complete header in `hdr` and sets up the frame (and message) state.
    fn begin_frame(&mut self, h: &[u8; MAX_HEADER_LEN]) -> Result<(), Fail> {
        let size = Self::header_size(h[1]);
        let len = match h[1] & 0x7f {
            126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            short => u64::from(short),
        };
        if len >> 63 != 0 {
            return Err(Fail::LengthTopBit);
        }
        if h[1] & 0x80 != 0 {
            self.key = [h[size - 4], h[size - 3], h[size - 2], h[size - 1]];
        }
        let b0 = h[0];
        let opcode = b0 & 0x0f;
        self.hdr_len = 0;
        self.b0 = b0;
        self.phase = 0;
        self.frame_remaining = len;
        // A reserved opcode got past `check_first_byte` only with `extended_opcodes`.
        if is_control(opcode) {
            if opcode > OP_PONG {
                return self.begin_extended(len);
            }
            // Checked against 125 when the second byte arrived.
            self.ctrl_len = len as u8;
            self.state = State::Control;
            return Ok(());
        }
        if opcode != OP_CONTINUATION {
            if opcode > OP_BINARY {
                return self.begin_extended(len);
            }
            self.msg_opcode = opcode;
            self.message_start = true;
            self.message_len = 0;
            self.utf8.reset();
        }
        // message_len <= max_message_size holds, so the subtraction cannot underflow.
        if len > self.max_message_size - self.message_len {
            return Err(Fail::TooBig);
        }
        self.message_len += len;
        self.state = State::Data;
        Ok(())
    }

    /// Sets up a reserved-opcode frame of `len` payload bytes.
    fn begin_extended(&mut self, len: u64) -> Result<(), Fail> {
        if len > self.max_message_size {
            return Err(Fail::TooBig);
        }
        self.state = State::Extended;
        Ok(())
    }

    /// Delivers the data payload available in `input` (possibly none for an empty frame).
    fn data_event<'a>(
        &mut self,
        input: &'a mut [u8],
        pos: &mut usize,
    ) -> Result<Option<Event<'a>>, ProtocolError> {
        let start = (*pos).min(input.len());
        let avail = input.len() - start;
        if avail == 0 && self.frame_remaining != 0 {
            return Ok(None);
        }
        let n = usize::try_from(self.frame_remaining).map_or(avail, |r| r.min(avail));
        let payload = &mut input[start..start + n];
        if self.role == Role::Server {
            apply_mask(payload, self.key, usize::from(self.phase));
            self.phase = ((usize::from(self.phase) + n) & 3) as u8;
        }
        let remaining = self.frame_remaining - n as u64;
        let fin = self.b0 & 0x80 != 0;
        if self.msg_opcode == OP_TEXT
            && self.validate_utf8
            && (self.utf8.feed(payload).is_err()
                || (fin && remaining == 0 && !self.utf8.is_complete()))
        {
            return Err(self.fail(Fail::Utf8));
        }
        *pos = start + n;
        self.frame_remaining = remaining;
        let message_opcode = self.msg_opcode;
        let message_start = std::mem::take(&mut self.message_start);
        if remaining == 0 {
            self.state = State::Header;
            if fin {
                self.msg_opcode = 0;
            }
        }
        Ok(Some(Event::Data {
            payload,
            message_opcode,
            frame_opcode: self.b0 & 0x0f,
            fin,
            rsv: self.b0 & 0x70,
            frame_remaining: remaining,
            message_start,
        }))
    }

    /// Delivers the payload of a reserved-opcode frame available in `input`.
    fn extended_event<'a>(&mut self, input: &'a mut [u8], pos: &mut usize) -> Option<Event<'a>> {
        let start = (*pos).min(input.len());
        let avail = input.len() - start;
        if avail == 0 && self.frame_remaining != 0 {
            return None;
        }
        let n = usize::try_from(self.frame_remaining).map_or(avail, |r| r.min(avail));
        let payload = &mut input[start..start + n];
        if self.role == Role::Server {
            apply_mask(payload, self.key, usize::from(self.phase));
            self.phase = ((usize::from(self.phase) + n) & 3) as u8;
        }
        *pos = start + n;
        self.frame_remaining -= n as u64;
        if self.frame_remaining == 0 {
            self.state = State::Header;
        }
        Some(Event::Extended {
            payload,
            opcode: self.b0 & 0x0f,
            fin: self.b0 & 0x80 != 0,
            rsv: self.b0 & 0x70,
            frame_remaining: self.frame_remaining,
        })
    }

    /// Delivers a control frame once its whole payload is known: straight from `input`
    /// when it is all there, otherwise via the gather buffer.
    fn control_event<'a>(&'a mut self, input: &'a mut [u8], pos: &mut usize) -> Option<Event<'a>> {
        let opcode = self.b0 & 0x0f;
        let len = usize::from(self.ctrl_len);
        let remaining = self.frame_remaining as usize; // <= 125
        let start = (*pos).min(input.len());
        let avail = input.len() - start;
        let masked = self.role == Role::Server;

        if remaining == len && avail >= len {
            *pos = start + len;
            self.frame_remaining = 0;
            self.state = State::Header;
            let payload = &mut input[start..start + len];
            if masked {
                apply_mask(payload, self.key, 0);
            }
            return Some(Event::Control { opcode, payload });
        }

        let n = remaining.min(avail);
        let got = len - remaining;
        let buf = self
            .ctrl
            .get_or_insert_with(|| Box::new([0; MAX_CONTROL_PAYLOAD]));
        buf[got..got + n].copy_from_slice(&input[start..start + n]);
        *pos = start + n;
        self.frame_remaining -= n as u64;
        if self.frame_remaining != 0 {
            return None;
        }
        self.state = State::Header;
        let payload = &mut buf[..len];
        if masked {
            apply_mask(payload, self.key, 0);
        }
        Some(Event::Control { opcode, payload })
    }
}

#[cfg(test)]
mod tests {
    use super::super::close::parse_close_payload;
    use super::super::frame::encode_header;
    use super::*;
    use proptest::prelude::*;

    const KEY: [u8; 4] = [0x11, 0x8a, 0x3c, 0xf0];

    /// Encodes one frame, masked when `key` is given.
    fn frame(fin: bool, rsv: u8, opcode: u8, key: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut hdr = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut hdr, fin, rsv, opcode, key, payload.len() as u64);
        let mut out = hdr[..n].to_vec();
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(k) = key {
            apply_mask(&mut out[start..], k, 0);
        }
        out
    }

    /// A frame as a client would send it to our server.
    fn cframe(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        frame(fin, 0, opcode, Some(KEY), payload)
    }

    fn server() -> FrameParser {
        FrameParser::new(ParserConfig::new(Role::Server))
    }

    /// What the parser delivered, reassembled.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Item {
        Msg(u8, Vec<u8>),
        Ctl(u8, Vec<u8>),
        /// A whole reserved-opcode frame (opcode, FIN, RSV, payload).
        Ext(u8, bool, u8, Vec<u8>),
    }

    /// Feeds `stream` in reads of the sizes `next_read` returns (each read in a fresh
    /// buffer, as from a socket), checking per-event invariants, and reassembles.
    fn run(
        p: &mut FrameParser,
        stream: &[u8],
        mut next_read: impl FnMut() -> usize,
    ) -> Result<Vec<Item>, ProtocolError> {
        let mut items = Vec::new();
        let mut cur: Option<(u8, Vec<u8>)> = None;
        let mut ext = Vec::new();
        let mut off = 0;
        while off < stream.len() {
            let n = next_read().clamp(1, stream.len() - off);
            let mut buf = stream[off..off + n].to_vec();
            off += n;
            let mut pos = 0;
            loop {
                match p.next_event(&mut buf, &mut pos)? {
                    None => break,
                    Some(Event::Extended {
                        payload,
                        opcode,
                        fin,
                        rsv,
                        frame_remaining,
                    }) => {
                        assert!(matches!(opcode, 3..=7 | 0xb..=0xf));
                        ext.extend_from_slice(payload);
                        assert_eq!(p.frame_remaining(), frame_remaining);
                        if frame_remaining == 0 {
                            items.push(Item::Ext(opcode, fin, rsv, std::mem::take(&mut ext)));
                        }
                    }
                    Some(Event::Control { opcode, payload }) => {
                        assert!(is_control(opcode) && payload.len() <= 125);
                        items.push(Item::Ctl(opcode, payload.to_vec()));
                        assert_eq!(p.frame_remaining(), 0);
                    }
                    Some(Event::Data {
                        payload,
                        message_opcode,
                        frame_opcode,
                        fin,
                        rsv,
                        frame_remaining,
                        message_start,
                    }) => {
                        let payload = payload.to_vec();
                        assert_eq!(rsv, 0);
                        assert_eq!(p.frame_remaining(), frame_remaining);
                        assert_eq!(message_start, cur.is_none());
                        let (op, data) = cur.get_or_insert_with(|| (message_opcode, Vec::new()));
                        assert_eq!(*op, message_opcode);
                        assert!(message_opcode == OP_TEXT || message_opcode == OP_BINARY);
                        if message_start {
                            assert_eq!(frame_opcode, message_opcode);
                        }
                        data.extend_from_slice(&payload);
                        if fin && frame_remaining == 0 {
                            let (op, data) = cur.take().unwrap();
                            items.push(Item::Msg(op, data));
                            assert!(!p.in_message());
                        } else {
                            assert!(p.in_message());
                        }
                    }
                }
            }
            assert_eq!(pos, buf.len(), "Ok(None) must mean all input consumed");
        }
        assert!(cur.is_none(), "stream ended inside a message");
        Ok(items)
    }

    fn run_all(p: &mut FrameParser, stream: &[u8]) -> Result<Vec<Item>, ProtocolError> {
        run(p, stream, || usize::MAX)
    }

    fn run_bytewise(p: &mut FrameParser, stream: &[u8]) -> Result<Vec<Item>, ProtocolError> {
        run(p, stream, || 1)
    }

    /// Feeds `stream` one byte at a time and returns the index of the byte whose read
    /// produced the error.
    fn error_at(p: &mut FrameParser, stream: &[u8]) -> Option<(usize, ProtocolError)> {
        for (i, b) in stream.iter().enumerate() {
            let mut buf = [*b];
            let mut pos = 0;
            loop {
                match p.next_event(&mut buf, &mut pos) {
                    Ok(None) => break,
                    Ok(Some(_)) => {}
                    Err(e) => return Some((i, e)),
                }
            }
        }
        None
    }

    #[test]
    fn parser_is_small() {
        assert!(
            std::mem::size_of::<FrameParser>() <= 64,
            "{}",
            std::mem::size_of::<FrameParser>()
        );
    }

    #[test]
    fn round_trip_lengths() {
        for len in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            for (role, key, base) in [(Role::Server, Some(KEY), 4), (Role::Client, None, 0)] {
                let f = frame(true, 0, OP_BINARY, key, &payload);
                let hdr = match len {
                    0..=125 => 2,
                    126..=65535 => 4,
                    _ => 10,
                };
                assert_eq!(f.len(), hdr + base + len);
                let mut p = FrameParser::new(ParserConfig::new(role));
                let items = run_all(&mut p, &f).unwrap();
                assert_eq!(items, vec![Item::Msg(OP_BINARY, payload.clone())]);
            }
        }
    }

    #[test]
    fn simple_events_and_zero_length_frame() {
        let mut stream = cframe(true, OP_TEXT, b"Hello");
        stream.extend(cframe(true, OP_BINARY, b""));
        let mut p = server();
        let mut pos = 0;
        match p.next_event(&mut stream, &mut pos).unwrap() {
            Some(Event::Data {
                payload,
                message_opcode,
                fin,
                frame_remaining,
                message_start,
                ..
            }) => {
                assert_eq!(payload, b"Hello");
                assert_eq!(message_opcode, OP_TEXT);
                assert!(fin && message_start);
                assert_eq!(frame_remaining, 0);
            }
            other => panic!("{other:?}"),
        }
        match p.next_event(&mut stream, &mut pos).unwrap() {
            Some(Event::Data {
                payload,
                message_opcode,
                frame_opcode,
                fin,
                message_start,
                ..
            }) => {
                assert!(payload.is_empty());
                assert_eq!((message_opcode, frame_opcode), (OP_BINARY, OP_BINARY));
                assert!(fin && message_start);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(p.next_event(&mut stream, &mut pos).unwrap(), None);
        assert_eq!(pos, stream.len());
    }

    #[test]
    fn zero_length_fragments_emit_one_event_each() {
        let mut stream = cframe(false, OP_TEXT, b"");
        stream.extend(cframe(false, OP_CONTINUATION, b""));
        stream.extend(cframe(true, OP_CONTINUATION, b""));
        let mut p = server();
        let mut pos = 0;
        let mut n = 0;
        while let Some(ev) = p.next_event(&mut stream, &mut pos).unwrap() {
            assert!(matches!(
                ev,
                Event::Data {
                    payload: [],
                    message_opcode: OP_TEXT,
                    ..
                }
            ));
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn payload_split_reports_remaining_and_tracks_mask_phase() {
        let payload: Vec<u8> = (0..=255u8).collect();
        let stream = cframe(true, OP_BINARY, &payload);
        // Header (8 bytes) + 3 payload bytes, then odd-sized pieces.
        let mut p = server();
        let mut got = Vec::new();
        let mut off = 0;
        for cut in [11usize, 5, 1, 100, 400] {
            let end = (off + cut).min(stream.len());
            let mut buf = stream[off..end].to_vec();
            off = end;
            let mut pos = 0;
            while let Some(ev) = p.next_event(&mut buf, &mut pos).unwrap() {
                let Event::Data {
                    payload,
                    frame_remaining,
                    ..
                } = ev
                else {
                    panic!()
                };
                got.extend_from_slice(payload);
                assert_eq!(frame_remaining, (256 - got.len()) as u64);
            }
            if off < stream.len() {
                assert_eq!(p.frame_remaining(), (256 - got.len()) as u64);
            }
        }
        assert_eq!(got, payload);
        assert_eq!(p.frame_remaining(), 0);
    }

    #[test]
    fn header_split_at_every_boundary() {
        let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = cframe(true, OP_BINARY, &big);
        stream.extend(cframe(true, OP_PING, b"ping!"));
        stream.extend(cframe(true, OP_TEXT, "ünïcödé".as_bytes()));
        let expect = vec![
            Item::Msg(OP_BINARY, big.clone()),
            Item::Ctl(OP_PING, b"ping!".to_vec()),
            Item::Msg(OP_TEXT, "ünïcödé".as_bytes().to_vec()),
        ];
        for cut in 0..=20 {
            let mut p = server();
            let mut reads = [cut, usize::MAX].into_iter();
            assert_eq!(
                run(&mut p, &stream, || reads.next().unwrap_or(usize::MAX)).unwrap(),
                expect
            );
        }
        assert_eq!(run_bytewise(&mut server(), &stream).unwrap(), expect);
    }

    #[test]
    fn rsv_bits() {
        let f = frame(true, 0x40, OP_BINARY, Some(KEY), b"x");
        assert_eq!(
            error_at(&mut server(), &f),
            Some((0, ProtocolError::RSV_NOT_NEGOTIATED))
        );
        let mut p = server();
        p.set_allowed_rsv(0x40);
        let mut buf = f.clone();
        let mut pos = 0;
        match p.next_event(&mut buf, &mut pos).unwrap() {
            Some(Event::Data { rsv, payload, .. }) => assert_eq!((rsv, payload), (0x40, &b"x"[..])),
            other => panic!("{other:?}"),
        }
        // RSV2 still not allowed.
        let f2 = frame(true, 0x60, OP_BINARY, Some(KEY), b"x");
        assert_eq!(run_all(&mut p, &f2), Err(ProtocolError::RSV_NOT_NEGOTIATED));
        let mut cfg = ParserConfig::new(Role::Server);
        cfg.allowed_rsv = 0x70;
        let f3 = frame(true, 0x70, OP_BINARY, Some(KEY), b"x");
        let got = run_collect_lenient(&mut FrameParser::new(cfg), &f3, || usize::MAX);
        assert_eq!(got, Ok((b"x".to_vec(), vec![])));
    }

    #[test]
    fn reserved_opcodes_fail_on_first_byte() {
        for op in (3..=7).chain(0xb..=0xf) {
            let f = cframe(true, op, b"");
            assert_eq!(
                error_at(&mut server(), &f),
                Some((0, ProtocolError::RESERVED_OPCODE)),
                "{op}"
            );
        }
    }

    fn extended() -> FrameParser {
        FrameParser::new(ParserConfig {
            extended_opcodes: true,
            allowed_rsv: 0x40,
            ..ParserConfig::new(Role::Server)
        })
    }

    #[test]
    fn reserved_opcodes_delivered_when_extended() {
        for op in (3..=7).chain(0xb..=0xf) {
            let big = vec![b'z'; 300]; // over 125 even in the control range
            let mut s = frame(false, 0x40, op, Some(KEY), &big);
            s.extend(cframe(true, OP_TEXT, b"hi"));
            for items in [
                run_all(&mut extended(), &s),
                run_bytewise(&mut extended(), &s),
            ] {
                assert_eq!(
                    items.unwrap(),
                    vec![
                        Item::Ext(op, false, 0x40, big.clone()),
                        Item::Msg(OP_TEXT, b"hi".to_vec())
                    ],
                    "{op}"
                );
            }
        }
    }

    #[test]
    fn extended_frames_between_fragments_leave_the_message_alone() {
        let mut s = cframe(false, OP_TEXT, b"ab");
        s.extend(cframe(true, 0x3, b""));
        s.extend(cframe(true, 0xc, b"xyz"));
        s.extend(cframe(true, OP_CONTINUATION, b"cd"));
        assert_eq!(
            run_bytewise(&mut extended(), &s).unwrap(),
            vec![
                Item::Ext(0x3, true, 0, vec![]),
                Item::Ext(0xc, true, 0, b"xyz".to_vec()),
                Item::Msg(OP_TEXT, b"abcd".to_vec())
            ]
        );
    }

    #[test]
    fn extended_frames_keep_the_other_rules() {
        // Unmasked from a client, un-negotiated RSV, the size limit.
        let f = frame(true, 0, 0x5, None, b"x");
        assert_eq!(
            error_at(&mut extended(), &f),
            Some((1, ProtocolError::UNMASKED_FRAME))
        );
        let f = frame(true, 0x20, 0x5, Some(KEY), b"x");
        assert_eq!(
            error_at(&mut extended(), &f),
            Some((0, ProtocolError::RSV_NOT_NEGOTIATED))
        );
        let mut p = FrameParser::new(ParserConfig {
            extended_opcodes: true,
            max_message_size: 4,
            ..ParserConfig::new(Role::Server)
        });
        let f = cframe(true, 0x5, b"12345");
        assert_eq!(run_all(&mut p, &f), Err(ProtocolError::MESSAGE_TOO_BIG));
        // Known control opcodes keep their limits.
        let f = cframe(false, OP_PING, b"");
        assert_eq!(
            error_at(&mut extended(), &f),
            Some((0, ProtocolError::FRAGMENTED_CONTROL))
        );
    }

    #[test]
    fn control_frame_rules() {
        for op in [OP_CLOSE, OP_PING, OP_PONG] {
            let f = cframe(false, op, b"");
            assert_eq!(
                error_at(&mut server(), &f),
                Some((0, ProtocolError::FRAGMENTED_CONTROL))
            );
            let f = cframe(true, op, &[b'a'; 126]);
            assert_eq!(
                error_at(&mut server(), &f),
                Some((1, ProtocolError::CONTROL_TOO_LONG))
            );
            let f = cframe(true, op, &[b'a'; 125]);
            assert_eq!(
                run_bytewise(&mut server(), &f).unwrap(),
                vec![Item::Ctl(op, vec![b'a'; 125])]
            );
        }
        // Close payloads are passed through unvalidated.
        let f = cframe(true, OP_CLOSE, b"\x03");
        assert_eq!(
            run_all(&mut server(), &f).unwrap(),
            vec![Item::Ctl(OP_CLOSE, b"\x03".to_vec())]
        );
        let f = cframe(true, OP_CLOSE, b"\x03\xe8bye");
        let items = run_bytewise(&mut server(), &f).unwrap();
        let Item::Ctl(OP_CLOSE, payload) = &items[0] else {
            panic!()
        };
        assert_eq!(parse_close_payload(payload), Ok(Some((1000, &b"bye"[..]))));
    }

    #[test]
    fn continuation_rules() {
        let f = cframe(true, OP_CONTINUATION, b"x");
        assert_eq!(
            error_at(&mut server(), &f),
            Some((0, ProtocolError::UNEXPECTED_CONTINUATION))
        );
        for op in [OP_TEXT, OP_BINARY] {
            let mut s = cframe(false, OP_BINARY, b"a");
            let at = s.len();
            s.extend(cframe(true, op, b"b"));
            assert_eq!(
                error_at(&mut server(), &s),
                Some((at, ProtocolError::EXPECTED_CONTINUATION))
            );
        }
        // After a finished message, a continuation is unexpected again.
        let mut s = cframe(false, OP_BINARY, b"a");
        s.extend(cframe(true, OP_CONTINUATION, b"b"));
        let at = s.len();
        s.extend(cframe(true, OP_CONTINUATION, b"c"));
        assert_eq!(
            error_at(&mut server(), &s),
            Some((at, ProtocolError::UNEXPECTED_CONTINUATION))
        );
    }

    #[test]
    fn mask_bit_must_match_role() {
        let unmasked = frame(true, 0, OP_TEXT, None, b"hi");
        let masked = cframe(true, OP_TEXT, b"hi");
        assert_eq!(
            error_at(&mut server(), &unmasked),
            Some((1, ProtocolError::UNMASKED_FRAME))
        );
        let mut client = FrameParser::new(ParserConfig::new(Role::Client));
        assert_eq!(
            error_at(&mut client, &masked),
            Some((1, ProtocolError::MASKED_FRAME))
        );
        let mut client = FrameParser::new(ParserConfig::new(Role::Client));
        assert_eq!(
            run_all(&mut client, &unmasked).unwrap(),
            vec![Item::Msg(OP_TEXT, b"hi".to_vec())]
        );
    }

    #[test]
    fn length_top_bit() {
        let mut f = vec![0x82, 0xff];
        f.extend_from_slice(&(1u64 << 63).to_be_bytes());
        f.extend_from_slice(&KEY);
        assert_eq!(
            error_at(&mut server(), &f),
            Some((f.len() - 1, ProtocolError::LENGTH_TOP_BIT))
        );
    }

    #[test]
    fn message_size_limit() {
        let cfg = ParserConfig {
            max_message_size: 10,
            ..ParserConfig::new(Role::Server)
        };
        // Exactly at the limit, fragmented: fine.
        let mut ok = cframe(false, OP_BINARY, b"12345");
        ok.extend(cframe(true, OP_CONTINUATION, b"67890"));
        ok.extend(cframe(true, OP_BINARY, b"0123456789"));
        assert_eq!(run_all(&mut FrameParser::new(cfg), &ok).unwrap().len(), 2);
        // A single oversized frame fails on its header, before any payload.
        let big = cframe(true, OP_BINARY, b"01234567890");
        assert_eq!(
            error_at(&mut FrameParser::new(cfg), &big),
            Some((5, ProtocolError::MESSAGE_TOO_BIG))
        );
        // The fragment that pushes the sum over fails on its header.
        let mut s = cframe(false, OP_TEXT, b"123456");
        s.extend(cframe(true, OP_PING, b""));
        let at = s.len();
        s.extend(cframe(true, OP_CONTINUATION, b"12345"));
        let err = error_at(&mut FrameParser::new(cfg), &s);
        assert_eq!(err, Some((at + 5, ProtocolError::MESSAGE_TOO_BIG)));
        assert_eq!(err.unwrap().1.close_code, 1009);
        // Huge announced lengths do not overflow the accounting.
        let mut s = cframe(false, OP_BINARY, b"1");
        let mut h = vec![0x80, 0xff];
        h.extend_from_slice(&(u64::MAX >> 1).to_be_bytes());
        h.extend_from_slice(&KEY);
        s.extend(h);
        let mut p = FrameParser::new(ParserConfig::new(Role::Server));
        assert_eq!(error_at(&mut p, &s), None);
        assert_eq!(p.frame_remaining(), u64::MAX >> 1);
    }

    #[test]
    fn control_frames_interleaved_with_fragments() {
        let mut s = cframe(false, OP_TEXT, "frag".as_bytes());
        s.extend(cframe(true, OP_PING, b"p1"));
        s.extend(cframe(false, OP_CONTINUATION, "ment\u{e9}".as_bytes()));
        s.extend(cframe(true, OP_PONG, b""));
        s.extend(cframe(true, OP_PING, b"p2"));
        s.extend(cframe(true, OP_CONTINUATION, b"ed"));
        s.extend(cframe(true, OP_CLOSE, b"\x03\xe8"));
        let expect = vec![
            Item::Ctl(OP_PING, b"p1".to_vec()),
            Item::Ctl(OP_PONG, vec![]),
            Item::Ctl(OP_PING, b"p2".to_vec()),
            Item::Msg(OP_TEXT, "fragment\u{e9}ed".as_bytes().to_vec()),
            Item::Ctl(OP_CLOSE, b"\x03\xe8".to_vec()),
        ];
        assert_eq!(run_all(&mut server(), &s).unwrap(), expect);
        assert_eq!(run_bytewise(&mut server(), &s).unwrap(), expect);
    }

    #[test]
    fn in_message_between_frames() {
        let mut s = cframe(false, OP_BINARY, b"a");
        s.extend(cframe(true, OP_PING, b""));
        s.extend(cframe(true, OP_CONTINUATION, b"b"));
        let mut p = server();
        let mut pos = 0;
        assert!(!p.in_message());
        assert!(matches!(
            p.next_event(&mut s, &mut pos).unwrap(),
            Some(Event::Data { .. })
        ));
        assert!(p.in_message());
        assert!(matches!(
            p.next_event(&mut s, &mut pos).unwrap(),
            Some(Event::Control { .. })
        ));
        assert!(p.in_message());
        let ev = p.next_event(&mut s, &mut pos).unwrap();
        assert!(matches!(
            ev,
            Some(Event::Data {
                frame_opcode: OP_CONTINUATION,
                message_start: false,
                ..
            })
        ));
        assert!(!p.in_message());
    }

    #[test]
    fn split_control_frame_uses_and_frees_buffer() {
        let mut s = cframe(true, OP_PING, b"0123456789");
        s.extend(cframe(true, OP_BINARY, b"x"));
        let mut p = server();
        let (a, b) = s.split_at(9); // header (6) + 3 payload bytes
        let mut a = a.to_vec();
        let mut b = b.to_vec();
        let mut pos = 0;
        assert_eq!(p.next_event(&mut a, &mut pos).unwrap(), None);
        assert_eq!(pos, a.len());
        assert!(p.ctrl.is_some());
        pos = 0;
        let ev = p.next_event(&mut b, &mut pos).unwrap();
        assert_eq!(
            ev,
            Some(Event::Control {
                opcode: OP_PING,
                payload: b"0123456789"
            })
        );
        let ev = p.next_event(&mut b, &mut pos).unwrap();
        assert!(matches!(ev, Some(Event::Data { payload: b"x", .. })));
        assert!(p.ctrl.is_none());
        // A whole control frame in one read never allocates.
        let mut whole = cframe(true, OP_PONG, b"abc");
        let mut pos = 0;
        let ev = p.next_event(&mut whole, &mut pos).unwrap();
        assert_eq!(
            ev,
            Some(Event::Control {
                opcode: OP_PONG,
                payload: b"abc"
            })
        );
        assert!(p.ctrl.is_none());
    }

    #[test]
    fn utf8_fail_fast_in_fragmented_text() {
        let bytes = [
            0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80,
            0x65, 0x64, 0x69, 0x74, 0x65, 0x64,
        ];
        // One frame, fed byte by byte: the read carrying A0 fails, nothing after it.
        let f = cframe(true, OP_TEXT, &bytes);
        let mut p = server();
        assert_eq!(
            error_at(&mut p, &f),
            Some((6 + 12, ProtocolError::INVALID_UTF8))
        );
        assert_eq!(p.error(), Some(ProtocolError::INVALID_UTF8));

        // Split over frames at every position; the failure is on the A0 byte's read.
        for cut in 0..=bytes.len() {
            let mut s = cframe(false, OP_TEXT, &bytes[..cut]);
            s.extend(cframe(true, OP_PING, b""));
            s.extend(cframe(true, OP_CONTINUATION, &bytes[cut..]));
            let a0 = if cut <= 12 {
                s.len() - bytes.len() + 12
            } else {
                6 + 12
            };
            let (at, err) = error_at(&mut server(), &s).unwrap();
            assert_eq!((at, err.close_code), (a0, 1007), "cut {cut}");
        }

        // Slices delivered before the failure stop before the bad byte.
        let mut buf = f.clone();
        let mut p = server();
        let mut pos = 0;
        assert_eq!(
            p.next_event(&mut buf[..6 + 12], &mut pos)
                .map(|e| e.is_some()),
            Ok(true)
        );
        let mut rest = f[6 + 12..].to_vec();
        let mut pos = 0;
        assert_eq!(
            p.next_event(&mut rest, &mut pos),
            Err(ProtocolError::INVALID_UTF8)
        );
    }

    #[test]
    fn utf8_multibyte_split_across_frames_is_valid() {
        let text = "\u{1f600}€ä".as_bytes();
        for cut in 0..=text.len() {
            let mut s = cframe(false, OP_TEXT, &text[..cut]);
            s.extend(cframe(true, OP_CONTINUATION, &text[cut..]));
            assert_eq!(
                run_bytewise(&mut server(), &s).unwrap(),
                vec![Item::Msg(OP_TEXT, text.to_vec())]
            );
        }
    }

    #[test]
    fn utf8_incomplete_at_fin_fails() {
        let f = cframe(true, OP_TEXT, b"ok\xe2\x82");
        assert_eq!(run_all(&mut server(), &f), Err(ProtocolError::INVALID_UTF8));
        // Incomplete at the end of a non-FIN frame is fine, but not at the end of the
        // (empty) FIN continuation.
        let mut s = cframe(false, OP_TEXT, b"ok\xe2\x82");
        s.extend(cframe(true, OP_CONTINUATION, b""));
        assert_eq!(run_all(&mut server(), &s), Err(ProtocolError::INVALID_UTF8));
        let mut s = cframe(false, OP_TEXT, b"ok\xe2\x82");
        s.extend(cframe(true, OP_CONTINUATION, b"\xac"));
        assert_eq!(
            run_all(&mut server(), &s).unwrap(),
            vec![Item::Msg(OP_TEXT, "ok€".as_bytes().to_vec())]
        );
    }

    #[test]
    fn utf8_state_resets_per_message_and_skips_binary() {
        // A broken binary message is fine; a text message after a text message starts fresh.
        let mut s = cframe(true, OP_BINARY, b"\xff\xe2");
        s.extend(cframe(true, OP_TEXT, b"a"));
        s.extend(cframe(true, OP_TEXT, b"\xc3\xa4"));
        assert_eq!(run_all(&mut server(), &s).unwrap().len(), 3);
        // Validation disabled.
        let cfg = ParserConfig {
            validate_utf8: false,
            ..ParserConfig::new(Role::Server)
        };
        let f = cframe(true, OP_TEXT, b"\xed\xa0\x80\xe2");
        assert_eq!(run_all(&mut FrameParser::new(cfg), &f).unwrap().len(), 1);
    }

    #[test]
    fn poisoned_parser_repeats_error() {
        let f = cframe(true, 0x3, b"");
        let mut p = server();
        let mut buf = f.clone();
        let mut pos = 0;
        assert_eq!(
            p.next_event(&mut buf, &mut pos),
            Err(ProtocolError::RESERVED_OPCODE)
        );
        let mut good = cframe(true, OP_TEXT, b"x");
        let mut pos = 0;
        assert_eq!(
            p.next_event(&mut good, &mut pos),
            Err(ProtocolError::RESERVED_OPCODE)
        );
        assert_eq!(
            p.next_event(&mut [], &mut 0),
            Err(ProtocolError::RESERVED_OPCODE)
        );
    }

    #[test]
    fn empty_input_needs_more() {
        let mut p = server();
        assert_eq!(p.next_event(&mut [], &mut 0), Ok(None));
        let mut s = cframe(true, OP_BINARY, b"abc");
        let (h, rest) = s.split_at_mut(6);
        let mut pos = 0;
        assert_eq!(
            p.next_event(h, &mut pos),
            Ok(None),
            "header alone delivers nothing"
        );
        assert_eq!(p.frame_remaining(), 3);
        let mut pos = 0;
        assert!(matches!(
            p.next_event(rest, &mut pos),
            Ok(Some(Event::Data {
                payload: b"abc",
                ..
            }))
        ));
    }

    // ---- property tests --------------------------------------------------------

    /// splitmix64: a tiny deterministic generator so that large payloads cost one
    /// proptest value instead of 70 000.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }

        /// Valid UTF-8 of about `len` bytes with a mix of 1- to 4-byte characters.
        fn text(&mut self, len: usize) -> Vec<u8> {
            let mut s = String::with_capacity(len + 4);
            while s.len() < len {
                let c = match self.below(8) {
                    0..=3 => char::from(b' ' + self.below(95) as u8),
                    4 => char::from_u32(0x80 + self.below(0x780) as u32).unwrap(),
                    5 => char::from_u32(0x800 + self.below(0xd000) as u32).unwrap_or('\u{fffd}'),
                    6 => char::from_u32(0xe000 + self.below(0x2000) as u32).unwrap(),
                    _ => char::from_u32(0x10000 + self.below(0x100000) as u32).unwrap(),
                };
                s.push(c);
            }
            s.into_bytes()
        }
    }

    /// Encodes `msgs` (is_text, length) as random fragments with interleaved control
    /// frames; returns the wire bytes and the items a parser must reproduce.
    fn build_stream(msgs: &[(bool, usize)], seed: u64, masked: bool) -> (Vec<u8>, Vec<Item>) {
        let mut rng = Rng(seed);
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        let key = |rng: &mut Rng| masked.then(|| (rng.next() as u32).to_ne_bytes());
        let control =
            |rng: &mut Rng, wire: &mut Vec<u8>, expect: &mut Vec<Item>, key: Option<[u8; 4]>| {
                let op = [OP_PING, OP_PONG][rng.below(2)];
                let plen = rng.below(126);
                let payload = rng.bytes(plen);
                wire.extend(frame(true, 0, op, key, &payload));
                expect.push(Item::Ctl(op, payload));
            };
        for &(is_text, len) in msgs {
            if rng.below(4) == 0 {
                let k = key(&mut rng);
                control(&mut rng, &mut wire, &mut expect, k);
            }
            let (op, payload) = if is_text {
                (OP_TEXT, rng.text(len))
            } else {
                (OP_BINARY, rng.bytes(len))
            };
            // Random cut points, possibly inside UTF-8 characters and possibly empty.
            let mut cuts: Vec<usize> = (0..rng.below(5))
                .map(|_| rng.below(payload.len() + 1))
                .collect();
            cuts.sort_unstable();
            cuts.push(payload.len());
            let mut start = 0;
            for (i, &end) in cuts.iter().enumerate() {
                let fin = i + 1 == cuts.len();
                let fop = if i == 0 { op } else { OP_CONTINUATION };
                let k = key(&mut rng);
                wire.extend(frame(fin, 0, fop, k, &payload[start..end]));
                start = end;
                if !fin && rng.below(3) == 0 {
                    let k = key(&mut rng);
                    control(&mut rng, &mut wire, &mut expect, k);
                }
            }
            expect.push(Item::Msg(op, payload));
        }
        (wire, expect)
    }

    fn msg_strategy() -> impl Strategy<Value = Vec<(bool, usize)>> {
        let len = prop_oneof![4 => 0usize..16, 4 => 0usize..400, 1 => 60_000usize..70_000];
        prop::collection::vec((any::<bool>(), len), 0..6)
    }

    fn read_strategy() -> impl Strategy<Value = usize> {
        prop_oneof![Just(3usize), Just(20), Just(300), Just(9000), Just(200_000)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn server_reassembles_masked_stream(
            msgs in msg_strategy(), seed in any::<u64>(), max_read in read_strategy(),
        ) {
            let (wire, expect) = build_stream(&msgs, seed, true);
            let mut rng = Rng(seed ^ 0x5555);
            let mut p = server();
            let got = run(&mut p, &wire, || 1 + rng.below(max_read)).unwrap();
            prop_assert_eq!(got, expect);
            prop_assert!(!p.in_message());
            prop_assert_eq!(p.frame_remaining(), 0);
        }

        #[test]
        fn client_reassembles_unmasked_stream(
            msgs in msg_strategy(), seed in any::<u64>(), max_read in read_strategy(),
        ) {
            let (wire, expect) = build_stream(&msgs, seed, false);
            let mut rng = Rng(seed ^ 0xaaaa);
            let mut p = FrameParser::new(ParserConfig::new(Role::Client));
            let got = run(&mut p, &wire, || 1 + rng.below(max_read)).unwrap();
            prop_assert_eq!(got, expect);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            role in prop_oneof![Just(Role::Server), Just(Role::Client)],
            max_read in 1usize..20,
        ) {
            let mut p = FrameParser::new(ParserConfig::new(role));
            let mut rng = Rng(bytes.len() as u64);
            let r1 = run_collect_lenient(&mut p, &bytes, || 1 + rng.below(max_read));
            // Same bytes in one read reach the same verdict.
            let mut q = FrameParser::new(ParserConfig::new(role));
            let r2 = run_collect_lenient(&mut q, &bytes, || usize::MAX);
            prop_assert_eq!(r1, r2);
        }
    }

    /// Like `run` but tolerates a truncated trailing message (random input).
    fn run_collect_lenient(
        p: &mut FrameParser,
        stream: &[u8],
        mut next_read: impl FnMut() -> usize,
    ) -> Result<(Vec<u8>, Vec<Item>), ProtocolError> {
        let mut data = Vec::new();
        let mut ctl = Vec::new();
        let mut off = 0;
        while off < stream.len() {
            let n = next_read().clamp(1, stream.len() - off);
            let mut buf = stream[off..off + n].to_vec();
            off += n;
            let mut pos = 0;
            while let Some(ev) = p.next_event(&mut buf, &mut pos)? {
                match ev {
                    Event::Data { payload, .. } => data.extend_from_slice(payload),
                    Event::Control { opcode, payload } => {
                        ctl.push(Item::Ctl(opcode, payload.to_vec()))
                    }
                    Event::Extended { .. } => unreachable!("extended_opcodes is off"),
                }
            }
        }
        Ok((data, ctl))
    }
}
