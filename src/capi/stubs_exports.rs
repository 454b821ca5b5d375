//! Context, connection, HTTP and client exports (engine wiring comes next).
use crate::capi::abi_types::*;
use libc::{c_char, c_int, c_uchar, c_uint, c_void, size_t};

/// Same ABI as `enum libwebsocket_write_protocol`; may carry OR-ed flag bits.
pub type WriteProtocolInt = c_uint;
/// Same ABI as `enum pending_timeout`.
pub type PendingTimeoutInt = c_uint;
/// Same ABI as `enum lws_token_indexes`.
pub type TokenIndexInt = c_uint;

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_create_context(
    info: *mut lws_context_creation_info,
) -> *mut libwebsocket_context {
    let _ = info;
    std::ptr::null_mut()
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_set_proxy(
    context: *mut libwebsocket_context,
    proxy: *const c_char,
) -> c_int {
    let _ = (context, proxy);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_context_destroy(context: *mut libwebsocket_context) {
    let _ = context;
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_service(
    context: *mut libwebsocket_context,
    timeout_ms: c_int,
) -> c_int {
    let _ = (context, timeout_ms);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_service_fd(
    context: *mut libwebsocket_context,
    pollfd: *mut libc::pollfd,
) -> c_int {
    let _ = (context, pollfd);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_context_user(
    context: *mut libwebsocket_context,
) -> *mut c_void {
    let _ = context;
    std::ptr::null_mut()
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_set_timeout(
    wsi: *mut libwebsocket,
    reason: PendingTimeoutInt,
    secs: c_int,
) {
    let _ = (wsi, reason, secs);
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_write(
    wsi: *mut libwebsocket,
    buf: *mut c_uchar,
    len: size_t,
    protocol: WriteProtocolInt,
) -> c_int {
    let _ = (wsi, buf, len, protocol);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn lws_hdr_total_length(wsi: *mut libwebsocket, h: TokenIndexInt) -> c_int {
    let _ = (wsi, h);
    0
}

#[no_mangle]
pub unsafe extern "C" fn lws_hdr_copy(
    wsi: *mut libwebsocket,
    dest: *mut c_char,
    len: c_int,
    h: TokenIndexInt,
) -> c_int {
    let _ = (wsi, dest, len, h);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsockets_serve_http_file(
    context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
    file: *const c_char,
    content_type: *const c_char,
) -> c_int {
    let _ = (context, wsi, file, content_type);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsockets_serve_http_file_fragment(
    context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
) -> c_int {
    let _ = (context, wsi);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsockets_get_protocol(
    wsi: *mut libwebsocket,
) -> *const libwebsocket_protocols {
    let _ = wsi;
    std::ptr::null()
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_callback_on_writable(
    context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
) -> c_int {
    let _ = (context, wsi);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_callback_on_writable_all_protocol(
    protocol: *const libwebsocket_protocols,
) -> c_int {
    let _ = protocol;
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_get_socket_fd(wsi: *mut libwebsocket) -> c_int {
    let _ = wsi;
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_is_final_fragment(wsi: *mut libwebsocket) -> c_int {
    let _ = wsi;
    0
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_get_reserved_bits(wsi: *mut libwebsocket) -> c_uchar {
    let _ = wsi;
    0
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_rx_flow_control(
    wsi: *mut libwebsocket,
    enable: c_int,
) -> c_int {
    let _ = (wsi, enable);
    -1
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_rx_flow_allow_all_protocol(
    protocol: *const libwebsocket_protocols,
) {
    let _ = protocol;
}

#[no_mangle]
pub unsafe extern "C" fn libwebsockets_remaining_packet_payload(wsi: *mut libwebsocket) -> size_t {
    let _ = wsi;
    0
}

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
    let _ = (
        clients,
        address,
        port,
        ssl_connection,
        path,
        host,
        origin,
        protocol,
        ietf_version_or_minus_one,
    );
    std::ptr::null_mut()
}

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
    let _ = (
        clients,
        address,
        port,
        ssl_connection,
        path,
        host,
        origin,
        protocol,
        ietf_version_or_minus_one,
        userdata,
    );
    std::ptr::null_mut()
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_canonical_hostname(
    context: *mut libwebsocket_context,
) -> *const c_char {
    let _ = context;
    std::ptr::null()
}

#[no_mangle]
pub unsafe extern "C" fn libwebsockets_get_peer_addresses(
    context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
    fd: c_int,
    name: *mut c_char,
    name_len: c_int,
    rip: *mut c_char,
    rip_len: c_int,
) {
    let _ = (context, wsi, fd, name, name_len, rip, rip_len);
}

#[no_mangle]
pub unsafe extern "C" fn lws_send_pipe_choked(wsi: *mut libwebsocket) -> c_int {
    let _ = wsi;
    1
}

#[no_mangle]
pub unsafe extern "C" fn lws_frame_is_binary(wsi: *mut libwebsocket) -> c_int {
    let _ = wsi;
    0
}

#[no_mangle]
pub unsafe extern "C" fn libwebsocket_read(
    context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
    buf: *mut c_uchar,
    len: size_t,
) -> c_int {
    let _ = (context, wsi, buf, len);
    -1
}
