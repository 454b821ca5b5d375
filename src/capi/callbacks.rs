//! The application as io sees it ([`Application`]), implemented over the C protocol and
//! extension arrays given to `libwebsocket_create_context`. The one place that maps
//! io's reasons to the LWS_CALLBACK_* / LWS_EXT_CALLBACK_* values, turns callback
//! arguments into the pointers v1.23 passed and reads `struct lws_tokens` back.

use crate::capi::abi_types::*;
use crate::engine::extensions::app_hooks::{check_tokens, Tokens};
use crate::io::app::{Application, CallbackIn, ExtReason, Reason, TokenReply, TokensLeft, UserPtr};
use crate::io::conn::Conn;
use crate::io::context::Context;
use libc::{c_char, c_int, c_void};

/// The C side of a context: the application's arrays and its `user` pointer. The
/// application keeps both arrays alive for the context's lifetime (documented contract).
pub struct CApp {
    protocols: *mut libwebsocket_protocols,
    extensions: *mut libwebsocket_extension,
    user: *mut c_void,
    /// `Context::hostname` as the C string `libwebsocket_canonical_hostname` returns.
    hostname: std::cell::OnceCell<std::ffi::CString>,
}

impl CApp {
    /// `protocols` must have at least as many entries as the context's protocol table
    /// (it was walked to build it); `extensions` is NULL or the array walked for
    /// `Context::extensions`.
    pub fn new(
        protocols: *mut libwebsocket_protocols,
        extensions: *mut libwebsocket_extension,
        user: *mut c_void,
    ) -> CApp {
        CApp {
            protocols,
            extensions,
            user,
            hostname: std::cell::OnceCell::new(),
        }
    }

    /// The application's protocol array.
    pub fn protocols(&self) -> *mut libwebsocket_protocols {
        self.protocols
    }

    /// `lws_context_creation_info.user`.
    pub fn user(&self) -> *mut c_void {
        self.user
    }

    /// The context's host name as a C string that lives as long as the context.
    pub fn hostname(&self, ctx: &Context) -> *const c_char {
        self.hostname
            .get_or_init(|| std::ffi::CString::new(ctx.hostname.clone()).unwrap_or_default())
            .as_ptr()
    }

    /// Calls protocols[`index`].callback; 0 when there is no such callback.
    #[allow(clippy::too_many_arguments)]
    fn call_protocol(
        &self,
        ctx: &Context,
        index: usize,
        conn: Option<&Conn>,
        reason: libwebsocket_callback_reasons,
        user: *mut c_void,
        input: *mut c_void,
        len: usize,
    ) -> c_int {
        if index >= ctx.protocols.len() || self.protocols.is_null() {
            return 0;
        }
        // SAFETY: index is below the entry count validated at creation; the application
        // keeps its protocols array alive for the context's lifetime.
        let cb = unsafe { (*self.protocols.add(index)).callback };
        let Some(cb) = cb else { return 0 };
        let wsi = conn.map_or(std::ptr::null_mut(), wsi_ptr);
        // SAFETY: calling the application's callback with the documented arguments.
        unsafe { cb(ctx_ptr(ctx), wsi, reason, user, input, len) }
    }

    /// Calls the callback of entry `index` of the extension array; 0 when there is none.
    #[allow(clippy::too_many_arguments)]
    fn call_ext(
        &self,
        ctx: &Context,
        index: usize,
        conn: Option<&Conn>,
        reason: libwebsocket_extension_callback_reasons,
        user: *mut c_void,
        input: *mut c_void,
        len: usize,
    ) -> c_int {
        if self.extensions.is_null() || !ctx.extensions.iter().any(|e| e.index == index) {
            return 0;
        }
        // SAFETY: index was validated against the array walked at creation; the
        // application keeps its extension array alive for the context's lifetime.
        let ext = unsafe { self.extensions.add(index) };
        // SAFETY: as above; the entry is readable.
        let Some(cb) = (unsafe { (*ext).callback }) else {
            return 0;
        };
        let wsi = conn.map_or(std::ptr::null_mut(), wsi_ptr);
        // SAFETY: calling the application's extension callback with documented arguments.
        unsafe { cb(ctx_ptr(ctx), ext, wsi, reason, user, input, len) }
    }
}

impl Application for CApp {
    fn callback(
        &self,
        ctx: &Context,
        conn: Option<&Conn>,
        protocol: usize,
        reason: Reason,
        user: UserPtr,
        input: CallbackIn<'_>,
    ) -> i32 {
        with_in(input, |p, len| {
            self.call_protocol(ctx, protocol, conn, c_reason(reason), user.as_raw(), p, len)
        })
    }

    fn ext_callback(
        &self,
        ctx: &Context,
        conn: Option<&Conn>,
        ext: usize,
        reason: ExtReason,
        user: UserPtr,
        input: CallbackIn<'_>,
    ) -> i32 {
        // v1.23 passed the extension's index in `user` for this one.
        let user = if reason == ExtReason::CanProxyClientConnection {
            ext as *mut c_void
        } else {
            user.as_raw()
        };
        with_in(input, |p, len| {
            self.call_ext(ctx, ext, conn, c_ext_reason(reason), user, p, len)
        })
    }

    fn ext_token_hook(
        &self,
        ctx: &Context,
        conn: &Conn,
        ext: usize,
        reason: ExtReason,
        user: UserPtr,
        data: Option<&mut [u8]>,
        cap: usize,
    ) -> TokenReply {
        let (ptr, len) = match data {
            Some(b) => (b.as_mut_ptr(), b.len()),
            None => (std::ptr::null_mut(), 0),
        };
        let mut tokens = lws_tokens {
            token: ptr as *mut c_char,
            token_len: len as i32,
        };
        let before = (tokens.token as usize, tokens.token_len);
        let n = self.call_ext(
            ctx,
            ext,
            Some(conn),
            c_ext_reason(reason),
            user.as_raw(),
            &mut tokens as *mut lws_tokens as *mut c_void,
            0,
        );
        if n < 0 {
            return TokenReply::Fatal;
        }
        let room = before.1.max(0) as usize;
        let left =
            check_tokens(before, (tokens.token as usize, tokens.token_len), room, cap).map(|t| {
                match t {
                    Tokens::Unchanged => TokensLeft::Unchanged,
                    Tokens::Empty => TokensLeft::Empty,
                    Tokens::Shortened(n) => TokensLeft::Shortened(n),
                    Tokens::Elsewhere(n) => {
                        // SAFETY: the extension hands over `n` readable bytes at `token` (the
                        // lws_tokens contract); NULL, negative and implausible lengths were
                        // refused by check_tokens.
                        let v = unsafe { std::slice::from_raw_parts(tokens.token as *const u8, n) };
                        TokensLeft::Elsewhere(v.to_vec())
                    }
                }
            });
        TokenReply::Done { more: n > 0, left }
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Runs `call` with `in` and `len` as v1.23 passed them for `input`, and copies back
/// what the callback left where the argument asks for it.
fn with_in(input: CallbackIn<'_>, call: impl FnOnce(*mut c_void, usize) -> c_int) -> c_int {
    match input {
        CallbackIn::Nothing => call(std::ptr::null_mut(), 0),
        CallbackIn::Fd { fd, events } => call(fd as isize as *mut c_void, events as u16 as usize),
        CallbackIn::Bytes { buf, at, len } => {
            // Derived from the whole buffer: the callback may use the padding around.
            let p = buf.as_mut_ptr().wrapping_add(at.min(buf.len()));
            call(p as *mut c_void, len)
        }
        CallbackIn::Cursor { buf, room, written } => {
            let start = buf.as_mut_ptr();
            let mut cursor: *mut u8 = start;
            let r = call(&mut cursor as *mut *mut u8 as *mut c_void, room);
            *written = (cursor as usize).wrapping_sub(start as usize);
            r
        }
        CallbackIn::BytesRef(buf) => {
            let len = buf.len();
            let mut p: *mut u8 = buf.as_mut_ptr();
            call(&mut p as *mut *mut u8 as *mut c_void, len)
        }
        CallbackIn::Tokens(buf) => {
            let mut tokens = lws_tokens {
                token: buf.as_mut_ptr() as *mut c_char,
                token_len: buf.len() as i32,
            };
            call(&mut tokens as *mut lws_tokens as *mut c_void, 0)
        }
    }
}

/// The C value of a protocol callback reason.
pub fn c_reason(r: Reason) -> libwebsocket_callback_reasons {
    use libwebsocket_callback_reasons::*;
    match r {
        Reason::Established => LWS_CALLBACK_ESTABLISHED,
        Reason::ClientConnectionError => LWS_CALLBACK_CLIENT_CONNECTION_ERROR,
        Reason::ClientFilterPreEstablish => LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH,
        Reason::ClientEstablished => LWS_CALLBACK_CLIENT_ESTABLISHED,
        Reason::Closed => LWS_CALLBACK_CLOSED,
        Reason::ClosedHttp => LWS_CALLBACK_CLOSED_HTTP,
        Reason::Receive => LWS_CALLBACK_RECEIVE,
        Reason::ClientReceive => LWS_CALLBACK_CLIENT_RECEIVE,
        Reason::ClientReceivePong => LWS_CALLBACK_CLIENT_RECEIVE_PONG,
        Reason::ClientWriteable => LWS_CALLBACK_CLIENT_WRITEABLE,
        Reason::ServerWriteable => LWS_CALLBACK_SERVER_WRITEABLE,
        Reason::Http => LWS_CALLBACK_HTTP,
        Reason::HttpFileCompletion => LWS_CALLBACK_HTTP_FILE_COMPLETION,
        Reason::HttpWriteable => LWS_CALLBACK_HTTP_WRITEABLE,
        Reason::FilterNetworkConnection => LWS_CALLBACK_FILTER_NETWORK_CONNECTION,
        Reason::FilterProtocolConnection => LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION,
        Reason::OpensslLoadExtraClientVerifyCerts => {
            LWS_CALLBACK_OPENSSL_LOAD_EXTRA_CLIENT_VERIFY_CERTS
        }
        Reason::OpensslLoadExtraServerVerifyCerts => {
            LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS
        }
        Reason::OpensslPerformClientCertVerification => {
            LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION
        }
        Reason::ClientAppendHandshakeHeader => LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER,
        Reason::ConfirmExtensionOkay => LWS_CALLBACK_CONFIRM_EXTENSION_OKAY,
        Reason::ClientConfirmExtensionSupported => LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED,
        Reason::ProtocolInit => LWS_CALLBACK_PROTOCOL_INIT,
        Reason::ProtocolDestroy => LWS_CALLBACK_PROTOCOL_DESTROY,
        Reason::AddPollFd => LWS_CALLBACK_ADD_POLL_FD,
        Reason::DelPollFd => LWS_CALLBACK_DEL_POLL_FD,
        Reason::SetModePollFd => LWS_CALLBACK_SET_MODE_POLL_FD,
        Reason::ClearModePollFd => LWS_CALLBACK_CLEAR_MODE_POLL_FD,
    }
}

/// The C value of an extension callback reason.
pub fn c_ext_reason(r: ExtReason) -> libwebsocket_extension_callback_reasons {
    use libwebsocket_extension_callback_reasons::*;
    match r {
        ExtReason::ServerContextConstruct => LWS_EXT_CALLBACK_SERVER_CONTEXT_CONSTRUCT,
        ExtReason::ClientContextConstruct => LWS_EXT_CALLBACK_CLIENT_CONTEXT_CONSTRUCT,
        ExtReason::ServerContextDestruct => LWS_EXT_CALLBACK_SERVER_CONTEXT_DESTRUCT,
        ExtReason::ClientContextDestruct => LWS_EXT_CALLBACK_CLIENT_CONTEXT_DESTRUCT,
        ExtReason::Construct => LWS_EXT_CALLBACK_CONSTRUCT,
        ExtReason::ClientConstruct => LWS_EXT_CALLBACK_CLIENT_CONSTRUCT,
        ExtReason::CheckOkToReallyClose => LWS_EXT_CALLBACK_CHECK_OK_TO_REALLY_CLOSE,
        ExtReason::CheckOkToProposeExtension => LWS_EXT_CALLBACK_CHECK_OK_TO_PROPOSE_EXTENSION,
        ExtReason::Destroy => LWS_EXT_CALLBACK_DESTROY,
        ExtReason::DestroyAnyWsiClosing => LWS_EXT_CALLBACK_DESTROY_ANY_WSI_CLOSING,
        ExtReason::AnyWsiEstablished => LWS_EXT_CALLBACK_ANY_WSI_ESTABLISHED,
        ExtReason::PacketRxPreparse => LWS_EXT_CALLBACK_PACKET_RX_PREPARSE,
        ExtReason::PacketTxPresend => LWS_EXT_CALLBACK_PACKET_TX_PRESEND,
        ExtReason::PacketTxDoSend => LWS_EXT_CALLBACK_PACKET_TX_DO_SEND,
        ExtReason::HandshakeReplyTx => LWS_EXT_CALLBACK_HANDSHAKE_REPLY_TX,
        ExtReason::FlushPendingTx => LWS_EXT_CALLBACK_FLUSH_PENDING_TX,
        ExtReason::ExtendedPayloadRx => LWS_EXT_CALLBACK_EXTENDED_PAYLOAD_RX,
        ExtReason::CanProxyClientConnection => LWS_EXT_CALLBACK_CAN_PROXY_CLIENT_CONNECTION,
        ExtReason::OneHz => LWS_EXT_CALLBACK_1HZ,
        ExtReason::RequestOnWriteable => LWS_EXT_CALLBACK_REQUEST_ON_WRITEABLE,
        ExtReason::IsWriteable => LWS_EXT_CALLBACK_IS_WRITEABLE,
        ExtReason::PayloadTx => LWS_EXT_CALLBACK_PAYLOAD_TX,
        ExtReason::PayloadRx => LWS_EXT_CALLBACK_PAYLOAD_RX,
    }
}

/// capi's own data of a context.
pub fn capp(ctx: &Context) -> Option<&CApp> {
    ctx.app.as_any().downcast_ref::<CApp>()
}

/// The C pointer the application knows this connection by.
pub fn wsi_ptr(conn: &Conn) -> *mut libwebsocket {
    conn as *const Conn as *mut libwebsocket
}

/// The C pointer the application knows this context by.
pub fn ctx_ptr(ctx: &Context) -> *mut libwebsocket_context {
    ctx as *const Context as *mut libwebsocket_context
}
