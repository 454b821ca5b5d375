//! Calls into the application's protocol callbacks. The only place that reads the
//! caller's `struct libwebsocket_protocols` array after context creation.

use crate::capi::abi_types::*;
use crate::io::conn::Conn;
use crate::io::context::Context;
use libc::{c_int, c_void};

/// The C pointer the application knows this connection by.
pub fn wsi_ptr(conn: &Conn) -> *mut libwebsocket {
    conn as *const Conn as *mut libwebsocket
}

pub fn ctx_ptr(ctx: &Context) -> *mut libwebsocket_context {
    ctx as *const Context as *mut libwebsocket_context
}

/// Calls protocols[`index`].callback.
/// `user` and `input` are handed to C untouched; Rust never dereferences them here. Returns 0 when there is no such callback.
/// No Rust borrow of context or connection state may be held by the caller.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn invoke(
    ctx: &Context,
    index: usize,
    conn: Option<&Conn>,
    reason: libwebsocket_callback_reasons,
    user: *mut c_void,
    input: *mut c_void,
    len: usize,
) -> c_int {
    if index >= ctx.protocols.len() || ctx.c_protocols.is_null() {
        return 0;
    }
    // SAFETY: index is below the entry count validated at creation; the application
    // keeps its protocols array alive for the context's lifetime (documented contract).
    let cb = unsafe { (*ctx.c_protocols.add(index)).callback };
    let Some(cb) = cb else { return 0 };
    let wsi = conn.map_or(std::ptr::null_mut(), wsi_ptr);
    // SAFETY: calling the application's callback with the documented arguments.
    unsafe { cb(ctx_ptr(ctx), wsi, reason, user, input, len) }
}

/// Calls the connection's own protocol callback with its per-session data.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn invoke_conn(
    ctx: &Context,
    conn: &Conn,
    reason: libwebsocket_callback_reasons,
    input: *mut c_void,
    len: usize,
) -> c_int {
    let user = conn.user_ptr();
    invoke(
        ctx,
        conn.protocol.get(),
        Some(conn),
        reason,
        user,
        input,
        len,
    )
}

/// A POLL_FD notification for external event loops (always to protocols[0]).
pub fn poll_fd_event(
    ctx: &Context,
    conn: Option<&Conn>,
    reason: libwebsocket_callback_reasons,
    fd: i32,
    events: i16,
) {
    let user = conn.map_or(std::ptr::null_mut(), |c| c.user_ptr());
    invoke(
        ctx,
        0,
        conn,
        reason,
        user,
        fd as isize as *mut c_void,
        events as u16 as usize,
    );
}

/// Calls the callback of entry `index` of the context's extension array.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn invoke_ext(
    ctx: &Context,
    index: usize,
    conn: Option<&Conn>,
    reason: libwebsocket_extension_callback_reasons,
    user: *mut c_void,
    input: *mut c_void,
    len: usize,
) -> c_int {
    if ctx.c_extensions.is_null() || !ctx.extensions.iter().any(|e| e.index == index) {
        return 0;
    }
    // SAFETY: index was validated against the array walked at creation; the
    // application keeps its extension array alive for the context's lifetime.
    let ext = unsafe { ctx.c_extensions.add(index) };
    let Some(cb) = (unsafe { (*ext).callback }) else {
        return 0;
    };
    let wsi = conn.map_or(std::ptr::null_mut(), wsi_ptr);
    // SAFETY: calling the application's extension callback with documented arguments.
    unsafe { cb(ctx_ptr(ctx), ext, wsi, reason, user, input, len) }
}

/// Calls an extension callback with an `lws_tokens` describing `buf`. Returns
/// Ok(Some(new bytes)) when the extension replaced or shortened the buffer,
/// Ok(None) when it left it alone, Err(()) when it reported a fatal error.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub fn invoke_ext_tokens(
    ctx: &Context,
    index: usize,
    conn: &Conn,
    reason: libwebsocket_extension_callback_reasons,
    user: *mut c_void,
    buf: &mut [u8],
) -> Result<Option<Vec<u8>>, crate::io::extensions::ExtensionFailed> {
    let orig_ptr = buf.as_mut_ptr() as *mut libc::c_char;
    let orig_len = buf.len().min(i32::MAX as usize) as c_int;
    let mut tokens = lws_tokens {
        token: orig_ptr,
        token_len: orig_len,
    };
    let n = invoke_ext(
        ctx,
        index,
        Some(conn),
        reason,
        user,
        &mut tokens as *mut lws_tokens as *mut c_void,
        0,
    );
    if n < 0 {
        return Err(crate::io::extensions::ExtensionFailed);
    }
    if tokens.token == orig_ptr && tokens.token_len == orig_len {
        return Ok(None);
    }
    if tokens.token.is_null() || tokens.token_len <= 0 {
        return Ok(Some(Vec::new()));
    }
    // SAFETY: the extension hands us token_len readable bytes at token (its contract).
    let v =
        unsafe { std::slice::from_raw_parts(tokens.token as *const u8, tokens.token_len as usize) }
            .to_vec();
    Ok(Some(v))
}
