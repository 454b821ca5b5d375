//! The static array returned by `libwebsocket_get_internal_extensions`.
//!
//! Until the extensions work lands it holds only the terminator, so programs that
//! register it simply negotiate no extension.

use crate::capi::abi_types::libwebsocket_extension;
use std::cell::UnsafeCell;

struct Table(UnsafeCell<[libwebsocket_extension; 1]>);
// SAFETY: the table is never written by the library; C may read it from any thread.
unsafe impl Sync for Table {}

static INTERNAL: Table = Table(UnsafeCell::new([libwebsocket_extension {
    name: std::ptr::null(),
    callback: None,
    per_session_data_size: 0,
    per_context_private_data: std::ptr::null_mut(),
}]));

pub fn internal_extensions() -> *mut libwebsocket_extension {
    INTERNAL.0.get() as *mut libwebsocket_extension
}
