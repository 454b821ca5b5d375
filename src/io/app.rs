//! How io reports to the application: the [`Application`] trait, which capi implements
//! (the C callbacks, their numbering and every raw pointer handed to C live there), the
//! reasons io reports ([`Reason`], [`ExtReason`]) and the arguments as Rust values
//! ([`CallbackIn`], [`UserPtr`]).
//!
//! The [`Context`] holds the implementor as `Box<dyn Application>`, set at creation.
//! The rule of the C contract holds here too: no Rust borrow of context or connection
//! state is held while a method of the trait runs (the application may re-enter the
//! library from its callback).

use crate::engine::extensions::app_hooks::BadTokens;
use crate::io::conn::Conn;
use crate::io::context::Context;
use std::os::fd::RawFd;

/// Why the application's protocol callback is called (`enum
/// libwebsocket_callback_reasons`; capi maps each to its C value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Established,
    ClientConnectionError,
    ClientFilterPreEstablish,
    ClientEstablished,
    Closed,
    ClosedHttp,
    Receive,
    ClientReceive,
    ClientReceivePong,
    ClientWriteable,
    ServerWriteable,
    Http,
    HttpFileCompletion,
    HttpWriteable,
    FilterNetworkConnection,
    FilterProtocolConnection,
    OpensslLoadExtraClientVerifyCerts,
    OpensslLoadExtraServerVerifyCerts,
    OpensslPerformClientCertVerification,
    ClientAppendHandshakeHeader,
    ConfirmExtensionOkay,
    ClientConfirmExtensionSupported,
    ProtocolInit,
    ProtocolDestroy,
    AddPollFd,
    DelPollFd,
    SetModePollFd,
    ClearModePollFd,
}

/// Why an application extension's callback is called (`enum
/// libwebsocket_extension_callback_reasons`; capi maps each to its C value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtReason {
    ServerContextConstruct,
    ClientContextConstruct,
    ServerContextDestruct,
    ClientContextDestruct,
    Construct,
    ClientConstruct,
    CheckOkToReallyClose,
    CheckOkToProposeExtension,
    Destroy,
    DestroyAnyWsiClosing,
    AnyWsiEstablished,
    PacketRxPreparse,
    PacketTxPresend,
    PacketTxDoSend,
    HandshakeReplyTx,
    FlushPendingTx,
    ExtendedPayloadRx,
    /// `user` is the extension's index in the application's array (capi passes it; io
    /// gives [`UserPtr::NULL`]).
    CanProxyClientConnection,
    OneHz,
    RequestOnWriteable,
    IsWriteable,
    PayloadTx,
    PayloadRx,
}

/// Per-session data as the application knows it (`void *user`): memory the library
/// allocated for the connection ([`crate::io::sys::UserSpace`]) or the pointer the
/// application gave to `libwebsocket_client_connect_extended`. io stores and passes it
/// on; it never reads or writes through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserPtr(*mut libc::c_void);

impl UserPtr {
    /// No per-session data (NULL in C).
    pub const NULL: UserPtr = UserPtr(std::ptr::null_mut());

    /// Wraps an address handed over by the application or the allocator.
    pub fn from_raw(p: *mut libc::c_void) -> UserPtr {
        UserPtr(p)
    }

    /// The address, for the C call.
    pub fn as_raw(self) -> *mut libc::c_void {
        self.0
    }

    pub fn is_null(self) -> bool {
        self.0.is_null()
    }
}

impl Default for UserPtr {
    fn default() -> Self {
        UserPtr::NULL
    }
}

/// What a callback receives in `in` and `len`, as Rust values; capi turns each into the
/// pointer and length v1.23 passed.
pub enum CallbackIn<'a> {
    /// `in` NULL, `len` 0.
    Nothing,
    /// A descriptor in `in` and poll events in `len` (the POLL_FD reasons;
    /// FILTER_NETWORK_CONNECTION with no events).
    Fd { fd: RawFd, events: i16 },
    /// `in` points at `buf[at]` and `len` is `len`. The rest of `buf` belongs to the
    /// call too: the padding in front of received data, the NUL behind a string (a
    /// C string is `at` 0 with its NUL inside `buf`; `len` is whatever v1.23 passed).
    Bytes {
        buf: &'a mut [u8],
        at: usize,
        len: usize,
    },
    /// CLIENT_APPEND_HANDSHAKE_HEADER: `in` is a `char **` cursor starting at `buf`,
    /// `len` is `room`; the callback writes header lines and advances the cursor.
    /// `written` receives how far it moved (the wrapping difference of the addresses,
    /// so anything beyond `room` means it wrote out of bounds or moved backwards).
    Cursor {
        buf: &'a mut [u8],
        room: usize,
        written: &'a mut usize,
    },
    /// PACKET_TX_DO_SEND: `in` is an `unsigned char **` pointing at the bytes, `len`
    /// their count.
    BytesRef(&'a mut [u8]),
    /// EXTENDED_PAYLOAD_RX: `in` is a `struct lws_tokens *` over the bytes (what the
    /// callback leaves in the tokens is not looked at).
    Tokens(&'a mut [u8]),
}

impl<'a> CallbackIn<'a> {
    /// `in` at the start of `buf`, `len` its length.
    pub fn bytes(buf: &'a mut [u8]) -> CallbackIn<'a> {
        let len = buf.len();
        CallbackIn::Bytes { buf, at: 0, len }
    }

    /// A NUL-terminated string (`buf` ends with its NUL), with `len` as given.
    pub fn c_string(buf: &'a mut [u8], len: usize) -> CallbackIn<'a> {
        CallbackIn::Bytes { buf, at: 0, len }
    }
}

/// What an extension left in `struct lws_tokens` after a token hook, checked by capi
/// (`engine::extensions::app_hooks::check_tokens`) before a byte of it is read.
#[derive(Debug, PartialEq, Eq)]
pub enum TokensLeft {
    /// Same bytes, possibly edited in place.
    Unchanged,
    /// Nothing to pass on.
    Empty,
    /// The first `n` of the bytes passed in.
    Shortened(usize),
    /// Bytes of its own, copied out during the call.
    Elsewhere(Vec<u8>),
}

/// The answer of one extension to a token hook.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenReply {
    /// It returned < 0 (what it left in the tokens was not looked at).
    Fatal,
    /// It returned >= 0 (`more`: > 0, "call me again") and left the tokens as `left`.
    Done {
        more: bool,
        left: Result<TokensLeft, BadTokens>,
    },
}

/// The application, as io sees it. capi implements it over the C protocol and
/// extension arrays given to `libwebsocket_create_context`.
pub trait Application {
    /// Calls the callback of protocol `protocol` (an index into `ctx.protocols`).
    /// Returns its answer, or 0 when there is no such callback.
    #[allow(clippy::too_many_arguments)]
    fn callback(
        &self,
        ctx: &Context,
        conn: Option<&Conn>,
        protocol: usize,
        reason: Reason,
        user: UserPtr,
        input: CallbackIn<'_>,
    ) -> i32;

    /// Calls the callback of extension `ext` (an index into the application's extension
    /// array, [`crate::io::extensions::ExtEntry::index`]). Returns its answer, or 0 when
    /// there is no such callback.
    #[allow(clippy::too_many_arguments)]
    fn ext_callback(
        &self,
        ctx: &Context,
        conn: Option<&Conn>,
        ext: usize,
        reason: ExtReason,
        user: UserPtr,
        input: CallbackIn<'_>,
    ) -> i32;

    /// One link of a token hook chain (PACKET_RX_PREPARSE, PACKET_TX_PRESEND,
    /// FLUSH_PENDING_TX, PAYLOAD_RX / PAYLOAD_TX): extension `ext` sees `data` in a
    /// `struct lws_tokens` (None: NULL/0) and may edit it in place, shorten it or hand
    /// back bytes of its own. `cap` is the largest length believed from a buffer of its
    /// own.
    #[allow(clippy::too_many_arguments)]
    fn ext_token_hook(
        &self,
        ctx: &Context,
        conn: &Conn,
        ext: usize,
        reason: ExtReason,
        user: UserPtr,
        data: Option<&mut [u8]>,
        cap: usize,
    ) -> TokenReply;

    /// The implementor itself, so that capi can reach its own data from a context.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// Calls the callback of entry `protocol` of the protocol table.
pub fn invoke(
    ctx: &Context,
    protocol: usize,
    conn: Option<&Conn>,
    reason: Reason,
    user: UserPtr,
    input: CallbackIn<'_>,
) -> i32 {
    ctx.app.callback(ctx, conn, protocol, reason, user, input)
}

/// Calls the connection's own protocol callback with its per-session data.
pub fn invoke_conn(ctx: &Context, conn: &Conn, reason: Reason, input: CallbackIn<'_>) -> i32 {
    invoke(
        ctx,
        conn.protocol.get(),
        Some(conn),
        reason,
        conn.user_ptr(),
        input,
    )
}

/// A POLL_FD notification for external event loops (always to the first protocol).
pub fn poll_fd_event(ctx: &Context, conn: Option<&Conn>, reason: Reason, fd: RawFd, events: i16) {
    let user = conn.map_or(UserPtr::NULL, |c| c.user_ptr());
    invoke(ctx, 0, conn, reason, user, CallbackIn::Fd { fd, events });
}

/// Calls the callback of entry `ext` of the application's extension array.
pub fn invoke_ext(
    ctx: &Context,
    ext: usize,
    conn: Option<&Conn>,
    reason: ExtReason,
    user: UserPtr,
    input: CallbackIn<'_>,
) -> i32 {
    ctx.app.ext_callback(ctx, conn, ext, reason, user, input)
}
