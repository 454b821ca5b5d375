//! I/O: moves bytes and readiness between the sockets and the protocol code, and
//! reports to the application through [`app::Application`], which capi implements (io
//! never uses capi nor calls C itself; capi maps io's reasons to the C callbacks).
//!
//! * [`service`]: `libwebsocket_service` on mio (edge-triggered epoll) and
//!   `libwebsocket_service_fd` for the application's own poll loop; the deferred-work
//!   queues, timeouts and closing; the common message path (received bytes through
//!   the engine's `engine::ws::Connection` to RECEIVE, small writes, flushing).
//! * [`context`], [`conn`]: the context (connection table, shared buffers, queues,
//!   timer heap, limits) and one connection's state.
//! * [`http_server`]: the server's HTTP phase: request head, upgrade, HTTP callback,
//!   file serving.
//! * [`client`]: client connections: resolve, connect, proxy, TLS, the upgrade request
//!   and the check of the response.
//! * [`ws_rx`], [`tx`]: the less common receive and send paths around the engine's
//!   WebSocket `Connection` (extensions, padded copies, CLIENT_RECEIVE_PONG; general
//!   writes, library frames, the application-extension flush).
//! * [`extensions`]: extension negotiation (offers, acceptance, parameters, the
//!   library's compression extensions); [`ext_chain`]: the callback chain of
//!   extensions the application implements in C.
//! * [`tls_io`]: rustls between the socket and the layers above.
//! * [`sys`] (with [`sys::net`], [`sys::process`]): every raw system call, each behind
//!   a safe function returning `io::Result` (sockets, signals, fork, randomness,
//!   eventfd, the pthread mutex, per-session memory, malloc tuning);
//!   [`resolver`], [`mask_keys`], [`daemon`]: name lookups off the service thread, the
//!   pool of masking keys, `lws_daemonize`.
//! * [`threads`]: calls from other threads (the table of live connections).
//!
//! Single-threaded: the context and its connections are shared as `&Context` / `&Conn`
//! with `Cell` / `RefCell` fields, and no borrow is held while the application runs
//! (it may re-enter the library from any callback).

// Free of `unsafe` (raw system calls live in `sys`).
#[forbid(unsafe_code)]
pub mod app;
#[forbid(unsafe_code)]
pub mod client;
#[forbid(unsafe_code)]
pub mod conn;
#[forbid(unsafe_code)]
pub mod context;
#[forbid(unsafe_code)]
pub mod daemon;
#[forbid(unsafe_code)]
pub mod ext_chain;
#[forbid(unsafe_code)]
pub mod extensions;
#[forbid(unsafe_code)]
pub mod http_server;
#[forbid(unsafe_code)]
pub mod linger;
#[forbid(unsafe_code)]
pub mod mask_keys;
#[forbid(unsafe_code)]
pub mod resolver;
#[forbid(unsafe_code)]
pub mod service;
#[forbid(unsafe_code)]
pub mod tls_io;
#[forbid(unsafe_code)]
pub mod tx;
#[forbid(unsafe_code)]
pub mod ws_rx;

// Every raw system call (sys: `syscall!`, sockets in sys::net, signals and fork in
// sys::process, the pthread mutex, per-session memory), and the table of live
// connections other threads look wsi addresses up in (threads: see its module doc for
// why it keeps its own bounded `unsafe`); each `unsafe` with a SAFETY note.
pub mod sys;
pub mod threads;
