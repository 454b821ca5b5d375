//! The one place where C meets Rust: panic containment and pointer checks.
//!
//! Every exported function wraps its body in [`ffi_guard!`] so that a panic is logged
//! and turned into the function's documented error value instead of aborting the
//! C program. Calls *into* C (user callbacks) are never wrapped: a C callback cannot
//! unwind, and Rust state is never borrowed across one.

use std::any::Any;

/// Runs `$body`; if it panics, logs the panic and evaluates to `$default`.
macro_rules! ffi_guard {
    ($default:expr, $body:block) => {{
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(payload) => {
                $crate::capi::boundary::report_panic(payload);
                $default
            }
        }
    }};
}
pub(crate) use ffi_guard;

/// Logs a caught panic at error level.
pub fn report_panic(payload: Box<dyn Any + Send>) {
    let msg = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    };
    crate::log::lws_err!(
        "libwebsockets: internal error contained at the C boundary: {}",
        msg
    );
}

/// Borrows a NUL-terminated C string as bytes; NULL gives `None`.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string that outlives the borrow.
pub unsafe fn cstr_bytes<'a>(p: *const libc::c_char) -> Option<&'a [u8]> {
    if p.is_null() {
        None
    } else {
        // SAFETY: non-NULL here, and NUL-terminated and live for the borrow (this
        // function's contract).
        Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_bytes())
    }
}

/// Borrows a NUL-terminated C string as UTF-8 (lossy on invalid bytes); NULL gives `None`.
///
/// # Safety
/// As [`cstr_bytes`].
pub unsafe fn cstr_string(p: *const libc::c_char) -> Option<String> {
    // SAFETY: `p` is NULL or a NUL-terminated string (the C contract of this argument).
    unsafe { cstr_bytes(p) }.map(|b| String::from_utf8_lossy(b).into_owned())
}

/// Views a caller buffer as a mutable byte slice; NULL or negative length gives `None`.
///
/// # Safety
/// `p` must be valid for `len` bytes of writes when non-NULL.
pub unsafe fn out_slice<'a>(p: *mut libc::c_char, len: libc::c_int) -> Option<&'a mut [u8]> {
    if p.is_null() || len < 0 {
        None
    } else {
        // SAFETY: the caller passes `p as *mut u8` valid for `len as usize` bytes (the C contract of this argument; checked non-NULL above).
        Some(unsafe { std::slice::from_raw_parts_mut(p as *mut u8, len as usize) })
    }
}

/// Copies `src` into a C buffer of `cap` bytes as a NUL-terminated string, truncating.
/// Returns the number of bytes copied (without the NUL), or `None` when `cap` is 0.
pub fn copy_cstr_truncating(dst: &mut [u8], src: &[u8]) -> Option<usize> {
    if dst.is_empty() {
        return None;
    }
    let n = src.len().min(dst.len() - 1);
    dst[..n].copy_from_slice(&src[..n]);
    dst[n] = 0;
    Some(n)
}
