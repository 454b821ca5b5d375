//! The static array returned by `libwebsocket_get_internal_extensions`: the original's
//! "x-webkit-deflate-frame" and "deflate-frame", then "permessage-deflate", then the
//! all-zero terminator. Their callback is a marker: the library recognises its own
//! entries and implements them natively.

use crate::capi::abi_types::*;
use crate::io::extensions::{ExtEntry, ExtKind};
use libc::{c_int, c_void, size_t};
use std::cell::UnsafeCell;

/// Marker callback of the internal extensions (they are implemented inside the
/// library; a call through this pointer does nothing and reports success).
unsafe extern "C" fn internal_extension_callback(
    _context: *mut libwebsocket_context,
    _ext: *mut libwebsocket_extension,
    _wsi: *mut libwebsocket,
    _reason: libwebsocket_extension_callback_reasons,
    _user: *mut c_void,
    _in: *mut c_void,
    _len: size_t,
) -> c_int {
    0
}

struct Table(UnsafeCell<[libwebsocket_extension; 4]>);
// SAFETY: the library never writes the table; C may read it from any thread.
unsafe impl Sync for Table {}

const fn entry(name: &'static [u8]) -> libwebsocket_extension {
    libwebsocket_extension {
        name: name.as_ptr() as *const libc::c_char,
        callback: Some(internal_extension_callback),
        per_session_data_size: 0,
        per_context_private_data: std::ptr::null_mut(),
    }
}

static INTERNAL: Table = Table(UnsafeCell::new([
    entry(b"x-webkit-deflate-frame\0"),
    entry(b"deflate-frame\0"),
    entry(b"permessage-deflate\0"),
    libwebsocket_extension {
        name: std::ptr::null(),
        callback: None,
        per_session_data_size: 0,
        per_context_private_data: std::ptr::null_mut(),
    },
]));

pub fn internal_extensions() -> *mut libwebsocket_extension {
    INTERNAL.0.get() as *mut libwebsocket_extension
}

/// Walks the application's extension array (up to the NULL callback) into entries.
///
/// # Safety
/// `arr` must be NULL or point to an array terminated by an entry with a NULL callback.
pub unsafe fn read_extension_array(arr: *mut libwebsocket_extension) -> Vec<ExtEntry> {
    let mut out = Vec::new();
    if arr.is_null() {
        return out;
    }
    let marker = internal_extension_callback as *const () as usize;
    let mut i = 0usize;
    while i < 64 {
        // SAFETY: `arr` is an array ended by an entry with a NULL callback (this function's
        // contract); the loop stops at that entry, so entry `i` is inside it.
        let e = unsafe { &*arr.add(i) };
        let Some(cb) = e.callback else { break };
        // SAFETY: `e.name` is NULL or a NUL-terminated string (the C contract of this argument).
        let name = unsafe { crate::capi::boundary::cstr_bytes(e.name) }
            .unwrap_or(b"")
            .to_vec();
        let kind = if cb as *const () as usize == marker {
            match &name[..] {
                b"permessage-deflate" => ExtKind::PermessageDeflate,
                _ => ExtKind::DeflateFrame,
            }
        } else {
            ExtKind::App
        };
        if !name.is_empty() {
            out.push(ExtEntry {
                index: i,
                name,
                kind,
                pss_size: e.per_session_data_size,
            });
        }
        i += 1;
    }
    out
}
