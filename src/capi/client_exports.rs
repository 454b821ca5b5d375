//! Client connections (the client engine is not built yet: these log and fail).

use crate::capi::abi_types::*;
use crate::capi::boundary::ffi_guard;
use libc::{c_char, c_int, c_void};

/// Connects to a WebSocket server. Not available yet in this build: returns NULL.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_client_connect(
    clients: *mut libwebsocket_context,
    address: *const c_char,
    port: c_int,
    ssl_connection: c_int,
    path: *const c_char,
    host: *const c_char,
    origin: *const c_char,
    protocol: *const c_char,
    ietf_version_or_minus_one: c_int,
) -> *mut libwebsocket {
    libwebsocket_client_connect_extended(
        clients,
        address,
        port,
        ssl_connection,
        path,
        host,
        origin,
        protocol,
        ietf_version_or_minus_one,
        std::ptr::null_mut(),
    )
}

/// As `libwebsocket_client_connect`, with caller-allocated per-session data.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_client_connect_extended(
    clients: *mut libwebsocket_context,
    address: *const c_char,
    port: c_int,
    ssl_connection: c_int,
    path: *const c_char,
    host: *const c_char,
    origin: *const c_char,
    protocol: *const c_char,
    ietf_version_or_minus_one: c_int,
    userdata: *mut c_void,
) -> *mut libwebsocket {
    ffi_guard!(std::ptr::null_mut(), {
        let _ = (address, port, ssl_connection, path, host, origin, protocol);
        let _ = (ietf_version_or_minus_one, userdata);
        if clients.is_null() {
            return std::ptr::null_mut();
        }
        crate::log::lws_err!(
            "libwebsocket_client_connect: client connections are not supported yet"
        );
        std::ptr::null_mut()
    })
}
