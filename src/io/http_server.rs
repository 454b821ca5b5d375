//! The HTTP side of a server connection: the request head, the upgrade to WebSocket,
//! the HTTP callback and file serving. What the protocol decides (validation, refusals,
//! subprotocol choice, the 101 reply) is `engine::handshake::server`; this file runs the
//! callbacks between its steps and changes the connection's state.

use crate::engine::handshake;
use crate::engine::handshake::server::{Refusal, Upgrade};
use crate::engine::http::headers::{HeaderTable, TOKEN_GET_URI};
use crate::engine::http::request::{parse_request_head_into, HeadStatus};
use crate::engine::http::response;
use crate::engine::timers::pending_timeout;
use crate::engine::ws::{FrameParser, ParserConfig, Role};
use crate::io::app::{invoke_conn, CallbackIn, Reason};
use crate::io::conn::{flag, Conn, ConnState, FileSend, HttpState, UserSpace};
use crate::io::context::Context;
use crate::io::service::{close_conn, CloseHow};
use crate::io::tx;
use std::io::Read;

/// Bytes of file read per step while the socket keeps accepting.
const FILE_STEP: usize = 64 * 1024;

/// Longest 101 reply built on the stack (a longer one is allocated).
const REPLY_ON_STACK: usize = 512;

/// HTTP-phase states kept for reuse per context, and the most buffer capacity one may
/// keep (a bigger one is freed instead).
const HTTP_POOL_MAX: usize = 32;
const HTTP_POOL_MAX_CAP: usize = 4096;

/// The HTTP-phase state for a new server connection: a recycled one (with its header
/// table's storage) when there is one, so a handshake allocates nothing for it.
pub fn new_http_state(ctx: &Context) -> Box<HttpState> {
    ctx.http_pool.borrow_mut().pop().unwrap_or_default()
}

/// Ends the connection's HTTP phase, keeping the emptied state for the next connection.
fn recycle_http_state(ctx: &Context, conn: &Conn) {
    let Some(mut h) = conn.http.borrow_mut().take() else {
        return;
    };
    let mut pool = ctx.http_pool.borrow_mut();
    if pool.len() >= HTTP_POOL_MAX || h.file.is_some() {
        return;
    }
    if let Some(t) = h.headers.take() {
        h.header_storage = t.into_storage();
    }
    if h.inbuf.capacity() <= HTTP_POOL_MAX_CAP
        && h.uri_c.capacity() <= HTTP_POOL_MAX_CAP
        && h.header_storage.capacity() <= HTTP_POOL_MAX_CAP
    {
        h.inbuf.clear();
        h.uri_c.clear();
        pool.push(h);
    }
}

pub fn on_head_bytes(ctx: &Context, conn: &Conn, data: &mut [u8]) {
    // Usually the whole head comes in one read: parse it in place, copying only when
    // it arrives in pieces. The table is filled in place, in storage a recycled state
    // brought along, and goes to the connection once complete.
    let mut http = conn.http.borrow_mut();
    let Some(h) = http.as_mut() else { return };
    let mut table = HeaderTable::with_storage(std::mem::take(&mut h.header_storage));
    let direct = h.inbuf.is_empty();
    let outcome = if direct {
        let o = parse_request_head_into(data, &ctx.limits.head, &mut table);
        if matches!(o, HeadStatus::Partial) {
            h.inbuf.extend_from_slice(data);
        }
        o
    } else {
        h.inbuf.extend_from_slice(data);
        parse_request_head_into(&h.inbuf, &ctx.limits.head, &mut table)
    };
    let line = match outcome {
        HeadStatus::Partial => {
            h.header_storage = table.into_storage();
            return;
        }
        HeadStatus::Reject(status) => {
            drop(http);
            crate::log::lws_info!("bad request on fd {}: HTTP {}", conn.fd(), status);
            reject(ctx, conn, status, "");
            return;
        }
        HeadStatus::Complete(line) => line,
    };
    // The upgrade's inputs are checked and copied out before the table moves to the
    // connection (where lws_hdr_* read it while callbacks run).
    let up =
        handshake::is_upgrade_request(&table).then(|| Upgrade::from_request(&line.method, &table));
    // The URI for the HTTP callback, NUL-terminated.
    let uri_c = match up {
        Some(_) => Vec::new(),
        None => {
            let uri = table.get(TOKEN_GET_URI).unwrap_or(b"");
            let mut c = Vec::with_capacity(uri.len() + 1);
            c.extend_from_slice(uri);
            c.push(0);
            c
        }
    };
    let rest = if direct {
        data[line.head_len..].to_vec()
    } else {
        let rest = h.inbuf.split_off(line.head_len);
        h.inbuf = Vec::new();
        rest
    };
    h.headers = Some(table);
    drop(http);
    match up {
        Some(Ok(u)) => upgrade(ctx, conn, u, rest),
        Some(Err(r)) => {
            crate::log::lws_info!("refusing upgrade on fd {}: {}", conn.fd(), r.why);
            refuse(ctx, conn, &r);
        }
        None => http_request(ctx, conn, &line.method, uri_c),
    }
}

/// Answers with an error status and closes.
pub fn reject(ctx: &Context, conn: &Conn, status: u16, extra: &str) {
    let msg = response::error_response(status, extra);
    tx::write(ctx, conn, &msg, tx::WRITE_HTTP);
    close_conn(ctx, conn, CloseHow::Graceful(None));
}

/// Answers a refused request and closes.
fn refuse(ctx: &Context, conn: &Conn, r: &Refusal) {
    reject(ctx, conn, r.status, r.extra_headers);
}

fn ensure_user_space(conn: &Conn, size: usize) {
    let u = conn.user.take();
    conn.user.set(u.or_else(|| UserSpace::zeroed(size)));
}

fn http_request(ctx: &Context, conn: &Conn, method: &str, mut uri_c: Vec<u8>) {
    let len = uri_c.len() - 1;
    if let Err(r) = handshake::server::check_http_request(method, &uri_c[..len]) {
        refuse(ctx, conn, &r);
        return;
    }
    conn.protocol.set(0);
    ensure_user_space(conn, ctx.protocols.first().map_or(0, |p| p.pss_size));
    conn.state.set(ConnState::Http);
    conn.set(flag::HTTP_CALLED);
    ctx.set_timeout(conn, pending_timeout::NO_PENDING_TIMEOUT, 0);
    let n = invoke_conn(
        ctx,
        conn,
        Reason::Http,
        CallbackIn::c_string(&mut uri_c, len),
    );
    // Kept with the connection's HTTP state (the application may hold on to `in`).
    if let Some(h) = conn.http.borrow_mut().as_mut() {
        h.uri_c = uri_c;
    }
    if n != 0 {
        close_conn(ctx, conn, CloseHow::Graceful(None));
    }
}

fn upgrade(ctx: &Context, conn: &Conn, mut up: Upgrade, mut rest: Vec<u8>) {
    let names = ctx.protocols.iter().map(|p| p.name.as_deref());
    let index = match up.choose_protocol(names) {
        Ok(i) => i,
        Err(r) => {
            crate::log::lws_info!(
                "requested protocol {} not supported",
                String::from_utf8_lossy(up.offer().unwrap_or(b""))
            );
            refuse(ctx, conn, &r);
            return;
        }
    };
    conn.protocol.set(index);
    ensure_user_space(conn, ctx.protocols[index].pss_size);
    // FILTER_PROTOCOL_CONNECTION gets the requested protocol string in `in`.
    let input = match up.offer_c() {
        Some(offer_c) => CallbackIn::c_string(offer_c, 0),
        None => CallbackIn::Nothing,
    };
    if invoke_conn(ctx, conn, Reason::FilterProtocolConnection, input) != 0 {
        crate::log::lws_info!("user code denied connection on fd {}", conn.fd());
        refuse(ctx, conn, &Refusal::DENIED);
        return;
    }
    if !conn.is_open() {
        return;
    }
    let ext_reply = up
        .extensions
        .as_deref()
        .and_then(|offer| crate::io::extensions::negotiate_server(ctx, conn, offer));
    let protocol_name = ctx.protocols[index].name.as_deref();
    let ext_answer = ext_reply.as_deref().map(str::as_bytes);
    if conn.has(flag::APP_EXT) {
        let mut resp = up.reply(protocol_name, ext_answer);
        // NUL-terminated behind `len`, for extensions that treat it as a string.
        let len = resp.len();
        resp.push(0);
        let r = crate::io::ext_chain::handshake_reply_tx(ctx, conn, &mut resp, len);
        resp.truncate(len);
        let sent_by_ext = match r {
            Ok(s) => s,
            Err(_) => {
                conn.set(flag::FAILED);
                close_conn(ctx, conn, CloseHow::Abort);
                return;
            }
        };
        if !conn.is_open() {
            return;
        }
        if !sent_by_ext {
            tx::write(ctx, conn, &resp, tx::WRITE_HTTP);
        }
    } else {
        // Built on the stack: the output queue takes a copy anyway.
        let mut small = [0u8; REPLY_ON_STACK];
        match up.reply_into(&mut small, protocol_name, ext_answer) {
            Some(n) => tx::write(ctx, conn, &small[..n], tx::WRITE_HTTP),
            None => tx::write(
                ctx,
                conn,
                &up.reply(protocol_name, ext_answer),
                tx::WRITE_HTTP,
            ),
        };
    }
    let mut cfg = ParserConfig::new(Role::Server);
    cfg.max_message_size = ctx.limits.max_message;
    if let Some(ex) = conn.cold_opt().and_then(|c| {
        c.exts
            .borrow()
            .as_ref()
            .map(|ex| (ex.allowed_rsv(), ex.compresses()))
    }) {
        cfg.allowed_rsv = ex.0;
        cfg.validate_utf8 = !ex.1;
    }
    cfg.extended_opcodes = conn.has(flag::APP_EXT);
    conn.ws.borrow_mut().upgrade(FrameParser::new(cfg));
    conn.state.set(ConnState::Ws);
    ctx.set_timeout(conn, pending_timeout::NO_PENDING_TIMEOUT, 0);
    let n = invoke_conn(ctx, conn, Reason::Established, CallbackIn::Nothing);
    if n != 0 {
        // v1.23 ignored ESTABLISHED's return value; applications rely on that.
        crate::log::lws_info!("ESTABLISHED returned {} on fd {}: ignored", n, conn.fd());
    }
    // Headers are no longer needed once the application has seen ESTABLISHED.
    recycle_http_state(ctx, conn);
    crate::io::ext_chain::notify_established(ctx, conn);
    if !rest.is_empty() && conn.state.get() == ConnState::Ws {
        // Frames pipelined right behind the handshake.
        crate::io::service::process_received(ctx, conn, &mut rest);
    }
}

/// `libwebsockets_serve_http_file`: header now, body streamed as the socket allows.
/// Returns -1 on error (a 404 was sent), 1 when already complete, 0 when in progress.
pub fn serve_file(ctx: &Context, conn: &Conn, path: &std::path::Path, content_type: &[u8]) -> i32 {
    if conn.state.get() != ConnState::Http {
        return -1;
    }
    let file = std::fs::File::open(path).and_then(|f| {
        let meta = f.metadata()?;
        if meta.is_dir() {
            return Err(std::io::Error::other("is a directory"));
        }
        Ok((f, meta.len()))
    });
    let (file, len) = match file {
        Ok(v) => v,
        Err(e) => {
            crate::log::lws_err!("Unable to open '{}': {}", path.display(), e);
            let msg = response::error_response(404, "");
            tx::write(ctx, conn, &msg, tx::WRITE_HTTP);
            return -1;
        }
    };
    let header = response::file_header(content_type, len);
    tx::write(ctx, conn, &header, tx::WRITE_HTTP);
    if let Some(h) = conn.http.borrow_mut().as_mut() {
        h.file = Some(FileSend {
            file,
            remaining: len,
        });
    }
    file_step(ctx, conn)
}

/// `libwebsockets_serve_http_file_fragment`.
pub fn serve_file_fragment(ctx: &Context, conn: &Conn) -> i32 {
    file_step(ctx, conn)
}

/// Moves file bytes to the socket until it is full or the file is done.
fn file_step(ctx: &Context, conn: &Conn) -> i32 {
    let mut chunk = vec![0u8; FILE_STEP];
    loop {
        if crate::io::service::choked(ctx, conn) {
            crate::io::service::update_pollout(ctx, conn);
            return 0;
        }
        let read = {
            let mut http = conn.http.borrow_mut();
            let Some(fs) = http.as_mut().and_then(|h| h.file.as_mut()) else {
                return -1;
            };
            if fs.remaining == 0 {
                Ok(0)
            } else {
                let want = (fs.remaining as usize).min(FILE_STEP);
                fs.file.read(&mut chunk[..want]).inspect(|&n| {
                    fs.remaining -= n as u64;
                })
            }
        };
        match read {
            Err(e) => {
                crate::log::lws_err!("file read: {}", e);
                return -1;
            }
            Ok(0) => {
                // Done (or the file shrank: stop at what exists).
                if let Some(h) = conn.http.borrow_mut().as_mut() {
                    h.file = None;
                }
                invoke_conn(ctx, conn, Reason::HttpFileCompletion, CallbackIn::Nothing);
                crate::io::service::update_pollout(ctx, conn);
                return 1;
            }
            Ok(n) => {
                if tx::write(ctx, conn, &chunk[..n], tx::WRITE_HTTP) < 0 {
                    return -1;
                }
                tx::flush(ctx, conn);
            }
        }
    }
}

/// Socket writeable during a file transfer.
pub fn continue_file(ctx: &Context, conn: &Conn) {
    match file_step(ctx, conn) {
        0 => {}
        _ => close_conn(ctx, conn, CloseHow::Graceful(None)),
    }
}
