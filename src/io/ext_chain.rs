//! The callback chain of the extensions an application implements in C (v1.23's
//! `LWS_EXT_CALLBACK_*`): which hook runs where, on a connection where
//! negotiation (`io::extensions`) made such an extension active.
//!
//! # Where each reason is delivered
//!
//! Once an application extension is active on a connection the connection carries
//! [`flag::APP_EXT`]; every hook below is behind that one bit test, so connections
//! without one run no extra code per message. Where each reason is delivered:
//!
//! * `PACKET_RX_PREPARSE` ([`rx_preparse`]): every run of bytes read from the socket
//!   (after TLS), before the frame parser, as v1.23 did with its read buffer. The
//!   extension may edit in place, shorten, or point `token` at its own buffer; a
//!   return above 0 means "call me again": the library parses what it got, then calls
//!   again with a NULL/0 `lws_tokens` until nobody returns more than 0. Bytes handed
//!   to `libwebsocket_read()` are not preparsed (v1.23 called it after the preparse).
//! * `PACKET_TX_PRESEND` ([`tx_presend`]): each data frame `libwebsocket_write`
//!   produces, header and (client) mask included, before it is queued; the extension
//!   may replace it. > 0 means it holds more: the library calls again with NULL/0 while
//!   the connection is not choked, otherwise it sets [`flag::EXT_SPILL_PENDING`] and
//!   spills (same NULL/0 calls) when the socket is writeable again, before the next
//!   WRITEABLE callback. Control frames and HTTP bytes are not presented (as in v1.23).
//!   A failure makes that `libwebsocket_write` return -1 and closes the connection.
//! * `PACKET_TX_DO_SEND` ([`tx_do_send`]): v1.23 offered every raw send on the socket
//!   (`in` = `unsigned char **`, `len` = bytes). The library coalesces writes into one
//!   output buffer, so it remembers the boundaries of what was queued
//!   ([`TxUnits`]: one frame, one control frame, the handshake reply, one
//!   spill) and offers each unit when its turn comes to leave; with an application
//!   extension active, writes are flushed at once instead of at the end of the service
//!   pass, so this normally happens inside `libwebsocket_write` as before. > 0: the
//!   extension sent (or took charge of) that many bytes; a unit taken only in part is
//!   offered again (its remainder) at the next opportunity, like v1.23's truncated
//!   sends. 0: the library sends it. < 0: the connection is closed. Nothing is offered
//!   after DESTROY (a close frame still queued then goes out as is).
//! * `FLUSH_PENDING_TX` ([`flush_pending_tx`]): before the library queues its close
//!   frame (any close it initiates or echoes), with NULL/0 tokens, repeated while an
//!   extension returns > 0; what the extensions hand back is sent raw, before the
//!   close frame.
//! * `HANDSHAKE_REPLY_TX` ([`handshake_reply_tx`]): server side, with `in` = the
//!   101 reply and `len` its length, after CONSTRUCT. The extension may edit the bytes
//!   in place; returning non-zero means it sent the reply itself (e.g. its own version
//!   with extra header lines, through `libwebsocket_write(..., LWS_WRITE_HTTP)`), so the
//!   library does not. v1.23 took any non-zero answer as "sent"; here < 0 closes the
//!   connection instead of leaving it waiting for a reply that never comes.
//! * `IS_WRITEABLE` ([`before_writeable`]): before each WRITEABLE callback; the
//!   largest answer decides: 1 deliver and keep the request armed (WRITEABLE comes
//!   again at the next pass), 2 deliver without spilling pending PRESEND data, other
//!   values spill pending data first.
//! * `REQUEST_ON_WRITEABLE` ([`request_on_writeable_handled`]): from
//!   `libwebsocket_callback_on_writable` (and `_all_protocol`, per connection): if any
//!   extension answers non-zero it has taken care of it and no WRITEABLE is armed.
//! * `CHECK_OK_TO_REALLY_CLOSE` ([`close_vetoed`]): when a close is requested that the
//!   connection can survive: a user callback returning < 0, or a timeout. Non-zero
//!   defers the close; the extension triggers it again later (e.g. with
//!   `libwebsocket_set_timeout`). A vetoed timeout is retried a second later, as
//!   v1.23's once-a-second timeout check did. Not consulted when the peer closed, the
//!   socket failed, the protocol was violated or the context is destroyed: v1.23 asked
//!   then too, but had no connection left to keep.
//! * `EXTENDED_PAYLOAD_RX` ([`extended_payload_rx`]): the parser accepts the
//!   reserved opcodes (3-7, 0xB-0xF) on such connections and hands their payload over
//!   in chunks of the protocol's `rx_buffer_size`, as v1.23 did; unclaimed payload
//!   (every extension returns 0) is dropped, as in v1.23.
//! * `CAN_PROXY_CLIENT_CONNECTION` ([`client_proxy_claim`]): every application
//!   extension of the context is asked at `libwebsocket_client_connect` (`user` = its
//!   index in the array, `in` = the address, `len` = the port). If one claims the
//!   connection, no connection is made: the handle waits for the extension, and after
//!   `PENDING_TIMEOUT_AWAITING_EXTENSION_CONNECT_RESPONSE` (v1.23's 5 s, or
//!   `LWS_HANDSHAKE_TIMEOUT`) it fails with
//!   CLIENT_CONNECTION_ERROR. v1.23 parked it the same way but, having no socket for it
//!   in its poll table, never timed it out.
//!
//! The calls go through the context's [`crate::io::app::Application`]: the token
//! hooks as [`Application::ext_token_hook`](crate::io::app::Application::ext_token_hook),
//! which hands this module safe values (the bytes an extension left, copied) while the
//! `lws_tokens` pointers stay in capi. Anything an extension hands back through
//! `lws_tokens` is checked there
//! ([`check_tokens`](crate::engine::extensions::app_hooks::check_tokens)) before a
//! byte of it is read: a NULL pointer with a length, a negative length, a
//! length past the buffer it was given or beyond the message/queue limits closes the
//! connection with an error in the log, as does a callback that keeps asking to be
//! called again without producing anything. On the receive side such a failure drops
//! the connection without a close frame (as v1.23 did: the extension that would frame
//! it is in an unknown state); PAYLOAD_RX failures keep their close with 1002.

use crate::engine::extensions::app_hooks::{
    do_send_result, writeable_gate, DoSend, Spill, SpillGuard, WriteableGate,
};
use crate::io::app::{invoke_ext, CallbackIn, ExtReason, TokenReply, TokensLeft, UserPtr};
use crate::io::conn::{flag, Conn, ConnState};
use crate::io::context::Context;
use crate::io::extensions::ExtKind;
use crate::io::service::{close_conn, CloseHow};

/// An application extension callback reported a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionFailed;

/// The active application extensions of a connection, in negotiation order:
/// (index in the application's array, per-session data, index into `ctx.extensions`).
fn app_targets(ctx: &Context, conn: &Conn) -> Vec<(usize, UserPtr, usize)> {
    if !conn.has_exts() {
        return Vec::new();
    }
    match conn.cold().exts.borrow().as_ref() {
        Some(e) => e
            .app
            .iter()
            .map(|(i, u)| {
                (
                    ctx.extensions[*i].index,
                    u.as_ref().map_or(UserPtr::NULL, |u| u.ptr()),
                    *i,
                )
            })
            .collect(),
        None => Vec::new(),
    }
}

fn ext_name(ctx: &Context, pos: usize) -> String {
    ctx.extensions.get(pos).map_or_else(String::new, |e| {
        String::from_utf8_lossy(&e.name).into_owned()
    })
}

/// Largest `token_len` believed when an extension points `token` at its own buffer:
/// nothing bigger could be received (message limit) or queued (queue limit).
fn token_cap(ctx: &Context) -> usize {
    let msg = usize::try_from(ctx.limits.max_message).unwrap_or(usize::MAX);
    msg.max(ctx.limits.max_queued)
        .saturating_add(64 * 1024)
        .min(i32::MAX as usize)
}

/// What a chain of token callbacks produced.
pub enum Chained {
    /// The first `n` bytes of the buffer passed in (edited in place or not).
    InPlace(usize),
    /// Bytes an extension supplied, copied out of its buffer.
    Owned(Vec<u8>),
}

impl Chained {
    fn is_empty(&self) -> bool {
        match self {
            Chained::InPlace(n) => *n == 0,
            Chained::Owned(v) => v.is_empty(),
        }
    }
}

/// Calls `reason` on each active application extension with one `lws_tokens`, each
/// seeing what the previous one left (as v1.23 did), starting from `buf` (None: the
/// NULL/0 tokens of a spill round). Bytes an extension supplies are copied at once, so
/// no pointer into extension memory outlives its callback. Returns what came out and
/// whether any extension answered > 0 ("more"); Err when one answered < 0 or left
/// unusable tokens (logged).
pub fn run_token_chain(
    ctx: &Context,
    conn: &Conn,
    reason: ExtReason,
    mut buf: Option<&mut [u8]>,
) -> Result<(Chained, bool), ExtensionFailed> {
    let orig_len = buf.as_ref().map_or(0, |b| b.len());
    if orig_len > i32::MAX as usize {
        crate::log::lws_err!("{:?}: {} bytes do not fit lws_tokens", reason, orig_len);
        return Err(ExtensionFailed);
    }
    let cap = token_cap(ctx);
    // What the tokens hold between callbacks: the first `in_place` bytes of `buf`,
    // or `owned` once an extension supplied bytes of its own (empty: NULL/0 tokens).
    let mut owned: Option<Vec<u8>> = None;
    let mut in_place = orig_len;
    let mut more = false;
    for (index, user, pos) in app_targets(ctx, conn) {
        let data: Option<&mut [u8]> = match owned.as_mut() {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(&mut v[..]),
            None => buf.as_deref_mut().map(|b| &mut b[..in_place]),
        };
        let reply = ctx
            .app
            .ext_token_hook(ctx, conn, index, reason, user, data, cap);
        let left = match reply {
            TokenReply::Fatal => {
                crate::log::lws_err!(
                    "extension '{}' reported a fatal error on {:?}; closing fd {}",
                    ext_name(ctx, pos),
                    reason,
                    conn.fd()
                );
                return Err(ExtensionFailed);
            }
            TokenReply::Done { more: m, left } => {
                more |= m;
                left
            }
        };
        match left {
            Err(e) => {
                crate::log::lws_err!(
                    "extension '{}' left bad lws_tokens on {:?} ({}); closing fd {}",
                    ext_name(ctx, pos),
                    reason,
                    e,
                    conn.fd()
                );
                return Err(ExtensionFailed);
            }
            Ok(TokensLeft::Unchanged) => {}
            Ok(TokensLeft::Shortened(n)) => match owned.as_mut() {
                Some(v) => v.truncate(n),
                None => in_place = n,
            },
            Ok(TokensLeft::Empty) => owned = Some(Vec::new()),
            Ok(TokensLeft::Elsewhere(v)) => owned = Some(v),
        }
    }
    Ok((
        match owned {
            Some(v) => Chained::Owned(v),
            None => Chained::InPlace(in_place),
        },
        more,
    ))
}

/// PAYLOAD_RX / PAYLOAD_TX: the active application extensions see `buf` in an
/// `lws_tokens` and may edit, shorten or replace it; Err when one reports a fatal error
/// or leaves bad tokens.
pub fn app_payload_hook(
    ctx: &Context,
    conn: &Conn,
    reason: ExtReason,
    buf: &mut Vec<u8>,
) -> Result<(), ExtensionFailed> {
    match run_token_chain(ctx, conn, reason, Some(&mut buf[..]))?.0 {
        Chained::InPlace(n) => buf.truncate(n),
        Chained::Owned(v) => *buf = v,
    }
    Ok(())
}

/// An application extension failed on a received-data path: the connection is closed
/// at once (v1.23 dropped it without a close frame; an extension in an unknown state
/// must not frame one).
fn fail_rx(ctx: &Context, conn: &Conn) {
    conn.set(flag::FAILED);
    close_conn(ctx, conn, CloseHow::Abort);
}

/// PACKET_RX_PREPARSE over bytes just read from the socket, then the frame parser.
pub fn rx_preparse(ctx: &Context, conn: &Conn, input: &mut [u8]) {
    let mut guard = SpillGuard::new();
    let mut first = true;
    loop {
        if conn.state.get() != ConnState::Ws || !conn.has(flag::APP_EXT) {
            // Closed meanwhile (nothing more to parse), or never preparsed.
            if first {
                crate::io::ws_rx::on_ws_bytes(ctx, conn, input);
            }
            return;
        }
        let step = if first {
            run_token_chain(ctx, conn, ExtReason::PacketRxPreparse, Some(&mut input[..]))
        } else {
            run_token_chain(ctx, conn, ExtReason::PacketRxPreparse, None)
        };
        first = false;
        let (out, more) = match step {
            Ok(v) => v,
            Err(ExtensionFailed) => return fail_rx(ctx, conn),
        };
        let produced = !out.is_empty();
        match out {
            Chained::InPlace(n) if n > 0 => {
                crate::io::ws_rx::on_ws_bytes(ctx, conn, &mut input[..n])
            }
            Chained::Owned(mut v) if !v.is_empty() => {
                crate::io::ws_rx::on_ws_bytes(ctx, conn, &mut v)
            }
            _ => {}
        }
        match guard.after_round(more, produced) {
            Spill::Done => return,
            Spill::Again => {}
            Spill::Stalled | Spill::Budget => {
                crate::log::lws_err!(
                    "PACKET_RX_PREPARSE keeps asking to be called again on fd {}; closing",
                    conn.fd()
                );
                return fail_rx(ctx, conn);
            }
        }
    }
}

/// Queues bytes an extension produced (already framed) as one unit.
fn queue_ext_bytes(ctx: &Context, conn: &Conn, out: &Chained, buf: &[u8]) -> bool {
    let bytes: &[u8] = match out {
        Chained::InPlace(n) => &buf[..*n],
        Chained::Owned(v) => v,
    };
    if bytes.is_empty() {
        return false;
    }
    crate::io::tx::queue_raw(ctx, conn, bytes);
    true
}

/// PACKET_TX_PRESEND over one complete data frame from `libwebsocket_write`; queues
/// what comes out, then spills while an extension has more. Err: the connection must
/// be closed (logged).
pub fn tx_presend(ctx: &Context, conn: &Conn, frame: &mut [u8]) -> Result<(), ExtensionFailed> {
    let (out, more) = run_token_chain(ctx, conn, ExtReason::PacketTxPresend, Some(&mut frame[..]))?;
    queue_ext_bytes(ctx, conn, &out, frame);
    if more {
        spill_presend(ctx, conn)?;
    }
    Ok(())
}

/// Spill rounds of PACKET_TX_PRESEND (NULL/0 tokens) until no extension has more,
/// the connection is choked (then [`flag::EXT_SPILL_PENDING`] is set and spilling
/// resumes when it is writeable), or the round budget is spent (resumes next pass).
pub fn spill_presend(ctx: &Context, conn: &Conn) -> Result<(), ExtensionFailed> {
    conn.clear(flag::EXT_SPILL_PENDING);
    let mut guard = SpillGuard::new();
    loop {
        if !conn.has(flag::APP_EXT) || !conn.is_ws_live() {
            return Ok(());
        }
        if crate::io::service::choked(ctx, conn) {
            spill_later(ctx, conn);
            return Ok(());
        }
        let (out, more) = run_token_chain(ctx, conn, ExtReason::PacketTxPresend, None)?;
        let produced = queue_ext_bytes(ctx, conn, &out, &[]);
        match guard.after_round(more, produced) {
            Spill::Done => return Ok(()),
            Spill::Again => {}
            Spill::Budget => {
                spill_later(ctx, conn);
                return Ok(());
            }
            Spill::Stalled => {
                crate::log::lws_err!(
                    "PACKET_TX_PRESEND keeps reporting more without producing any on fd {}",
                    conn.fd()
                );
                return Err(ExtensionFailed);
            }
        }
    }
}

/// Marks spilling as pending and arranges a wake-up for it.
fn spill_later(ctx: &Context, conn: &Conn) {
    conn.set(flag::EXT_SPILL_PENDING);
    if !conn.has(flag::CHOKED) {
        ctx.enqueue(conn, flag::IN_WRITEABLE_Q);
    }
    crate::io::service::update_pollout(ctx, conn);
}

/// FLUSH_PENDING_TX before the library's close frame: what the extensions still hold
/// is queued ahead of it. Err: an extension failed (the close frame is then not sent).
pub fn flush_pending_tx(ctx: &Context, conn: &Conn) -> Result<(), ExtensionFailed> {
    let mut guard = SpillGuard::new();
    loop {
        let (out, more) = run_token_chain(ctx, conn, ExtReason::FlushPendingTx, None)?;
        let produced = queue_ext_bytes(ctx, conn, &out, &[]);
        match guard.after_round(more, produced) {
            Spill::Done => return Ok(()),
            Spill::Again => {}
            Spill::Budget | Spill::Stalled => {
                crate::log::lws_warn!(
                    "FLUSH_PENDING_TX still reports more on fd {}; closing anyway",
                    conn.fd()
                );
                return Ok(());
            }
        }
    }
}

/// PACKET_TX_DO_SEND for one queued unit (`bytes` is a copy the extension may read):
/// the first extension answering non-zero decides.
pub fn tx_do_send(ctx: &Context, conn: &Conn, bytes: &mut [u8]) -> DoSend {
    let len = bytes.len();
    for (index, user, pos) in app_targets(ctx, conn) {
        let n = invoke_ext(
            ctx,
            index,
            Some(conn),
            ExtReason::PacketTxDoSend,
            user,
            CallbackIn::BytesRef(bytes),
        );
        match do_send_result(n, len) {
            DoSend::Declined => continue,
            DoSend::Fatal => {
                crate::log::lws_err!(
                    "extension '{}' reported a fatal error on PACKET_TX_DO_SEND; closing fd {}",
                    ext_name(ctx, pos),
                    conn.fd()
                );
                return DoSend::Fatal;
            }
            took => return took,
        }
    }
    DoSend::Declined
}

/// HANDSHAKE_REPLY_TX (server) over the first `len` bytes of `reply` (the bytes behind
/// them, a NUL, are the extension's to read too): Ok(true) when an extension sent the
/// reply itself.
pub fn handshake_reply_tx(
    ctx: &Context,
    conn: &Conn,
    reply: &mut [u8],
    len: usize,
) -> Result<bool, ExtensionFailed> {
    for (index, user, pos) in app_targets(ctx, conn) {
        let n = invoke_ext(
            ctx,
            index,
            Some(conn),
            ExtReason::HandshakeReplyTx,
            user,
            CallbackIn::Bytes {
                buf: reply,
                at: 0,
                len,
            },
        );
        if n < 0 {
            crate::log::lws_err!(
                "extension '{}' failed HANDSHAKE_REPLY_TX; closing fd {}",
                ext_name(ctx, pos),
                conn.fd()
            );
            return Err(ExtensionFailed);
        }
        if n > 0 {
            crate::log::lws_debug!(
                "extension '{}' sent the handshake reply",
                ext_name(ctx, pos)
            );
            return Ok(true);
        }
    }
    Ok(false)
}

/// What [`before_writeable`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteableStep {
    /// Call WRITEABLE (if the application asked for it).
    Deliver,
    /// Call it, and arm it again for the next pass.
    DeliverAndRearm,
    /// Pending extension data could not all go out: wait for the socket.
    Hold,
}

/// Before a WRITEABLE callback (or a wake-up only to spill): IS_WRITEABLE when the
/// application asked for WRITEABLE, then spilling of pending PRESEND data as the
/// answer allows.
pub fn before_writeable(ctx: &Context, conn: &Conn) -> Result<WriteableStep, ExtensionFailed> {
    let gate = if conn.has(flag::WANT_WRITEABLE) {
        let mut answer = 0;
        for (index, user, _) in app_targets(ctx, conn) {
            let n = invoke_ext(
                ctx,
                index,
                Some(conn),
                ExtReason::IsWriteable,
                user,
                CallbackIn::Nothing,
            );
            answer = answer.max(n);
        }
        writeable_gate(answer)
    } else {
        WriteableGate::SpillFirst
    };
    match gate {
        WriteableGate::DeliverAndRearm => Ok(WriteableStep::DeliverAndRearm),
        WriteableGate::Deliver => Ok(WriteableStep::Deliver),
        WriteableGate::SpillFirst => {
            if conn.has(flag::EXT_SPILL_PENDING) {
                spill_presend(ctx, conn)?;
                if conn.has(flag::EXT_SPILL_PENDING) {
                    return Ok(WriteableStep::Hold);
                }
            }
            Ok(WriteableStep::Deliver)
        }
    }
}

/// REQUEST_ON_WRITEABLE: true when an extension took care of the request.
pub fn request_on_writeable_handled(ctx: &Context, conn: &Conn) -> bool {
    let mut handled = 0;
    for (index, user, _) in app_targets(ctx, conn) {
        handled |= invoke_ext(
            ctx,
            index,
            Some(conn),
            ExtReason::RequestOnWriteable,
            user,
            CallbackIn::Nothing,
        );
    }
    handled != 0
}

/// CHECK_OK_TO_REALLY_CLOSE: true when an active extension defers the close. Only for
/// a live WebSocket connection whose socket is healthy (see the module docs).
pub fn close_vetoed(ctx: &Context, conn: &Conn) -> bool {
    if !conn.has(flag::APP_EXT) || !conn.is_ws_live() || conn.has(flag::FAILED) {
        return false;
    }
    for (index, user, pos) in app_targets(ctx, conn) {
        if invoke_ext(
            ctx,
            index,
            Some(conn),
            ExtReason::CheckOkToReallyClose,
            user,
            CallbackIn::Nothing,
        ) != 0
        {
            crate::log::lws_info!(
                "extension '{}' deferred closing fd {}",
                ext_name(ctx, pos),
                conn.fd()
            );
            return true;
        }
    }
    false
}

/// Payload of a reserved-opcode frame: gathered into chunks of the protocol's receive
/// size (or the frame's end) and offered to EXTENDED_PAYLOAD_RX; dropped when no
/// extension claims it.
pub fn extended_payload_rx(
    ctx: &Context,
    conn: &Conn,
    opcode: u8,
    mut payload: &[u8],
    frame_remaining: u64,
) {
    let chunk = ctx
        .protocols
        .get(conn.protocol.get())
        .map_or(crate::io::context::DEFAULT_RX_CHUNK, |p| p.rx_chunk)
        .max(1);
    loop {
        let ready = {
            let mut exts = conn.cold().exts.borrow_mut();
            let Some(ex) = exts.as_mut() else { return };
            let take = (chunk - ex.ext_rx.len().min(chunk)).min(payload.len());
            ex.ext_rx.extend_from_slice(&payload[..take]);
            payload = &payload[take..];
            let frame_done = payload.is_empty() && frame_remaining == 0;
            if ex.ext_rx.len() >= chunk || frame_done {
                Some(std::mem::take(&mut ex.ext_rx))
            } else {
                None
            }
        };
        let Some(mut data) = ready else { return };
        let mut handled = false;
        for (index, user, _) in app_targets(ctx, conn) {
            if invoke_ext(
                ctx,
                index,
                Some(conn),
                ExtReason::ExtendedPayloadRx,
                user,
                CallbackIn::Tokens(&mut data),
            ) != 0
            {
                handled = true;
            }
        }
        if !handled {
            crate::log::lws_info!(
                "fd {}: {} bytes of opcode {:#x} not claimed by an extension; dropped",
                conn.fd(),
                data.len(),
                opcode
            );
        }
        if payload.is_empty() || !conn.is_ws_live() {
            return;
        }
    }
}

/// CAN_PROXY_CLIENT_CONNECTION, asked of every application extension of the context
/// at client connect (the connection exists, no connect has been started). Returns the
/// name of the extension that claimed the connection.
pub fn client_proxy_claim(ctx: &Context, conn: &Conn, address: &str, port: u16) -> Option<String> {
    if !ctx.extensions.iter().any(|e| e.kind == ExtKind::App) {
        return None;
    }
    let mut addr = address.as_bytes().to_vec();
    addr.push(0);
    for e in ctx.extensions.iter().filter(|e| e.kind == ExtKind::App) {
        let n = invoke_ext(
            ctx,
            e.index,
            Some(conn),
            ExtReason::CanProxyClientConnection,
            UserPtr::NULL,
            CallbackIn::c_string(&mut addr, usize::from(port)),
        );
        if n != 0 {
            return Some(String::from_utf8_lossy(&e.name).into_owned());
        }
    }
    None
}

/// ANY_WSI_ESTABLISHED to every application extension of the context.
pub fn notify_established(ctx: &Context, conn: &Conn) {
    for e in ctx.extensions.iter().filter(|e| e.kind == ExtKind::App) {
        let user = conn
            .cold()
            .exts
            .borrow()
            .as_ref()
            .and_then(|x| {
                x.app
                    .iter()
                    .find(|(i, _)| ctx.extensions[*i].index == e.index)
                    .and_then(|(_, u)| u.as_ref().map(|u| u.ptr()))
            })
            .unwrap_or(UserPtr::NULL);
        invoke_ext(
            ctx,
            e.index,
            Some(conn),
            ExtReason::AnyWsiEstablished,
            user,
            CallbackIn::Nothing,
        );
    }
}

/// DESTROY to the connection's active application extensions, and
/// DESTROY_ANY_WSI_CLOSING to all of the context's.
pub fn on_close(ctx: &Context, conn: &Conn) {
    let active = conn.cold_opt().and_then(|c| c.exts.borrow_mut().take());
    conn.clear(flag::APP_EXT | flag::EXT_SPILL_PENDING);
    if let Some(ex) = active {
        for (i, user) in &ex.app {
            let uptr = user.as_ref().map_or(UserPtr::NULL, |u| u.ptr());
            invoke_ext(
                ctx,
                ctx.extensions[*i].index,
                Some(conn),
                ExtReason::Destroy,
                uptr,
                CallbackIn::Nothing,
            );
        }
    }
    if ctx.extensions.iter().any(|e| e.kind == ExtKind::App)
        && conn.state.get() != crate::io::conn::ConnState::HttpHeaders
    {
        for e in ctx.extensions.iter().filter(|e| e.kind == ExtKind::App) {
            invoke_ext(
                ctx,
                e.index,
                Some(conn),
                ExtReason::DestroyAnyWsiClosing,
                UserPtr::NULL,
                CallbackIn::Nothing,
            );
        }
    }
}

/// Once a second: 1HZ to the active application extensions.
pub fn tick_1hz(ctx: &Context) {
    for conn in ctx.all_conns() {
        for (index, user, _) in app_targets(ctx, conn) {
            invoke_ext(
                ctx,
                index,
                Some(conn),
                ExtReason::OneHz,
                user,
                CallbackIn::Nothing,
            );
        }
    }
}
