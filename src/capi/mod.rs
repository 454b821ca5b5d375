//! The C ABI surface. Every `#[no_mangle]` function, `#[repr(C)]` type and raw pointer
//! lives under this module.
#![allow(clippy::missing_safety_doc)]

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
