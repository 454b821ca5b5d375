//! I/O: sockets, the service loops and the few system calls they need.

pub mod daemon;
pub mod sys;
