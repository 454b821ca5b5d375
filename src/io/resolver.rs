//! Name resolution off the service thread. Each lookup runs on a short-lived thread;
//! results come back through a channel, and the context's wake-up eventfd
//! (`io::threads`, registered with epoll and announced to external poll loops with
//! ADD_POLL_FD) wakes the loop.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

pub struct Resolved {
    pub serial: u64,
    pub result: Result<Vec<SocketAddr>, String>,
}

pub struct Resolver {
    /// Shared with lookup threads so it stays open until the last one has written.
    fd: Arc<OwnedFd>,
    tx: Sender<Resolved>,
    rx: Receiver<Resolved>,
}

impl Resolver {
    /// A resolver waking the loop through `waker` (the context's eventfd).
    pub fn new(waker: Arc<OwnedFd>) -> Resolver {
        let (tx, rx) = channel();
        Resolver { fd: waker, tx, rx }
    }

    /// Starts resolving `host:port` for connection `serial`.
    pub fn start(&self, serial: u64, host: String, port: u16) {
        let tx = self.tx.clone();
        let fd = self.fd.clone();
        let spawned = std::thread::Builder::new()
            .name("lws-resolve".into())
            .spawn(move || {
                let result = (host.as_str(), port)
                    .to_socket_addrs()
                    .map(|it| it.collect::<Vec<_>>())
                    .map_err(|e| e.to_string());
                let _ = tx.send(Resolved { serial, result });
                crate::io::threads::wake(fd.as_raw_fd());
            });
        if spawned.is_err() {
            let _ = self.tx.send(Resolved {
                serial,
                result: Err("cannot start resolver thread".into()),
            });
            crate::io::threads::wake(self.fd.as_raw_fd());
        }
    }

    /// Every finished lookup (the eventfd was cleared by the caller).
    pub fn drain(&self) -> Vec<Resolved> {
        self.rx.try_iter().collect()
    }
}
