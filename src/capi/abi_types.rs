//! `#[repr(C)]` mirrors of every public v1.23 type. cbindgen turns this file into the
//! structs and enums of `include/libwebsockets.h`; the layout asserts at the bottom pin
//! the x86_64 sizes and offsets of the original header.
#![allow(non_camel_case_types)]

use libc::{c_char, c_int, c_uint, c_void, size_t};

/// The library context (opaque to C).
pub struct libwebsocket_context {
    _opaque: [u8; 0],
}

/// One connection (opaque to C).
pub struct libwebsocket {
    _opaque: [u8; 0],
}

/// Log level bits, OR-ed together for `lws_set_log_level`.
#[repr(C)]
pub enum lws_log_levels {
    LLL_ERR = 1 << 0,
    LLL_WARN = 1 << 1,
    LLL_NOTICE = 1 << 2,
    LLL_INFO = 1 << 3,
    LLL_DEBUG = 1 << 4,
    LLL_PARSER = 1 << 5,
    LLL_HEADER = 1 << 6,
    LLL_EXT = 1 << 7,
    LLL_CLIENT = 1 << 8,
    LLL_LATENCY = 1 << 9,
    LLL_COUNT = 10,
}

/// Bits of `lws_context_creation_info.options`.
#[repr(C)]
pub enum libwebsocket_context_options {
    LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT = 2,
    LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME = 4,
}

/// Why the user callback is being called.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum libwebsocket_callback_reasons {
    LWS_CALLBACK_ESTABLISHED,
    LWS_CALLBACK_CLIENT_CONNECTION_ERROR,
    LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH,
    LWS_CALLBACK_CLIENT_ESTABLISHED,
    LWS_CALLBACK_CLOSED,
    LWS_CALLBACK_CLOSED_HTTP,
    LWS_CALLBACK_RECEIVE,
    LWS_CALLBACK_CLIENT_RECEIVE,
    LWS_CALLBACK_CLIENT_RECEIVE_PONG,
    LWS_CALLBACK_CLIENT_WRITEABLE,
    LWS_CALLBACK_SERVER_WRITEABLE,
    LWS_CALLBACK_HTTP,
    LWS_CALLBACK_HTTP_FILE_COMPLETION,
    LWS_CALLBACK_HTTP_WRITEABLE,
    LWS_CALLBACK_FILTER_NETWORK_CONNECTION,
    LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION,
    LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS,
    LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS,
    LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION,
    LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER,
    LWS_CALLBACK_CONFIRM_EXTENSION_OKAY,
    LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED,
    LWS_CALLBACK_PROTOCOL_INIT,
    LWS_CALLBACK_PROTOCOL_DESTROY,
    LWS_CALLBACK_ADD_POLL_FD,
    LWS_CALLBACK_DEL_POLL_FD,
    LWS_CALLBACK_SET_MODE_POLL_FD,
    LWS_CALLBACK_CLEAR_MODE_POLL_FD,
}

/// Why an extension callback is being called.
#[cfg(not(feature = "no_extensions"))]
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum libwebsocket_extension_callback_reasons {
    LWS_EXT_CALLBACK_SERVER_CONTEXT_CONSTRUCT,
    LWS_EXT_CALLBACK_CLIENT_CONTEXT_CONSTRUCT,
    LWS_EXT_CALLBACK_SERVER_CONTEXT_DESTRUCT,
    LWS_EXT_CALLBACK_CLIENT_CONTEXT_DESTRUCT,
    LWS_EXT_CALLBACK_CONSTRUCT,
    LWS_EXT_CALLBACK_CLIENT_CONSTRUCT,
    LWS_EXT_CALLBACK_CHECK_OK_TO_REALLY_CLOSE,
    LWS_EXT_CALLBACK_CHECK_OK_TO_PROPOSE_EXTENSION,
    LWS_EXT_CALLBACK_DESTROY,
    LWS_EXT_CALLBACK_DESTROY_ANY_WSI_CLOSING,
    LWS_EXT_CALLBACK_ANY_WSI_ESTABLISHED,
    LWS_EXT_CALLBACK_PACKET_RX_PREPARSE,
    LWS_EXT_CALLBACK_PACKET_TX_PRESEND,
    LWS_EXT_CALLBACK_PACKET_TX_DO_SEND,
    LWS_EXT_CALLBACK_HANDSHAKE_REPLY_TX,
    LWS_EXT_CALLBACK_FLUSH_PENDING_TX,
    LWS_EXT_CALLBACK_EXTENDED_PAYLOAD_RX,
    LWS_EXT_CALLBACK_CAN_PROXY_CLIENT_CONNECTION,
    LWS_EXT_CALLBACK_1HZ,
    LWS_EXT_CALLBACK_REQUEST_ON_WRITEABLE,
    LWS_EXT_CALLBACK_IS_WRITEABLE,
    LWS_EXT_CALLBACK_PAYLOAD_TX,
    LWS_EXT_CALLBACK_PAYLOAD_RX,
}

/// Framing requested from `libwebsocket_write`; C callers OR in `LWS_WRITE_NO_FIN` and
/// `LWS_WRITE_CLIENT_IGNORE_XOR_MASK`, so the library receives it as a plain integer.
#[repr(C)]
pub enum libwebsocket_write_protocol {
    LWS_WRITE_TEXT,
    LWS_WRITE_BINARY,
    LWS_WRITE_CONTINUATION,
    LWS_WRITE_HTTP,
    LWS_WRITE_CLOSE,
    LWS_WRITE_PING,
    LWS_WRITE_PONG,
    LWS_WRITE_NO_FIN = 0x40,
    LWS_WRITE_CLIENT_IGNORE_XOR_MASK = 0x80,
}

/// A pointer and length pair, used by extensions and the header table.
#[repr(C)]
pub struct lws_tokens {
    pub token: *mut c_char,
    pub token_len: c_int,
}

/// Indexes of the headers readable with `lws_hdr_total_length` / `lws_hdr_copy`.
#[repr(C)]
pub enum lws_token_indexes {
    WSI_TOKEN_GET_URI,
    WSI_TOKEN_HOST,
    WSI_TOKEN_CONNECTION,
    WSI_TOKEN_KEY1,
    WSI_TOKEN_KEY2,
    WSI_TOKEN_PROTOCOL,
    WSI_TOKEN_UPGRADE,
    WSI_TOKEN_ORIGIN,
    WSI_TOKEN_DRAFT,
    WSI_TOKEN_CHALLENGE,
    WSI_TOKEN_KEY,
    WSI_TOKEN_VERSION,
    WSI_TOKEN_SWORIGIN,
    WSI_TOKEN_EXTENSIONS,
    WSI_TOKEN_ACCEPT,
    WSI_TOKEN_NONCE,
    WSI_TOKEN_HTTP,
    WSI_TOKEN_MUXURL,
    _WSI_TOKEN_CLIENT_SENT_PROTOCOLS,
    _WSI_TOKEN_CLIENT_PEER_ADDRESS,
    _WSI_TOKEN_CLIENT_URI,
    _WSI_TOKEN_CLIENT_HOST,
    _WSI_TOKEN_CLIENT_ORIGIN,
    WSI_TOKEN_COUNT,
    WSI_TOKEN_NAME_PART,
    WSI_TOKEN_SKIPPING,
    WSI_TOKEN_SKIPPING_SAW_CR,
    WSI_PARSING_COMPLETE,
    WSI_INIT_TOKEN_MUXURL,
}

/// Close status codes of RFC 6455 section 7.4.1.
#[repr(C)]
pub enum lws_close_status {
    LWS_CLOSE_STATUS_NOSTATUS = 0,
    LWS_CLOSE_STATUS_NORMAL = 1000,
    LWS_CLOSE_STATUS_GOINGAWAY = 1001,
    LWS_CLOSE_STATUS_PROTOCOL_ERR = 1002,
    LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE = 1003,
    LWS_CLOSE_STATUS_RESERVED = 1004,
    LWS_CLOSE_STATUS_NO_STATUS = 1005,
    LWS_CLOSE_STATUS_ABNORMAL_CLOSE = 1006,
    LWS_CLOSE_STATUS_INVALID_PAYLOAD = 1007,
    LWS_CLOSE_STATUS_POLICY_VIOLATION = 1008,
    LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE = 1009,
    LWS_CLOSE_STATUS_EXTENSION_REQUIRED = 1010,
    LWS_CLOSE_STATUS_UNEXPECTED_CONDITION = 1011,
    LWS_CLOSE_STATUS_TLS_FAILURE = 1015,
}

/// Reasons a connection can be waiting with a deadline.
#[repr(C)]
pub enum pending_timeout {
    NO_PENDING_TIMEOUT = 0,
    PENDING_TIMEOUT_AWAITING_PROXY_RESPONSE,
    PENDING_TIMEOUT_AWAITING_CONNECT_RESPONSE,
    PENDING_TIMEOUT_ESTABLISH_WITH_SERVER,
    PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE,
    PENDING_TIMEOUT_AWAITING_PING,
    PENDING_TIMEOUT_CLOSE_ACK,
    PENDING_TIMEOUT_AWAITING_EXTENSION_CONNECT_RESPONSE,
    PENDING_TIMEOUT_SENT_CLIENT_HANDSHAKE,
    PENDING_TIMEOUT_SSL_ACCEPT,
}

/// The user protocol callback, as stored in `struct libwebsocket_protocols`.
/// cbindgen writes it as `callback_function *`, a pointer to the function typedef.
pub type CallbackFunctionPtr = Option<CallbackFunction>;

/// The callback function type itself (`callback_function` in C).
pub type CallbackFunction = unsafe extern "C" fn(
    context: *mut libwebsocket_context,
    wsi: *mut libwebsocket,
    reason: libwebsocket_callback_reasons,
    user: *mut c_void,
    in_: *mut c_void,
    len: size_t,
) -> c_int;

/// The extension callback, as stored in `struct libwebsocket_extension`.
#[cfg(not(feature = "no_extensions"))]
pub type ExtensionCallbackFunctionPtr = Option<ExtensionCallbackFunction>;

/// The extension callback function type itself (`extension_callback_function` in C).
#[cfg(not(feature = "no_extensions"))]
pub type ExtensionCallbackFunction = unsafe extern "C" fn(
    context: *mut libwebsocket_context,
    ext: *mut libwebsocket_extension,
    wsi: *mut libwebsocket,
    reason: libwebsocket_extension_callback_reasons,
    user: *mut c_void,
    in_: *mut c_void,
    len: size_t,
) -> c_int;

/// One protocol the application serves; the array ends at the first NULL callback.
#[repr(C)]
pub struct libwebsocket_protocols {
    pub name: *const c_char,
    pub callback: Option<
        unsafe extern "C" fn(
            context: *mut libwebsocket_context,
            wsi: *mut libwebsocket,
            reason: libwebsocket_callback_reasons,
            user: *mut c_void,
            in_: *mut c_void,
            len: size_t,
        ) -> c_int,
    >,
    pub per_session_data_size: size_t,
    pub rx_buffer_size: size_t,
    pub no_buffer_all_partial_tx: c_int,
    pub owning_server: *mut libwebsocket_context,
    pub protocol_index: c_int,
}

/// One extension the context may negotiate; the array ends at the first NULL callback.
#[cfg(not(feature = "no_extensions"))]
#[repr(C)]
pub struct libwebsocket_extension {
    pub name: *const c_char,
    pub callback: Option<
        unsafe extern "C" fn(
            context: *mut libwebsocket_context,
            ext: *mut libwebsocket_extension,
            wsi: *mut libwebsocket,
            reason: libwebsocket_extension_callback_reasons,
            user: *mut c_void,
            in_: *mut c_void,
            len: size_t,
        ) -> c_int,
    >,
    pub per_session_data_size: size_t,
    pub per_context_private_data: *mut c_void,
}

/// Everything `libwebsocket_create_context` needs.
#[repr(C)]
pub struct lws_context_creation_info {
    pub port: c_int,
    pub iface: *const c_char,
    pub protocols: *mut libwebsocket_protocols,
    pub extensions: *mut libwebsocket_extension,
    pub ssl_cert_filepath: *const c_char,
    pub ssl_private_key_filepath: *const c_char,
    pub ssl_ca_filepath: *const c_char,
    pub ssl_cipher_list: *const c_char,
    pub gid: c_int,
    pub uid: c_int,
    pub options: c_uint,
    pub user: *mut c_void,
    pub ka_time: c_int,
    pub ka_probes: c_int,
    pub ka_interval: c_int,
}

#[cfg(feature = "no_extensions")]
/// Stand-in so `lws_context_creation_info` keeps its layout when extensions are off.
pub struct libwebsocket_extension {
    _opaque: [u8; 0],
}

/// Port value that makes a context client-only.
pub const CONTEXT_PORT_NO_LISTEN: c_int = 0;
/// Kept for source compatibility with the original header.
pub const MAX_MUX_RECURSION: c_int = 2;
/// Bytes the caller must leave writeable before the payload given to `libwebsocket_write`.
pub const LWS_SEND_BUFFER_PRE_PADDING: c_int = 4 + 10 + 2 * MAX_MUX_RECURSION;
/// Bytes the caller must leave writeable after the payload given to `libwebsocket_write`.
pub const LWS_SEND_BUFFER_POST_PADDING: c_int = 4;

#[cfg(target_pointer_width = "64")]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<lws_tokens>() == 16);
    assert!(size_of::<libwebsocket_protocols>() == 56);
    assert!(offset_of!(libwebsocket_protocols, no_buffer_all_partial_tx) == 32);
    assert!(offset_of!(libwebsocket_protocols, owning_server) == 40);
    assert!(offset_of!(libwebsocket_protocols, protocol_index) == 48);
    assert!(size_of::<lws_context_creation_info>() == 104);
    assert!(align_of::<lws_context_creation_info>() == 8);
    assert!(offset_of!(lws_context_creation_info, options) == 72);
    assert!(offset_of!(lws_context_creation_info, user) == 80);
    assert!(offset_of!(lws_context_creation_info, ka_interval) == 96);
    assert!(size_of::<libwebsocket_callback_reasons>() == 4);
};

#[cfg(all(target_pointer_width = "64", not(feature = "no_extensions")))]
const _: () = assert!(core::mem::size_of::<libwebsocket_extension>() == 32);

// The C mirrors above carry numbers that Rust code uses under its own names: pinned here,
// so that the header and the library cannot drift apart.
const _: () = {
    use crate::engine::timers::pending_timeout as pt;
    use crate::engine::ws::write_protocol as wp;
    use crate::io::context::server_option as so;
    use libwebsocket_write_protocol::*;
    use pending_timeout::*;
    assert!(LWS_WRITE_TEXT as u32 == wp::WRITE_TEXT);
    assert!(LWS_WRITE_BINARY as u32 == wp::WRITE_BINARY);
    assert!(LWS_WRITE_CONTINUATION as u32 == wp::WRITE_CONTINUATION);
    assert!(LWS_WRITE_HTTP as u32 == wp::WRITE_HTTP);
    assert!(LWS_WRITE_CLOSE as u32 == wp::WRITE_CLOSE);
    assert!(LWS_WRITE_PING as u32 == wp::WRITE_PING);
    assert!(LWS_WRITE_PONG as u32 == wp::WRITE_PONG);
    assert!(LWS_WRITE_NO_FIN as u32 == wp::WRITE_NO_FIN);
    assert!(LWS_WRITE_CLIENT_IGNORE_XOR_MASK as u32 == wp::WRITE_CLIENT_IGNORE_XOR_MASK);
    assert!(NO_PENDING_TIMEOUT as u32 == pt::NO_PENDING_TIMEOUT);
    assert!(PENDING_TIMEOUT_AWAITING_PROXY_RESPONSE as u32 == pt::AWAITING_PROXY_RESPONSE);
    assert!(PENDING_TIMEOUT_AWAITING_CONNECT_RESPONSE as u32 == pt::AWAITING_CONNECT_RESPONSE);
    assert!(PENDING_TIMEOUT_ESTABLISH_WITH_SERVER as u32 == pt::ESTABLISH_WITH_SERVER);
    assert!(PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE as u32 == pt::AWAITING_SERVER_RESPONSE);
    assert!(PENDING_TIMEOUT_AWAITING_PING as u32 == pt::AWAITING_PING);
    assert!(PENDING_TIMEOUT_CLOSE_ACK as u32 == pt::CLOSE_ACK);
    assert!(
        PENDING_TIMEOUT_AWAITING_EXTENSION_CONNECT_RESPONSE as u32
            == pt::AWAITING_EXTENSION_CONNECT_RESPONSE
    );
    assert!(PENDING_TIMEOUT_SENT_CLIENT_HANDSHAKE as u32 == pt::SENT_CLIENT_HANDSHAKE);
    assert!(PENDING_TIMEOUT_SSL_ACCEPT as u32 == pt::SSL_ACCEPT);
    assert!(
        libwebsocket_context_options::LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT as u32
            == so::REQUIRE_VALID_CLIENT_CERT
    );
    assert!(
        libwebsocket_context_options::LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME as u32
            == so::SKIP_SERVER_CANONICAL_NAME
    );
};
