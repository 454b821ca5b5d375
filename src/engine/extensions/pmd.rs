//! permessage-deflate (RFC 7692): negotiation (section 7.1) and the
//! per-connection compression state (section 7.2).
//!
//! Window bits: RFC 7692 allows 8..=15 but zlib (and zlib-rs) cannot run a
//! raw-deflate compressor with an 8-bit (256 byte) window, and flate2 only
//! accepts 9..=15 for both directions. 8 is therefore run as 9 for both the
//! compressor and the decompressor. This is sound:
//! * the zlib family of compressors never emits a match distance larger than
//!   `window - 262` (`MAX_DIST`), i.e. at most 250 for a 9-bit window, so a
//!   stream made with 9 fits a peer's 8-bit (256 byte) window (checked by a
//!   test that decodes our output with an independent decoder and records the
//!   largest distance);
//! * a decompressor with a 512 byte window accepts every stream made for a 256
//!   byte window.
//!
//! The negotiated value (8) is still what goes on the wire and into
//! [`PmdParams`]; only the zlib configuration is raised to 9.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::negotiate::{ExtOffer, NegotiationError};

/// The registered extension name.
pub const PMD_NAME: &str = "permessage-deflate";

/// The four octets removed from the end of every compressed message and
/// appended again before decompression (RFC 7692 7.2.1 / 7.2.2).
pub(crate) const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Decompression proceeds in steps of at most this many output bytes, so the
/// output buffer never grows more than this past the message limit check.
pub(crate) const INFLATE_STEP: usize = 16 * 1024;

/// Agreed parameters of a permessage-deflate extension instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PmdParams {
    pub server_no_context_takeover: bool,
    pub client_no_context_takeover: bool,
    /// 8..=15; the LZ77 window the server compresses with (8 runs as 9, see
    /// the module docs).
    pub server_max_window_bits: u8,
    /// 8..=15; the LZ77 window the client compresses with.
    pub client_max_window_bits: u8,
}

impl Default for PmdParams {
    fn default() -> Self {
        PmdParams {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }
    }
}

/// Server-side preferences used by [`server_accept`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerPolicy {
    /// Largest window the server is willing to compress with (8..=15). If
    /// below 15 it is announced even when the client did not ask for a limit
    /// (RFC 7692 7.1.2.1 allows that); if the client asked for a smaller one,
    /// the client's value wins.
    pub server_max_window_bits: u8,
    /// Window the server would like the client to limit itself to (8..=15).
    /// It can only be imposed if the client offered `client_max_window_bits`
    /// (RFC 7692 7.1.2.2); otherwise the offer is still accepted and the
    /// client may use 15.
    pub client_max_window_bits: u8,
    /// Announce `server_no_context_takeover` even if not requested.
    pub server_no_context_takeover: bool,
    /// Announce `client_no_context_takeover` even if not offered.
    pub client_no_context_takeover: bool,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        ServerPolicy {
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
        }
    }
}

/// What a client offers (and later holds the server's response against).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ClientOffer {
    /// Ask the server not to use context takeover; the response must then
    /// contain `server_no_context_takeover`.
    pub server_no_context_takeover: bool,
    /// Announce that the client will not use context takeover.
    pub client_no_context_takeover: bool,
    /// Ask the server to limit its window (8..=15; clamped into that range).
    pub server_max_window_bits: Option<u8>,
    /// `Some(None)`: offer `client_max_window_bits` without a value (the
    /// server may then pick a limit); `Some(Some(n))`: the client promises to
    /// use at most `n` (clamped to 8..=15) and the server may lower it.
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Failure of a compression or decompression step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmdError {
    /// The compressed data is not a valid DEFLATE stream (or, never expected,
    /// the compressor reported an internal error).
    Corrupt,
    /// Decompressed output exceeded the configured message limit.
    TooBig,
}

impl PmdError {
    /// WebSocket close code to fail the connection with: 1007 (invalid
    /// payload data) for `Corrupt`, 1009 (message too big) for `TooBig`.
    pub fn close_code(self) -> u16 {
        match self {
            PmdError::Corrupt => 1007,
            PmdError::TooBig => 1009,
        }
    }
}

impl std::fmt::Display for PmdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PmdError::Corrupt => "corrupt compressed data",
            PmdError::TooBig => "decompressed message too big",
        })
    }
}

impl std::error::Error for PmdError {}

// ---------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------

/// The permessage-deflate parameters found in one offer or response.
#[derive(Default)]
struct ParsedParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

/// RFC 7692: "a decimal integer value without leading zeroes between 8 to
/// 15, inclusive".
fn parse_window_bits(v: &str) -> Option<u8> {
    match v {
        "8" => Some(8),
        "9" => Some(9),
        "10" => Some(10),
        "11" => Some(11),
        "12" => Some(12),
        "13" => Some(13),
        "14" => Some(14),
        "15" => Some(15),
        _ => None,
    }
}

/// Validates the parameter list of an offer (`response == false`) or a
/// response (`response == true`). Unknown names, duplicates and bad values
/// are errors (RFC 7692 section 7 / 7.1).
fn parse_params(
    params: &[(String, Option<String>)],
    response: bool,
) -> Result<ParsedParams, &'static str> {
    let mut out = ParsedParams::default();
    let mut seen = [false; 4];
    for (name, value) in params {
        let n = name.to_ascii_lowercase();
        let idx = match n.as_str() {
            "server_no_context_takeover" => 0,
            "client_no_context_takeover" => 1,
            "server_max_window_bits" => 2,
            "client_max_window_bits" => 3,
            _ => return Err("unknown permessage-deflate parameter"),
        };
        if seen[idx] {
            return Err("duplicate permessage-deflate parameter");
        }
        seen[idx] = true;
        match idx {
            0 | 1 => {
                if value.is_some() {
                    return Err("no_context_takeover parameter must not have a value");
                }
                if idx == 0 {
                    out.server_no_context_takeover = true;
                } else {
                    out.client_no_context_takeover = true;
                }
            }
            2 => {
                let v = value
                    .as_deref()
                    .ok_or("server_max_window_bits needs a value")?;
                out.server_max_window_bits =
                    Some(parse_window_bits(v).ok_or("invalid server_max_window_bits")?);
            }
            _ => {
                let bits = match value.as_deref() {
                    None if response => {
                        return Err("client_max_window_bits in a response needs a value")
                    }
                    None => None,
                    Some(v) => Some(parse_window_bits(v).ok_or("invalid client_max_window_bits")?),
                };
                out.client_max_window_bits = Some(bits);
            }
        }
    }
    Ok(out)
}

fn clamp_bits(b: u8) -> u8 {
    b.clamp(8, 15)
}

/// Server side: picks the first acceptable `permessage-deflate` offer (others
/// are skipped) and returns the agreed parameters and the response element,
/// e.g. `permessage-deflate; server_no_context_takeover; client_max_window_bits=10`.
///
/// An offer with an unknown or duplicated parameter or an invalid value is
/// declined (RFC 7692 7.1) and the next one is tried. Rules applied:
/// * `server_no_context_takeover` offered, or wanted by the policy ->
///   included;
/// * `client_no_context_takeover` offered, or wanted by the policy ->
///   included (the server then drops its decompressor after each message);
/// * `server_max_window_bits=N` offered -> included with
///   `min(N, policy)`; not offered -> included only if the policy is < 15;
/// * `client_max_window_bits[=N]` offered -> included with
///   `min(N or 15, policy)` if that is < 15 or `N` was given; not offered ->
///   never included (RFC 7692 7.1.2.2) and the client may use 15.
pub fn server_accept(offers: &[ExtOffer], policy: &ServerPolicy) -> Option<(PmdParams, String)> {
    offers
        .iter()
        .filter(|o| o.name.eq_ignore_ascii_case(PMD_NAME))
        .find_map(|o| accept_one(o, policy))
}

fn accept_one(offer: &ExtOffer, policy: &ServerPolicy) -> Option<(PmdParams, String)> {
    let p = parse_params(&offer.params, false).ok()?;

    let server_no_context_takeover =
        p.server_no_context_takeover || policy.server_no_context_takeover;
    let client_no_context_takeover =
        p.client_no_context_takeover || policy.client_no_context_takeover;

    let policy_server_bits = clamp_bits(policy.server_max_window_bits);
    let (server_bits, announce_server_bits) = match p.server_max_window_bits {
        Some(requested) => (requested.min(policy_server_bits), true),
        None => (policy_server_bits, policy_server_bits < 15),
    };

    let policy_client_bits = clamp_bits(policy.client_max_window_bits);
    let (client_bits, announce_client_bits) = match p.client_max_window_bits {
        None => (15, false),
        Some(limit) => {
            let bits = limit.unwrap_or(15).min(policy_client_bits);
            (bits, bits < 15 || limit.is_some())
        }
    };

    let mut resp = String::from(PMD_NAME);
    if server_no_context_takeover {
        resp.push_str("; server_no_context_takeover");
    }
    if client_no_context_takeover {
        resp.push_str("; client_no_context_takeover");
    }
    if announce_server_bits {
        resp.push_str(&format!("; server_max_window_bits={server_bits}"));
    }
    if announce_client_bits {
        resp.push_str(&format!("; client_max_window_bits={client_bits}"));
    }
    Some((
        PmdParams {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        },
        resp,
    ))
}

/// The offer element a client sends, e.g.
/// `permessage-deflate; client_no_context_takeover; client_max_window_bits`.
/// Window bit values are clamped to 8..=15.
pub fn client_offer_string(o: &ClientOffer) -> String {
    let mut s = String::from(PMD_NAME);
    if o.server_no_context_takeover {
        s.push_str("; server_no_context_takeover");
    }
    if o.client_no_context_takeover {
        s.push_str("; client_no_context_takeover");
    }
    if let Some(b) = o.server_max_window_bits {
        s.push_str(&format!("; server_max_window_bits={}", clamp_bits(b)));
    }
    match o.client_max_window_bits {
        None => {}
        Some(None) => s.push_str("; client_max_window_bits"),
        Some(Some(b)) => s.push_str(&format!("; client_max_window_bits={}", clamp_bits(b))),
    }
    s
}

/// Client side: validates the server's response element (the one whose name
/// is `permessage-deflate`) against what was offered. Any `Err` means the
/// client must _Fail the WebSocket Connection_ (RFC 7692 7.1):
/// * a name other than `permessage-deflate`;
/// * an unknown or duplicated parameter, a `*_no_context_takeover` with a
///   value, a window-bits value that is missing or not 8..=15;
/// * `server_no_context_takeover` offered but not in the response;
/// * `server_max_window_bits=N` offered and the response lacks it or has a
///   larger value;
/// * `client_max_window_bits` in the response although not offered, or
///   larger than the value offered.
///
/// If `client_max_window_bits=N` was offered and the response omits it, the
/// client keeps to its own announced `N`. The caller must also reject a
/// response that accepts permessage-deflate more than once.
pub fn client_accept_response(
    o: &ClientOffer,
    resp: &ExtOffer,
) -> Result<PmdParams, NegotiationError> {
    if !resp.name.eq_ignore_ascii_case(PMD_NAME) {
        return Err(NegotiationError("response is not permessage-deflate"));
    }
    let p = parse_params(&resp.params, true).map_err(NegotiationError)?;

    if o.server_no_context_takeover && !p.server_no_context_takeover {
        return Err(NegotiationError(
            "server_no_context_takeover was requested but not accepted",
        ));
    }

    let server_bits = match (
        o.server_max_window_bits.map(clamp_bits),
        p.server_max_window_bits,
    ) {
        (Some(_), None) => {
            return Err(NegotiationError(
                "server_max_window_bits was requested but not accepted",
            ))
        }
        (Some(offered), Some(got)) if got > offered => {
            return Err(NegotiationError(
                "server_max_window_bits larger than requested",
            ))
        }
        (_, Some(got)) => got,
        (None, None) => 15,
    };

    let client_bits = match (o.client_max_window_bits, p.client_max_window_bits) {
        (None, Some(_)) => {
            return Err(NegotiationError(
                "client_max_window_bits in response but not offered",
            ))
        }
        (Some(Some(offered)), Some(Some(got))) if got > clamp_bits(offered) => {
            return Err(NegotiationError(
                "client_max_window_bits larger than offered",
            ))
        }
        (_, Some(Some(got))) => got,
        // parse_params rejects a valueless client_max_window_bits in a response
        (_, Some(None)) => {
            return Err(NegotiationError(
                "client_max_window_bits in a response needs a value",
            ))
        }
        (Some(Some(offered)), None) => clamp_bits(offered),
        (Some(None) | None, None) => 15,
    };

    Ok(PmdParams {
        server_no_context_takeover: p.server_no_context_takeover,
        client_no_context_takeover: p.client_no_context_takeover,
        server_max_window_bits: server_bits,
        client_max_window_bits: client_bits,
    })
}

// ---------------------------------------------------------------------------
// Shared zlib helpers (also used by deflate_frame)
// ---------------------------------------------------------------------------

/// zlib configuration for a negotiated window (8 runs as 9, see module docs).
pub(crate) fn zlib_bits(negotiated: u8) -> u8 {
    negotiated.clamp(9, 15)
}

/// Heap held by a zlib-rs raw-deflate compressor with `bits` window bits
/// (measured with zlib-rs 0.6: a fixed 64 Ki-entry hash head, 16 Ki-symbol
/// literal buffers and the state, plus a double window and the `prev` chain).
pub(crate) fn deflate_state_bytes(bits: u8) -> usize {
    248_960 + 4 * (1usize << bits)
}

/// Heap held by a zlib-rs decompressor (measured with zlib-rs 0.6: it always
/// allocates a 32 KiB window, whatever the window bits, plus its state).
pub(crate) const INFLATE_STATE_BYTES: usize = 47_552;

pub(crate) fn new_compressor(level: u32, bits: u8) -> Compress {
    Compress::new_with_window_bits(Compression::new(level.min(9)), false, zlib_bits(bits))
}

pub(crate) fn new_decompressor(bits: u8) -> Decompress {
    Decompress::new_with_window_bits(false, zlib_bits(bits))
}

/// Compresses `input`, sync-flushes and appends the result minus the
/// trailing `00 00 ff ff` to `out` (RFC 7692 7.2.1). An empty input is
/// encoded as the single octet `00` without touching the compressor (zlib
/// emits nothing for a repeated flush with no new data).
pub(crate) fn compress_sync_stripped(
    c: &mut Compress,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), PmdError> {
    if input.is_empty() {
        out.push(0x00);
        return Ok(());
    }
    let start = out.len();
    let mut consumed = 0usize;
    loop {
        if out.capacity() - out.len() < 64 {
            // DEFLATE output of not-yet-consumed data rarely exceeds a bit
            // more than its size; grow in proportion, with a floor.
            out.reserve((input.len() - consumed) / 2 + 1024);
        }
        let before = c.total_in();
        c.compress_vec(&input[consumed..], out, FlushCompress::Sync)
            .map_err(|_| PmdError::Corrupt)?;
        consumed += usize::try_from(c.total_in() - before).map_err(|_| PmdError::Corrupt)?;
        if consumed >= input.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.len() < start + SYNC_TAIL.len() || out[out.len() - 4..] != SYNC_TAIL {
        out.truncate(start);
        return Err(PmdError::Corrupt);
    }
    out.truncate(out.len() - 4);
    Ok(())
}

/// Makes sure `out` has room for `need` more bytes, growing it geometrically
/// but never to more than `max_more` bytes past its current length.
fn reserve_bounded(out: &mut Vec<u8>, need: usize, max_more: usize) {
    if out.capacity() - out.len() >= need {
        return;
    }
    let more = out.len().clamp(need, max_more.max(need));
    out.reserve_exact(more);
}

/// Feeds `input` to `d`, appending output to `out` in bounded steps.
/// `produced` counts output bytes of the current message; exceeding `limit`
/// fails with `TooBig` after having appended at most `limit + 1` bytes in
/// total (`out` never grows past `len + limit + 1` on the caller's buffer).
/// Returns `Ok(true)` if the DEFLATE stream ended (a block with BFINAL set):
/// the remaining input is then ignored, as a DEFLATE decoder would.
pub(crate) fn inflate_bounded(
    d: &mut Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
    produced: &mut usize,
    limit: usize,
) -> Result<bool, PmdError> {
    loop {
        let room = limit.saturating_sub(*produced).saturating_add(1);
        let step = INFLATE_STEP.min(room);
        reserve_bounded(out, step, room);
        let start = out.len();
        out.resize(start + step, 0);
        let (in0, out0) = (d.total_in(), d.total_out());
        let res = d.decompress(input, &mut out[start..], FlushDecompress::None);
        let used = usize::try_from(d.total_in() - in0).map_err(|_| PmdError::Corrupt)?;
        let made = usize::try_from(d.total_out() - out0).map_err(|_| PmdError::Corrupt)?;
        out.truncate(start + made.min(step));
        input = input.get(used..).ok_or(PmdError::Corrupt)?;
        *produced = produced.saturating_add(made);
        if *produced > limit {
            return Err(PmdError::TooBig);
        }
        match res {
            Err(_) => return Err(PmdError::Corrupt),
            Ok(Status::StreamEnd) => return Ok(true),
            Ok(Status::Ok | Status::BufError) => {}
        }
        if input.is_empty() && made < step {
            return Ok(false);
        }
        if used == 0 && made == 0 {
            // No progress although there is input and output room: only a
            // broken stream can get here. Never loop forever.
            return if input.is_empty() {
                Ok(false)
            } else {
                Err(PmdError::Corrupt)
            };
        }
    }
}

// ---------------------------------------------------------------------------
// Session
// ---------------------------------------------------------------------------

/// Which end of the connection this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// Per-connection permessage-deflate state.
///
/// The compressor and decompressor are created on first use. After each
/// message, the one whose direction has `*_no_context_takeover` is dropped
/// (so an idle connection holds no zlib memory for it) unless
/// [`PmdSession::set_retain_state`] asked to keep and reset it instead.
/// After any error the session is poisoned: every later call returns the
/// same error (the connection must be failed anyway).
pub struct PmdSession {
    role: Role,
    params: PmdParams,
    max_message: usize,
    level: u32,
    retain_state: bool,
    compressor: Option<Compress>,
    decompressor: Option<Decompress>,
    /// Inside a compressed message (a fragment without `fin` was fed).
    rx_in_message: bool,
    /// Output bytes of the current incoming message so far.
    rx_produced: usize,
    /// The current incoming message's DEFLATE stream ended (BFINAL block).
    rx_stream_ended: bool,
    poisoned: Option<PmdError>,
}

impl PmdSession {
    /// `max_message` limits the decompressed size of one incoming message.
    /// The compression level defaults to 6 (zlib's default); see
    /// [`PmdSession::set_compression_level`].
    pub fn new(role: Role, params: PmdParams, max_message: usize) -> Self {
        PmdSession {
            role,
            params,
            max_message,
            level: 6,
            retain_state: false,
            compressor: None,
            decompressor: None,
            rx_in_message: false,
            rx_produced: 0,
            rx_stream_ended: false,
            poisoned: None,
        }
    }

    /// zlib level 0..=9 (values above 9 act as 9) for compressors created
    /// from now on. With zlib-rs, level 1 uses the "quick" strategy (static
    /// Huffman codes only: fast, but e.g. ten times larger output on long runs
    /// of zeros than level 2+).
    pub fn set_compression_level(&mut self, level: u32) {
        self.level = level.min(9);
    }

    /// If true, a no-context-takeover compressor/decompressor is reset and
    /// kept after each message instead of being dropped: saves an
    /// allocation per message (about 250-380 KB for a compressor) at the
    /// price of holding the memory while idle. Default false.
    pub fn set_retain_state(&mut self, retain: bool) {
        self.retain_state = retain;
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn params(&self) -> &PmdParams {
        &self.params
    }

    /// True between a `decompress_fragment(.., fin = false)` and the
    /// fragment with `fin = true`.
    pub fn in_incoming_message(&self) -> bool {
        self.rx_in_message
    }

    fn tx_bits(&self) -> u8 {
        match self.role {
            Role::Server => self.params.server_max_window_bits,
            Role::Client => self.params.client_max_window_bits,
        }
    }

    fn rx_bits(&self) -> u8 {
        match self.role {
            Role::Server => self.params.client_max_window_bits,
            Role::Client => self.params.server_max_window_bits,
        }
    }

    fn tx_no_context_takeover(&self) -> bool {
        match self.role {
            Role::Server => self.params.server_no_context_takeover,
            Role::Client => self.params.client_no_context_takeover,
        }
    }

    fn rx_no_context_takeover(&self) -> bool {
        match self.role {
            Role::Server => self.params.client_no_context_takeover,
            Role::Client => self.params.server_no_context_takeover,
        }
    }

    /// Compresses one whole message payload and appends the frame payload
    /// (compressed data without the trailing `00 00 ff ff`) to `out`. The
    /// caller sets RSV1 on the first frame of the message and may split the
    /// result into any number of fragments.
    pub fn compress_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), PmdError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        let (level, bits) = (self.level, self.tx_bits());
        let c = self
            .compressor
            .get_or_insert_with(|| new_compressor(level, bits));
        if let Err(e) = compress_sync_stripped(c, payload, out) {
            self.poisoned = Some(e);
            self.compressor = None;
            return Err(e);
        }
        if self.tx_no_context_takeover() {
            if self.retain_state {
                if let Some(c) = self.compressor.as_mut() {
                    c.reset();
                }
            } else {
                self.compressor = None;
            }
        }
        Ok(())
    }

    /// Streaming decompression of one compressed message (RSV1 was set on its
    /// first frame): call once per fragment, in order, with `fin` on the last
    /// one. Appends the decompressed bytes to `out` as they become available
    /// (`out` is not cleared; with `fin` the `00 00 ff ff` tail is appended to
    /// the input first).
    ///
    /// Errors: [`PmdError::Corrupt`] for an invalid DEFLATE stream,
    /// [`PmdError::TooBig`] once the message would exceed `max_message`
    /// bytes. Output is produced in steps of at most 16 KiB and checked before
    /// more room is made, so `out` never grows beyond `max_message + 1` bytes
    /// past its length at the start of the message (plus whatever capacity it
    /// already had). After an error `out` may hold a partial message.
    ///
    /// A message whose DEFLATE data ends with a BFINAL block (RFC 7692
    /// 7.2.3.4) is accepted: the rest of that message's input is ignored and
    /// the next message starts with a fresh decompressor.
    pub fn decompress_fragment(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), PmdError> {
        if let Some(e) = self.poisoned {
            return Err(e);
        }
        if !self.rx_in_message {
            self.rx_in_message = true;
            self.rx_produced = 0;
            self.rx_stream_ended = false;
        }
        match self.decompress_inner(input, fin, out) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.poisoned = Some(e);
                self.decompressor = None;
                self.rx_in_message = false;
                Err(e)
            }
        }
    }

    fn decompress_inner(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), PmdError> {
        let bits = self.rx_bits();
        let limit = self.max_message;
        let drop_after = self.rx_no_context_takeover();
        let d = self
            .decompressor
            .get_or_insert_with(|| new_decompressor(bits));
        if !self.rx_stream_ended {
            self.rx_stream_ended = inflate_bounded(d, input, out, &mut self.rx_produced, limit)?;
        }
        if fin {
            if !self.rx_stream_ended {
                self.rx_stream_ended =
                    inflate_bounded(d, &SYNC_TAIL, out, &mut self.rx_produced, limit)?;
            }
            self.rx_in_message = false;
            if self.rx_stream_ended || drop_after {
                if self.retain_state {
                    d.reset(false);
                } else {
                    self.decompressor = None;
                }
            }
        }
        Ok(())
    }

    /// Estimated heap held by the zlib state of this session: 0 when neither
    /// a compressor nor a decompressor exists. Figures measured with zlib-rs
    /// 0.6: compressor about 249 KB + 4 * 2^bits (about 371 KiB at 15 bits),
    /// decompressor about 46 KiB regardless of window bits.
    pub fn state_bytes(&self) -> usize {
        let c = if self.compressor.is_some() {
            deflate_state_bytes(zlib_bits(self.tx_bits()))
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
pub(crate) mod test_inflate {
    //! A tiny independent DEFLATE decoder (RFC 1951) for tests: decodes a raw
    //! stream completely and reports the largest match distance used.

    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
    }

    impl Bits<'_> {
        fn bit(&mut self) -> Option<u32> {
            let byte = *self.data.get(self.pos / 8)?;
            let b = (byte >> (self.pos % 8)) & 1;
            self.pos += 1;
            Some(u32::from(b))
        }

        fn bits(&mut self, n: u32) -> Option<u32> {
            let mut v = 0;
            for i in 0..n {
                v |= self.bit()? << i;
            }
            Some(v)
        }
    }

    struct Huffman {
        counts: [u16; 16],
        symbols: Vec<u16>,
    }

    impl Huffman {
        fn new(lengths: &[u8]) -> Huffman {
            let mut counts = [0u16; 16];
            for &l in lengths {
                counts[usize::from(l)] += 1;
            }
            counts[0] = 0;
            let mut offs = [0u16; 16];
            for i in 1..15 {
                offs[i + 1] = offs[i] + counts[i];
            }
            let mut symbols = vec![0u16; lengths.len()];
            for (sym, &l) in lengths.iter().enumerate() {
                if l != 0 {
                    symbols[usize::from(offs[usize::from(l)])] = sym as u16;
                    offs[usize::from(l)] += 1;
                }
            }
            Huffman { counts, symbols }
        }

        fn decode(&self, b: &mut Bits<'_>) -> Option<u16> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= b.bit()? as i32;
                let count = i32::from(self.counts[len]);
                if code - count < first {
                    return self.symbols.get((index + code - first) as usize).copied();
                }
                index += count;
                first += count;
                first <<= 1;
                code <<= 1;
            }
            None
        }
    }

    const LEN_BASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
        131, 163, 195, 227, 258,
    ];
    const LEN_EXTRA: [u8; 29] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ];
    const DIST_BASE: [u16; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
        2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
    ];
    const DIST_EXTRA: [u8; 30] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12,
        13, 13,
    ];

    /// Decodes `data` (a raw DEFLATE stream; decoding stops after a BFINAL
    /// block or when the input ends at a block boundary), with `history` as
    /// the preceding window. Returns (output, largest distance) or None.
    pub fn inflate(data: &[u8], history: &[u8]) -> Option<(Vec<u8>, usize)> {
        let mut b = Bits { data, pos: 0 };
        let mut out = history.to_vec();
        let skip = out.len();
        let mut max_dist = 0usize;
        loop {
            if b.pos.div_ceil(8) >= data.len() {
                break;
            }
            let last = b.bit()?;
            let kind = b.bits(2)?;
            match kind {
                0 => {
                    b.pos = b.pos.div_ceil(8) * 8;
                    let len = b.bits(16)?;
                    let nlen = b.bits(16)?;
                    if len != !nlen & 0xffff {
                        return None;
                    }
                    for _ in 0..len {
                        out.push(b.bits(8)? as u8);
                    }
                }
                1 | 2 => {
                    let (lit, dist) = if kind == 1 {
                        let mut l = [8u8; 288];
                        l[144..256].fill(9);
                        l[256..280].fill(7);
                        (Huffman::new(&l), Huffman::new(&[5u8; 30]))
                    } else {
                        let hlit = b.bits(5)? as usize + 257;
                        let hdist = b.bits(5)? as usize + 1;
                        let hclen = b.bits(4)? as usize + 4;
                        const ORDER: [usize; 19] = [
                            16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
                        ];
                        let mut cl = [0u8; 19];
                        for &i in ORDER.iter().take(hclen) {
                            cl[i] = b.bits(3)? as u8;
                        }
                        let clh = Huffman::new(&cl);
                        let mut lens = Vec::new();
                        while lens.len() < hlit + hdist {
                            let sym = clh.decode(&mut b)?;
                            match sym {
                                0..=15 => lens.push(sym as u8),
                                16 => {
                                    let prev = *lens.last()?;
                                    for _ in 0..3 + b.bits(2)? {
                                        lens.push(prev);
                                    }
                                }
                                17 => lens.extend(std::iter::repeat_n(0, 3 + b.bits(3)? as usize)),
                                _ => lens.extend(std::iter::repeat_n(0, 11 + b.bits(7)? as usize)),
                            }
                        }
                        (
                            Huffman::new(&lens[..hlit]),
                            Huffman::new(&lens[hlit..hlit + hdist]),
                        )
                    };
                    loop {
                        let sym = usize::from(lit.decode(&mut b)?);
                        if sym < 256 {
                            out.push(sym as u8);
                        } else if sym == 256 {
                            break;
                        } else {
                            let i = sym - 257;
                            let len = usize::from(*LEN_BASE.get(i)?)
                                + b.bits(u32::from(LEN_EXTRA[i]))? as usize;
                            let di = usize::from(dist.decode(&mut b)?);
                            let d = usize::from(*DIST_BASE.get(di)?)
                                + b.bits(u32::from(DIST_EXTRA[di]))? as usize;
                            if d > out.len() {
                                return None;
                            }
                            max_dist = max_dist.max(d);
                            for _ in 0..len {
                                out.push(out[out.len() - d]);
                            }
                        }
                    }
                }
                _ => return None,
            }
            if last == 1 {
                break;
            }
        }
        Some((out.split_off(skip), max_dist))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::extensions::negotiate::parse_extensions;
    use proptest::prelude::*;

    fn offers(s: &str) -> Vec<ExtOffer> {
        parse_extensions(s.as_bytes()).unwrap()
    }

    fn accept(s: &str) -> Option<(PmdParams, String)> {
        server_accept(&offers(s), &ServerPolicy::default())
    }

    fn resp(s: &str) -> ExtOffer {
        let mut v = offers(s);
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    fn p(snct: bool, cnct: bool, sbits: u8, cbits: u8) -> PmdParams {
        PmdParams {
            server_no_context_takeover: snct,
            client_no_context_takeover: cnct,
            server_max_window_bits: sbits,
            client_max_window_bits: cbits,
        }
    }

    // ----- negotiation: server side -----

    #[test]
    fn server_accepts_plain_offer() {
        assert_eq!(
            accept("permessage-deflate"),
            Some((p(false, false, 15, 15), "permessage-deflate".into()))
        );
        // case-insensitive names, canonical response
        assert_eq!(
            accept("PerMessage-Deflate; Client_Max_Window_Bits")
                .unwrap()
                .1,
            "permessage-deflate"
        );
    }

    #[test]
    fn server_skips_other_extensions() {
        assert_eq!(
            accept("x-webkit-deflate-frame, foo; bar=1, permessage-deflate")
                .unwrap()
                .1,
            "permessage-deflate"
        );
        assert_eq!(accept("x-webkit-deflate-frame, deflate-frame"), None);
        assert_eq!(accept(""), None);
    }

    #[test]
    fn server_declines_bad_offers_and_falls_back() {
        for bad in [
            "permessage-deflate; foo",
            "permessage-deflate; foo=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=true",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=08",
            "permessage-deflate; server_max_window_bits=015",
            "permessage-deflate; server_max_window_bits=a",
            "permessage-deflate; server_max_window_bits=-9",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=09",
        ] {
            assert_eq!(accept(bad), None, "{bad} must be declined");
            // the next, valid offer is taken instead
            let two = format!("{bad}, permessage-deflate; client_no_context_takeover");
            assert_eq!(
                accept(&two),
                Some((
                    p(false, true, 15, 15),
                    "permessage-deflate; client_no_context_takeover".into()
                )),
                "{two}"
            );
        }
    }

    #[test]
    fn server_no_context_takeover_is_honoured() {
        assert_eq!(
            accept("permessage-deflate; server_no_context_takeover"),
            Some((
                p(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover".into()
            ))
        );
        let pol = ServerPolicy {
            server_no_context_takeover: true,
            ..Default::default()
        };
        assert_eq!(
            server_accept(&offers("permessage-deflate"), &pol),
            Some((
                p(true, false, 15, 15),
                "permessage-deflate; server_no_context_takeover".into()
            ))
        );
    }

    #[test]
    fn client_no_context_takeover_echoed_or_imposed() {
        assert_eq!(
            accept("permessage-deflate; client_no_context_takeover").unwrap(),
            (
                p(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover".into()
            )
        );
        let pol = ServerPolicy {
            client_no_context_takeover: true,
            ..Default::default()
        };
        assert_eq!(
            server_accept(&offers("permessage-deflate"), &pol).unwrap(),
            (
                p(false, true, 15, 15),
                "permessage-deflate; client_no_context_takeover".into()
            )
        );
    }

    #[test]
    fn server_max_window_bits_rules() {
        // requested: reply with same or smaller
        assert_eq!(
            accept("permessage-deflate; server_max_window_bits=10").unwrap(),
            (
                p(false, false, 10, 15),
                "permessage-deflate; server_max_window_bits=10".into()
            )
        );
        let pol = ServerPolicy {
            server_max_window_bits: 9,
            ..Default::default()
        };
        assert_eq!(
            server_accept(
                &offers("permessage-deflate; server_max_window_bits=12"),
                &pol
            )
            .unwrap(),
            (
                p(false, false, 9, 15),
                "permessage-deflate; server_max_window_bits=9".into()
            )
        );
        // not requested: server may still announce its smaller window
        let pol = ServerPolicy {
            server_max_window_bits: 12,
            ..Default::default()
        };
        assert_eq!(
            server_accept(&offers("permessage-deflate"), &pol).unwrap(),
            (
                p(false, false, 12, 15),
                "permessage-deflate; server_max_window_bits=12".into()
            )
        );
        // 8 is honoured (compressor runs with 9, whose distances fit 8)
        assert_eq!(
            accept("permessage-deflate; server_max_window_bits=8").unwrap(),
            (
                p(false, false, 8, 15),
                "permessage-deflate; server_max_window_bits=8".into()
            )
        );
        // quoted value
        assert_eq!(
            accept("permessage-deflate; server_max_window_bits=\"11\"")
                .unwrap()
                .0,
            p(false, false, 11, 15)
        );
    }

    #[test]
    fn client_max_window_bits_rules() {
        // without value and no server preference: nothing to say
        assert_eq!(
            accept("permessage-deflate; client_max_window_bits").unwrap(),
            (p(false, false, 15, 15), "permessage-deflate".into())
        );
        // with value: acknowledged
        assert_eq!(
            accept("permessage-deflate; client_max_window_bits=12").unwrap(),
            (
                p(false, false, 15, 12),
                "permessage-deflate; client_max_window_bits=12".into()
            )
        );
        let pol = ServerPolicy {
            client_max_window_bits: 10,
            ..Default::default()
        };
        // offered without value: server picks its preference
        assert_eq!(
            server_accept(&offers("permessage-deflate; client_max_window_bits"), &pol).unwrap(),
            (
                p(false, false, 15, 10),
                "permessage-deflate; client_max_window_bits=10".into()
            )
        );
        // offered with a smaller value: the smaller wins
        assert_eq!(
            server_accept(
                &offers("permessage-deflate; client_max_window_bits=9"),
                &pol
            )
            .unwrap(),
            (
                p(false, false, 15, 9),
                "permessage-deflate; client_max_window_bits=9".into()
            )
        );
        // not offered: MUST NOT be included (7.1.2.2), client may use 15
        assert_eq!(
            server_accept(&offers("permessage-deflate"), &pol).unwrap(),
            (p(false, false, 15, 15), "permessage-deflate".into())
        );
    }

    #[test]
    fn response_parses_as_a_valid_extension_element() {
        let (_, r) = server_accept(
            &offers("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits"),
            &ServerPolicy { client_max_window_bits: 11, ..Default::default() },
        )
        .unwrap();
        assert_eq!(
            r,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=11"
        );
        assert_eq!(offers(&r).len(), 1);
    }

    /// The offers sent by the Autobahn testsuite fuzzing client in cases
    /// 12.x / 13.x (PerMessageDeflateOffer(accept_no_context_takeover,
    /// accept_max_window_bits, request_no_context_takeover,
    /// request_max_window_bits)); the server must accept each and its reply
    /// must satisfy the same offer seen from the client side.
    #[test]
    fn autobahn_13_offers() {
        let cases: &[(&str, ClientOffer)] = &[
            (
                "permessage-deflate",
                ClientOffer::default(),
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits",
                ClientOffer {
                    client_no_context_takeover: true,
                    client_max_window_bits: Some(None),
                    ..Default::default()
                },
            ),
            (
                "permessage-deflate; client_max_window_bits",
                ClientOffer {
                    client_max_window_bits: Some(None),
                    ..Default::default()
                },
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover",
                ClientOffer {
                    client_no_context_takeover: true,
                    client_max_window_bits: Some(None),
                    server_no_context_takeover: true,
                    ..Default::default()
                },
            ),
        ];
        for (base, co) in cases {
            for bits in [None, Some(8u8), Some(9), Some(12), Some(15)] {
                let mut co = *co;
                co.server_max_window_bits = bits;
                // Autobahn's parameter order; ours differs only in order
                let s = match bits {
                    None => base.to_string(),
                    Some(b) => format!("{base}; server_max_window_bits={b}"),
                };
                let mut ours = offers(&client_offer_string(&co)).remove(0).params;
                let mut theirs = offers(&s).remove(0).params;
                ours.sort();
                theirs.sort();
                assert_eq!(ours, theirs);
                // also as several comma-separated offers, like 13.7
                let multi = format!("{s}, {base}, permessage-deflate");
                for header in [s.clone(), multi] {
                    for pol in [
                        ServerPolicy::default(),
                        ServerPolicy {
                            server_max_window_bits: 9,
                            client_max_window_bits: 9,
                            server_no_context_takeover: true,
                            client_no_context_takeover: true,
                        },
                    ] {
                        let (sp, r) = server_accept(&offers(&header), &pol)
                            .unwrap_or_else(|| panic!("{header} declined"));
                        let cp = client_accept_response(&co, &resp(&r))
                            .unwrap_or_else(|e| panic!("{header} -> {r}: {e}"));
                        assert_eq!(sp, cp, "{header} -> {r}");
                        if let Some(b) = bits {
                            assert!(sp.server_max_window_bits <= b);
                        }
                        if co.server_no_context_takeover {
                            assert!(sp.server_no_context_takeover);
                        }
                    }
                }
            }
        }
    }

    // ----- negotiation: client side -----

    #[test]
    fn client_offer_strings() {
        assert_eq!(
            client_offer_string(&ClientOffer::default()),
            "permessage-deflate"
        );
        assert_eq!(
            client_offer_string(&ClientOffer {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(10),
                client_max_window_bits: Some(Some(20)),
            }),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=15"
        );
        assert_eq!(
            client_offer_string(&ClientOffer {
                client_max_window_bits: Some(None),
                ..Default::default()
            }),
            "permessage-deflate; client_max_window_bits"
        );
    }

    #[test]
    fn client_accepts_valid_responses() {
        let plain = ClientOffer::default();
        assert_eq!(
            client_accept_response(&plain, &resp("permessage-deflate")),
            Ok(p(false, false, 15, 15))
        );
        // server may add server_no_context_takeover / client_no_context_takeover /
        // server_max_window_bits unasked
        assert_eq!(
            client_accept_response(
                &plain,
                &resp("permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8")
            ),
            Ok(p(true, true, 8, 15))
        );
        let co = ClientOffer {
            server_max_window_bits: Some(12),
            client_max_window_bits: Some(None),
            ..Default::default()
        };
        assert_eq!(
            client_accept_response(
                &co,
                &resp("permessage-deflate; server_max_window_bits=12; client_max_window_bits=9")
            ),
            Ok(p(false, false, 12, 9))
        );
        assert_eq!(
            client_accept_response(&co, &resp("permessage-deflate; server_max_window_bits=10")),
            Ok(p(false, false, 10, 15))
        );
        // offered client_max_window_bits=11, response silent: keep our promise
        let co = ClientOffer {
            client_max_window_bits: Some(Some(11)),
            ..Default::default()
        };
        assert_eq!(
            client_accept_response(&co, &resp("permessage-deflate")),
            Ok(p(false, false, 15, 11))
        );
        assert_eq!(
            client_accept_response(&co, &resp("permessage-deflate; client_max_window_bits=11")),
            Ok(p(false, false, 15, 11))
        );
        assert_eq!(
            client_accept_response(
                &co,
                &resp("Permessage-Deflate; Client_Max_Window_Bits=\"10\"")
            ),
            Ok(p(false, false, 15, 10))
        );
    }

    #[test]
    fn client_rejects_invalid_responses() {
        let plain = ClientOffer::default();
        let all = ClientOffer {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: Some(10),
            client_max_window_bits: Some(Some(10)),
        };
        let cases: &[(&ClientOffer, &str)] = &[
            (&plain, "deflate-frame"),
            (&plain, "permessage-deflate; foo"),
            (&plain, "permessage-deflate; server_no_context_takeover; server_no_context_takeover"),
            (&plain, "permessage-deflate; client_no_context_takeover; client_no_context_takeover"),
            (&plain, "permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"),
            (&plain, "permessage-deflate; server_no_context_takeover=1"),
            (&plain, "permessage-deflate; server_max_window_bits"),
            (&plain, "permessage-deflate; server_max_window_bits=7"),
            (&plain, "permessage-deflate; server_max_window_bits=16"),
            (&plain, "permessage-deflate; server_max_window_bits=010"),
            // client_max_window_bits not offered
            (&plain, "permessage-deflate; client_max_window_bits=15"),
            // server ignored our requests
            (&all, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10"),
            (&all, "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"),
            // larger than offered
            (&all, "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"),
            (
                &all,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=11",
            ),
            // valueless client_max_window_bits in a response
            (
                &all,
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
            ),
        ];
        for (co, r) in cases {
            assert!(
                client_accept_response(co, &resp(r)).is_err(),
                "{r} must be rejected for {co:?}"
            );
        }
        // and the fully matching response is fine
        assert_eq!(
            client_accept_response(
                &all,
                &resp("permessage-deflate; server_no_context_takeover; server_max_window_bits=10")
            ),
            Ok(p(true, false, 10, 10))
        );
    }

    fn arb_client_offer() -> impl Strategy<Value = ClientOffer> {
        (
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(8u8..=15),
            proptest::option::of(proptest::option::of(8u8..=15)),
        )
            .prop_map(|(a, b, c, d)| ClientOffer {
                server_no_context_takeover: a,
                client_no_context_takeover: b,
                server_max_window_bits: c,
                client_max_window_bits: d,
            })
    }

    fn arb_policy() -> impl Strategy<Value = ServerPolicy> {
        (8u8..=15, 8u8..=15, any::<bool>(), any::<bool>()).prop_map(|(a, b, c, d)| ServerPolicy {
            server_max_window_bits: a,
            client_max_window_bits: b,
            server_no_context_takeover: c,
            client_no_context_takeover: d,
        })
    }

    proptest! {
        /// Whatever a conforming client offers, our server accepts it, and
        /// our client validates that reply to the same parameters.
        #[test]
        fn server_and_client_agree(co in arb_client_offer(), pol in arb_policy()) {
            let s = client_offer_string(&co);
            let (sp, r) = server_accept(&offers(&s), &pol).unwrap();
            let cp = client_accept_response(&co, &resp(&r)).unwrap();
            prop_assert_eq!(sp, cp);
            prop_assert!(sp.server_max_window_bits <= pol.server_max_window_bits);
            if let Some(Some(b)) = co.client_max_window_bits {
                prop_assert!(sp.client_max_window_bits <= b);
            }
        }
    }

    // ----- data path -----

    const HELLO_COMPRESSED: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

    fn session(role: Role, params: PmdParams) -> PmdSession {
        PmdSession::new(role, params, 1 << 20)
    }

    fn compress(s: &mut PmdSession, m: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        s.compress_message(m, &mut out).unwrap();
        out
    }

    fn decompress(s: &mut PmdSession, m: &[u8]) -> Result<Vec<u8>, PmdError> {
        let mut out = Vec::new();
        s.decompress_fragment(m, true, &mut out)?;
        Ok(out)
    }

    #[test]
    fn rfc7692_7_2_3_1_hello() {
        let mut tx = session(Role::Server, PmdParams::default());
        assert_eq!(compress(&mut tx, b"Hello"), HELLO_COMPRESSED);
        let mut rx = session(Role::Client, PmdParams::default());
        assert_eq!(decompress(&mut rx, &HELLO_COMPRESSED).unwrap(), b"Hello");
        // the RFC's fragmented form: "f2 48 cd" + "c9 c9 07 00"
        let mut rx = session(Role::Client, PmdParams::default());
        let mut out = Vec::new();
        rx.decompress_fragment(&[0xf2, 0x48, 0xcd], false, &mut out)
            .unwrap();
        assert!(rx.in_incoming_message());
        rx.decompress_fragment(&[0xc9, 0xc9, 0x07, 0x00], true, &mut out)
            .unwrap();
        assert!(!rx.in_incoming_message());
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn hello_at_every_level_round_trips() {
        for level in 0..=9 {
            let mut tx = session(Role::Client, PmdParams::default());
            tx.set_compression_level(level);
            let c = compress(&mut tx, b"Hello");
            let mut rx = session(Role::Server, PmdParams::default());
            assert_eq!(decompress(&mut rx, &c).unwrap(), b"Hello", "level {level}");
        }
    }

    #[test]
    fn rfc7692_7_2_3_2_context_takeover() {
        let mut tx = session(Role::Server, PmdParams::default());
        let mut rx = session(Role::Client, PmdParams::default());
        let first = compress(&mut tx, b"Hello");
        assert_eq!(first, HELLO_COMPRESSED);
        let second = compress(&mut tx, b"Hello");
        assert_eq!(second, [0xf2, 0x00, 0x11, 0x00, 0x00]);
        assert_eq!(decompress(&mut rx, &first).unwrap(), b"Hello");
        assert_eq!(decompress(&mut rx, &second).unwrap(), b"Hello");
    }

    #[test]
    fn no_context_takeover_repeats_bytes() {
        let params = p(true, true, 15, 15);
        for role in [Role::Server, Role::Client] {
            let mut tx = session(role, params);
            let mut rx = session(
                if role == Role::Server {
                    Role::Client
                } else {
                    Role::Server
                },
                params,
            );
            for _ in 0..3 {
                let c = compress(&mut tx, b"Hello");
                assert_eq!(c, HELLO_COMPRESSED);
                assert_eq!(tx.state_bytes(), 0);
                assert_eq!(decompress(&mut rx, &c).unwrap(), b"Hello");
                assert_eq!(rx.state_bytes(), 0);
            }
        }
    }

    #[test]
    fn context_takeover_second_message_cannot_be_decoded_alone() {
        let mut tx = session(Role::Server, PmdParams::default());
        let _ = compress(&mut tx, b"Hello");
        let second = compress(&mut tx, b"Hello");
        let mut fresh = session(Role::Client, PmdParams::default());
        assert_eq!(decompress(&mut fresh, &second), Err(PmdError::Corrupt));
    }

    #[test]
    fn rfc7692_7_2_3_3_uncompressed_block() {
        let m = [
            0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
        ];
        let mut rx = session(Role::Server, PmdParams::default());
        assert_eq!(decompress(&mut rx, &m).unwrap(), b"Hello");
        assert_eq!(decompress(&mut rx, &m).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_4_bfinal_block() {
        let m = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
        let mut rx = session(Role::Server, PmdParams::default());
        assert_eq!(decompress(&mut rx, &m).unwrap(), b"Hello");
        // the stream ended; the next message starts a new one
        assert_eq!(rx.state_bytes(), 0);
        assert_eq!(decompress(&mut rx, &m).unwrap(), b"Hello");
        assert_eq!(decompress(&mut rx, &HELLO_COMPRESSED).unwrap(), b"Hello");
        // without the RFC's extra 0x00 octet it still decodes
        assert_eq!(decompress(&mut rx, &m[..7]).unwrap(), b"Hello");
        // split anywhere
        for cut in 0..=m.len() {
            let mut out = Vec::new();
            rx.decompress_fragment(&m[..cut], false, &mut out).unwrap();
            rx.decompress_fragment(&m[cut..], true, &mut out).unwrap();
            assert_eq!(out, b"Hello");
        }
    }

    #[test]
    fn rfc7692_7_2_3_5_two_blocks() {
        let m = [
            0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
        ];
        let mut rx = session(Role::Server, PmdParams::default());
        assert_eq!(decompress(&mut rx, &m).unwrap(), b"Hello");
    }

    #[test]
    fn rfc7692_7_2_3_6_empty_message() {
        let mut tx = session(Role::Server, PmdParams::default());
        let mut rx = session(Role::Client, PmdParams::default());
        // empty first, then after some context, then twice in a row
        for m in [&b""[..], b"abc", b"", b"", b"abcabc", b""] {
            let c = compress(&mut tx, m);
            if m.is_empty() {
                assert_eq!(c, [0x00]);
            }
            assert_eq!(decompress(&mut rx, &c).unwrap(), m);
        }
        // a message of only empty fragments
        let mut out = Vec::new();
        rx.decompress_fragment(&[], false, &mut out).unwrap();
        rx.decompress_fragment(&[0x00], false, &mut out).unwrap();
        rx.decompress_fragment(&[], true, &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn fragments_split_anywhere_decode_the_same() {
        let mut tx = session(Role::Client, PmdParams::default());
        let msg: Vec<u8> = (0..3000u32)
            .map(|i| (i % 251) as u8 ^ (i / 97) as u8)
            .collect();
        let c1 = compress(&mut tx, &msg);
        let c2 = compress(&mut tx, &msg);
        // every single cut, and every pair of cuts on a shorter message
        for cut in 0..=c1.len() {
            let mut rx = session(Role::Server, PmdParams::default());
            let mut out = Vec::new();
            rx.decompress_fragment(&c1[..cut], false, &mut out).unwrap();
            rx.decompress_fragment(&c1[cut..], true, &mut out).unwrap();
            assert_eq!(out, msg);
            // context carried on correctly after a split message
            assert_eq!(decompress(&mut rx, &c2).unwrap(), msg);
        }
        let mut tx = session(Role::Client, PmdParams::default());
        let c = compress(&mut tx, b"Hello Hello Hello, hello world");
        for a in 0..=c.len() {
            for b in a..=c.len() {
                let mut rx = session(Role::Server, PmdParams::default());
                let mut out = Vec::new();
                rx.decompress_fragment(&c[..a], false, &mut out).unwrap();
                rx.decompress_fragment(&c[a..b], false, &mut out).unwrap();
                rx.decompress_fragment(&c[b..], true, &mut out).unwrap();
                assert_eq!(out, b"Hello Hello Hello, hello world");
            }
        }
    }

    #[test]
    fn state_bytes_lifecycle() {
        // takeover on both sides: state is kept
        let mut s = session(Role::Server, PmdParams::default());
        assert_eq!(s.state_bytes(), 0);
        let c = compress(&mut s, b"Hello");
        assert_eq!(s.state_bytes(), deflate_state_bytes(15));
        let mut peer = session(Role::Client, PmdParams::default());
        decompress(&mut peer, &c).unwrap();
        assert_eq!(peer.state_bytes(), INFLATE_STATE_BYTES);

        // server_no_context_takeover only: server's compressor and client's
        // decompressor go, the other direction stays
        let params = p(true, false, 15, 10);
        let mut srv = session(Role::Server, params);
        let mut cli = session(Role::Client, params);
        let c = compress(&mut srv, b"Hello");
        assert_eq!(srv.state_bytes(), 0);
        decompress(&mut cli, &c).unwrap();
        assert_eq!(cli.state_bytes(), 0);
        let c = compress(&mut cli, b"Hello");
        assert_eq!(cli.state_bytes(), deflate_state_bytes(10));
        decompress(&mut srv, &c).unwrap();
        assert_eq!(srv.state_bytes(), INFLATE_STATE_BYTES);

        // a message in progress holds its decompressor even with no takeover
        let params = p(true, true, 15, 15);
        let mut srv = session(Role::Server, params);
        let mut out = Vec::new();
        srv.decompress_fragment(&HELLO_COMPRESSED[..3], false, &mut out)
            .unwrap();
        assert_eq!(srv.state_bytes(), INFLATE_STATE_BYTES);
        srv.decompress_fragment(&HELLO_COMPRESSED[3..], true, &mut out)
            .unwrap();
        assert_eq!(srv.state_bytes(), 0);
        assert_eq!(out, b"Hello");

        // retain_state: reset instead of drop, output identical
        let mut srv = session(Role::Server, params);
        srv.set_retain_state(true);
        for _ in 0..2 {
            assert_eq!(compress(&mut srv, b"Hello"), HELLO_COMPRESSED);
            assert_eq!(decompress(&mut srv, &HELLO_COMPRESSED).unwrap(), b"Hello");
            assert_eq!(
                srv.state_bytes(),
                deflate_state_bytes(15) + INFLATE_STATE_BYTES
            );
        }
    }

    #[test]
    fn window_bits_8_fit_a_256_byte_window() {
        // Compressible data with repeats at every distance up to 32 KiB.
        let mut data = Vec::new();
        let mut x: u32 = 1;
        for i in 0..200_000u32 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let b = if i % 7 == 0 {
                (x >> 24) as u8
            } else {
                (x >> 29) as u8 + b'a'
            };
            data.push(b);
        }
        for bits in 8..=15u8 {
            let params = p(false, false, bits, bits);
            let mut tx = session(Role::Server, params);
            let mut history = Vec::new();
            let mut max_seen = 0;
            for chunk in data.chunks(40_000) {
                let mut c = compress(&mut tx, chunk);
                c.extend_from_slice(&SYNC_TAIL);
                let (dec, dist) = test_inflate::inflate(&c, &history).unwrap();
                assert_eq!(dec, chunk);
                history.extend_from_slice(chunk);
                max_seen = max_seen.max(dist);
            }
            let window = 1usize << bits;
            assert!(max_seen <= window, "bits {bits}: distance {max_seen}");
            if bits == 8 {
                assert!(max_seen <= 256, "{max_seen}");
                assert!(max_seen > 100, "test data should use long distances");
            }
            // and our own decompressor with the same negotiated value
            let mut tx = session(Role::Server, params);
            let mut rx = session(Role::Client, params);
            for chunk in data.chunks(40_000) {
                assert_eq!(
                    decompress(&mut rx, &compress(&mut tx, chunk)).unwrap(),
                    chunk
                );
            }
        }
    }

    /// A stream using distance 256 (the largest an 8-bit window allows),
    /// reaching back into the previous message, decodes with bits = 8.
    #[test]
    fn distance_256_decodes_with_negotiated_8() {
        // Message 1: 256 literal bytes as a stored block, then the header
        // octet of the empty stored block the 00 00 ff ff tail completes.
        let first: Vec<u8> = (0..=255u8).collect();
        let mut m1 = vec![0x00, 0x00, 0x01, 0xff, 0xfe];
        m1.extend_from_slice(&first);
        m1.push(0x00);
        // Message 2: fixed-Huffman block: <len 3, dist 256> then end of block,
        // then sync-flush style empty stored block (tail stripped).
        // Bits (LSB first): BFINAL=0, BTYPE=01 -> 0,1,0
        // length 3 = code 257 (7 bits 0000001, Huffman codes are sent MSB first)
        // distance 256 = code 15 (5 bits 01111) + 6 extra bits (256-193=63)
        // end of block = code 256 (7 bits 0000000)
        let mut bits: Vec<u8> = vec![0, 1, 0];
        bits.extend([0, 0, 0, 0, 0, 0, 1]);
        bits.extend([0, 1, 1, 1, 1]);
        bits.extend((0..6).map(|i| (63u8 >> i) & 1));
        bits.extend([0; 7]);
        bits.extend([0, 0, 0]); // stored block header, BFINAL=0
        let mut m2 = vec![0u8; bits.len().div_ceil(8)];
        for (i, b) in bits.iter().enumerate() {
            m2[i / 8] |= b << (i % 8);
        }
        let params = p(false, false, 8, 8);
        let mut rx = session(Role::Client, params);
        assert_eq!(decompress(&mut rx, &m1).unwrap(), first);
        assert_eq!(decompress(&mut rx, &m2).unwrap(), [0, 1, 2]);
        let (dec, dist) = test_inflate::inflate(&[&m2[..], &SYNC_TAIL].concat(), &first).unwrap();
        assert_eq!((dec, dist), (vec![0, 1, 2], 256));
    }

    #[test]
    fn corrupt_inputs() {
        for bad in [
            &[0xff, 0xff, 0xff][..],         // reserved block type 3
            &[0x00, 0x05, 0x00, 0x00, 0x00], // stored LEN/NLEN mismatch
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0xff, 0xff],
            &[0x02, 0x20, 0x00], // distance beyond start
        ] {
            let mut rx = session(Role::Server, PmdParams::default());
            assert_eq!(
                decompress(&mut rx, bad),
                Err(PmdError::Corrupt),
                "{bad:02x?}"
            );
            // poisoned
            assert_eq!(
                decompress(&mut rx, &HELLO_COMPRESSED),
                Err(PmdError::Corrupt)
            );
            let mut out = Vec::new();
            assert_eq!(rx.compress_message(b"x", &mut out), Err(PmdError::Corrupt));
            assert_eq!(rx.state_bytes(), 0);
        }
        assert_eq!(PmdError::Corrupt.close_code(), 1007);
        assert_eq!(PmdError::TooBig.close_code(), 1009);
    }

    #[test]
    fn limit_is_exact() {
        let msg = vec![b'a'; 1000];
        let mut tx = session(Role::Server, PmdParams::default());
        let c = compress(&mut tx, &msg);
        let mut rx = PmdSession::new(Role::Client, PmdParams::default(), 1000);
        assert_eq!(decompress(&mut rx, &c).unwrap(), msg);
        let mut rx = PmdSession::new(Role::Client, PmdParams::default(), 999);
        assert_eq!(decompress(&mut rx, &c), Err(PmdError::TooBig));
        assert_eq!(decompress(&mut rx, &c), Err(PmdError::TooBig));
        // the limit is per message, not per connection
        let mut rx = PmdSession::new(Role::Client, PmdParams::default(), 1000);
        let mut tx = session(Role::Server, PmdParams::default());
        for _ in 0..5 {
            assert_eq!(decompress(&mut rx, &compress(&mut tx, &msg)).unwrap(), msg);
        }
        // and over several fragments
        let mut rx = PmdSession::new(Role::Client, PmdParams::default(), 1500);
        let mut tx = session(Role::Server, PmdParams::default());
        let big = vec![b'b'; 1501];
        let c = compress(&mut tx, &big);
        let mut out = Vec::new();
        let mut res = Ok(());
        for (i, ch) in c.chunks(1).enumerate() {
            res = rx.decompress_fragment(ch, i == c.len() - 1, &mut out);
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res, Err(PmdError::TooBig));
        assert!(out.len() <= 1501);
    }

    /// 1 GiB of zeros, compressed with context takeover, is about 1 MB.
    /// Built from 1 MiB sync-flushed chunks: after the first, every chunk
    /// compresses to identical bytes (the window is all zeros and a sync flush
    /// ends byte-aligned), so the stream is the first chunk followed by 1023
    /// copies of the second — exactly what compressing 1 GiB chunk by chunk
    /// yields, without spending a minute of debug-build CPU on it.
    fn zip_bomb() -> Vec<u8> {
        let zeros = vec![0u8; 1 << 20];
        let mut c = new_compressor(9, 15);
        let mut chunks = Vec::new();
        for _ in 0..3 {
            let mut out = Vec::new();
            compress_sync_stripped(&mut c, &zeros, &mut out).unwrap();
            out.extend_from_slice(&SYNC_TAIL);
            chunks.push(out);
        }
        assert_eq!(chunks[1], chunks[2], "steady-state chunks must repeat");
        let mut bomb = chunks[0].clone();
        for _ in 1..1024 {
            bomb.extend_from_slice(&chunks[1]);
        }
        bomb.truncate(bomb.len() - 4);
        bomb
    }

    #[test]
    fn zip_bomb_is_stopped_early_and_cheaply() {
        let bomb = zip_bomb();
        assert!(bomb.len() < 2_000_000, "{}", bomb.len());
        assert!(bomb.len() > 500_000, "{}", bomb.len());
        let limit = 1 << 20;
        let t = std::time::Instant::now();
        let mut rx = PmdSession::new(Role::Server, PmdParams::default(), limit);
        let mut out = Vec::new();
        assert_eq!(
            rx.decompress_fragment(&bomb, true, &mut out),
            Err(PmdError::TooBig)
        );
        assert!(out.len() <= limit + 1);
        assert!(out.capacity() <= limit + 1, "capacity {}", out.capacity());
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        // the same in 64 KiB fragments
        let mut rx = PmdSession::new(Role::Server, PmdParams::default(), limit);
        let mut out = Vec::new();
        let mut res = Ok(());
        for ch in bomb.chunks(65536) {
            res = rx.decompress_fragment(ch, false, &mut out);
            if res.is_err() {
                break;
            }
        }
        assert_eq!(res, Err(PmdError::TooBig));
        assert!(out.capacity() <= limit + 1);
        // with a big enough limit the prefix decodes to zeros: the stream is valid
        let mut rx = PmdSession::new(Role::Server, PmdParams::default(), 8 << 20);
        let mut out = Vec::new();
        assert_eq!(
            rx.decompress_fragment(&bomb[..bomb.len() / 128], false, &mut out),
            Ok(())
        );
        assert!(out.len() > 4 << 20 && out.iter().all(|&b| b == 0));
    }

    #[test]
    fn caller_buffer_with_existing_content_is_appended_to() {
        let mut tx = session(Role::Server, PmdParams::default());
        let mut out = b"prefix".to_vec();
        tx.compress_message(b"Hello", &mut out).unwrap();
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(&out[6..], HELLO_COMPRESSED);
        let mut rx = session(Role::Client, PmdParams::default());
        let mut dec = b"xx".to_vec();
        rx.decompress_fragment(&out[6..], true, &mut dec).unwrap();
        assert_eq!(dec, b"xxHello");
    }

    fn arb_message() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..2000),
            proptest::collection::vec(0u8..4, 0..5000),
            (proptest::collection::vec(any::<u8>(), 1..20), 0usize..400).prop_map(|(pat, n)| pat
                .iter()
                .copied()
                .cycle()
                .take(pat.len() * n)
                .collect()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trip(
            msgs in proptest::collection::vec(arb_message(), 1..6),
            sbits in 8u8..=15,
            cbits in 8u8..=15,
            snct in any::<bool>(),
            cnct in any::<bool>(),
            level in 0u32..=9,
            frag in 1usize..300,
        ) {
            let params = p(snct, cnct, sbits, cbits);
            let mut server = PmdSession::new(Role::Server, params, 1 << 20);
            let mut client = PmdSession::new(Role::Client, params, 1 << 20);
            server.set_compression_level(level);
            for m in &msgs {
                // server -> client, sent in one piece
                let mut c = Vec::new();
                server.compress_message(m, &mut c).unwrap();
                let mut out = Vec::new();
                client.decompress_fragment(&c, true, &mut out).unwrap();
                prop_assert_eq!(&out, m);
                // client -> server, fragmented
                let mut c = Vec::new();
                client.compress_message(m, &mut c).unwrap();
                let mut out = Vec::new();
                let pieces: Vec<&[u8]> = c.chunks(frag).collect();
                for (i, piece) in pieces.iter().enumerate() {
                    server.decompress_fragment(piece, i + 1 == pieces.len(), &mut out).unwrap();
                }
                prop_assert_eq!(&out, m);
                prop_assert_eq!(server.state_bytes() == 0, snct && cnct);
                prop_assert_eq!(client.state_bytes() == 0, snct && cnct);
            }
        }

        #[test]
        fn random_input_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..512),
            cut in 0usize..512,
            bits in 8u8..=15,
        ) {
            let params = p(false, false, bits, bits);
            let mut rx = PmdSession::new(Role::Server, params, 4096);
            let cut = cut.min(data.len());
            let mut out = Vec::new();
            let r = rx
                .decompress_fragment(&data[..cut], false, &mut out)
                .and_then(|()| rx.decompress_fragment(&data[cut..], true, &mut out));
            prop_assert!(out.len() <= 4097);
            if let Err(e) = r {
                prop_assert!(e == PmdError::Corrupt || e == PmdError::TooBig);
            }
        }

        #[test]
        fn mutated_stream_never_panics(
            m in arb_message(),
            flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..4),
        ) {
            let mut tx = PmdSession::new(Role::Client, PmdParams::default(), 1 << 20);
            let mut c = Vec::new();
            tx.compress_message(&m, &mut c).unwrap();
            for (i, x) in flips {
                let n = c.len();
                c[i % n] ^= x;
            }
            let mut rx = PmdSession::new(Role::Server, PmdParams::default(), 1 << 20);
            let mut out = Vec::new();
            let _ = rx.decompress_fragment(&c, true, &mut out);
        }
    }
}
