//! Received WebSocket bytes → frames → RECEIVE callbacks, automatic pongs and the
//! close handshake.
//!
//! Data is delivered as the original did: in chunks of at most the protocol's
//! `rx_buffer_size` (4096 when 0), a chunk ending early only at the end of a frame, in
//! a buffer with LWS_SEND_BUFFER_PRE_PADDING before and POST_PADDING + NUL after. A
//! frame compressed with deflate-frame comes in one piece, inflated, as in v1.23.

use crate::engine::ws::close::{CLOSE_INVALID_PAYLOAD, CLOSE_PROTOCOL_ERROR};
use crate::engine::ws::{self, Event};
use crate::io::app::{invoke_conn, CallbackIn, ExtReason, Reason};
use crate::io::conn::{flag, Conn, ConnState, RxInfo, Side};
use crate::io::context::{Context, POST, PRE};
use crate::io::service::{close_conn, CloseHow};
use crate::io::tx;

/// What one parser step produced, detached from the parser's borrow.
enum Step {
    Data {
        off: usize,
        len: usize,
        binary: bool,
        fin: bool,
        rsv: u8,
        frame_remaining: u64,
        frame_opcode: u8,
        message_start: bool,
    },
    Control {
        opcode: u8,
        payload: [u8; 125],
        len: usize,
    },
    Extended {
        off: usize,
        len: usize,
        opcode: u8,
        frame_remaining: u64,
    },
    NeedMore,
    Fail(u16),
}

pub fn on_ws_bytes(ctx: &Context, conn: &Conn, input: &mut [u8]) {
    let mut pos = 0usize;
    loop {
        if conn.state.get() != ConnState::Ws {
            return;
        }
        if conn.has(flag::RX_PAUSED) {
            if pos < input.len() {
                conn.rx_stash().extend(&input[pos..], 0);
            }
            return;
        }
        let step = {
            let base = input.as_ptr() as usize;
            let mut parser = conn.parser.borrow_mut();
            let Some(p) = parser.as_mut() else { return };
            match p.next_event(input, &mut pos) {
                Err(e) => Step::Fail(e.close_code),
                Ok(None) => Step::NeedMore,
                Ok(Some(Event::Data {
                    payload,
                    message_opcode,
                    frame_opcode,
                    fin,
                    rsv,
                    frame_remaining,
                    message_start,
                })) => Step::Data {
                    off: payload.as_ptr() as usize - base,
                    len: payload.len(),
                    binary: message_opcode == ws::OP_BINARY,
                    fin,
                    rsv,
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
                    off: payload.as_ptr() as usize - base,
                    len: payload.len(),
                    opcode,
                    frame_remaining,
                },
                Ok(Some(Event::Control { opcode, payload })) => {
                    let mut buf = [0u8; 125];
                    let len = payload.len().min(125);
                    buf[..len].copy_from_slice(&payload[..len]);
                    Step::Control {
                        opcode,
                        payload: buf,
                        len,
                    }
                }
            }
        };
        match step {
            Step::NeedMore => return,
            Step::Fail(code) => {
                crate::log::lws_info!(
                    "closing fd {} with {} (protocol violation)",
                    conn.fd(),
                    code
                );
                close_conn(ctx, conn, CloseHow::Graceful(Some(code)));
                return;
            }
            Step::Data {
                off,
                len,
                binary,
                fin,
                rsv,
                frame_remaining,
                frame_opcode,
                message_start,
            } => {
                if conn.has(flag::CLOSE_SENT) {
                    continue; // closing: data after our close frame is discarded
                }
                let info = RxInfo {
                    final_fragment: fin,
                    binary,
                    rsv,
                    remaining: 0,
                };
                if frame_remaining == 0
                    && off >= PRE
                    && off + len + POST < input.len()
                    && !conn.has(flag::APP_EXT)
                    && !conn.has_exts()
                    && conn.rx_pending().is_empty()
                    && len < rx_chunk(ctx, conn)
                {
                    receive_in_place(ctx, conn, input, off, len, info);
                } else if conn.has_exts() {
                    ext_data(
                        ctx,
                        conn,
                        &input[off..off + len],
                        info,
                        frame_remaining,
                        frame_opcode,
                        message_start,
                    );
                } else {
                    deliver_data(ctx, conn, &input[off..off + len], info, frame_remaining);
                }
            }
            Step::Control {
                opcode,
                payload,
                len,
            } => on_control(ctx, conn, opcode, &payload[..len]),
            Step::Extended {
                off,
                len,
                opcode,
                frame_remaining,
            } => {
                if conn.has(flag::CLOSE_SENT) {
                    continue;
                }
                crate::io::ext_chain::extended_payload_rx(
                    ctx,
                    conn,
                    opcode,
                    &input[off..off + len],
                    frame_remaining,
                );
            }
        }
    }
}

fn on_control(ctx: &Context, conn: &Conn, opcode: u8, payload: &[u8]) {
    match opcode {
        ws::OP_PING if !conn.has(flag::CLOSE_SENT) => {
            if tx::output_backlogged(ctx, conn) {
                // A peer that pings but does not read (a ping flood) must not grow the
                // queue: answer only the most recent ping, once the queue has drained
                // (RFC 6455 5.5.3 allows that). Reading goes on.
                conn.owed_pong.set(Some(Box::new(payload.to_vec())));
            } else {
                tx::queue_frame(ctx, conn, ws::OP_PONG, true, payload);
            }
        }
        ws::OP_PONG if conn.side() == Side::Client => {
            let mut buf = [0u8; PRE + 125 + POST + 1];
            buf[PRE..PRE + payload.len()].copy_from_slice(payload);
            let input = CallbackIn::Bytes {
                buf: &mut buf,
                at: PRE,
                len: payload.len(),
            };
            if invoke_conn(ctx, conn, Reason::ClientReceivePong, input) < 0 {
                crate::io::service::close_unless_vetoed(ctx, conn, CloseHow::Graceful(None));
            }
        }
        ws::OP_CLOSE => {
            conn.set(flag::CLOSE_RCVD);
            match ws::parse_close_payload(payload) {
                Err(e) => close_conn(ctx, conn, CloseHow::Graceful(Some(e.close_code))),
                Ok(parsed) => {
                    if !conn.has(flag::CLOSE_SENT) {
                        // Echo the peer's status (RFC 6455 5.5.1).
                        tx::queue_close(ctx, conn, parsed.map(|(code, _)| code), b"");
                    }
                    close_conn(ctx, conn, CloseHow::Graceful(None));
                }
            }
        }
        _ => {}
    }
}

enum ExtMode {
    Plain,
    Inflate,
    InflateFrame,
}

/// Data of a connection with extensions: RSV rules, decompression, UTF-8 of the
/// decompressed text, then the usual chunked delivery.
fn ext_data(
    ctx: &Context,
    conn: &Conn,
    payload: &[u8],
    info: RxInfo,
    frame_remaining: u64,
    frame_opcode: u8,
    message_start: bool,
) {
    let last = info.final_fragment && frame_remaining == 0;
    let fail = |code: u16| close_conn(ctx, conn, CloseHow::Graceful(Some(code)));
    let mode = {
        let mut exts = conn.cold().exts.borrow_mut();
        let Some(ex) = exts.as_mut() else { return };
        if message_start {
            ex.rx_text = !info.binary;
            ex.utf8.reset();
            ex.dframe_msg_len = 0;
        }
        if ex.pmd.is_some() {
            if message_start {
                ex.rx_compressed = info.rsv & ws::RSV1 != 0;
            } else if frame_opcode == ws::OP_CONTINUATION && info.rsv & ws::RSV1 != 0 {
                drop(exts);
                return fail(CLOSE_PROTOCOL_ERROR); // RFC 7692 6.1: RSV1 only on a message's first frame
            }
            if ex.rx_compressed {
                ExtMode::Inflate
            } else {
                ExtMode::Plain
            }
        } else if ex.dframe.is_some() && info.rsv & ws::RSV1 != 0 {
            ExtMode::InflateFrame
        } else {
            ExtMode::Plain
        }
    };
    let inflated: Vec<u8>;
    let data: &[u8] = match mode {
        ExtMode::Plain => payload,
        ExtMode::Inflate => {
            let mut out = Vec::new();
            let r = {
                let mut exts = conn.cold().exts.borrow_mut();
                let Some(pmd) = exts.as_mut().and_then(|e| e.pmd.as_mut()) else {
                    return;
                };
                pmd.decompress_fragment(payload, last, &mut out)
            };
            if let Err(e) = r {
                return fail(e.close_code());
            }
            inflated = out;
            &inflated
        }
        ExtMode::InflateFrame => {
            let whole = {
                let mut exts = conn.cold().exts.borrow_mut();
                let Some(ex) = exts.as_mut() else { return };
                ex.dframe_rx.extend_from_slice(payload);
                if frame_remaining > 0 {
                    return;
                }
                std::mem::take(&mut ex.dframe_rx)
            };
            let mut out = Vec::new();
            let r = {
                let mut exts = conn.cold().exts.borrow_mut();
                let Some(ex) = exts.as_mut() else { return };
                // The message limit applies to the sum of the frames, not each frame.
                let budget = ctx.limits.max_message.saturating_sub(ex.dframe_msg_len);
                let Some(df) = ex.dframe.as_mut() else { return };
                let r = df.decompress_frame_with_limit(
                    &whole,
                    budget.min(usize::MAX as u64) as usize,
                    &mut out,
                );
                ex.dframe_msg_len += out.len() as u64;
                r
            };
            if let Err(e) = r {
                return fail(e.close_code());
            }
            inflated = out;
            &inflated
        }
    };
    let utf8_ok = {
        let mut exts = conn.cold().exts.borrow_mut();
        match exts.as_mut() {
            Some(ex) if ex.compresses() && ex.rx_text => {
                ex.utf8.feed(data).is_ok() && (!last || ex.utf8.is_complete())
            }
            _ => true,
        }
    };
    if !utf8_ok {
        return fail(CLOSE_INVALID_PAYLOAD);
    }
    match mode {
        ExtMode::Plain => deliver_data(ctx, conn, data, info, frame_remaining),
        ExtMode::Inflate => deliver_data(ctx, conn, data, info, u64::from(frame_remaining > 0)),
        // deflate-frame: as v1.23, each compressed frame reaches RECEIVE in one call,
        // inflated, whatever rx_buffer_size says (the whole frame is known by now).
        ExtMode::InflateFrame => receive(ctx, conn, data, info, 0),
    }
}

/// The largest piece RECEIVE gets on this connection (its protocol's rx_buffer_size).
fn rx_chunk(ctx: &Context, conn: &Conn) -> usize {
    ctx.protocols
        .get(conn.protocol.get())
        .map_or(4096, |p| p.rx_chunk)
}

/// RECEIVE for a whole frame that lies in `input` with at least PRE bytes before it
/// (already parsed) and POST + 1 after it (the next frame, not parsed yet): delivered
/// where it is, without a copy. The bytes after it are saved, and restored once the
/// callback returns, so the NUL and anything the application writes into the POST
/// padding cannot reach the parser.
fn receive_in_place(
    ctx: &Context,
    conn: &Conn,
    input: &mut [u8],
    off: usize,
    len: usize,
    mut info: RxInfo,
) {
    info.remaining = 0;
    conn.rx_info.set(info);
    let end = off + len;
    let mut saved = [0u8; POST + 1];
    saved.copy_from_slice(&input[end..end + POST + 1]);
    input[end] = 0;
    let reason = match conn.side() {
        Side::Server => Reason::Receive,
        Side::Client => Reason::ClientReceive,
    };
    let n = invoke_conn(
        ctx,
        conn,
        reason,
        CallbackIn::Bytes {
            buf: input,
            at: off,
            len,
        },
    );
    input[end..end + POST + 1].copy_from_slice(&saved);
    if n < 0 {
        crate::io::service::close_unless_vetoed(ctx, conn, CloseHow::Graceful(None));
    }
}

/// Chunks `payload` for the RECEIVE callback, accumulating across reads as needed.
fn deliver_data(ctx: &Context, conn: &Conn, payload: &[u8], info: RxInfo, frame_remaining: u64) {
    let chunk = rx_chunk(ctx, conn);
    let mut rest = payload;
    if rest.is_empty() && frame_remaining == 0 && conn.rx_pending().is_empty() {
        receive(ctx, conn, &[], info, 0);
        return;
    }
    loop {
        if !conn.is_ws_live() {
            return;
        }
        let pending_len = conn.rx_pending().len();
        if pending_len > 0 {
            let take = (chunk - pending_len).min(rest.len());
            conn.rx_pending().extend(&rest[..take], chunk);
            rest = &rest[take..];
            if pending_len + take == chunk || (rest.is_empty() && frame_remaining == 0) {
                let data = conn.rx_pending().take();
                receive(ctx, conn, &data, info, rest.len() as u64 + frame_remaining);
                continue;
            }
            return; // the rest of this chunk arrives in a later read
        }
        if rest.is_empty() {
            return;
        }
        if rest.len() >= chunk {
            let (now, later) = rest.split_at(chunk);
            rest = later;
            receive(ctx, conn, now, info, rest.len() as u64 + frame_remaining);
            continue;
        }
        if frame_remaining == 0 {
            receive(ctx, conn, rest, info, 0);
        } else {
            conn.rx_pending().extend(rest, chunk);
        }
        return;
    }
}

/// One RECEIVE / CLIENT_RECEIVE callback with the padded, NUL-terminated copy.
///
/// `libwebsocket_is_final_fragment` is true only for the last piece of a FIN frame
/// (`remaining` 0): v1.23 reported the frame's FIN bit for every piece, so code that
/// ended a message on it alone (its own test-fraggle) cut messages whose last frame
/// spanned several RECEIVE calls. Later libwebsockets releases made the same change.
fn receive(ctx: &Context, conn: &Conn, data: &[u8], mut info: RxInfo, remaining: u64) {
    info.remaining = remaining;
    info.final_fragment = info.final_fragment && remaining == 0;
    conn.rx_info.set(info);
    let replaced;
    let mut data = data;
    if conn.has(flag::APP_EXT) {
        let mut v = data.to_vec();
        if crate::io::ext_chain::app_payload_hook(ctx, conn, ExtReason::PayloadRx, &mut v).is_err()
        {
            close_conn(ctx, conn, CloseHow::Graceful(Some(CLOSE_PROTOCOL_ERROR)));
            return;
        }
        if v.is_empty() {
            return; // the extension consumed it (v1.23 delivered only non-empty payloads here)
        }
        replaced = v;
        data = &replaced;
    }
    // The buffer is taken out of the context for the call and put back after, so no
    // borrow is held while the application runs; a nested delivery (libwebsocket_read
    // from inside the callback) fills a buffer of its own. So do pieces bigger than the
    // shared buffer (whole deflate-frame frames, what an application extension
    // produced), so the shared one keeps the size of the largest rx_buffer_size.
    let need = PRE + data.len() + POST + 1;
    let shared = std::mem::take(&mut *ctx.deliver_buf.borrow_mut());
    let (mut buf, put_back) = if shared.len() < need {
        (vec![0u8; need], Some(shared))
    } else {
        (shared, None)
    };
    buf[PRE..PRE + data.len()].copy_from_slice(data);
    buf[PRE + data.len()] = 0;
    let reason = match conn.side() {
        Side::Server => Reason::Receive,
        Side::Client => Reason::ClientReceive,
    };
    let input = CallbackIn::Bytes {
        buf: &mut buf,
        at: PRE,
        len: data.len(),
    };
    let n = invoke_conn(ctx, conn, reason, input);
    *ctx.deliver_buf.borrow_mut() = put_back.unwrap_or(buf);
    if n < 0 {
        crate::io::service::close_unless_vetoed(ctx, conn, CloseHow::Graceful(None));
    }
}
