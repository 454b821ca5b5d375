//! Name resolution off the service thread. Each lookup runs on a short-lived thread;
//! results come back through a channel, and an eventfd (registered with epoll and
//! announced to external poll loops with ADD_POLL_FD) wakes the loop.

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// mio token of the wake-up eventfd.
pub const WAKER: mio::Token = mio::Token(usize::MAX - 1);

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
    pub fn new() -> std::io::Result<Resolver> {
        // SAFETY: plain eventfd(2) call.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (tx, rx) = channel();
        // SAFETY: fd is a fresh descriptor we own.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(Resolver { fd, tx, rx })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
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
                wake(fd.as_raw_fd());
            });
        if spawned.is_err() {
            let _ = self.tx.send(Resolved {
                serial,
                result: Err("cannot start resolver thread".into()),
            });
            wake(self.fd());
        }
    }

    /// Clears the wake-up and returns every finished lookup.
    pub fn drain(&self) -> Vec<Resolved> {
        let mut v = [0u8; 8];
        // SAFETY: reads at most 8 bytes into the live array.
        unsafe { libc::read(self.fd(), v.as_mut_ptr() as *mut libc::c_void, 8) };
        self.rx.try_iter().collect()
    }
}

fn wake(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64 to an eventfd kept open by our Arc.
    unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
}
