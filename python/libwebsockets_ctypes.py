"""libwebsockets v1.23 from Python, through ctypes.

Loads the shared library (``LWS_LIBRARY`` if set, else this repository's
``target/release/libwebsockets.so.4.0.0``, else ``libwebsockets.so.4.0.0`` from the
loader's search path, i.e. an installed copy), declares the public structs and
prototypes with the C ABI's layout, and wraps the calls a server or client needs:

    import libwebsockets_ctypes as lws

    def echo(ctx, wsi, reason, user, in_, length):
        if reason == lws.LWS_CALLBACK_RECEIVE:
            ctx.write(wsi, lws.payload(in_, length),
                      lws.LWS_WRITE_BINARY if lws.frame_is_binary(wsi) else lws.LWS_WRITE_TEXT)
        return 0

    ctx = lws.Context([lws.Protocol("echo", echo)], port=9000)
    while True:
        ctx.service(50)

Rules (the C library's, made explicit):

* One thread per context. ``Context.service`` and every call taking that context
  or one of its connections (``write``, ``callback_on_writable``,
  ``client_connect``, ``hdr_copy``, ``destroy``...) must come from the same thread;
  callbacks run on it, inside ``service``. Other threads hand work over with
  ``Context.call_soon`` (run between two service passes). ``Context`` enforces
  this once ``service`` has been called and raises ``WrongThreadError``.
* Lifetime. The library keeps pointers to the protocol array (it writes
  ``owning_server`` and ``protocol_index`` into it), the protocol names and the
  C function pointers made from the Python callbacks for as long as the context
  lives; ``Context`` holds them until ``destroy`` returns. If you build the raw
  structs yourself, keep them, and every ``CALLBACK`` object, referenced until then.
  The emitter given to ``set_log_level`` is kept by this module for good.
* Pointers. ``wsi`` (a connection), ``user`` (its ``per_session_data_size``
  bytes, zeroed by the library, valid from ESTABLISHED / CLIENT_ESTABLISHED until
  CLOSED returns) and ``in_`` are plain integers (addresses) or None. Copy what
  ``in_`` points to (``payload``) before the callback returns; view ``user``
  through a ``ctypes.Structure`` (``MySession.from_address(user)``) or key a dict by
  ``wsi`` and drop the entry at CLOSED (the address may be reused afterwards).
* A callback must not raise: an exception is reported on stderr and the callback
  returns -1, which closes that connection (or refuses it), as a C callback returning
  non-zero does. KeyboardInterrupt and SystemExit also return -1 there, and are
  raised again by ``service`` once the library has returned.
"""

import ctypes
import errno
import os
import sys
import threading
import traceback
from collections import deque
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_size_t,
    c_ubyte,
    c_uint,
    c_void_p,
)


# ------------------------------------------------------------------ constants

CONTEXT_PORT_NO_LISTEN = 0
MAX_MUX_RECURSION = 2
LWS_SEND_BUFFER_PRE_PADDING = 4 + 10 + (2 * MAX_MUX_RECURSION)
LWS_SEND_BUFFER_POST_PADDING = 4

# enum libwebsocket_callback_reasons
CALLBACK_REASONS = [
    "LWS_CALLBACK_ESTABLISHED",
    "LWS_CALLBACK_CLIENT_CONNECTION_ERROR",
    "LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH",
    "LWS_CALLBACK_CLIENT_ESTABLISHED",
    "LWS_CALLBACK_CLOSED",
    "LWS_CALLBACK_CLOSED_HTTP",
    "LWS_CALLBACK_RECEIVE",
    "LWS_CALLBACK_CLIENT_RECEIVE",
    "LWS_CALLBACK_CLIENT_RECEIVE_PONG",
    "LWS_CALLBACK_CLIENT_WRITEABLE",
    "LWS_CALLBACK_SERVER_WRITEABLE",
    "LWS_CALLBACK_HTTP",
    "LWS_CALLBACK_HTTP_FILE_COMPLETION",
    "LWS_CALLBACK_HTTP_WRITEABLE",
    "LWS_CALLBACK_FILTER_NETWORK_CONNECTION",
    "LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION",
    "LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS",
    "LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS",
    "LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION",
    "LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER",
    "LWS_CALLBACK_CONFIRM_EXTENSION_OKAY",
    "LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED",
    "LWS_CALLBACK_PROTOCOL_INIT",
    "LWS_CALLBACK_PROTOCOL_DESTROY",
    "LWS_CALLBACK_ADD_POLL_FD",
    "LWS_CALLBACK_DEL_POLL_FD",
    "LWS_CALLBACK_SET_MODE_POLL_FD",
    "LWS_CALLBACK_CLEAR_MODE_POLL_FD",
]

# enum libwebsocket_extension_callback_reasons
EXTENSION_CALLBACK_REASONS = [
    "LWS_EXT_CALLBACK_SERVER_CONTEXT_CONSTRUCT",
    "LWS_EXT_CALLBACK_CLIENT_CONTEXT_CONSTRUCT",
    "LWS_EXT_CALLBACK_SERVER_CONTEXT_DESTRUCT",
    "LWS_EXT_CALLBACK_CLIENT_CONTEXT_DESTRUCT",
    "LWS_EXT_CALLBACK_CONSTRUCT",
    "LWS_EXT_CALLBACK_CLIENT_CONSTRUCT",
    "LWS_EXT_CALLBACK_CHECK_OK_TO_REALLY_CLOSE",
    "LWS_EXT_CALLBACK_CHECK_OK_TO_PROPOSE_EXTENSION",
    "LWS_EXT_CALLBACK_DESTROY",
    "LWS_EXT_CALLBACK_DESTROY_ANY_WSI_CLOSING",
    "LWS_EXT_CALLBACK_ANY_WSI_ESTABLISHED",
    "LWS_EXT_CALLBACK_PACKET_RX_PREPARSE",
    "LWS_EXT_CALLBACK_PACKET_TX_PRESEND",
    "LWS_EXT_CALLBACK_PACKET_TX_DO_SEND",
    "LWS_EXT_CALLBACK_HANDSHAKE_REPLY_TX",
    "LWS_EXT_CALLBACK_FLUSH_PENDING_TX",
    "LWS_EXT_CALLBACK_EXTENDED_PAYLOAD_RX",
    "LWS_EXT_CALLBACK_CAN_PROXY_CLIENT_CONNECTION",
    "LWS_EXT_CALLBACK_1HZ",
    "LWS_EXT_CALLBACK_REQUEST_ON_WRITEABLE",
    "LWS_EXT_CALLBACK_IS_WRITEABLE",
    "LWS_EXT_CALLBACK_PAYLOAD_TX",
    "LWS_EXT_CALLBACK_PAYLOAD_RX",
]

# enum lws_token_indexes
TOKEN_INDEXES = [
    "WSI_TOKEN_GET_URI",
    "WSI_TOKEN_HOST",
    "WSI_TOKEN_CONNECTION",
    "WSI_TOKEN_KEY1",
    "WSI_TOKEN_KEY2",
    "WSI_TOKEN_PROTOCOL",
    "WSI_TOKEN_UPGRADE",
    "WSI_TOKEN_ORIGIN",
    "WSI_TOKEN_DRAFT",
    "WSI_TOKEN_CHALLENGE",
    "WSI_TOKEN_KEY",
    "WSI_TOKEN_VERSION",
    "WSI_TOKEN_SWORIGIN",
    "WSI_TOKEN_EXTENSIONS",
    "WSI_TOKEN_ACCEPT",
    "WSI_TOKEN_NONCE",
    "WSI_TOKEN_HTTP",
    "WSI_TOKEN_MUXURL",
    "_WSI_TOKEN_CLIENT_SENT_PROTOCOLS",
    "_WSI_TOKEN_CLIENT_PEER_ADDRESS",
    "_WSI_TOKEN_CLIENT_URI",
    "_WSI_TOKEN_CLIENT_HOST",
    "_WSI_TOKEN_CLIENT_ORIGIN",
    "WSI_TOKEN_COUNT",
]

for _i, _name in enumerate(CALLBACK_REASONS):
    globals()[_name] = _i
for _i, _name in enumerate(EXTENSION_CALLBACK_REASONS):
    globals()[_name] = _i
for _i, _name in enumerate(TOKEN_INDEXES):
    globals()[_name] = _i

# enum libwebsocket_write_protocol
LWS_WRITE_TEXT = 0
LWS_WRITE_BINARY = 1
LWS_WRITE_CONTINUATION = 2
LWS_WRITE_HTTP = 3
LWS_WRITE_CLOSE = 4
LWS_WRITE_PING = 5
LWS_WRITE_PONG = 6
LWS_WRITE_NO_FIN = 64
LWS_WRITE_CLIENT_IGNORE_XOR_MASK = 128

# enum lws_log_levels
LLL_ERR = 1 << 0
LLL_WARN = 1 << 1
LLL_NOTICE = 1 << 2
LLL_INFO = 1 << 3
LLL_DEBUG = 1 << 4
LLL_PARSER = 1 << 5
LLL_HEADER = 1 << 6
LLL_EXT = 1 << 7
LLL_CLIENT = 1 << 8
LLL_LATENCY = 1 << 9
LLL_COUNT = 10

# enum libwebsocket_context_options
LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT = 2
LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME = 4

# enum lws_close_status
LWS_CLOSE_STATUS_NOSTATUS = 0
LWS_CLOSE_STATUS_NORMAL = 1000
LWS_CLOSE_STATUS_GOINGAWAY = 1001
LWS_CLOSE_STATUS_PROTOCOL_ERR = 1002
LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE = 1009

# enum pending_timeout
NO_PENDING_TIMEOUT = 0
PENDING_TIMEOUT_AWAITING_PROXY_RESPONSE = 1
PENDING_TIMEOUT_AWAITING_CONNECT_RESPONSE = 2
PENDING_TIMEOUT_ESTABLISH_WITH_SERVER = 3
PENDING_TIMEOUT_AWAITING_SERVER_RESPONSE = 4
PENDING_TIMEOUT_AWAITING_PING = 5
PENDING_TIMEOUT_CLOSE_ACK = 6
PENDING_TIMEOUT_AWAITING_EXTENSION_CONNECT_RESPONSE = 7
PENDING_TIMEOUT_SENT_CLIENT_HANDSHAKE = 8
PENDING_TIMEOUT_SSL_ACCEPT = 9


def reason_name(reason):
    """'LWS_CALLBACK_RECEIVE' for 6, and so on (str(reason) when unknown)."""
    if 0 <= reason < len(CALLBACK_REASONS):
        return CALLBACK_REASONS[reason]
    return str(reason)


# ------------------------------------------------------------------ structs

# int callback(struct libwebsocket_context *, struct libwebsocket *,
#              enum libwebsocket_callback_reasons, void *user, void *in, size_t len)
CALLBACK = CFUNCTYPE(c_int, c_void_p, c_void_p, c_int, c_void_p, c_void_p, c_size_t)


class libwebsocket_protocols(Structure):
    _fields_ = [
        ("name", c_char_p),
        ("callback", CALLBACK),
        ("per_session_data_size", c_size_t),
        ("rx_buffer_size", c_size_t),
        ("no_buffer_all_partial_tx", c_int),
        ("owning_server", c_void_p),  # written by the library
        ("protocol_index", c_int),  # written by the library
    ]


class libwebsocket_extension(Structure):
    pass


# int extension_callback(struct libwebsocket_context *, struct libwebsocket_extension *,
#                        struct libwebsocket *, enum ..._extension_callback_reasons,
#                        void *user, void *in, size_t len)
EXTENSION_CALLBACK = CFUNCTYPE(
    c_int, c_void_p, POINTER(libwebsocket_extension), c_void_p, c_int, c_void_p, c_void_p, c_size_t
)

libwebsocket_extension._fields_ = [
    ("name", c_char_p),
    ("callback", EXTENSION_CALLBACK),
    ("per_session_data_size", c_size_t),
    ("per_context_private_data", c_void_p),
]


class lws_context_creation_info(Structure):
    _fields_ = [
        ("port", c_int),
        ("iface", c_char_p),
        ("protocols", POINTER(libwebsocket_protocols)),
        ("extensions", POINTER(libwebsocket_extension)),
        ("ssl_cert_filepath", c_char_p),
        ("ssl_private_key_filepath", c_char_p),
        ("ssl_ca_filepath", c_char_p),
        ("ssl_cipher_list", c_char_p),
        ("gid", c_int),
        ("uid", c_int),
        ("options", c_uint),
        ("user", c_void_p),
        ("ka_time", c_int),
        ("ka_probes", c_int),
        ("ka_interval", c_int),
    ]


class lws_tokens(Structure):
    _fields_ = [("token", c_char_p), ("token_len", c_int)]


# void emit(int level, const char *line)
LOG_EMIT = CFUNCTYPE(None, c_int, c_char_p)

# The layouts of the x86-64 / aarch64 (LP64) ABI.
if ctypes.sizeof(c_void_p) == 8:
    assert ctypes.sizeof(lws_context_creation_info) == 104, ctypes.sizeof(lws_context_creation_info)
    assert ctypes.sizeof(libwebsocket_protocols) == 56, ctypes.sizeof(libwebsocket_protocols)
    assert ctypes.sizeof(libwebsocket_extension) == 32, ctypes.sizeof(libwebsocket_extension)
    assert ctypes.sizeof(lws_tokens) == 16, ctypes.sizeof(lws_tokens)

# ------------------------------------------------------------------ the library

SONAME = "libwebsockets.so.4.0.0"


def library_path():
    """Where the library is loaded from: $LWS_LIBRARY, this repository's
    target/release build, or the SONAME for the dynamic loader to find."""
    env = os.environ.get("LWS_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    built = os.path.join(os.path.dirname(here), "target", "release", SONAME)
    if os.path.exists(built):
        return built
    return SONAME


# name: (restype, argtypes)
_PROTOTYPES = {
    "lws_get_library_version": (c_char_p, []),
    "lws_set_log_level": (None, [c_int, LOG_EMIT]),
    "lwsl_emit_syslog": (None, [c_int, c_char_p]),
    "libwebsocket_create_context": (c_void_p, [POINTER(lws_context_creation_info)]),
    "libwebsocket_context_destroy": (None, [c_void_p]),
    "libwebsocket_context_user": (c_void_p, [c_void_p]),
    "libwebsocket_service": (c_int, [c_void_p, c_int]),
    "libwebsocket_service_fd": (c_int, [c_void_p, c_void_p]),
    "libwebsocket_write": (c_int, [c_void_p, c_void_p, c_size_t, c_int]),
    "libwebsocket_callback_on_writable": (c_int, [c_void_p, c_void_p]),
    "libwebsocket_callback_on_writable_all_protocol": (c_int, [POINTER(libwebsocket_protocols)]),
    "libwebsocket_rx_flow_control": (c_int, [c_void_p, c_int]),
    "libwebsocket_rx_flow_allow_all_protocol": (None, [POINTER(libwebsocket_protocols)]),
    "libwebsocket_set_timeout": (None, [c_void_p, c_int, c_int]),
    "libwebsocket_client_connect": (
        c_void_p,
        [c_void_p, c_char_p, c_int, c_int, c_char_p, c_char_p, c_char_p, c_char_p, c_int],
    ),
    "libwebsocket_client_connect_extended": (
        c_void_p,
        [c_void_p, c_char_p, c_int, c_int, c_char_p, c_char_p, c_char_p, c_char_p, c_int, c_void_p],
    ),
    "libwebsocket_set_proxy": (c_int, [c_void_p, c_char_p]),
    "libwebsocket_canonical_hostname": (c_char_p, [c_void_p]),
    "libwebsocket_get_socket_fd": (c_int, [c_void_p]),
    "libwebsocket_is_final_fragment": (c_int, [c_void_p]),
    "libwebsocket_get_reserved_bits": (c_ubyte, [c_void_p]),
    "libwebsockets_remaining_packet_payload": (c_size_t, [c_void_p]),
    "lws_frame_is_binary": (c_int, [c_void_p]),
    "lws_send_pipe_choked": (c_int, [c_void_p]),
    "libwebsockets_get_protocol": (POINTER(libwebsocket_protocols), [c_void_p]),
    "lws_hdr_total_length": (c_int, [c_void_p, c_int]),
    "lws_hdr_copy": (c_int, [c_void_p, c_void_p, c_int, c_int]),
    "libwebsockets_serve_http_file": (c_int, [c_void_p, c_void_p, c_char_p, c_char_p]),
    "libwebsockets_serve_http_file_fragment": (c_int, [c_void_p, c_void_p]),
    "libwebsockets_get_peer_addresses": (
        None,
        [c_void_p, c_void_p, c_int, c_void_p, c_int, c_void_p, c_int],
    ),
    "libwebsocket_read": (c_int, [c_void_p, c_void_p, c_void_p, c_size_t]),
    "libwebsockets_get_random": (c_int, [c_void_p, c_void_p, c_int]),
    "libwebsockets_SHA1": (c_void_p, [c_void_p, c_size_t, c_void_p]),
    "lws_b64_encode_string": (c_int, [c_char_p, c_int, c_void_p, c_int]),
    "lws_b64_decode_string": (c_int, [c_char_p, c_void_p, c_int]),
    "libwebsocket_get_internal_extensions": (POINTER(libwebsocket_extension), []),
    "lws_daemonize": (c_int, [c_char_p]),
    "lwsl_hexdump": (None, [c_void_p, c_size_t]),
}
# _lws_log(int filter, const char *format, ...) is variadic: only its result type is
# declared; pass ctypes values for the variadic part (see log()).


def load_library(path=None):
    """dlopen()s the library and declares every prototype. The module does this once
    at import time (``lib``); call it yourself only for a second copy."""
    handle = ctypes.CDLL(path or library_path(), mode=os.RTLD_NOW, use_errno=True)
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(handle, name)
        fn.restype = restype
        fn.argtypes = argtypes
    handle._lws_log.restype = None
    return handle


lib = load_library()

# ------------------------------------------------------------------ helpers


def _cstr(s):
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    return str(s).encode()


def payload(in_, length):
    """The ``length`` bytes at address ``in_`` as bytes (b"" for NULL / 0)."""
    if not in_ or not length:
        return b""
    return ctypes.string_at(in_, length)


def cstring(in_):
    """The NUL-terminated string at address ``in_`` as bytes (b"" for NULL): some
    callbacks pass a C string with ``length`` 0 (FILTER_PROTOCOL_CONNECTION)."""
    if not in_:
        return b""
    return ctypes.string_at(in_)


def get_library_version():
    """The library's version string, e.g. '1.3 d89a84d6'."""
    v = lib.lws_get_library_version()
    return v.decode() if v else ""


_log_emitter = None  # the LOG_EMIT object the library holds: never freed


def _reset_log_level_at_exit():
    # The library may still log while the interpreter is shutting down (a context
    # destroyed late); a Python emitter must not be called then.
    try:
        lib.lws_set_log_level(0, LOG_EMIT())
    except Exception:  # noqa: BLE001 - shutting down anyway
        pass


def set_log_level(level, emitter=None):
    """Sets the enabled LLL_* bits. ``emitter(level, line)`` (a Python callable
    receiving the level bit and the line as str), when given, replaces the emit
    function for good; None keeps the current one (the library's stderr emitter
    unless replaced). The emitter runs on whichever thread logs, usually a service
    thread; exceptions in it are printed and ignored."""
    global _log_emitter
    if emitter is None:
        lib.lws_set_log_level(level, LOG_EMIT())
        return

    def emit(lvl, line):
        try:
            emitter(lvl, line.decode(errors="replace") if line else "")
        except Exception:  # noqa: BLE001 - must not unwind into C
            traceback.print_exc()

    first = _log_emitter is None
    # The previous emitter object stays referenced until this one is installed.
    new = LOG_EMIT(emit)
    lib.lws_set_log_level(level, new)
    _log_emitter = new
    if first:
        import atexit

        atexit.register(_reset_log_level_at_exit)


def log(level, message):
    """Logs ``message`` (str) through the library's logger at ``level`` (an LLL_* bit),
    as lwsl_err()/lwsl_notice()... do in C: filtered by set_log_level, then passed to
    the emit function. A newline is added."""
    lib._lws_log(c_int(level), b"%s\n", c_char_p(str(message).encode()))


def _wsi(wsi):
    if not wsi:
        raise ValueError("NULL connection")
    return c_void_p(wsi)


def write(wsi, data, protocol=None):
    """libwebsocket_write() with the padding done here: ``data`` (bytes-like, or str
    sent as UTF-8) is copied into a buffer with LWS_SEND_BUFFER_PRE_PADDING bytes in
    front and LWS_SEND_BUFFER_POST_PADDING behind. ``protocol`` defaults to
    LWS_WRITE_TEXT for str, LWS_WRITE_BINARY otherwise (OR in LWS_WRITE_NO_FIN for
    fragments). Returns what the library returns: len(data) (for CLOSE / PING / PONG
    the whole frame, header and client mask included, as v1.23), or -1. The library
    queues what the socket cannot take, so the buffer may go when this returns.
    Call it on the context's service thread (prefer ``Context.write``)."""
    if isinstance(data, str):
        data = data.encode()
        if protocol is None:
            protocol = LWS_WRITE_TEXT
    elif protocol is None:
        protocol = LWS_WRITE_BINARY
    data = bytes(data)
    n = len(data)
    buf = (c_ubyte * (LWS_SEND_BUFFER_PRE_PADDING + n + LWS_SEND_BUFFER_POST_PADDING))()
    if n:
        ctypes.memmove(ctypes.byref(buf, LWS_SEND_BUFFER_PRE_PADDING), data, n)
    start = ctypes.addressof(buf) + LWS_SEND_BUFFER_PRE_PADDING
    return lib.libwebsocket_write(_wsi(wsi), c_void_p(start), n, protocol)


def hdr_copy(wsi, token):
    """Header ``token`` (a WSI_TOKEN_* index) of the current request as bytes, or
    None when absent or no longer available (headers live until ESTABLISHED returns,
    or for the HTTP callback)."""
    n = lib.lws_hdr_total_length(_wsi(wsi), token)
    if n <= 0:
        return None
    buf = ctypes.create_string_buffer(n + 1)
    got = lib.lws_hdr_copy(_wsi(wsi), buf, n + 1, token)
    if got < 0:
        return None
    return buf.raw[:got]


def frame_is_binary(wsi):
    return bool(lib.lws_frame_is_binary(_wsi(wsi)))


def is_final_fragment(wsi):
    return bool(lib.libwebsocket_is_final_fragment(_wsi(wsi)))


def remaining_packet_payload(wsi):
    return lib.libwebsockets_remaining_packet_payload(_wsi(wsi))


def message_complete(wsi):
    """True when the data delivered to this RECEIVE / CLIENT_RECEIVE ends a message."""
    return remaining_packet_payload(wsi) == 0 and is_final_fragment(wsi)


def internal_extensions():
    """The library's own extension array (permessage-deflate, deflate-frame...), a
    static array owned by the library, for ``Context(extensions=...)``."""
    return lib.libwebsocket_get_internal_extensions()


# ------------------------------------------------------------------ high level


class WrongThreadError(RuntimeError):
    """A context was used from a thread other than the one servicing it."""


class Protocol:
    """One entry of the protocol array.

    ``callback(ctx, wsi, reason, user, in_, length)`` gets the ``Context``, the
    connection (int address, or None), the LWS_CALLBACK_* reason, the per-session
    data address (or None), ``in_`` (address or None) and ``length``; it returns an
    int (None counts as 0): non-zero closes or refuses as in C."""

    def __init__(self, name, callback, per_session_data_size=0, rx_buffer_size=0,
                 no_buffer_all_partial_tx=0):
        self.name = name
        self.callback = callback
        self.per_session_data_size = per_session_data_size
        self.rx_buffer_size = rx_buffer_size
        self.no_buffer_all_partial_tx = no_buffer_all_partial_tx
        self.index = None  # set by Context


class Context:
    """A libwebsocket_context with its protocols, kept alive together.

    ``port``: listening port (CONTEXT_PORT_NO_LISTEN for a client-only context);
    ``iface``: interface name or literal address to listen on (None: all);
    ``extensions``: None (none), "internal" (the library's deflate extensions) or a
    ctypes array / pointer of libwebsocket_extension; ``user``: the context user
    pointer (an int address or None); ssl_* and the keepalive values as in
    lws_context_creation_info. Raises OSError when the library refuses (the reason
    is logged)."""

    def __init__(self, protocols, port=CONTEXT_PORT_NO_LISTEN, iface=None, extensions=None,
                 options=0, user=None, ssl_cert_filepath=None, ssl_private_key_filepath=None,
                 ssl_ca_filepath=None, ssl_cipher_list=None, gid=-1, uid=-1,
                 ka_time=0, ka_probes=0, ka_interval=0):
        if not protocols:
            raise ValueError("at least one protocol is needed")
        self.protocols = list(protocols)
        self._owner = None
        self._pending = deque()
        self._deferred = None
        self._ptr = None
        # Everything the library points into, kept until destroy() returns.
        self._keep = []
        arr = (libwebsocket_protocols * (len(self.protocols) + 1))()
        for i, p in enumerate(self.protocols):
            p.index = i
            name = _cstr(p.name)
            cb = CALLBACK(self._make_trampoline(p))
            self._keep += [name, cb]
            arr[i].name = name
            arr[i].callback = cb
            arr[i].per_session_data_size = p.per_session_data_size
            arr[i].rx_buffer_size = p.rx_buffer_size
            arr[i].no_buffer_all_partial_tx = p.no_buffer_all_partial_tx
        # arr[len] stays all-zero: the terminator
        self.protocol_array = arr

        info = lws_context_creation_info()
        info.port = port
        info.iface = _cstr(iface)
        info.protocols = ctypes.cast(arr, POINTER(libwebsocket_protocols))
        if extensions == "internal":
            extensions = internal_extensions()
        if extensions is not None:
            info.extensions = ctypes.cast(extensions, POINTER(libwebsocket_extension))
            self._keep.append(extensions)
        strings = {
            "ssl_cert_filepath": ssl_cert_filepath,
            "ssl_private_key_filepath": ssl_private_key_filepath,
            "ssl_ca_filepath": ssl_ca_filepath,
            "ssl_cipher_list": ssl_cipher_list,
        }
        for field, value in strings.items():
            b = _cstr(value)
            self._keep.append(b)
            setattr(info, field, b)
        info.gid = gid
        info.uid = uid
        info.options = options
        info.user = user
        info.ka_time = ka_time
        info.ka_probes = ka_probes
        info.ka_interval = ka_interval
        self._info = info

        ptr = lib.libwebsocket_create_context(ctypes.byref(info))
        if not ptr:
            raise OSError("libwebsocket_create_context failed (see the library's log)")
        self._ptr = ptr

    # -- callbacks

    def _make_trampoline(self, protocol):
        fn = protocol.callback

        def trampoline(_context, wsi, reason, user, in_, length):
            try:
                r = fn(self, wsi, reason, user, in_, length)
                return 0 if r is None else int(r)
            except (KeyboardInterrupt, SystemExit) as e:
                # re-raised by service() once the library has returned
                self._deferred = e
                return -1
            except BaseException:  # noqa: BLE001 - must not unwind into C
                sys.stderr.write(
                    "libwebsockets_ctypes: exception in the %r callback (%s); returning -1\n"
                    % (protocol.name, reason_name(reason))
                )
                traceback.print_exc()
                return -1

        return trampoline

    # -- thread rule

    def _check_thread(self):
        if self._ptr is None:
            raise ValueError("the context has been destroyed")
        owner = self._owner
        if owner is not None and owner != threading.get_ident():
            raise WrongThreadError(
                "a libwebsockets context is used from one thread only (the one calling "
                "service); use call_soon() from other threads"
            )

    @property
    def pointer(self):
        """The struct libwebsocket_context * (int), None once destroyed."""
        return self._ptr

    # -- loop

    def service(self, timeout_ms=50):
        """One libwebsocket_service() pass (waits up to timeout_ms), after running
        what call_soon() queued. The first call makes this thread the context's
        service thread. Returns the library's result: 0, or -1 on error or when a
        signal interrupted the wait (as v1.23; ``interrupted()`` tells which)."""
        if self._owner is None:
            self._owner = threading.get_ident()
        self._check_thread()
        self._run_pending()
        r = lib.libwebsocket_service(c_void_p(self._ptr), timeout_ms)
        if self._deferred is not None:
            e, self._deferred = self._deferred, None
            raise e
        return r

    @staticmethod
    def interrupted():
        """True when the last service() returned -1 because a signal interrupted it."""
        return ctypes.get_errno() == errno.EINTR

    def run(self, stop, timeout_ms=50):
        """Services until ``stop`` (a threading.Event) is set or service fails (a
        signal interrupting a pass is not a failure)."""
        while not stop.is_set():
            if self.service(timeout_ms) < 0 and not self.interrupted():
                return -1
        return 0

    def call_soon(self, fn, *args):
        """Queues fn(*args) to run on the service thread before the next pass (at most
        timeout_ms later). Safe from any thread."""
        self._pending.append((fn, args))

    def _run_pending(self):
        while self._pending:
            fn, args = self._pending.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - keep the loop alive
                traceback.print_exc()

    def destroy(self):
        """libwebsocket_context_destroy(): CLOSED for every connection, then
        PROTOCOL_DESTROY; the Python callbacks are released afterwards."""
        if self._ptr is None:
            return
        self._check_thread()
        ptr, self._ptr = self._ptr, None
        lib.libwebsocket_context_destroy(c_void_p(ptr))
        self._keep = []
        self._pending.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.destroy()
        return False

    # -- connections

    def write(self, wsi, data, protocol=None):
        """See the module-level write()."""
        self._check_thread()
        return write(wsi, data, protocol)

    def callback_on_writable(self, wsi):
        self._check_thread()
        return lib.libwebsocket_callback_on_writable(c_void_p(self._ptr), _wsi(wsi))

    def _protocol_ptr(self, protocol):
        index = protocol.index if isinstance(protocol, Protocol) else int(protocol)
        if not 0 <= index < len(self.protocols):
            raise IndexError("no protocol %r in this context" % (protocol,))
        return ctypes.pointer(self.protocol_array[index])

    def callback_on_writable_all_protocol(self, protocol):
        """WRITEABLE for every connection of ``protocol`` (a Protocol or its index)."""
        self._check_thread()
        return lib.libwebsocket_callback_on_writable_all_protocol(self._protocol_ptr(protocol))

    def rx_flow_control(self, wsi, enable):
        self._check_thread()
        return lib.libwebsocket_rx_flow_control(_wsi(wsi), 1 if enable else 0)

    def rx_flow_allow_all_protocol(self, protocol):
        self._check_thread()
        lib.libwebsocket_rx_flow_allow_all_protocol(self._protocol_ptr(protocol))

    def set_timeout(self, wsi, reason, secs):
        self._check_thread()
        lib.libwebsocket_set_timeout(_wsi(wsi), reason, secs)

    def client_connect(self, address, port, path="/", host=None, origin=None, protocol=None,
                       ssl=0, ietf_version=-1, userdata=None):
        """libwebsocket_client_connect(_extended): returns the new connection (int) at
        once; CLIENT_ESTABLISHED or CLIENT_CONNECTION_ERROR follows in service().
        ``ssl``: 0 plain, 1 TLS verifying the server, 2 TLS accepting any certificate.
        ``userdata``: an address for the per-session data (the _extended form).
        Raises OSError when the library returns NULL."""
        self._check_thread()
        host = address if host is None else host
        origin = host if origin is None else origin
        args = [c_void_p(self._ptr), _cstr(address), port, ssl, _cstr(path), _cstr(host),
                _cstr(origin), _cstr(protocol), ietf_version]
        if userdata is None:
            wsi = lib.libwebsocket_client_connect(*args)
        else:
            wsi = lib.libwebsocket_client_connect_extended(*args, c_void_p(userdata))
        if not wsi:
            raise OSError("libwebsocket_client_connect to %s:%s failed" % (address, port))
        return wsi

    def hdr_copy(self, wsi, token):
        """See the module-level hdr_copy()."""
        self._check_thread()
        return hdr_copy(wsi, token)

    def serve_http_file(self, wsi, path, content_type):
        """libwebsockets_serve_http_file(): <0 error, >0 all sent, 0 in progress."""
        self._check_thread()
        return lib.libwebsockets_serve_http_file(
            c_void_p(self._ptr), _wsi(wsi), _cstr(path), _cstr(content_type)
        )

    def protocol_of(self, wsi):
        """The Protocol a connection uses (libwebsockets_get_protocol), or None."""
        p = lib.libwebsockets_get_protocol(_wsi(wsi))
        if not p:
            return None
        i = p.contents.protocol_index
        return self.protocols[i] if 0 <= i < len(self.protocols) else None

    def user(self):
        """The context's user pointer (libwebsocket_context_user)."""
        self._check_thread()
        return lib.libwebsocket_context_user(c_void_p(self._ptr))

    def canonical_hostname(self):
        self._check_thread()
        h = lib.libwebsocket_canonical_hostname(c_void_p(self._ptr))
        return h.decode() if h else ""
