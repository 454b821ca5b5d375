//! Connections that are closing after the application has been told they are gone.
//!
//! v1.23 delivered `DEL_POLL_FD` and then CLOSED / CLOSED_HTTP at the moment a
//! connection closed, because it dropped the socket there. Here a close is graceful
//! (close frame, the queued output flushed, the peer's EOF awaited), so the socket
//! may outlive that moment. The application gets `DEL_POLL_FD` and CLOSED as in v1.23
//! and never sees the socket again (`hide`); when the close cannot finish at once the
//! socket is *detached* (`keep`) and the library finishes the close on a second epoll
//! instance of its own. That instance is registered in the context's
//! epoll (so `libwebsocket_service` serves it) and announced once, on first use, to
//! external poll loops with `ADD_POLL_FD` and a NULL wsi, like the resolver's eventfd,
//! so `libwebsocket_service_fd` on it serves it there.

use crate::io::app::{poll_fd_event, Reason};
use crate::io::conn::{flag, Conn};
use crate::io::context::Context;
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// mio token of the linger epoll descriptor in the context's epoll.
pub const LINGER: Token = Token(usize::MAX - 2);

/// Events taken per round; rounds per call before the rest waits for the next pass.
const BATCH: usize = 256;
const ROUNDS: usize = 16;

pub struct Linger {
    poll: mio::Poll,
    events: mio::Events,
}

impl Linger {
    pub fn fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

/// The linger instance, created (and announced) on first use. False when it cannot be.
fn ensure(ctx: &Context) -> bool {
    if ctx.linger.borrow().is_some() {
        return true;
    }
    let poll = match mio::Poll::new() {
        Ok(p) => p,
        Err(e) => {
            crate::log::lws_err!("linger epoll: {}", e);
            return false;
        }
    };
    let fd = poll.as_raw_fd();
    if let Err(e) =
        ctx.poll
            .borrow()
            .registry()
            .register(&mut SourceFd(&fd), LINGER, Interest::READABLE)
    {
        crate::log::lws_err!("linger epoll register: {}", e);
        return false;
    }
    *ctx.linger.borrow_mut() = Some(Linger {
        poll,
        events: mio::Events::with_capacity(BATCH),
    });
    poll_fd_event(ctx, None, Reason::AddPollFd, fd, crate::io::service::POLLIN);
    true
}

/// Takes the connection out of the application's poll set (`DEL_POLL_FD`): from now
/// on the library alone serves it (see `keep`).
pub fn hide(ctx: &Context, conn: &Conn) {
    if conn.has(flag::NO_POLL) {
        return;
    }
    poll_fd_event(ctx, Some(conn), Reason::DelPollFd, conn.fd(), 0);
    conn.set(flag::NO_POLL);
}

/// A hidden connection whose close could not finish at once (output to flush, the
/// peer's answer to wait for): served from the linger instance from now on.
pub fn keep(ctx: &Context, conn: &Conn) {
    if !conn.is_open() || !conn.has(flag::NO_POLL) || conn.has(flag::DETACHED) {
        return;
    }
    if !ensure(ctx) {
        return; // stays in the context's epoll: libwebsocket_service still serves it
    }
    let fd = conn.fd();
    let _ = ctx.poll.borrow().registry().deregister(&mut SourceFd(&fd));
    let token = Token(conn.slot as usize + 1);
    let registered = ctx.linger.borrow().as_ref().is_some_and(|l| {
        l.poll
            .registry()
            .register(
                &mut SourceFd(&fd),
                token,
                Interest::READABLE | Interest::WRITABLE,
            )
            .is_ok()
    });
    if registered {
        conn.set(flag::DETACHED);
    } else {
        crate::log::lws_err!("linger register fd {}", fd);
        let _ = ctx.poll.borrow().registry().register(
            &mut SourceFd(&fd),
            token,
            Interest::READABLE | Interest::WRITABLE,
        );
    }
}

/// Serves the detached connections that have events. Whatever is left after the
/// bounded rounds is taken up in the next pass (`ctx.linger_pending`).
pub fn drain(ctx: &Context) {
    ctx.linger_pending.set(false);
    for _ in 0..ROUNDS {
        let ready: Vec<(u32, bool, bool, bool)> = {
            let mut l = ctx.linger.borrow_mut();
            let Some(l) = l.as_mut() else { return };
            if l.poll.poll(&mut l.events, Some(Duration::ZERO)).is_err() {
                return;
            }
            l.events
                .iter()
                .map(|ev| {
                    (
                        (ev.token().0 as u32).wrapping_sub(1),
                        ev.is_writable(),
                        ev.is_read_closed() || ev.is_error(),
                        ev.is_readable(),
                    )
                })
                .collect()
        };
        let full = ready.len() >= BATCH;
        for (slot, writable, hup, readable) in ready {
            let Some(conn) = ctx.conn(slot) else { continue };
            if !conn.has(flag::DETACHED) {
                continue;
            }
            crate::io::service::dispatch(ctx, conn, writable, hup, readable);
        }
        if !full {
            return;
        }
    }
    ctx.linger_pending.set(true);
}

/// Context destroy: the linger descriptor leaves the application's poll set.
pub fn forget(ctx: &Context) {
    let fd = ctx.linger.borrow().as_ref().map(Linger::fd);
    if let Some(fd) = fd {
        poll_fd_event(ctx, None, Reason::DelPollFd, fd, 0);
    }
}
