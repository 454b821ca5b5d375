//! Utility exports: version, SHA-1, base64, randomness, daemonizing, internal extensions.

use crate::capi::abi_types::*;
use crate::capi::boundary::{cstr_bytes, ffi_guard, out_slice};
use crate::engine::util;
use libc::{c_char, c_int, c_uchar, c_void, size_t};

/// "1.3 <build hash>", NUL-terminated, built in by build.rs.
static LIBRARY_VERSION: &str = concat!("1.3 ", env!("LWS_BUILD_HASH"), "\0");

/// Returns the library version string, "1.3 " followed by the build's git hash.
#[no_mangle]
pub extern "C" fn lws_get_library_version() -> *const c_char {
    LIBRARY_VERSION.as_ptr() as *const c_char
}

/// Computes the SHA-1 of `n` bytes at `d` into the 20 bytes at `md`; returns `md`
/// (NULL when `d` or `md` is NULL).
#[no_mangle]
pub unsafe extern "C" fn libwebsockets_SHA1(
    d: *const c_uchar,
    n: size_t,
    md: *mut c_uchar,
) -> *mut c_uchar {
    ffi_guard!(std::ptr::null_mut(), {
        if md.is_null() || (d.is_null() && n != 0) {
            return std::ptr::null_mut();
        }
        let data = if n == 0 {
            &[][..]
        } else {
            // SAFETY: the caller passes `d` valid for `n` bytes (the C contract of this argument; checked non-NULL above).
            unsafe { std::slice::from_raw_parts(d, n) }
        };
        let digest = util::sha1(data);
        // SAFETY: `md` is non-NULL (checked above) and, by the C contract, room for the
        // 20-byte digest; `digest` is a separate local array.
        unsafe { std::ptr::copy_nonoverlapping(digest.as_ptr(), md, 20) };
        md
    })
}

/// Base64-encodes `in_len` bytes into `out` (NUL-terminated). Returns the encoded
/// length, or -1 when `out_size` is too small or an argument is invalid.
#[no_mangle]
pub unsafe extern "C" fn lws_b64_encode_string(
    in_: *const c_char,
    in_len: c_int,
    out: *mut c_char,
    out_size: c_int,
) -> c_int {
    ffi_guard!(-1, {
        if in_len < 0 || (in_.is_null() && in_len > 0) {
            return -1;
        }
        let input = if in_len == 0 {
            &[][..]
        } else {
            // SAFETY: the caller passes `in_ as *const u8` valid for `in_len as usize` bytes (the C contract of this argument; checked non-NULL above).
            unsafe { std::slice::from_raw_parts(in_ as *const u8, in_len as usize) }
        };
        // SAFETY: `out` is NULL or writable for `out_size` bytes (the C contract of this argument).
        match unsafe { out_slice(out, out_size) }.and_then(|o| util::b64_encode_into(input, o)) {
            Some(n) => n as c_int,
            None => -1,
        }
    })
}

/// Decodes the NUL-terminated base64 text `in` into `out`. Returns the decoded length
/// (a NUL follows when there is room), or -1 on malformed input or a too-small buffer.
#[no_mangle]
pub unsafe extern "C" fn lws_b64_decode_string(
    in_: *const c_char,
    out: *mut c_char,
    out_size: c_int,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `in_` is NULL or a NUL-terminated string (the C contract of this argument).
        let Some(text) = (unsafe { cstr_bytes(in_) }) else {
            return -1;
        };
        // SAFETY: `out` is NULL or writable for `out_size` bytes (the C contract of this argument).
        match unsafe { out_slice(out, out_size) }.and_then(|o| util::b64_decode_into(text, o)) {
            Some(n) => n as c_int,
            None => -1,
        }
    })
}

/// Fills `buf` with `len` bytes from the OS CSPRNG. Returns `len`, or -1 on error.
/// The context may be NULL.
#[no_mangle]
pub unsafe extern "C" fn libwebsockets_get_random(
    _context: *mut libwebsocket_context,
    buf: *mut c_void,
    len: c_int,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `buf as *mut c_char` is NULL or writable for `len` bytes (the C contract of this argument).
        let Some(out) = (unsafe { out_slice(buf as *mut c_char, len) }) else {
            return -1;
        };
        match crate::io::sys::fill_random(out) {
            Ok(()) => len,
            Err(_) => -1,
        }
    })
}

/// Puts the process in the background, keeping a lock file with the daemon's pid.
/// Returns 0 in the daemon, 1 when already a daemon or another instance holds the
/// lock; the calling (parent) process exits.
#[no_mangle]
pub unsafe extern "C" fn lws_daemonize(_lock_path: *const c_char) -> c_int {
    ffi_guard!(1, {
        // SAFETY: `_lock_path` is NULL or a NUL-terminated string (the C contract of this argument).
        let Some(path) = (unsafe { cstr_bytes(_lock_path) }) else {
            return 1;
        };
        crate::io::daemon::daemonize(path)
    })
}

/// The library's built-in extensions: a static array ended by an all-zero entry.
#[cfg(not(feature = "no_extensions"))]
#[no_mangle]
pub extern "C" fn libwebsocket_get_internal_extensions() -> *mut libwebsocket_extension {
    crate::capi::extension_table::internal_extensions()
}
