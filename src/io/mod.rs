//! I/O: sockets, the service loops and the few system calls they need.

pub mod app;
pub mod client;
pub mod conn;
pub mod context;
pub mod daemon;
pub mod extensions;
pub mod http_server;
pub mod mask_keys;
pub mod net;
pub mod resolver;
pub mod service;
pub mod sys;
pub mod tls_io;
pub mod tx;
pub mod ws_rx;
