//! The context: listening socket, connection table, shared buffers, queues of
//! deferred work and the timer heap. Owned by C as `struct libwebsocket_context *`.

use crate::engine::http::request::HeadLimits;
use crate::engine::timers::{pending_timeout, Deadline, TimerHeap};
use crate::io::app::Application;
use crate::io::conn::{flag, Conn, ConnState, OutQ, Side};
use crate::io::sys::{net, StableSlab};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::RawFd;
use std::time::Instant;

/// mio token of the listening socket; connections use slot + 1.
pub const LISTENER: Token = Token(0);

/// Receive chunk when a protocol's `rx_buffer_size` is 0 (the original's default).
pub const DEFAULT_RX_CHUNK: usize = 4096;
/// Bytes of the shared socket read buffer.
pub const READ_BUF_SIZE: usize = 64 * 1024;
/// First capacity of a connection's output buffer.
pub const OUT_BUF_INITIAL: usize = 4096;
/// Buffers larger than this are freed rather than pooled.
pub const OUT_POOL_MAX_CAP: usize = 4 * 1024 * 1024;
/// Bytes the pool may hold in all.
pub const OUT_POOL_MAX_BYTES: usize = 16 * 1024 * 1024;
/// Buffers kept in the pool at most.
pub const OUT_POOL_MAX: usize = 256;
/// Padding the original guarantees around data handed to RECEIVE.
pub const PRE: usize = 18;
pub const POST: usize = 4;

/// Bits of the context options (`lws_context_creation_info.options`).
pub mod server_option {
    /// LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT: TLS clients must present a
    /// certificate the CA verifies.
    pub const REQUIRE_VALID_CLIENT_CERT: u32 = 2;
    /// LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME: no host name lookup at creation.
    pub const SKIP_SERVER_CANONICAL_NAME: u32 = 4;
}

/// What the library needs to know of each protocol, copied at creation.
#[derive(Clone, Debug)]
pub struct ProtocolInfo {
    pub name: Option<Vec<u8>>,
    pub rx_chunk: usize,
    pub pss_size: usize,
}

/// Creation parameters, already converted from `lws_context_creation_info`.
pub struct ContextConfig {
    pub port: i32,
    pub iface: Option<String>,
    pub protocols: Vec<ProtocolInfo>,
    pub extensions: Vec<crate::io::extensions::ExtEntry>,
    /// The application: where io's callbacks go.
    pub app: Box<dyn Application>,
    pub gid: i32,
    pub uid: i32,
    pub options: u32,
    pub ka_time: i32,
    pub ka_probes: i32,
    pub ka_interval: i32,
    pub tls_server: Option<std::sync::Arc<rustls::ServerConfig>>,
    pub ssl_ca: Option<String>,
    pub ssl_cipher_list: Option<String>,
}

/// Limits applied to every connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub head: HeadLimits,
    /// Seconds allowed for the HTTP request head (the original's AWAITING_TIMEOUT).
    pub handshake_secs: u32,
    /// Seconds allowed for a close handshake to finish.
    pub close_secs: u32,
    /// Largest WebSocket message accepted.
    pub max_message: u64,
    /// Outbound bytes queued before `lws_send_pipe_choked` says yes.
    pub choke_bytes: usize,
    /// Outbound bytes a connection may have queued at most; a write beyond fails.
    pub max_queued: usize,
}

impl Limits {
    /// The defaults, overridden by environment variables where set (documented in the
    /// README): LWS_MAX_MESSAGE, LWS_MAX_HEADER_BYTES, LWS_MAX_HEADERS,
    /// LWS_HANDSHAKE_TIMEOUT, LWS_CLOSE_TIMEOUT, LWS_CHOKE_BYTES.
    pub fn from_env() -> Limits {
        fn var<T: std::str::FromStr>(name: &str) -> Option<T> {
            std::env::var(name).ok()?.trim().parse().ok()
        }
        let mut l = Limits::default();
        if let Some(v) = var::<u64>("LWS_MAX_MESSAGE").filter(|&v| v > 0) {
            l.max_message = v;
        }
        if let Some(v) = var::<usize>("LWS_MAX_HEADER_BYTES").filter(|&v| v >= 256) {
            l.head.max_head_bytes = v;
        }
        if let Some(v) = var::<usize>("LWS_MAX_HEADERS").filter(|&v| v > 0) {
            l.head.max_headers = v;
        }
        if let Some(v) = var::<u32>("LWS_HANDSHAKE_TIMEOUT").filter(|&v| v > 0) {
            l.handshake_secs = v;
        }
        if let Some(v) = var::<u32>("LWS_CLOSE_TIMEOUT").filter(|&v| v > 0) {
            l.close_secs = v;
        }
        if let Some(v) = var::<usize>("LWS_CHOKE_BYTES").filter(|&v| v > 0) {
            l.choke_bytes = v;
        }
        if let Some(v) = var::<usize>("LWS_MAX_QUEUED").filter(|&v| v > 0) {
            l.max_queued = v;
        }
        l
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            head: HeadLimits::default(),
            handshake_secs: 5,
            close_secs: 5,
            max_message: 256 * 1024 * 1024,
            choke_bytes: 256 * 1024,
            max_queued: 64 * 1024 * 1024,
        }
    }
}

pub struct Context {
    /// The application (capi's implementation over the C callbacks).
    pub app: Box<dyn Application>,
    pub protocols: Vec<ProtocolInfo>,
    /// The application's extension array, as read at creation.
    pub extensions: Vec<crate::io::extensions::ExtEntry>,
    pub last_1hz: Cell<u64>,
    /// `server_option` bits.
    pub options: u32,
    pub ka: (i32, i32, i32),
    pub limits: Limits,
    pub listener: Cell<Option<RawFd>>,
    /// The listening socket's wsi, handed to the application with its POLL_FD and
    /// FILTER_NETWORK_CONNECTION callbacks (as v1.23 did); not a connection.
    pub listener_wsi: std::cell::OnceCell<Box<Conn>>,
    pub listen_port: Cell<u16>,
    /// Every connection record ever made, live or vacant (`flag::VACANT`), at a fixed
    /// address until the context goes: a `struct libwebsocket *` is one of them.
    pub conns: StableSlab<Conn>,
    /// Vacant entries ready for reuse, oldest first (so a stale `wsi` keeps failing
    /// for as long as possible before its entry carries a new connection).
    free_slots: RefCell<VecDeque<u32>>,
    /// Entries vacated during the current service call: reused only after it returns,
    /// so code still holding the closed connection never sees a new one in its place.
    retired: RefCell<Vec<u32>>,
    fd_map: RefCell<Vec<u32>>,
    pub poll: RefCell<mio::Poll>,
    pub events: RefCell<mio::Events>,
    pub read_buf: RefCell<Vec<u8>>,
    pub deliver_buf: RefCell<Vec<u8>>,
    pub writeable_q: RefCell<Vec<u32>>,
    pub read_q: RefCell<Vec<u32>>,
    pub dirty_q: RefCell<Vec<u32>>,
    pub close_q: RefCell<Vec<u32>>,
    pub timers: RefCell<TimerHeap>,
    /// Entries the timer heap kept at its last compaction (the next one is due once
    /// it has grown to twice that, plus a margin).
    timers_kept: Cell<usize>,
    pub next_stamp: Cell<u32>,
    /// Depth of service calls in progress (writes are batched while > 0).
    pub in_service: Cell<u32>,
    /// Accepting is paused until this time (fd exhaustion back-off).
    pub accept_paused_until: Cell<Option<Instant>>,
    pub accept_pending: Cell<bool>,
    pub start: Instant,
    /// `now_ms`'s origin (io::sys::monotonic_ms at creation).
    pub start_ms: u64,
    /// This host's name (empty with SKIP_SERVER_CANONICAL_NAME), without NULs.
    pub hostname: String,
    pub proxy: RefCell<Option<String>>,
    pub destroying: Cell<bool>,
    pub next_serial: Cell<u64>,
    /// Emptied output buffers kept for reuse, so the echo path does not allocate.
    pub out_pool: RefCell<Vec<Box<OutQ>>>,
    pub out_pool_bytes: Cell<usize>,
    /// HTTP-phase states of upgraded connections kept for reuse (io::http_server).
    pub http_pool: RefCell<Vec<Box<crate::io::conn::HttpState>>>,
    /// TLS server configuration when the listening port speaks TLS.
    pub tls_server: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Client TLS configurations, built on first use: [verifying, allow-self-signed].
    pub tls_client: RefCell<[Option<std::sync::Arc<rustls::ClientConfig>>; 2]>,
    pub ssl_ca: Option<String>,
    pub ssl_cipher_list: Option<String>,
    /// Plaintext out of rustls, before it is handed to the HTTP/WebSocket layers.
    pub tls_plain: RefCell<Vec<u8>>,
    pub resolver: RefCell<Option<crate::io::resolver::Resolver>>,
    /// Where detached connections finish closing (created on first use).
    pub linger: RefCell<Option<crate::io::linger::Linger>>,
    /// The linger instance has events left over from the last pass.
    pub linger_pending: Cell<bool>,
    /// What other threads may touch: the service thread's identity, the wake-up
    /// eventfd, the table of live connections and the queue of their requests.
    pub threads: crate::io::threads::Threads,
}

impl Context {
    pub fn new(cfg: ContextConfig) -> Result<Box<Context>, String> {
        crate::io::sys::tune_malloc_once();
        crate::io::threads::warm_up_once();
        let poll = mio::Poll::new().map_err(|e| format!("epoll: {e}"))?;
        let threads = crate::io::threads::Threads::new().map_err(|e| format!("eventfd: {e}"))?;
        poll.registry()
            .register(
                &mut SourceFd(&threads.waker_fd()),
                crate::io::threads::WAKER,
                Interest::READABLE,
            )
            .map_err(|e| format!("epoll register: {e}"))?;
        let max_chunk = cfg
            .protocols
            .iter()
            .map(|p| p.rx_chunk)
            .max()
            .unwrap_or(DEFAULT_RX_CHUNK);
        let hostname = if cfg.options & server_option::SKIP_SERVER_CANONICAL_NAME != 0 {
            String::new()
        } else {
            net::hostname()
        };
        let ctx = Box::new(Context {
            app: cfg.app,
            protocols: cfg.protocols,
            extensions: cfg.extensions,
            last_1hz: Cell::new(0),
            options: cfg.options,
            ka: (cfg.ka_time, cfg.ka_probes, cfg.ka_interval),
            limits: Limits::from_env(),
            listener: Cell::new(None),
            listener_wsi: std::cell::OnceCell::new(),
            listen_port: Cell::new(0),
            conns: StableSlab::default(),
            free_slots: RefCell::new(VecDeque::new()),
            retired: RefCell::new(Vec::new()),
            fd_map: RefCell::new(Vec::new()),
            poll: RefCell::new(poll),
            events: RefCell::new(mio::Events::with_capacity(1024)),
            read_buf: RefCell::new(vec![0u8; READ_BUF_SIZE]),
            deliver_buf: RefCell::new(vec![0u8; PRE + max_chunk + POST + 1]),
            writeable_q: RefCell::new(Vec::new()),
            read_q: RefCell::new(Vec::new()),
            dirty_q: RefCell::new(Vec::new()),
            close_q: RefCell::new(Vec::new()),
            timers: RefCell::new(TimerHeap::new()),
            timers_kept: Cell::new(0),
            next_stamp: Cell::new(1),
            in_service: Cell::new(0),
            accept_paused_until: Cell::new(None),
            accept_pending: Cell::new(false),
            start: Instant::now(),
            start_ms: crate::io::sys::monotonic_ms(),
            hostname: hostname.replace('\0', ""),
            proxy: RefCell::new(None),
            destroying: Cell::new(false),
            next_serial: Cell::new(1),
            out_pool: RefCell::new(Vec::new()),
            out_pool_bytes: Cell::new(0),
            http_pool: RefCell::new(Vec::new()),
            tls_server: cfg.tls_server,
            tls_client: RefCell::new([None, None]),
            ssl_ca: cfg.ssl_ca,
            ssl_cipher_list: cfg.ssl_cipher_list,
            tls_plain: RefCell::new(vec![0u8; READ_BUF_SIZE]),
            resolver: RefCell::new(None),
            linger: RefCell::new(None),
            linger_pending: Cell::new(false),
            threads,
        });
        crate::io::threads::register(&ctx);
        if cfg.port != 0 {
            let fd = open_listener(cfg.port, cfg.iface.as_deref())?;
            // Linux copies TCP_NODELAY and the keepalive settings from the listening
            // socket into every accepted one: set them once here, not per accept.
            let (ka_time, ka_probes, ka_interval) = ctx.ka;
            net::set_conn_options(fd, ka_time, ka_probes, ka_interval);
            ctx.listen_port
                .set(net::local_addr(fd).map_or(cfg.port as u16, |a| a.port()));
            ctx.poll
                .borrow()
                .registry()
                .register(&mut SourceFd(&fd), LISTENER, Interest::READABLE)
                .map_err(|e| format!("epoll register: {e}"))?;
            ctx.listener.set(Some(fd));
            let wsi = Conn::new(&*ctx, u32::MAX, fd, Side::Server, ConnState::Dead);
            wsi.set(flag::LISTENER);
            let _ = ctx.listener_wsi.set(Box::new(wsi));
            net::drop_privileges(cfg.gid, cfg.uid);
        }
        Ok(ctx)
    }

    pub fn now_ms(&self) -> u64 {
        crate::io::sys::monotonic_ms().saturating_sub(self.start_ms)
    }

    /// The live connection in entry `slot`.
    #[inline]
    pub fn conn(&self, slot: u32) -> Option<&Conn> {
        self.conns
            .get(slot as usize)
            .filter(|c| !c.has(flag::VACANT))
    }

    pub fn conn_by_fd(&self, fd: RawFd) -> Option<&Conn> {
        if fd < 0 {
            return None;
        }
        let slot = *self.fd_map.borrow().get(fd as usize)?;
        if slot == 0 {
            return None;
        }
        self.conn(slot - 1)
    }

    /// Creates a connection for an open socket and registers it for events: in the
    /// oldest vacant entry, or a new one.
    pub fn add_conn(&self, fd: RawFd, side: Side, state: ConnState) -> Option<&Conn> {
        let reused = self.free_slots.borrow_mut().pop_front();
        let conn = match reused {
            Some(slot) => {
                let c = self.conns.get(slot as usize)?;
                c.reset(fd, side, state);
                c
            }
            None => {
                let slot = self.conns.len() as u32;
                let (i, opened) = self.conns.push(Conn::new(self, slot, fd, side, state));
                if let Some((base, first, n)) = opened {
                    self.threads.add_segment(
                        base,
                        first as u32,
                        n as u32,
                        std::mem::size_of::<Conn>(),
                    );
                }
                self.conns.get(i)?
            }
        };
        let slot = conn.slot;
        let token = Token(slot as usize + 1);
        if let Err(e) = self.poll.borrow().registry().register(
            &mut SourceFd(&fd),
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            crate::log::lws_err!("epoll register fd {}: {}", fd, e);
            conn.set(flag::VACANT);
            conn.state.set(ConnState::Dead);
            self.free_slots.borrow_mut().push_front(slot);
            return None;
        }
        self.threads.add_live(slot);
        let mut map = self.fd_map.borrow_mut();
        if map.len() <= fd as usize {
            map.resize(fd as usize + 1, 0);
        }
        map[fd as usize] = slot + 1;
        Some(conn)
    }

    /// The listening socket's wsi (None without a listener).
    pub fn listener_conn(&self) -> Option<&Conn> {
        self.listener_wsi.get().map(|b| &**b)
    }

    /// Removes a connection from the tables and closes its socket. Its entry is
    /// reused once the current service call has returned (see [`Context::recycle`]).
    pub fn remove_conn(&self, conn: &Conn) {
        // No epoll_ctl(DEL): closing the descriptor removes it from the epoll set.
        if let Some(e) = self.fd_map.borrow_mut().get_mut(conn.fd() as usize) {
            if *e == conn.slot + 1 {
                *e = 0;
            }
        }
        if !conn.has(flag::VACANT) && !conn.has(flag::LISTENER) {
            conn.set(flag::VACANT);
            self.retired.borrow_mut().push(conn.slot);
            self.threads.remove_live(conn.slot);
        }
        net::close(conn.fd());
    }

    /// Makes the entries vacated so far reusable. Called when the outermost service
    /// call returns: no code is left holding one of those connections.
    pub fn recycle(&self) {
        let mut r = self.retired.borrow_mut();
        if !r.is_empty() {
            self.free_slots.borrow_mut().extend(r.drain(..));
        }
    }

    /// Arms or clears (reason NO_PENDING_TIMEOUT) the pending timeout of a connection;
    /// `reason` is a [`pending_timeout`] value or one the application chose.
    pub fn set_timeout(&self, conn: &Conn, reason: u32, secs: i32) {
        let stamp = self.next_stamp.get().wrapping_add(1).max(1);
        self.next_stamp.set(stamp);
        conn.timeout_stamp.set(stamp);
        conn.timeout_reason.set(reason);
        if reason == pending_timeout::NO_PENDING_TIMEOUT {
            return;
        }
        let at = self.now_ms() + (secs.max(0) as u64) * 1000;
        let mut t = self.timers.borrow_mut();
        t.push(Deadline::at(at, conn.slot, stamp));
        // Clearing a timeout (as every upgrade does) leaves its entry behind until it
        // is due: compact once the heap is twice what the last compaction kept, so an
        // idle connection costs no heap entry for long and the work stays O(1) per
        // timeout set (amortized).
        if t.len() > 2 * self.timers_kept.get() + 64 {
            t.compact(|d| {
                self.conn(d.slot).is_some_and(|c| {
                    c.timeout_stamp.get() == d.stamp
                        && c.timeout_reason.get() != pending_timeout::NO_PENDING_TIMEOUT
                })
            });
            self.timers_kept.set(t.len());
        }
    }

    /// Queues `conn` for a deferred action, once.
    pub fn enqueue(&self, conn: &Conn, which: u32) {
        if conn.has(which) {
            return;
        }
        conn.set(which);
        let q = match which {
            flag::IN_WRITEABLE_Q => &self.writeable_q,
            flag::IN_READ_Q => &self.read_q,
            flag::IN_DIRTY_Q => &self.dirty_q,
            _ => &self.close_q,
        };
        q.borrow_mut().push(conn.slot);
    }

    /// An empty output buffer, from the pool when one is there.
    pub fn take_out_buf(&self) -> Box<OutQ> {
        match self.out_pool.borrow_mut().pop() {
            Some(q) => {
                self.out_pool_bytes
                    .set(self.out_pool_bytes.get() - q.buf.capacity());
                q
            }
            None => Box::new(OutQ {
                buf: Vec::with_capacity(OUT_BUF_INITIAL),
                start: 0,
            }),
        }
    }

    /// Returns an emptied output buffer to the pool (large or surplus ones are freed).
    /// Keeping large buffers too spares the allocator from growing and trimming its heap
    /// at every burst.
    pub fn give_out_buf(&self, q: Box<OutQ>) {
        let cap = q.buf.capacity();
        let total = self.out_pool_bytes.get();
        if (OUT_BUF_INITIAL..=OUT_POOL_MAX_CAP).contains(&cap)
            && total + cap <= OUT_POOL_MAX_BYTES
            && self.out_pool.borrow().len() < OUT_POOL_MAX
        {
            self.out_pool_bytes.set(total + cap);
            self.out_pool.borrow_mut().push(q);
        }
    }

    /// All live connections (a snapshot).
    pub fn all_conns(&self) -> Vec<&Conn> {
        (0..self.conns.len() as u32)
            .filter_map(|i| self.conn(i))
            .collect()
    }
}

fn open_listener(port: i32, iface: Option<&str>) -> Result<RawFd, String> {
    if !(0..=65535).contains(&port) {
        return Err(format!("invalid port {port}"));
    }
    let port = port as u16;
    let reuseport = std::env::var_os("LWS_REUSEPORT").is_some_and(|v| v == "1");
    let addrs: Vec<SocketAddr> = match iface {
        None | Some("") => vec![
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        ],
        Some(name) => {
            let ip = name
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .ok()
                .or_else(|| net::interface_addr(name))
                .ok_or_else(|| format!("unknown interface or address '{name}'"))?;
            vec![SocketAddr::new(ip, port)]
        }
    };
    let mut last = String::new();
    for a in addrs {
        match net::listen(a, reuseport) {
            Ok(fd) => return Ok(fd),
            Err(e) => last = format!("bind {a}: {e}"),
        }
    }
    Err(last)
}
