//! I/O: moves bytes and readiness between the sockets and the protocol code, and
//! reports to the application through [`app::Application`], which capi implements (io
//! never uses capi nor calls C itself; capi maps io's reasons to the C callbacks).
//!
//! * [`service`]: `libwebsocket_service` on mio (edge-triggered epoll) and
//!   `libwebsocket_service_fd` for the application's own poll loop; the deferred-work
//!   queues, timeouts and closing.
//! * [`context`], [`conn`]: the context (connection table, shared buffers, queues,
//!   timer heap, limits) and one connection's state.
//! * [`http_server`]: the server's HTTP phase: request head, upgrade, HTTP callback,
//!   file serving.
//! * [`client`]: client connections: resolve, connect, proxy, TLS, the upgrade request
//!   and the check of the response.
//! * [`ws_rx`], [`tx`]: received frames to RECEIVE callbacks, automatic replies and
//!   the close handshake; application writes to frames, and flushing.
//! * [`extensions`]: extension negotiation and the callback chain of extensions the
//!   application implements in C.
//! * [`tls_io`]: rustls between the socket and the layers above.
//! * [`net`], [`sys`], [`resolver`], [`mask_keys`], [`daemon`]: system calls (sockets,
//!   randomness, per-session memory, malloc tuning), name lookups off the service
//!   thread, the pool of masking keys, `lws_daemonize`.
//!
//! Single-threaded: the context and its connections are shared as `&Context` / `&Conn`
//! with `Cell` / `RefCell` fields, and no borrow is held while the application runs
//! (it may re-enter the library from any callback).

// Free of `unsafe` (raw system calls live in the modules below them).
#[forbid(unsafe_code)]
pub mod app;
#[forbid(unsafe_code)]
pub mod client;
#[forbid(unsafe_code)]
pub mod conn;
#[forbid(unsafe_code)]
pub mod context;
#[forbid(unsafe_code)]
pub mod extensions;
#[forbid(unsafe_code)]
pub mod http_server;
#[forbid(unsafe_code)]
pub mod linger;
#[forbid(unsafe_code)]
pub mod service;
#[forbid(unsafe_code)]
pub mod tls_io;
#[forbid(unsafe_code)]
pub mod tx;
#[forbid(unsafe_code)]
pub mod ws_rx;

// System calls, the per-session memory handed to C and what other threads share (each
// `unsafe` with a SAFETY note).
pub mod daemon;
pub mod mask_keys;
pub mod net;
pub mod resolver;
pub mod sys;
pub mod threads;
