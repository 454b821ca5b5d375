//! Per-connection exports: writing, writeable requests, flow control, timeouts,
//! headers, frame information, HTTP file serving, addresses.

use crate::capi::abi_types::*;
use crate::capi::boundary::{copy_cstr_truncating, cstr_bytes, ffi_guard, out_slice};
use crate::capi::callbacks::capp;
use crate::capi::context_exports::ctx_ref;
use crate::engine::http::headers::TOKEN_COUNT;
use crate::io::conn::{flag, Conn};
use crate::io::context::Context;
use crate::io::threads::{self, Request};
use crate::io::{http_server, service, tx};
use libc::{c_char, c_int, c_uchar, c_uint, size_t};

/// Same ABI as `enum libwebsocket_write_protocol`; may carry OR-ed flag bits.
pub type WriteProtocolInt = c_uint;
/// Same ABI as `enum pending_timeout`.
pub type PendingTimeoutInt = c_uint;
/// Same ABI as `enum lws_token_indexes`.
pub type TokenIndexInt = c_uint;

/// Resolves a `struct libwebsocket *` to its context and live connection: None for
/// NULL, the listener's wsi, and a closed connection (until its entry carries a new
/// one). No reference count: connection records stay at their address, allocated,
/// until the context is destroyed (`io::context::Context::conns`), and a vacant one
/// is flagged, so the check is a load and a test.
///
/// # Safety
/// `wsi` must be NULL or a connection pointer the library handed out, of a context
/// not yet destroyed.
#[inline]
pub unsafe fn wsi_ref<'a>(wsi: *mut libwebsocket) -> Option<(&'a Context, &'a Conn)> {
    // SAFETY: NULL or a connection record, allocated while its context lives (this
    // function's contract).
    let conn = unsafe { (wsi as *const Conn).as_ref() }?;
    if conn.has(flag::VACANT | flag::LISTENER) {
        return None;
    }
    // SAFETY: a record's context outlives it.
    let ctx = unsafe { conn.ctx.as_ref() }?;
    debug_assert!(ctx.conn(conn.slot).is_some_and(|c| std::ptr::eq(c, conn)));
    Some((ctx, conn))
}

/// Like `wsi_ref`, but also accepts a connection that has just been closed (for
/// read-only queries made from the CLOSED callback).
unsafe fn conn_any<'a>(wsi: *mut libwebsocket) -> Option<&'a Conn> {
    // SAFETY: NULL or a connection record of a live context (the contract of
    // `wsi_ref`): records stay allocated until the context is destroyed.
    unsafe { (wsi as *const Conn).as_ref() }
}

/// Sends `len` bytes at `buf` framed as `protocol` (an LWS_WRITE_* value, optionally
/// OR-ed with LWS_WRITE_NO_FIN; LWS_WRITE_CLIENT_IGNORE_XOR_MASK is accepted and, as in
/// v1.23, changes nothing: client frames are always masked). The library never writes
/// into the caller's padding. Everything is accepted (what the socket cannot take now
/// is queued and sent first later); returns, as v1.23, `len` for data and HTTP, the
/// whole frame (`len` plus the 2-byte header, plus the 4-byte mask on a client) for
/// CLOSE / PING / PONG, or -1 on error. `len` 0 sends an empty frame (v1.23 sent
/// nothing for TEXT / BINARY / CONTINUATION) and returns 0.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_write(
    wsi: *mut libwebsocket,
    buf: *mut c_uchar,
    len: size_t,
    protocol: WriteProtocolInt,
) -> c_int {
    ffi_guard!(-1, {
        if !buf.is_null() && len <= 125 {
            // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
            if let Some((ctx, conn)) = unsafe { wsi_ref(wsi) } {
                // SAFETY: the caller's buffer holds `len` readable bytes at `buf`.
                let payload = unsafe { std::slice::from_raw_parts(buf, len) };
                if let Some(n) = tx::write_small_queued(ctx, conn, payload, protocol) {
                    return n;
                }
            }
        }
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return -1;
        };
        if len > i32::MAX as usize || (buf.is_null() && len != 0) {
            return -1;
        }
        let payload = if len == 0 {
            &[][..]
        } else {
            // SAFETY: the caller passes `buf` valid for `len` bytes (the C contract of this argument; checked non-NULL above).
            unsafe { std::slice::from_raw_parts(buf, len) }
        };
        tx::write(ctx, conn, payload, protocol)
    })
}

/// Arms a timeout: after `secs` seconds the connection is closed (reason 0 cancels).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_set_timeout(
    wsi: *mut libwebsocket,
    reason: PendingTimeoutInt,
    secs: c_int,
) {
    ffi_guard!((), {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return;
        };
        ctx.set_timeout(conn, reason, secs);
    })
}

unsafe fn with_headers<R>(
    wsi: *mut libwebsocket,
    f: impl FnOnce(&crate::engine::http::headers::HeaderTable) -> R,
) -> Option<R> {
    // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
    let conn = unsafe { conn_any(wsi) }?;
    let http = conn.http.try_borrow().ok()?;
    let h = http.as_ref()?.headers.as_ref()?;
    Some(f(h))
}

/// Length of header `h` of the current request, 0 when absent or no longer available
/// (headers live until the ESTABLISHED callback returns, or the HTTP connection ends).
#[no_mangle]
pub unsafe extern "C" fn lws_hdr_total_length(wsi: *mut libwebsocket, h: TokenIndexInt) -> c_int {
    ffi_guard!(0, {
        if h as usize >= TOKEN_COUNT {
            return 0;
        }
        // SAFETY: `wsi` is NULL or a live wsi (the C contract), as `with_headers` requires.
        unsafe { with_headers(wsi, |t| t.total_length(h as usize) as c_int) }.unwrap_or(0)
    })
}

/// Copies header `h` plus a NUL into `dest`; returns its length, or -1 when it does
/// not fit, the arguments are invalid or headers are not available.
#[no_mangle]
pub unsafe extern "C" fn lws_hdr_copy(
    wsi: *mut libwebsocket,
    dest: *mut c_char,
    len: c_int,
    h: TokenIndexInt,
) -> c_int {
    ffi_guard!(-1, {
        if h as usize >= TOKEN_COUNT {
            return -1;
        }
        // SAFETY: `dest` is NULL or writable for `len` bytes (the C contract of this argument).
        let Some(out) = (unsafe { out_slice(dest, len) }) else {
            return -1;
        };
        // SAFETY: `wsi` is NULL or a live wsi (the C contract), as `with_headers` requires.
        unsafe {
            with_headers(wsi, |t| {
                t.copy_to(h as usize, out).map_or(-1, |n| n as c_int)
            })
        }
        .unwrap_or(-1)
    })
}

/// The protocol this connection uses: a pointer into the application's array (NULL
/// for the listener's wsi).
#[no_mangle]
pub unsafe extern "C" fn libwebsockets_get_protocol(
    wsi: *mut libwebsocket,
) -> *const libwebsocket_protocols {
    ffi_guard!(std::ptr::null(), {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some(conn) = (unsafe { conn_any(wsi) }) else {
            return std::ptr::null();
        };
        // SAFETY: the connection is allocated (above), and its context outlives it.
        let Some(ctx) = (unsafe { conn.ctx.as_ref() }) else {
            return std::ptr::null();
        };
        if conn.has(crate::io::conn::flag::LISTENER) {
            return std::ptr::null(); // the listener has no protocol (v1.23: NULL too)
        }
        let Some(protocols) = capp(ctx).map(|a| a.protocols()) else {
            return std::ptr::null();
        };
        if protocols.is_null() || conn.protocol.get() >= ctx.protocols.len() {
            return std::ptr::null();
        }
        // SAFETY: `protocols` is the application's array, and the index was checked against
        // the number of its entries just above.
        (unsafe { protocols.add(conn.protocol.get()) }) as *const libwebsocket_protocols
    })
}

/// Asks for a WRITEABLE callback when the connection can take more data. May be
/// called from any thread: from a thread other than the context's service thread the
/// request is queued and the service loop woken (`context` must then be the
/// connection's context or NULL).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_callback_on_writable(
    context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `context` is NULL or live and `wsi` one of its connections or NULL (the C
        // contract, which is route_conn's); route_conn does not dereference `wsi`.
        if let Some(r) = unsafe {
            threads::route_conn(
                context as *const Context,
                wsi as usize,
                |slot, gen| Request::Writable { slot, gen },
                1,
            )
        } {
            return r;
        }
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return -1;
        };
        service::request_writeable_asking_extensions(ctx, conn);
        1
    })
}

/// The live context owning `protocol` and the protocol's index in it.
///
/// # Safety
/// `protocol` must be NULL or an entry of the protocol array of a context not yet
/// destroyed.
unsafe fn protocol_target(
    protocol: *const libwebsocket_protocols,
) -> Option<(&'static Context, usize)> {
    // SAFETY: NULL or an entry of the protocol array given to
    // libwebsocket_create_context (this function's contract, the C one).
    let p = unsafe { protocol.as_ref() }?;
    // SAFETY: `p.owning_server` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
    let ctx = unsafe { ctx_ref(p.owning_server) }?;
    let idx = p.protocol_index;
    if idx < 0 || idx as usize >= ctx.protocols.len() {
        return None;
    }
    Some((ctx, idx as usize))
}

/// WRITEABLE callbacks for every connection using `protocol`: its WebSocket
/// connections, and (as in v1.23) HTTP connections when `protocol` is protocols[0]
/// (HTTP_WRITEABLE, unless a file is being served on them). May be called from any
/// thread (queued for the service thread of the protocol's context).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_callback_on_writable_all_protocol(
    protocol: *const libwebsocket_protocols,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `protocol` is NULL or an entry of a live context's protocol array (the C
        // contract).
        let Some((ctx, idx)) = (unsafe { protocol_target(protocol) }) else {
            return -1;
        };
        // SAFETY: `ctx` came from protocol_target: the live context owning the protocol.
        if let Some(r) = unsafe { threads::route_protocol(ctx, idx) } {
            return r;
        }
        service::writeable_all_protocol(ctx, idx);
        0
    })
}

/// The connection's socket descriptor, or -1.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_get_socket_fd(wsi: *mut libwebsocket) -> c_int {
    // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
    ffi_guard!(-1, { unsafe { conn_any(wsi) }.map_or(-1, |c| c.fd()) })
}

/// 1 when the data being delivered to RECEIVE ends a message: the last piece of a frame
/// with FIN set (v1.23 answered 1 for every piece of such a frame).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_is_final_fragment(wsi: *mut libwebsocket) -> c_int {
    ffi_guard!(0, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        unsafe { conn_any(wsi) }.map_or(0, |c| c.rx_info.get().final_fragment as c_int)
    })
}

/// RSV bits of the frame being delivered, unshifted as v1.23 returned them (RSV1 = 0x40).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_get_reserved_bits(wsi: *mut libwebsocket) -> c_uchar {
    ffi_guard!(0, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        unsafe { conn_any(wsi) }.map_or(0, |c| c.rx_info.get().rsv & 0x70)
    })
}

/// Pauses (0) or resumes (non-zero) receiving; takes effect when the current callback
/// returns. Returns 0, or -1 for an invalid connection. May be called from any thread
/// (queued for the connection's service thread).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_rx_flow_control(
    wsi: *mut libwebsocket,
    enable: c_int,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: a NULL context: route_conn finds the context from its own table of live
        // connections and does not dereference `wsi`.
        if let Some(r) = unsafe {
            threads::route_conn(
                std::ptr::null(),
                wsi as usize,
                |slot, gen| Request::RxFlow {
                    slot,
                    gen,
                    enable: enable != 0,
                },
                0,
            )
        } {
            return r;
        }
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return -1;
        };
        service::rx_flow(ctx, conn, enable != 0);
        0
    })
}

/// Resumes receiving on every connection using `protocol`.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_rx_flow_allow_all_protocol(
    protocol: *const libwebsocket_protocols,
) {
    ffi_guard!((), {
        // SAFETY: `protocol` is NULL or an entry of a live context's protocol array (the C
        // contract).
        let Some((ctx, idx)) = (unsafe { protocol_target(protocol) }) else {
            return;
        };
        for conn in ctx.all_conns() {
            if conn.protocol.get() == idx {
                service::rx_flow(ctx, conn, true);
            }
        }
    })
}

/// Payload bytes of the current frame still to come after this RECEIVE.
#[no_mangle]
pub unsafe extern "C" fn libwebsockets_remaining_packet_payload(wsi: *mut libwebsocket) -> size_t {
    ffi_guard!(0, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        unsafe { conn_any(wsi) }.map_or(0, |c| c.rx_info.get().remaining as size_t)
    })
}

/// 1 when the message being delivered is binary.
#[no_mangle]
pub unsafe extern "C" fn lws_frame_is_binary(wsi: *mut libwebsocket) -> c_int {
    ffi_guard!(0, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        unsafe { conn_any(wsi) }.map_or(0, |c| c.rx_info.get().binary as c_int)
    })
}

/// 1 when writing now would only queue (the socket is full or much is queued).
#[no_mangle]
pub unsafe extern "C" fn lws_send_pipe_choked(wsi: *mut libwebsocket) -> c_int {
    ffi_guard!(1, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        if let Some(quick) =
            unsafe { wsi_ref(wsi) }.and_then(|(ctx, conn)| tx::choked_quick(ctx, conn))
        {
            return quick as c_int;
        }
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return 1;
        };
        tx::choked(ctx, conn) as c_int
    })
}

/// Feeds `len` bytes to the connection as if they had been received from its socket.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_read(
    _context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
    buf: *mut c_uchar,
    len: size_t,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return -1;
        };
        if buf.is_null() && len != 0 {
            return -1;
        }
        let mut data = if len == 0 {
            Vec::new()
        } else {
            // SAFETY: the caller passes `buf` valid for `len` bytes (the C contract of this argument; checked non-NULL above).
            unsafe { std::slice::from_raw_parts(buf, len) }.to_vec()
        };
        service::process_input(ctx, conn, &mut data);
        if conn.is_open() {
            0
        } else {
            -1
        }
    })
}

/// Sends a file as the HTTP response. <0: error (connection should close); >0: all
/// sent; 0: in progress (the rest goes out as the socket allows).
#[no_mangle]
pub unsafe extern "C" fn libwebsockets_serve_http_file(
    _context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
    file: *const c_char,
    content_type: *const c_char,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return -1;
        };
        // SAFETY: `file` is NULL or a NUL-terminated string (the C contract of this argument).
        let Some(path) = (unsafe { cstr_bytes(file) }) else {
            return -1;
        };
        // SAFETY: `content_type` is NULL or a NUL-terminated string (the C contract of this argument).
        let ctype = unsafe { cstr_bytes(content_type) }.unwrap_or(b"application/octet-stream");
        use std::os::unix::ffi::OsStrExt;
        let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
        http_server::serve_file(ctx, conn, path, ctype)
    })
}

/// Continues a file transfer started by `libwebsockets_serve_http_file`.
#[no_mangle]
pub unsafe extern "C" fn libwebsockets_serve_http_file_fragment(
    _context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `wsi` is NULL or a wsi this library handed out whose CLOSED callback has not returned (the C contract).
        let Some((ctx, conn)) = (unsafe { wsi_ref(wsi) }) else {
            return -1;
        };
        http_server::serve_file_fragment(ctx, conn)
    })
}

/// Fills `name` with the peer's host name (reverse lookup: hosts file, then DNS) and
/// `rip` with its numeric address, for socket `fd`; an IPv4 peer of the dual-stack
/// listener reads as IPv4. Each is an empty string when it cannot be determined (no
/// name found: `name` empty, `rip` still the address).
#[no_mangle]
pub unsafe extern "C" fn libwebsockets_get_peer_addresses(
    _context: *mut libwebsocket_context,
    _wsi: *mut libwebsocket,
    fd: c_int,
    name: *mut c_char,
    name_len: c_int,
    rip: *mut c_char,
    rip_len: c_int,
) {
    ffi_guard!((), {
        // SAFETY: `name` is NULL or writable for `name_len` bytes (the C contract of this argument).
        let mut name_buf = unsafe { out_slice(name, name_len) };
        // SAFETY: `rip` is NULL or writable for `rip_len` bytes (the C contract of this argument).
        let mut rip_buf = unsafe { out_slice(rip, rip_len) };
        if let Some(b) = name_buf.as_deref_mut() {
            copy_cstr_truncating(b, b"");
        }
        if let Some(b) = rip_buf.as_deref_mut() {
            copy_cstr_truncating(b, b"");
        }
        let Some(addr) = crate::io::sys::net::peer_addr(fd) else {
            return;
        };
        let addr = crate::io::sys::net::unmapped(addr);
        if let Some(b) = rip_buf {
            copy_cstr_truncating(b, addr.ip().to_string().as_bytes());
        }
        if let Some(b) = name_buf {
            if let Some(n) = crate::io::sys::net::name_of(&addr) {
                copy_cstr_truncating(b, n.as_bytes());
            }
        }
    })
}
