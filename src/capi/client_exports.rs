//! Client connections.

use crate::capi::abi_types::*;
use crate::capi::boundary::{cstr_string, ffi_guard};
use crate::capi::callbacks::wsi_ptr;
use crate::capi::context_exports::ctx_ref;
use crate::io::app::UserPtr;
use crate::io::client::{self, ConnectRequest};
use crate::io::conn::ClientTls;
use libc::{c_char, c_int, c_void};

/// Starts a client connection and returns its handle at once; the connection proceeds
/// in the service loop (CLIENT_ESTABLISHED or CLIENT_CONNECTION_ERROR follow). NULL
/// for invalid arguments (NULL context or address, port outside 1..65535, ssl when TLS
/// is not available) or when no socket can be created.
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
    // SAFETY: the same arguments, under the same contract, with a NULL userdata.
    unsafe {
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
        // SAFETY: `clients` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
        let Some(ctx) = (unsafe { ctx_ref(clients) }) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `address` is NULL or a NUL-terminated string (the C contract of this argument).
        let Some(address) = unsafe { cstr_string(address) }.filter(|a| !a.is_empty()) else {
            crate::log::lws_err!("libwebsocket_client_connect: no address");
            return std::ptr::null_mut();
        };
        if !(1..=65535).contains(&port) {
            crate::log::lws_err!("libwebsocket_client_connect: bad port {}", port);
            return std::ptr::null_mut();
        }
        if !(0..=2).contains(&ssl_connection) {
            crate::log::lws_err!(
                "libwebsocket_client_connect: bad ssl_connection {}",
                ssl_connection
            );
            return std::ptr::null_mut();
        }
        if ietf_version_or_minus_one != -1 && ietf_version_or_minus_one != 13 {
            crate::log::lws_warn!(
                "libwebsocket_client_connect: version {} not spoken, using 13",
                ietf_version_or_minus_one
            );
        }
        // SAFETY: `host` is NULL or a NUL-terminated string (the C contract of this argument).
        let host = unsafe { cstr_string(host) }.unwrap_or_else(|| address.clone());
        let req = ConnectRequest {
            address,
            port: port as u16,
            // SAFETY: `path` is NULL or a NUL-terminated string (the C contract of this argument).
            path: unsafe { cstr_string(path) }.unwrap_or_else(|| "/".into()),
            host,
            // SAFETY: `origin` is NULL or a NUL-terminated string (the C contract of this argument).
            origin: unsafe { cstr_string(origin) },
            // SAFETY: `protocol` is NULL or a NUL-terminated string (the C contract of this argument).
            protocols: unsafe { cstr_string(protocol) },
            userdata: UserPtr::from_raw(userdata),
            ssl: match ssl_connection {
                0 => ClientTls::Plain,
                1 => ClientTls::Verify,
                _ => ClientTls::AllowSelfSigned,
            },
        };
        match client::connect(ctx, req) {
            Some(conn) => wsi_ptr(conn),
            None => std::ptr::null_mut(),
        }
    })
}
