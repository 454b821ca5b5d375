//! One connection's state. Every field is a `Cell`/`RefCell` so that the service loop
//! and the C API (re-entered from user callbacks) only ever share `&Conn`; no borrow is
//! held while C code runs.

use crate::engine::http::headers::HeaderTable;
pub use crate::engine::ws::connection::{OutBuf, OutQ, RxInfo};
use crate::engine::ws::{Connection, Role};
use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnState {
    /// Reading the HTTP request head.
    HttpHeaders,
    /// The HTTP callback ran; the application (or a file transfer) owns the response.
    Http,
    /// Client: waiting for the name of the server (or proxy) to resolve.
    ClientResolving,
    /// Client: non-blocking connect in progress.
    ClientConnecting,
    /// Client: CONNECT sent to the proxy, reading its answer.
    ClientProxy,
    /// Client: upgrade request sent, reading the server's response head.
    ClientHandshake,
    /// A WebSocket connection (server or client side).
    Ws,
    /// Closing: queued bytes (a close frame, the end of a response) are being flushed.
    Flushing,
    /// Closing: our side is shut down; reading and discarding until the peer's EOF.
    Draining,
    /// Socket closed and removed from the context.
    Dead,
}

/// Which end of the connection we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

pub mod flag {
    pub const WANT_WRITEABLE: u32 = 1 << 0;
    pub const IN_WRITEABLE_Q: u32 = 1 << 1;
    pub const IN_READ_Q: u32 = 1 << 2;
    pub const IN_DIRTY_Q: u32 = 1 << 3;
    /// The last send hit EAGAIN: wait for a writeable event.
    pub const CHOKED: u32 = 1 << 4;
    /// CLOSED / CLOSED_HTTP has been delivered.
    pub const CLOSED_NOTIFIED: u32 = 1 << 8;
    /// External poll: we asked the application to poll for POLLOUT.
    pub const POLLOUT_SET: u32 = 1 << 9;
    /// External poll: we asked the application to stop polling for POLLIN.
    pub const POLLIN_CLEARED: u32 = 1 << 10;
    /// A socket error happened; close at the next opportunity.
    pub const FAILED: u32 = 1 << 11;
    /// The HTTP callback was called (so CLOSED_HTTP is due at close).
    pub const HTTP_CALLED: u32 = 1 << 12;
    pub const IN_CLOSE_Q: u32 = 1 << 13;
    /// Peer sent EOF.
    pub const READ_EOF: u32 = 1 << 14;
    /// TLS close_notify has been queued.
    pub const CLOSE_NOTIFY_SENT: u32 = 1 << 15;
    /// The poller reported the peer's FIN or an error: read until EOF, not just until
    /// a short read.
    pub const PEER_HUP: u32 = 1 << 16;
    /// An application extension (C callback) is active: the v1.23 extension hooks run.
    /// Connections without it skip all of them on this one bit.
    pub const APP_EXT: u32 = 1 << 18;
    /// An extension still holds PACKET_TX_PRESEND data to spill when writeable.
    pub const EXT_SPILL_PENDING: u32 = 1 << 19;
    /// Output is being offered to PACKET_TX_DO_SEND (re-entrant flushes wait).
    pub const IN_EXT_FLUSH: u32 = 1 << 20;
    /// The socket is not in the poll set (a client connection an extension claimed
    /// with CAN_PROXY_CLIENT_CONNECTION): no POLL_FD callbacks for it.
    pub const NO_POLL: u32 = 1 << 21;
    /// The extension side of the close (DESTROY, DESTROY_ANY_WSI_CLOSING) has run.
    pub const EXT_CLOSED: u32 = 1 << 22;
    /// Closing after DEL_POLL_FD and CLOSED were delivered: served from the linger
    /// epoll instance (see `io::linger`), no longer from the context's.
    pub const DETACHED: u32 = 1 << 23;
    /// The listening socket's own wsi (the one POLL_FD and FILTER_NETWORK_CONNECTION
    /// callbacks carry for it): never in the connection table.
    pub const LISTENER: u32 = 1 << 24;
    /// The connection's entry in the context's table holds no connection (closed, or
    /// not yet reused): `wsi` lookups and the table's iterations skip it.
    pub const VACANT: u32 = 1 << 25;
}

use crate::io::app::UserPtr;
pub use crate::io::sys::UserSpace;

/// A protocol index stored in two bytes (the protocol table is capped at 4096).
#[derive(Default)]
pub struct ProtoIndex(Cell<u16>);

impl ProtoIndex {
    pub fn get(&self) -> usize {
        usize::from(self.0.get())
    }
    pub fn set(&self, i: usize) {
        self.0.set(i.min(usize::from(u16::MAX)) as u16);
    }
}

/// State of the HTTP phase, dropped once the connection upgrades.
#[derive(Default)]
pub struct HttpState {
    /// Request bytes received so far (until the head completes).
    pub inbuf: Vec<u8>,
    /// Parsed headers, readable through `lws_hdr_*`.
    pub headers: Option<HeaderTable>,
    /// NUL-terminated URI handed to the HTTP callback.
    pub uri_c: Vec<u8>,
    /// A file being sent by `libwebsockets_serve_http_file`.
    pub file: Option<FileSend>,
    /// Storage for the next header table (kept by states recycled per context).
    pub header_storage: Vec<u8>,
}

pub struct FileSend {
    pub file: std::fs::File,
    pub remaining: u64,
}

/// TLS on a client connection (`ssl_connection` of `libwebsocket_client_connect`:
/// 0, 1, 2 in that order; capi converts).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientTls {
    /// Plain TCP.
    #[default]
    Plain,
    /// TLS, the server's certificate verified.
    Verify,
    /// TLS, a self-signed server certificate accepted.
    AllowSelfSigned,
}

/// What a client connection needs until it is established.
#[derive(Default)]
pub struct ClientSetup {
    /// Unique for the context's lifetime (slots are reused, serials are not): matches
    /// name-lookup results to the connection that asked.
    pub serial: u64,
    pub address: String,
    pub port: u16,
    pub path: String,
    pub host: String,
    pub origin: Option<String>,
    pub protocols: Option<String>,
    /// base64 Sec-WebSocket-Key we sent.
    pub key: String,
    /// The Sec-WebSocket-Extensions value we offered.
    pub ext_offer: Option<String>,
    pub ssl: ClientTls,
    /// "host:port" of the proxy when one is used.
    pub proxy: Option<(String, u16)>,
}

/// A connection, in its entry of the context's table (`Context::conns`, a
/// [`crate::io::sys::StableSlab`]): the entry never moves or goes away while the
/// context lives, and is reused (every field reset through its cell, see
/// [`Conn::reset`]) by a later connection once this one has closed.
/// The fields of [`Conn`] that most connections never use, behind one pointer (NULL
/// for a plain server connection its whole life). Once allocated it stays with the
/// connection's entry (cleared, not freed, when the entry is reused: a `Conn` is only
/// ever shared), so an entry pays for it at most once.
#[derive(Default)]
pub struct Cold {
    /// A client connection until it is established.
    pub client: RefCell<Option<Box<ClientSetup>>>,
    /// The TLS session when the connection is encrypted.
    pub tls: RefCell<Option<Box<rustls::Connection>>>,
    /// Negotiated extensions (None when there are none).
    pub exts: RefCell<Option<Box<crate::io::extensions::ConnExts>>>,
    /// Caller-provided user data for client connections (not owned).
    pub external_user: Cell<UserPtr>,
}

impl Cold {
    fn clear(&self) {
        drop(self.client.take());
        drop(self.tls.take());
        drop(self.exts.take());
        self.external_user.set(UserPtr::NULL);
    }
}

pub struct Conn {
    /// Back pointer for the C API (the context outlives its connections).
    pub ctx: *const crate::io::context::Context,
    /// The entry's index in the context's table (fixed for the entry's life).
    pub slot: u32,
    fd: Cell<RawFd>,
    side: Cell<Side>,
    pub state: Cell<ConnState>,
    pub flags: Cell<u32>,
    /// Index into the protocol table.
    pub protocol: ProtoIndex,
    /// The per-session data the library allocated (see `Cold::external_user`).
    pub user: Cell<Option<UserSpace>>,
    pub http: RefCell<Option<Box<HttpState>>>,
    /// The protocol state of the WebSocket phase and the output queue (see
    /// `engine::ws::connection`); never borrowed while application code runs.
    pub ws: RefCell<Connection>,
    /// Pending timeout: (reason, stamp); the deadline lives in the context's heap.
    pub timeout_reason: Cell<u32>,

    pub timeout_stamp: Cell<u32>,
    /// What only some connections need (client setup, TLS, extensions, caller-owned
    /// user data): allocated on first use, then kept with the entry (see [`Cold`]).
    cold: std::cell::OnceCell<Box<Cold>>,
}

impl Conn {
    /// The socket.
    #[inline]
    pub fn fd(&self) -> RawFd {
        self.fd.get()
    }
    /// Which end of the connection we are.
    #[inline]
    pub fn side(&self) -> Side {
        self.side.get()
    }
    /// A fresh connection record for socket `fd` in entry `slot` of `ctx`'s table.
    pub fn new(
        ctx: *const crate::io::context::Context,
        slot: u32,
        fd: RawFd,
        side: Side,
        state: ConnState,
    ) -> Conn {
        Conn {
            ctx,
            slot,
            fd: Cell::new(fd),
            side: Cell::new(side),
            state: Cell::new(state),
            flags: Cell::new(0),
            protocol: Default::default(),
            user: Cell::new(None),
            http: RefCell::new(None),
            ws: RefCell::new(Connection::new(match side {
                Side::Server => Role::Server,
                Side::Client => Role::Client,
            })),
            timeout_reason: Cell::new(crate::engine::timers::pending_timeout::NO_PENDING_TIMEOUT),
            timeout_stamp: Cell::new(0),
            cold: std::cell::OnceCell::new(),
        }
    }
    /// Makes a vacant entry the record of a new connection: every field as
    /// [`Conn::new`] sets it (through the cells: stale references to the entry, which
    /// safe code may still hold, stay sound; they see the new connection).
    pub fn reset(&self, fd: RawFd, side: Side, state: ConnState) {
        let Conn {
            ctx: _,
            slot: _,
            fd: c_fd,
            side: c_side,
            state: c_state,
            flags,
            protocol,
            user,
            http,
            ws,
            timeout_reason,
            timeout_stamp,
            cold,
        } = self;
        c_fd.set(fd);
        c_side.set(side);
        c_state.set(state);
        flags.set(0);
        protocol.set(0);
        drop(user.take());
        drop(http.take());
        *ws.borrow_mut() = Connection::new(match side {
            Side::Server => Role::Server,
            Side::Client => Role::Client,
        });
        timeout_reason.set(crate::engine::timers::pending_timeout::NO_PENDING_TIMEOUT);
        timeout_stamp.set(0);
        if let Some(c) = cold.get() {
            c.clear();
        }
    }
    pub fn has(&self, f: u32) -> bool {
        self.flags.get() & f != 0
    }
    pub fn set(&self, f: u32) {
        self.flags.set(self.flags.get() | f);
    }
    pub fn clear(&self, f: u32) {
        self.flags.set(self.flags.get() & !f);
    }
    /// The per-session data handed to the application's callbacks.
    pub fn user_ptr(&self) -> UserPtr {
        if let Some(c) = self.cold.get() {
            let ext = c.external_user.get();
            if !ext.is_null() {
                return ext;
            }
        }
        let u = self.user.take();
        let p = u.as_ref().map_or(UserPtr::NULL, |u| u.ptr());
        self.user.set(u);
        p
    }
    /// The rarely used part, allocated now if it was not.
    #[inline]
    pub fn cold(&self) -> &Cold {
        self.cold.get_or_init(Default::default)
    }
    /// The rarely used part if it was ever allocated (reading it allocates nothing).
    #[inline]
    pub fn cold_opt(&self) -> Option<&Cold> {
        self.cold.get().map(|c| &**c)
    }
    /// True when the connection has negotiated extensions.
    #[inline]
    pub fn has_exts(&self) -> bool {
        self.cold.get().is_some_and(|c| c.exts.borrow().is_some())
    }
    /// The application paused receiving (`libwebsocket_rx_flow_control(wsi, 0)`).
    pub fn rx_paused(&self) -> bool {
        self.ws.borrow().rx_paused()
    }
    /// Our close frame is queued.
    pub fn close_sent(&self) -> bool {
        self.ws.borrow().close_sent()
    }
    pub fn is_client_pending(&self) -> bool {
        matches!(
            self.state.get(),
            ConnState::ClientResolving
                | ConnState::ClientConnecting
                | ConnState::ClientProxy
                | ConnState::ClientHandshake
        )
    }
    pub fn is_open(&self) -> bool {
        !matches!(self.state.get(), ConnState::Dead)
    }
    /// True while the application may still exchange messages.
    pub fn is_ws_live(&self) -> bool {
        self.state.get() == ConnState::Ws && !self.close_sent()
    }
}

#[cfg(test)]
mod size_tests {
    /// Every idle connection costs one `Conn` entry in the context's slab (issue 17
    /// item 3: no malloc header or size class, so every byte counts). The WebSocket
    /// state is one `RefCell<Connection>` (parser, RxInfo, flags, the output queue and
    /// the rarely used parts behind two pointers).
    #[test]
    fn conn_stays_small() {
        assert!(std::mem::size_of::<super::Conn>() <= 176);
        assert!(std::mem::size_of::<std::cell::RefCell<crate::engine::ws::Connection>>() <= 96);
    }

    #[test]
    fn print_sizes() {
        eprintln!("Conn = {}", std::mem::size_of::<super::Conn>());
        eprintln!(
            "ws = {}",
            std::mem::size_of::<std::cell::RefCell<crate::engine::ws::Connection>>()
        );
    }
}
