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

/// Calls an extension callback with `in` pointing to `tokens` (PACKET_RX_PREPARSE,
/// PACKET_TX_PRESEND, FLUSH_PENDING_TX, PAYLOAD_RX/TX, EXTENDED_PAYLOAD_RX). What the
/// extension leaves in `tokens` is the caller's to check
/// (`engine::extensions::app_hooks::check_tokens`) before anything is read through it.
pub fn invoke_ext_tokens(
    ctx: &Context,
    index: usize,
    conn: &Conn,
    reason: libwebsocket_extension_callback_reasons,
    user: *mut c_void,
    tokens: &mut lws_tokens,
) -> c_int {
    invoke_ext(
        ctx,
        index,
        Some(conn),
        reason,
        user,
        tokens as *mut lws_tokens as *mut c_void,
        0,
    )
}
