//! The C ABI: every `#[no_mangle] extern "C"` function, the `#[repr(C)]` types of the
//! header, and the application as io sees it. capi depends on io and engine; neither
//! depends on capi.
//!
//! * [`abi_types`]: `#[repr(C)]` mirrors of the v1.23 header; cbindgen generates
//!   `include/libwebsockets.h` from them and from the exports.
//! * [`boundary`]: panic containment (`ffi_guard!`: no panic crosses into C) and
//!   checks of C strings and buffers.
//! * [`callbacks`]: [`callbacks::CApp`], the `io::app::Application` implementation over
//!   the application's protocol and extension arrays: io's reasons mapped to
//!   LWS_CALLBACK_* / LWS_EXT_CALLBACK_* in one place, callback arguments turned into
//!   the pointers v1.23 passed, `struct lws_tokens` read back.
//! * [`context_exports`], [`connection_exports`], [`client_exports`], [`util_exports`],
//!   [`log_exports`]: the exported functions. Handles from C are validated here before
//!   io sees them.
//! * `extension_table`: the array `libwebsocket_get_internal_extensions` returns.
#![allow(clippy::missing_safety_doc)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod abi_types;
pub mod boundary;
pub mod callbacks;
pub mod client_exports;
pub mod connection_exports;
pub mod context_exports;
#[cfg(not(feature = "no_extensions"))]
pub mod extension_table;
pub mod log_exports;
pub mod util_exports;
