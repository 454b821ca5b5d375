//! One connection's state. Every field is a `Cell`/`RefCell` so that the service loop
//! and the C API (re-entered from user callbacks) only ever share `&Conn`; no borrow is
//! held while C code runs.

use crate::engine::http::headers::HeaderTable;
pub use crate::engine::ws::connection::{OutBuf, OutQ, RxInfo};
use crate::engine::ws::Connection;
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

pub struct Conn {
    /// Back pointer for the C API (the context outlives its connections).
    pub ctx: *const crate::io::context::Context,
    pub fd: RawFd,
    pub slot: u32,
    pub side: Side,
    pub state: Cell<ConnState>,
    pub flags: Cell<u32>,
    /// Index into the protocol table.
    pub protocol: ProtoIndex,
    pub user: RefCell<Option<UserSpace>>,
    /// Caller-provided user data for client connections (not owned).
    pub external_user: Cell<UserPtr>,
    pub http: RefCell<Option<Box<HttpState>>>,
    /// The protocol state of the WebSocket phase and the output queue (see
    /// `engine::ws::connection`); never borrowed while application code runs.
    pub ws: RefCell<Connection>,
    /// Pending timeout: (reason, stamp); the deadline lives in the context's heap.
    pub timeout_reason: Cell<u32>,

    pub timeout_stamp: Cell<u32>,
    pub client: RefCell<Option<Box<ClientSetup>>>,
    /// The TLS session when the connection is encrypted.
    pub tls: RefCell<Option<Box<rustls::Connection>>>,
    /// Negotiated extensions (None when there are none).
    pub exts: RefCell<Option<Box<crate::io::extensions::ConnExts>>>,
}

impl Conn {
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
        let ext = self.external_user.get();
        if !ext.is_null() {
            return ext;
        }
        self.user
            .borrow()
            .as_ref()
            .map_or(UserPtr::NULL, |u| u.ptr())
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
    /// Every idle connection costs one `Rc<Conn>` allocation (issue 17 item 3): with
    /// its 16-byte header and glibc's 8-byte chunk header, 224 bytes fit a 256-byte
    /// chunk. The WebSocket state is one `RefCell<Connection>` (parser, RxInfo, flags,
    /// the output queue and the rarely used parts behind two pointers).
    #[test]
    fn conn_fits_its_malloc_class() {
        assert!(std::mem::size_of::<super::Conn>() <= 224);
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
