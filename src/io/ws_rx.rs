//! The slower parts of receiving on a WebSocket connection (the common path is in
//! `io::service::ws_input`): data of connections with extensions (RSV rules,
//! decompression, UTF-8 of the decompressed text), RECEIVE with a padded copy,
//! CLIENT_RECEIVE_PONG.
//!
//! Data is delivered as the original did: in chunks of at most the protocol's
//! `rx_buffer_size` (4096 when 0), a chunk ending early only at the end of a frame, in
//! a buffer with LWS_SEND_BUFFER_PRE_PADDING before and POST_PADDING + NUL after. A
//! frame compressed with deflate-frame comes in one piece, inflated, as in v1.23.

use crate::engine::ws::close::{CLOSE_INVALID_PAYLOAD, CLOSE_PROTOCOL_ERROR};
use crate::engine::ws::connection::{Chunk, Span};
use crate::engine::ws::{self};
use crate::io::app::{invoke_conn, CallbackIn, ExtReason, Reason};
use crate::io::conn::{flag, Conn, RxInfo, Side};
use crate::io::context::{Context, POST, PRE};
use crate::io::service::{close_conn, rx_chunk, CloseHow};

/// Received WebSocket bytes (all of `input`) through the engine.
pub fn on_ws_bytes(ctx: &Context, conn: &Conn, input: &mut [u8]) {
    let n = input.len();
    crate::io::service::ws_input(ctx, conn, input, 0, n);
}

/// CLIENT_RECEIVE_PONG with the pong's payload.
pub fn client_pong(ctx: &Context, conn: &Conn, payload: &[u8]) {
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

enum ExtMode {
    Plain,
    Inflate,
    InflateFrame,
}

/// Data of a connection with extensions: RSV rules, decompression, UTF-8 of the
/// decompressed text, then the usual chunked delivery.
pub fn ext_data(
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
        ExtMode::InflateFrame => receive(ctx, conn, data, info),
    }
}

/// Chunks `payload` for the RECEIVE callback (the engine's chunking, assembling across
/// reads as needed).
fn deliver_data(ctx: &Context, conn: &Conn, payload: &[u8], info: RxInfo, frame_remaining: u64) {
    let chunk = rx_chunk(ctx, conn);
    let mut span = Span::new(0, payload.len(), info, frame_remaining);
    loop {
        if !conn.is_ws_live() {
            return;
        }
        let next = conn.ws.borrow_mut().next_chunk(payload, &mut span, chunk);
        match next {
            None => return,
            Some(Chunk::Slice { at, len, info }) => {
                receive(ctx, conn, &payload[at..at + len], info)
            }
            Some(Chunk::Owned { data, info }) => receive(ctx, conn, &data, info),
        }
    }
}

/// One RECEIVE / CLIENT_RECEIVE callback with the padded, NUL-terminated copy; `info`
/// is what the receive queries report meanwhile.
pub fn receive(ctx: &Context, conn: &Conn, data: &[u8], info: RxInfo) {
    conn.ws.borrow_mut().set_rx_info(info);
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
