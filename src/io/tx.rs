//! Sending: framing application writes, queueing control frames, and flushing each
//! connection's queue with as few system calls as possible. Nothing handed to
//! `libwebsocket_write` is ever dropped: what the socket does not take now stays
//! queued and goes first when it becomes writeable again.

use crate::engine::timers::pending_timeout;
use crate::engine::ws::{self, encode_header, MAX_HEADER_LEN};
use crate::io::conn::{flag, Conn, ConnState, Side};
use crate::io::context::Context;
use crate::io::mask_keys::mask_key;
use crate::io::sys::net;
use std::io::ErrorKind;

pub use crate::engine::ws::write_protocol::*;

/// Payloads at least this big go straight to the socket when nothing is queued.
const DIRECT_SEND_MIN: usize = 16 * 1024;

/// `libwebsocket_write`. Everything is accepted (queued when the socket is full); the
/// return value is v1.23's: the payload length for data frames and HTTP, the whole
/// frame (header, mask key and payload) for CLOSE / PING / PONG; -1 on error.
pub fn write(ctx: &Context, conn: &Conn, payload: &[u8], protocol: u32) -> i32 {
    if let Some(n) = write_small_data(ctx, conn, payload, protocol, true) {
        return n;
    }
    if !conn.is_open() || conn.has(flag::FAILED) {
        return -1;
    }
    if conn.out.borrow().len().saturating_add(payload.len()) > ctx.limits.max_queued {
        crate::log::lws_err!(
            "libwebsocket_write: fd {} has {} bytes queued (limit {}); write refused",
            conn.fd(),
            conn.out.borrow().len(),
            ctx.limits.max_queued
        );
        return -1;
    }
    let base = protocol & !(WRITE_NO_FIN | WRITE_CLIENT_IGNORE_XOR_MASK);
    if base == WRITE_HTTP {
        if !matches!(
            conn.state.get(),
            ConnState::Http
                | ConnState::HttpHeaders
                | ConnState::Ws
                | ConnState::ClientConnecting
                | ConnState::ClientProxy
                | ConnState::ClientHandshake
        ) {
            return -1;
        }
        enqueue_bytes(ctx, conn, &[], payload, None);
        return payload.len() as i32;
    }
    if !conn.is_ws_live() {
        return -1;
    }
    let opcode = match base {
        WRITE_TEXT => ws::OP_TEXT,
        WRITE_BINARY => ws::OP_BINARY,
        WRITE_CONTINUATION => ws::OP_CONTINUATION,
        WRITE_CLOSE => ws::OP_CLOSE,
        WRITE_PING => ws::OP_PING,
        WRITE_PONG => ws::OP_PONG,
        _ => {
            crate::log::lws_err!("libwebsocket_write: unknown write protocol {}", protocol);
            return -1;
        }
    };
    if ws::is_control(opcode) && payload.len() > 125 {
        crate::log::lws_err!("libwebsocket_write: control frame payload over 125 bytes");
        return -1;
    }
    let fin = protocol & WRITE_NO_FIN == 0;
    let (payload_owned, rsv) = match extension_tx(ctx, conn, payload, opcode, fin) {
        Ok(v) => v,
        Err(_) => return -1,
    };
    let wire: &[u8] = payload_owned.as_deref().unwrap_or(payload);
    // LWS_WRITE_CLIENT_IGNORE_XOR_MASK is ignored, as v1.23 ignored it: every client
    // frame is masked (RFC 6455 5.3; servers close on unmasked frames).
    let mask = (conn.side() == Side::Client).then(mask_key);
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let hl = encode_header(&mut hdr, fin, rsv, opcode, mask, wire.len() as u64);
    if conn.has(flag::APP_EXT) && !ws::is_control(opcode) {
        // The whole frame, masked, goes through PACKET_TX_PRESEND first.
        let mut frame = Vec::with_capacity(hl + wire.len());
        frame.extend_from_slice(&hdr[..hl]);
        frame.extend_from_slice(wire);
        if let Some(key) = mask {
            ws::apply_mask(&mut frame[hl..], key, 0);
        }
        if crate::io::ext_chain::tx_presend(ctx, conn, &mut frame).is_err() {
            conn.set(flag::FAILED);
            ctx.enqueue(conn, flag::IN_CLOSE_Q);
            return -1;
        }
        return payload.len() as i32;
    }
    enqueue_bytes(ctx, conn, &hdr[..hl], wire, mask);
    if opcode == ws::OP_CLOSE {
        conn.set(flag::CLOSE_SENT);
        ctx.set_timeout(
            conn,
            pending_timeout::CLOSE_ACK,
            ctx.limits.close_secs as i32,
        );
    }
    if matches!(protocol, WRITE_CLOSE | WRITE_PING | WRITE_PONG) {
        // v1.23 sent these raw and returned what the socket took: the whole frame.
        // (With a flag added they took its data-frame path, which returned `len`.)
        return (hl + wire.len()) as i32;
    }
    payload.len() as i32
}

/// `write` for the common case only, running no application code and flushing
/// nothing (so the connection cannot be closed or released meanwhile): None when the
/// general path is needed.
pub fn write_small_queued(
    ctx: &Context,
    conn: &Conn,
    payload: &[u8],
    protocol: u32,
) -> Option<i32> {
    write_small_data(ctx, conn, payload, protocol, false)
}

/// The common write in one step: a whole TEXT / BINARY message of at most 125 bytes
/// from a server connection without extensions, inside a service pass (so batched),
/// nothing choked. Appends header and payload to the queue as `write` would; None
/// sends everything else down the general path (and, without `may_flush`, also a write
/// that would reach the choke threshold).
#[inline(always)]
fn write_small_data(
    ctx: &Context,
    conn: &Conn,
    payload: &[u8],
    protocol: u32,
    may_flush: bool,
) -> Option<i32> {
    const SLOW: u32 = flag::FAILED | flag::CLOSE_SENT | flag::APP_EXT | flag::CHOKED;
    let opcode = match protocol {
        WRITE_BINARY => ws::OP_BINARY,
        WRITE_TEXT => ws::OP_TEXT,
        _ => return None,
    };
    if payload.len() > 125
        || conn.flags.get() & SLOW != 0
        || conn.side() != Side::Server
        || conn.state.get() != ConnState::Ws
        || ctx.in_service.get() == 0
    {
        return None;
    }
    let queued = {
        let mut out = conn.out.try_borrow_mut().ok()?;
        if conn
            .cold_opt()
            .is_some_and(|c| c.exts.try_borrow().map_or(true, |e| e.is_some()))
        {
            return None;
        }
        let before = out.len();
        if before + payload.len() > ctx.limits.max_queued {
            return None; // the general path logs and refuses
        }
        if !may_flush && before + 2 + payload.len() >= ctx.limits.choke_bytes {
            return None;
        }
        if !out.has_storage() {
            out.install(ctx.take_out_buf());
        }
        let buf = out.buf_mut();
        buf.reserve(2 + payload.len());
        buf.push(0x80 | opcode);
        buf.push(payload.len() as u8);
        buf.extend_from_slice(payload);
        before + 2 + payload.len()
    };
    if queued >= ctx.limits.choke_bytes {
        flush(ctx, conn);
        crate::io::service::update_pollout(ctx, conn);
    } else {
        ctx.enqueue(conn, flag::IN_DIRTY_Q);
    }
    Some(payload.len() as i32)
}

/// Bytes to send for a data frame after extensions (None: the caller's payload) and
/// the RSV bits to set.
type TxPayload = (Option<Vec<u8>>, u8);

/// Applies negotiated extensions to an outgoing data frame: the application
/// extensions' PAYLOAD_TX, then compression. Err when an extension failed.
fn extension_tx(
    ctx: &Context,
    conn: &Conn,
    payload: &[u8],
    opcode: u8,
    fin: bool,
) -> Result<TxPayload, crate::io::ext_chain::ExtensionFailed> {
    if !conn.has_exts() || ws::is_control(opcode) {
        return Ok((None, 0));
    }
    let mut owned: Option<Vec<u8>> = None;
    if conn.has(flag::APP_EXT) {
        let mut v = payload.to_vec();
        crate::io::ext_chain::app_payload_hook(
            ctx,
            conn,
            crate::io::app::ExtReason::PayloadTx,
            &mut v,
        )?;
        owned = Some(v);
    }
    let mut exts = conn.cold().exts.borrow_mut();
    let Some(ex) = exts.as_mut() else {
        return Ok((owned, 0));
    };
    let data: &[u8] = owned.as_deref().unwrap_or(payload);
    if let Some(pmd) = ex.pmd.as_mut() {
        // Whole messages are compressed; a fragmented one goes out uncompressed.
        let starts = opcode != ws::OP_CONTINUATION;
        let whole = starts && fin && !ex.tx_fragmented;
        if starts {
            ex.tx_fragmented = !fin;
        } else if fin {
            ex.tx_fragmented = false;
        }
        if whole {
            let mut out = Vec::with_capacity(data.len() / 2 + 16);
            pmd.compress_message(data, &mut out)
                .map_err(|_| crate::io::ext_chain::ExtensionFailed)?;
            return Ok((Some(out), ws::RSV1));
        }
        return Ok((owned, 0));
    }
    if let Some(df) = ex.dframe.as_mut() {
        let mut out = Vec::with_capacity(data.len() / 2 + 16);
        df.compress_frame(data, &mut out)
            .map_err(|_| crate::io::ext_chain::ExtensionFailed)?;
        return Ok((Some(out), ws::RSV1));
    }
    Ok((owned, 0))
}

/// Queues a library-generated frame (pong, close) on a WebSocket connection.
pub fn queue_frame(ctx: &Context, conn: &Conn, opcode: u8, fin: bool, payload: &[u8]) {
    let mask = (conn.side() == Side::Client).then(mask_key);
    let mut hdr = [0u8; MAX_HEADER_LEN];
    let hl = encode_header(&mut hdr, fin, 0, opcode, mask, payload.len() as u64);
    enqueue_bytes(ctx, conn, &hdr[..hl], payload, mask);
}

/// Queues bytes that are already framed (what an application extension produced).
pub fn queue_raw(ctx: &Context, conn: &Conn, bytes: &[u8]) {
    enqueue_bytes(ctx, conn, &[], bytes, None);
}

/// Queues a close frame with `code` (none: empty payload) and marks it sent. Active
/// application extensions first get FLUSH_PENDING_TX; if one fails, no close frame is
/// sent and the connection is dropped.
pub fn queue_close(ctx: &Context, conn: &Conn, code: Option<u16>, reason: &[u8]) {
    if conn.has(flag::CLOSE_SENT) {
        return;
    }
    if conn.has(flag::APP_EXT)
        && conn.state.get() == ConnState::Ws
        && crate::io::ext_chain::flush_pending_tx(ctx, conn).is_err()
    {
        conn.set(flag::FAILED);
        ctx.enqueue(conn, flag::IN_CLOSE_Q);
        return;
    }
    let mut body = Vec::with_capacity(2 + reason.len());
    if let Some(c) = code {
        body.extend_from_slice(&c.to_be_bytes());
        body.extend_from_slice(&reason[..reason.len().min(123)]);
    }
    queue_frame(ctx, conn, ws::OP_CLOSE, true, &body);
    conn.set(flag::CLOSE_SENT);
}

/// Appends header + payload (masked when `mask` is set) to the connection's queue and
/// decides when to flush: immediately outside a service pass or when the queue is
/// large, otherwise once at the end of the pass. With an application extension active,
/// each call is one unit for PACKET_TX_DO_SEND and is flushed at once (as v1.23 sent
/// each write when it was made).
fn enqueue_bytes(ctx: &Context, conn: &Conn, hdr: &[u8], payload: &[u8], mask: Option<[u8; 4]>) {
    let app_ext = conn.has(flag::APP_EXT);
    let batching = ctx.in_service.get() > 0 && !app_ext;
    {
        let mut out = conn.out.borrow_mut();
        if !app_ext
            && out.is_empty()
            && mask.is_none()
            && payload.len() >= DIRECT_SEND_MIN
            && !conn.has(flag::CHOKED)
            && !crate::io::tls_io::is_tls(conn)
        {
            // Large payload, nothing queued: send from the caller's buffer, queue the rest.
            let total = hdr.len() + payload.len();
            let sent = match net::send2(conn.fd(), hdr, payload) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.set(flag::CHOKED);
                    0
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => 0,
                Err(_) => {
                    conn.set(flag::FAILED);
                    ctx.enqueue(conn, flag::IN_CLOSE_Q);
                    return;
                }
            };
            if sent < total {
                conn.set(flag::CHOKED);
                if !out.has_storage() {
                    out.install(ctx.take_out_buf());
                }
                if sent < hdr.len() {
                    out.extend(&hdr[sent..]);
                    out.extend(payload);
                } else {
                    out.extend(&payload[sent - hdr.len()..]);
                }
            }
            drop(out);
            crate::io::service::update_pollout(ctx, conn);
            return;
        }
        if !out.has_storage() {
            out.install(ctx.take_out_buf());
        }
        out.extend(hdr);
        let start = out.buf_mut().len();
        out.extend(payload);
        if let Some(key) = mask {
            ws::apply_mask(&mut out.buf_mut()[start..], key, 0);
        }
        if app_ext {
            let queued = out.len();
            drop(out);
            if let Some(ex) = conn.cold().exts.borrow_mut().as_mut() {
                ex.tx_units.reconcile(queued - hdr.len() - payload.len());
                ex.tx_units.push(hdr.len() + payload.len(), true);
            }
        }
    }
    if conn.has(flag::CHOKED) {
        crate::io::service::update_pollout(ctx, conn);
        return;
    }
    if !batching || conn.out.borrow().len() >= ctx.limits.choke_bytes {
        flush(ctx, conn);
        if !batching && conn.has(flag::FAILED) {
            ctx.enqueue(conn, flag::IN_CLOSE_Q);
        }
        crate::io::service::update_pollout(ctx, conn);
    } else {
        ctx.enqueue(conn, flag::IN_DIRTY_Q);
    }
}

/// Sends queued bytes until the queue is empty or the socket is full.
pub fn flush(ctx: &Context, conn: &Conn) {
    flush_with(ctx, conn, false);
}

/// Like `flush`, for output the caller closes the socket right after: the bytes are
/// sent with MSG_MORE so that they leave in the same segment as the FIN of close().
/// Whoever flushes a remainder later with plain `flush` pushes them out as usual.
pub fn flush_before_close(ctx: &Context, conn: &Conn) {
    flush_with(ctx, conn, true);
}

fn flush_with(ctx: &Context, conn: &Conn, closing: bool) {
    if !conn.is_open() {
        return;
    }
    if conn.has(flag::APP_EXT) {
        if !conn.has(flag::IN_EXT_FLUSH) {
            conn.set(flag::IN_EXT_FLUSH);
            flush_units(ctx, conn);
            conn.clear(flag::IN_EXT_FLUSH);
        }
        send_owed_pong(ctx, conn);
        return;
    }
    if crate::io::tls_io::is_tls(conn) {
        crate::io::tls_io::flush_tls(ctx, conn);
    } else {
        let mut out = conn.out.borrow_mut();
        while !out.is_empty() {
            let sent = if closing {
                net::send_more(conn.fd(), out.pending())
            } else {
                net::send(conn.fd(), out.pending())
            };
            match sent {
                Ok(n) => {
                    if let Some(v) = out.consume(n) {
                        ctx.give_out_buf(v);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.set(flag::CHOKED);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.set(flag::FAILED);
                    return;
                }
            }
        }
    }
    send_owed_pong(ctx, conn);
}

/// True when so much output is queued that pongs are owed instead of queued.
pub fn output_backlogged(ctx: &Context, conn: &Conn) -> bool {
    conn.out.borrow().len() > 4 * ctx.limits.choke_bytes
}

/// Queues the pong owed for the latest ping received while output was backed up,
/// once the queue has come down again.
fn send_owed_pong(ctx: &Context, conn: &Conn) {
    if output_backlogged(ctx, conn) || conn.has(flag::FAILED) {
        return;
    }
    let Some(payload) = conn.owed_pong.take() else {
        return;
    };
    if conn.state.get() == ConnState::Ws && !conn.has(flag::CLOSE_SENT) {
        queue_frame(ctx, conn, ws::OP_PONG, true, &payload);
    }
}

/// Flush of a connection with an application extension: unit by unit, each offered to
/// PACKET_TX_DO_SEND first (see `io::extensions`). Stops when the socket is full, an
/// extension took only part of a unit (the rest is offered again next pass) or failed.
fn flush_units(ctx: &Context, conn: &Conn) {
    use crate::engine::extensions::app_hooks::DoSend;
    loop {
        let queued = conn.out.borrow().len();
        if queued == 0 {
            break;
        }
        let unit = match conn.cold().exts.borrow_mut().as_mut() {
            Some(ex) => {
                ex.tx_units.reconcile(queued);
                ex.tx_units.front()
            }
            None => None,
        };
        let Some(unit) = unit else {
            // The extensions are gone (destroyed while closing): plain sending.
            conn.clear(flag::APP_EXT);
            flush(ctx, conn);
            return;
        };
        if unit.offer {
            // A copy: the extension may write (and so grow the queue) meanwhile.
            let mut copy = conn.out.borrow().pending()[..unit.len].to_vec();
            let answer = crate::io::ext_chain::tx_do_send(ctx, conn, &mut copy);
            if !conn.is_open() {
                return;
            }
            match answer {
                DoSend::Fatal => {
                    conn.set(flag::FAILED);
                    return;
                }
                DoSend::Took(n) => {
                    consume_unit(ctx, conn, n);
                    if n < unit.len {
                        ctx.enqueue(conn, flag::IN_WRITEABLE_Q);
                        return;
                    }
                    continue;
                }
                DoSend::Declined => {}
            }
        }
        let sent = if crate::io::tls_io::is_tls(conn) {
            crate::io::tls_io::send_prefix(ctx, conn, unit.len)
        } else {
            send_prefix(ctx, conn, unit.len)
        };
        consume_unit(ctx, conn, sent);
        if sent < unit.len || conn.has(flag::CHOKED) || conn.has(flag::FAILED) {
            return;
        }
    }
    if crate::io::tls_io::is_tls(conn) {
        crate::io::tls_io::flush_tls(ctx, conn);
    }
}

/// `n` bytes of the oldest unit have left (sent, or taken by an extension).
fn consume_unit(ctx: &Context, conn: &Conn, n: usize) {
    if n == 0 {
        return;
    }
    if let Some(v) = conn.out.borrow_mut().consume(n) {
        ctx.give_out_buf(v);
    }
    if let Some(ex) = conn.cold().exts.borrow_mut().as_mut() {
        ex.tx_units.consume_front(n);
    }
}

/// Sends up to `len` queued bytes on a plain socket; returns how many went (the caller
/// consumes them). Sets CHOKED / FAILED as `flush` does.
fn send_prefix(_ctx: &Context, conn: &Conn, len: usize) -> usize {
    loop {
        let r = {
            let out = conn.out.borrow();
            net::send(conn.fd(), &out.pending()[..len.min(out.len())])
        };
        match r {
            Ok(n) => return n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                conn.set(flag::CHOKED);
                return 0;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                conn.set(flag::FAILED);
                return 0;
            }
        }
    }
}

/// True while bytes are queued for the socket (in our buffer or inside rustls).
pub fn has_pending_output(conn: &Conn) -> bool {
    !conn.out.borrow().is_empty() || crate::io::tls_io::wants_write(conn)
}

/// `choked` when it needs no flush (so runs no application code): None otherwise.
pub fn choked_quick(ctx: &Context, conn: &Conn) -> Option<bool> {
    if !conn.is_open() || conn.has(flag::CHOKED) {
        return Some(true);
    }
    let queued = conn.out.try_borrow().ok()?.len();
    (queued < ctx.limits.choke_bytes).then_some(false)
}

/// `lws_send_pipe_choked`: true when more writes now would only grow the queue.
pub fn choked(ctx: &Context, conn: &Conn) -> bool {
    if !conn.is_open() {
        return true;
    }
    if conn.has(flag::CHOKED) {
        return true;
    }
    if conn.out.borrow().len() >= ctx.limits.choke_bytes {
        flush(ctx, conn);
        return !conn.out.borrow().is_empty();
    }
    false
}
