//! The service loop: `libwebsocket_service` on mio (edge-triggered epoll, reading each
//! socket until drained within a fairness budget) and `libwebsocket_service_fd` for
//! applications that run their own poll loop. Both feed the same per-connection code.

use crate::engine::timers::pending_timeout;
use crate::engine::ws::close::CLOSE_GOING_AWAY;
use crate::engine::ws::connection::{Cursor, RxConfig, RxEvent};
use crate::engine::ws::{OP_BINARY, OP_PONG, OP_TEXT};
use crate::io::app::{invoke, invoke_conn, poll_fd_event, CallbackIn, Reason, UserPtr};
use crate::io::conn::{flag, Conn, ConnState, Side};
use crate::io::context::{Context, LISTENER, POST, PRE};
use crate::io::sys::net;
use crate::io::tx::{WRITE_BINARY, WRITE_TEXT};
use crate::io::{client, http_server, linger, tx, ws_rx};
use std::io::ErrorKind;
use std::time::{Duration, Instant};

/// poll(2) event bits, as the POLL_FD callbacks and `libwebsocket_service_fd` carry them.
pub const POLLIN: i16 = 0x1;
pub const POLLOUT: i16 = 0x4;
pub const POLLERR: i16 = 0x8;
pub const POLLHUP: i16 = 0x10;
pub const POLLNVAL: i16 = 0x20;

/// Reads per connection per wake-up before yielding to others.
const READ_BUDGET: usize = 16;
/// Accepts per listener wake-up before yielding.
const ACCEPT_BUDGET: usize = 64;

/// How a connection should end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseHow {
    /// Send a close frame (with this status, or empty for `None`) when the connection is
    /// a live WebSocket, flush what is queued, then shut down and drain.
    Graceful(Option<u16>),
    /// Close the socket now (errors, timeouts, peer gone).
    Abort,
}

/// Guard that marks the context as inside a service call (writes are batched).
struct InService<'a>(&'a Context);
impl<'a> InService<'a> {
    fn enter(ctx: &'a Context) -> Self {
        ctx.in_service.set(ctx.in_service.get() + 1);
        InService(ctx)
    }
}
impl Drop for InService<'_> {
    fn drop(&mut self) {
        let depth = self.0.in_service.get() - 1;
        self.0.in_service.set(depth);
        if depth == 0 {
            self.0.recycle();
        }
    }
}

/// `libwebsocket_service`: waits up to `timeout_ms` for events and services them.
pub fn service(ctx: &Context, timeout_ms: i32) -> i32 {
    let Ok(mut events) = ctx.events.try_borrow_mut() else {
        crate::log::lws_err!("libwebsocket_service called re-entrantly from a callback");
        return -1;
    };
    let _guard = InService::enter(ctx);
    let _serving = crate::io::threads::Serving::enter(ctx);
    let mut timeout = if timeout_ms < 0 {
        None
    } else {
        Some(Duration::from_millis(timeout_ms as u64))
    };
    if has_deferred(ctx) {
        timeout = Some(Duration::ZERO);
    }
    if let Some(next) = ctx.timers.borrow().next_at() {
        let now = ctx.now_ms();
        let wait = Duration::from_millis(next.saturating_sub(now) + 1);
        timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
    }
    if let Some(until) = ctx.accept_paused_until.get() {
        let wait = until.saturating_duration_since(Instant::now());
        timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
    }
    let polled = ctx.poll.borrow_mut().poll(&mut events, timeout);
    if let Err(e) = polled {
        if e.kind() != ErrorKind::Interrupted {
            crate::log::lws_err!("epoll_wait: {}", e);
        }
        // A signal interrupted the wait: -1, as v1.23's poll() loop returned, so that
        // `while (libwebsocket_service(context, ms) >= 0)` ends on SIGINT. Queued work
        // waits for the next call.
        return -1;
    }
    for ev in events.iter() {
        if ev.token() == LISTENER {
            accept_ready(ctx);
            continue;
        }
        if ev.token() == crate::io::threads::WAKER {
            crate::io::threads::on_wake(ctx);
            continue;
        }
        if ev.token() == linger::LINGER {
            linger::drain(ctx);
            continue;
        }
        let Some(conn) = ctx.conn(ev.token().0 as u32 - 1) else {
            continue;
        };
        let hup = ev.is_read_closed() || ev.is_error();
        dispatch(ctx, conn, ev.is_writable(), hup, ev.is_readable());
    }
    drop(events);
    run_deferred(ctx);
    0
}

/// One connection's readiness: writable first (flush, WRITEABLE), then reading.
pub fn dispatch(ctx: &Context, conn: &Conn, writable: bool, hup: bool, readable: bool) {
    if writable && !writable_is_news(conn) {
        // Edge-triggered epoll reports "writable" with every read event; most of them
        // find nothing waiting for the socket (conn_writeable would do nothing).
    } else if writable {
        conn_writeable(ctx, conn);
    }
    if hup {
        conn.set(flag::PEER_HUP);
    }
    if readable || hup {
        conn_readable(ctx, conn);
    }
}

/// `libwebsocket_service_fd`: services one descriptor reported by the application's
/// own poll(). `None` only runs timeouts and deferred work. Returns (result, handled).
pub fn service_fd(ctx: &Context, fd_revents: Option<(i32, i16)>) -> (i32, bool) {
    let _guard = InService::enter(ctx);
    let _serving = crate::io::threads::Serving::enter(ctx);
    let mut handled = false;
    if let Some((fd, revents)) = fd_revents {
        if Some(fd) == ctx.listener.get() {
            handled = true;
            if revents & POLLIN != 0 {
                accept_ready(ctx);
            }
        } else if fd == ctx.threads.waker_fd() {
            handled = true;
            crate::io::threads::on_wake(ctx);
        } else if ctx.linger.borrow().as_ref().is_some_and(|l| l.fd() == fd) {
            handled = true;
            linger::drain(ctx);
        } else if let Some(conn) = ctx.conn_by_fd(fd) {
            handled = true;
            if revents & POLLNVAL != 0 {
                close_conn(ctx, conn, CloseHow::Abort);
            } else {
                if revents & POLLOUT != 0 {
                    conn_writeable(ctx, conn);
                }
                if revents & (POLLHUP | POLLERR) != 0 {
                    conn.set(flag::PEER_HUP);
                }
                if revents & (POLLIN | POLLHUP | POLLERR) != 0 {
                    conn_readable(ctx, conn);
                }
            }
        }
    }
    if fd_revents.is_none() {
        // Requests from other threads, also for loops that do not poll the eventfd.
        crate::io::threads::run_requests(ctx);
    }
    run_deferred(ctx);
    (0, handled)
}

fn has_deferred(ctx: &Context) -> bool {
    !ctx.writeable_q.borrow().is_empty()
        || ctx.linger_pending.get()
        || !ctx.read_q.borrow().is_empty()
        || !ctx.close_q.borrow().is_empty()
        || (ctx.accept_pending.get()
            && ctx
                .accept_paused_until
                .get()
                .is_none_or(|until| Instant::now() >= until))
}

/// Work queued during callbacks: writeable callbacks, resumed reads, flushes, closes
/// and due timeouts. Each queue is processed from a snapshot so a callback that
/// re-queues itself waits for the next pass instead of spinning here.
pub fn run_deferred(ctx: &Context) {
    if ctx.accept_pending.get() {
        accept_ready(ctx);
    }
    if ctx.linger_pending.get() {
        linger::drain(ctx);
    }
    let reads = take_queue(&ctx.read_q);
    for &slot in &reads {
        if let Some(conn) = ctx.conn(slot) {
            conn.clear(flag::IN_READ_Q);
            conn_readable(ctx, conn);
        }
    }
    restore_queue(&ctx.read_q, reads);
    let writeables = take_queue(&ctx.writeable_q);
    for &slot in &writeables {
        if let Some(conn) = ctx.conn(slot) {
            conn.clear(flag::IN_WRITEABLE_Q);
            if conn.has(flag::APP_EXT)
                && !conn.has(flag::CHOKED)
                && !conn.ws.borrow().out().is_empty()
            {
                // An extension took part of a unit (PACKET_TX_DO_SEND): offer the rest.
                tx::flush(ctx, conn);
                after_flush(ctx, conn);
            }
            if (conn.has(flag::WANT_WRITEABLE) || conn.has(flag::EXT_SPILL_PENDING))
                && !conn.has(flag::CHOKED)
            {
                deliver_writeable(ctx, conn);
            }
        }
    }
    restore_queue(&ctx.writeable_q, writeables);
    flush_dirty(ctx);
    let closes = take_queue(&ctx.close_q);
    for &slot in &closes {
        if let Some(conn) = ctx.conn(slot) {
            conn.clear(flag::IN_CLOSE_Q);
            close_conn(ctx, conn, CloseHow::Abort);
        }
    }
    restore_queue(&ctx.close_q, closes);
    check_timeouts(ctx);
    if ctx
        .extensions
        .iter()
        .any(|e| e.kind == crate::io::extensions::ExtKind::App)
    {
        let now = ctx.now_ms();
        if now >= ctx.last_1hz.get() + 1000 {
            ctx.last_1hz.set(now);
            crate::io::ext_chain::tick_1hz(ctx);
        }
    }
}

/// Flushes every connection that queued output during this pass (one send each).
pub fn flush_dirty(ctx: &Context) {
    loop {
        if ctx.dirty_q.borrow().is_empty() {
            break;
        }
        let dirty = take_queue(&ctx.dirty_q);
        for &slot in &dirty {
            if let Some(conn) = ctx.conn(slot) {
                conn.clear(flag::IN_DIRTY_Q);
                flush(ctx, conn);
                after_flush(ctx, conn);
            }
        }
        restore_queue(&ctx.dirty_q, dirty);
    }
}

/// A deferred queue's entries, leaving it empty (callbacks may queue more meanwhile).
fn take_queue(q: &std::cell::RefCell<Vec<u32>>) -> Vec<u32> {
    std::mem::take(&mut *q.borrow_mut())
}

/// Gives a processed batch back to its queue when nothing was queued meanwhile, so the
/// queue keeps its capacity and a pass allocates nothing.
fn restore_queue(q: &std::cell::RefCell<Vec<u32>>, mut batch: Vec<u32>) {
    let mut cur = q.borrow_mut();
    if cur.capacity() == 0 {
        batch.clear();
        *cur = batch;
    }
}

/// Accepts pending connections on the listening socket.
pub fn accept_ready(ctx: &Context) {
    ctx.accept_pending.set(false);
    let Some(lfd) = ctx.listener.get() else {
        return;
    };
    if let Some(until) = ctx.accept_paused_until.get() {
        if Instant::now() < until {
            ctx.accept_pending.set(true);
            return;
        }
        ctx.accept_paused_until.set(None);
    }
    for _ in 0..ACCEPT_BUDGET {
        let fd = match net::accept(lfd) {
            Ok(fd) => fd,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                let code = e.raw_os_error().unwrap_or(0);
                if code == libc::EMFILE
                    || code == libc::ENFILE
                    || code == libc::ENOBUFS
                    || code == libc::ENOMEM
                {
                    crate::log::lws_warn!("accept: {} (pausing accepts for 100 ms)", e);
                    ctx.accept_paused_until
                        .set(Some(Instant::now() + Duration::from_millis(100)));
                    ctx.accept_pending.set(true);
                } else {
                    crate::log::lws_warn!("accept: {}", e);
                }
                return;
            }
        };
        // TCP_NODELAY and keepalive come from the listening socket (see Context::new).
        // As in v1.23, the filter gets the listener's wsi and the new socket in `in`.
        if invoke(
            ctx,
            0,
            ctx.listener_conn(),
            Reason::FilterNetworkConnection,
            UserPtr::NULL,
            CallbackIn::Fd { fd, events: 0 },
        ) != 0
        {
            crate::log::lws_debug!("FILTER_NETWORK_CONNECTION refused fd {}", fd);
            net::close(fd);
            continue;
        }
        let Some(conn) = ctx.add_conn(fd, Side::Server, ConnState::HttpHeaders) else {
            net::close(fd);
            continue;
        };
        *conn.http.borrow_mut() = Some(http_server::new_http_state(ctx));
        if let Some(cfg) = &ctx.tls_server {
            match rustls::ServerConnection::new(cfg.clone()) {
                Ok(s) => *conn.cold().tls.borrow_mut() = Some(Box::new(s.into())),
                Err(e) => {
                    crate::log::lws_err!("TLS session: {}", e);
                    close_conn(ctx, conn, CloseHow::Abort);
                    continue;
                }
            }
            ctx.set_timeout(
                conn,
                pending_timeout::SSL_ACCEPT,
                ctx.limits.handshake_secs as i32,
            );
        } else {
            ctx.set_timeout(
                conn,
                pending_timeout::ESTABLISH_WITH_SERVER,
                ctx.limits.handshake_secs as i32,
            );
        }
        poll_fd_event(ctx, Some(conn), Reason::AddPollFd, fd, POLLIN);
    }
    // Budget used up: come back next pass without waiting for a new edge.
    ctx.accept_pending.set(true);
}

/// Socket readable (or hung up): read until drained, within the budget.
pub fn conn_readable(ctx: &Context, conn: &Conn) {
    if !conn.is_open() {
        return;
    }
    match conn.state.get() {
        ConnState::ClientResolving => return,
        ConnState::ClientConnecting => {
            // A failed connect reports readable/hang-up: let the connect check decide.
            client::on_connect_ready(ctx, conn);
            return;
        }
        _ => {}
    }
    // Reading stops only when the application asks (rx_flow_control), as in v1.23:
    // stopping by itself while output is backed up deadlocks with a peer that does the
    // same (both wait for the other to read).
    if conn.rx_paused() {
        return;
    }
    // Bytes stashed when the application paused receiving come first.
    if conn.ws.borrow().has_stash() {
        let mut stash = conn.ws.borrow_mut().take_stash();
        process_input(ctx, conn, &mut stash);
        if !conn.is_open() || conn.rx_paused() {
            return;
        }
    }
    let Ok(mut buf) = ctx.read_buf.try_borrow_mut() else {
        // Re-entered from a callback: try again on the next pass.
        ctx.enqueue(conn, flag::IN_READ_Q);
        return;
    };
    // Reads leave POST + 1 bytes free at the end of the buffer and, on a plain
    // WebSocket connection, PRE bytes at the start, so that whole frames at either end
    // of the input can be delivered in place too.
    let cap = buf.len() - (POST + 1);
    for _ in 0..READ_BUDGET {
        let direct = conn.state.get() == ConnState::Ws
            && !conn.has(flag::APP_EXT)
            && !crate::io::tls_io::is_tls(conn);
        let lo = if direct { PRE } else { 0 };
        match net::recv(conn.fd(), &mut buf[lo..cap]) {
            Ok(0) => {
                conn.set(flag::READ_EOF);
                drop(buf);
                peer_eof(ctx, conn);
                return;
            }
            Ok(n) => {
                if crate::io::tls_io::is_tls(conn) {
                    if !crate::io::tls_io::on_ciphertext(ctx, conn, &buf[..n]) {
                        return;
                    }
                    if conn.has(flag::READ_EOF) {
                        drop(buf);
                        peer_eof(ctx, conn);
                        return;
                    }
                } else if direct {
                    ws_input(ctx, conn, &mut buf[..], lo, lo + n);
                    if conn.has(flag::FAILED) {
                        close_conn(ctx, conn, CloseHow::Abort);
                    }
                } else {
                    process_received(ctx, conn, &mut buf[..n]);
                }
                if !conn.is_open() || conn.rx_paused() {
                    return;
                }
                if n < cap - lo && !conn.has(flag::PEER_HUP) {
                    return; // drained: a later arrival raises a new edge
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                drop(buf);
                close_conn(ctx, conn, CloseHow::Abort);
                return;
            }
        }
    }
    ctx.enqueue(conn, flag::IN_READ_Q);
}

/// POLL_FD convention: ask for POLLIN exactly while the connection wants to read.
/// Delivered whatever loop the application runs (v1.23 always sent them to
/// protocols[0]); applications on `libwebsocket_service` may ignore them.
fn update_pollin(ctx: &Context, conn: &Conn) {
    if !conn.is_open() || conn.has(flag::NO_POLL) {
        return;
    }
    let want = !conn.rx_paused();
    if want && conn.has(flag::POLLIN_CLEARED) {
        conn.clear(flag::POLLIN_CLEARED);
        poll_fd_event(ctx, Some(conn), Reason::SetModePollFd, conn.fd(), POLLIN);
    } else if !want && !conn.has(flag::POLLIN_CLEARED) {
        conn.set(flag::POLLIN_CLEARED);
        poll_fd_event(ctx, Some(conn), Reason::ClearModePollFd, conn.fd(), POLLIN);
    }
}

/// Bytes just read from the socket (after TLS): on a WebSocket connection with an
/// application extension they go through PACKET_RX_PREPARSE first. (Stashed bytes and
/// `libwebsocket_read` input are past that point and use `process_input`.)
pub fn process_received(ctx: &Context, conn: &Conn, data: &mut [u8]) {
    if conn.has(flag::APP_EXT) && conn.state.get() == ConnState::Ws {
        crate::io::ext_chain::rx_preparse(ctx, conn, data);
        if conn.has(flag::FAILED) {
            close_conn(ctx, conn, CloseHow::Abort);
        }
        return;
    }
    process_input(ctx, conn, data);
}

/// Hands received bytes to the layer the connection is in.
pub fn process_input(ctx: &Context, conn: &Conn, data: &mut [u8]) {
    match conn.state.get() {
        ConnState::HttpHeaders => http_server::on_head_bytes(ctx, conn, data),
        ConnState::Http => {} // HTTP/1.0-style: one request per connection
        ConnState::Ws => {
            let n = data.len();
            ws_input(ctx, conn, data, 0, n)
        }
        ConnState::ClientProxy | ConnState::ClientHandshake => {
            client::on_head_bytes(ctx, conn, data)
        }
        ConnState::ClientResolving | ConnState::ClientConnecting => {}
        ConnState::Flushing | ConnState::Draining | ConnState::Dead => {}
    }
    if conn.has(flag::FAILED) {
        close_conn(ctx, conn, CloseHow::Abort);
    }
}

fn peer_eof(ctx: &Context, conn: &Conn) {
    match conn.state.get() {
        ConnState::Flushing if has_pending_output(conn) => {
            // Keep flushing what we owe; the socket may still be writeable.
        }
        _ => close_conn(ctx, conn, CloseHow::Abort),
    }
}

/// Socket writeable: flush queued bytes, continue files, then the WRITEABLE callback.
pub fn conn_writeable(ctx: &Context, conn: &Conn) {
    if !conn.is_open() {
        return;
    }
    match conn.state.get() {
        ConnState::ClientResolving => return,
        ConnState::ClientConnecting => {
            client::on_connect_ready(ctx, conn);
            return;
        }
        _ => {}
    }
    conn.clear(flag::CHOKED);
    flush(ctx, conn);
    after_flush(ctx, conn);
    if !conn.is_open() || conn.has(flag::CHOKED) {
        return;
    }
    if conn.state.get() == ConnState::Http
        && conn
            .http
            .borrow()
            .as_ref()
            .is_some_and(|h| h.file.is_some())
    {
        http_server::continue_file(ctx, conn);
        return;
    }
    if conn.has(flag::WANT_WRITEABLE) || conn.has(flag::EXT_SPILL_PENDING) {
        deliver_writeable(ctx, conn);
    }
    update_pollout(ctx, conn);
}

/// False when `conn_writeable` would find nothing to do: a plain server or HTTP-head
/// connection with nothing queued or owed, nobody waiting for WRITEABLE and POLLOUT
/// not armed.
fn writable_is_news(conn: &Conn) -> bool {
    const BUSY: u32 = flag::CHOKED
        | flag::WANT_WRITEABLE
        | flag::EXT_SPILL_PENDING
        | flag::POLLOUT_SET
        | flag::FAILED
        | flag::APP_EXT;
    if conn.flags.get() & BUSY != 0
        || !matches!(conn.state.get(), ConnState::Ws | ConnState::HttpHeaders)
        || conn
            .cold_opt()
            .is_some_and(|c| c.tls.try_borrow().map_or(true, |t| t.is_some()))
    {
        return true;
    }
    conn.ws.try_borrow().map_or(true, |ws| {
        !ws.out().is_empty() || ws.has_stash() || ws.has_owed_pong()
    })
}

/// A server whose close handshake is complete closes TCP first (RFC 6455 7.1.1) as
/// soon as its close frame is out: nothing more can legitimately arrive, so there is
/// no peer EOF worth waiting for.
fn closes_at_once(conn: &Conn) -> bool {
    conn.side() == Side::Server && conn.ws.borrow().close_complete()
}

/// What a completed flush allows: finishing a close, or reporting a socket error.
fn after_flush(ctx: &Context, conn: &Conn) {
    if conn.has(flag::FAILED) {
        close_conn(ctx, conn, CloseHow::Abort);
        return;
    }
    if conn.state.get() == ConnState::Flushing
        && conn.ws.borrow().out().is_empty()
        && crate::io::tls_io::is_tls(conn)
        && !conn.has(flag::CLOSE_NOTIFY_SENT)
    {
        // Everything we owed (the close frame included) is inside rustls: end TLS now.
        conn.set(flag::CLOSE_NOTIFY_SENT);
        crate::io::tls_io::send_close_notify(conn);
        flush(ctx, conn);
    }
    if conn.state.get() == ConnState::Flushing && !has_pending_output(conn) {
        if closes_at_once(conn) {
            close_conn(ctx, conn, CloseHow::Abort);
            return;
        }
        net::shutdown_write(conn.fd());
        conn.state.set(ConnState::Draining);
        if conn.has(flag::READ_EOF) {
            close_conn(ctx, conn, CloseHow::Abort);
        } else if conn.has(flag::PEER_HUP) {
            // The peer's FIN is already waiting: read it now.
            ctx.enqueue(conn, flag::IN_READ_Q);
        }
        // Otherwise the peer's FIN, when it comes, raises a new event.
    }
    update_pollout(ctx, conn);
}

/// Calls SERVER/CLIENT/HTTP_WRITEABLE. With an application extension active,
/// IS_WRITEABLE and the spilling of pending PACKET_TX_PRESEND data come first (this is
/// also how a wake-up only for spilling arrives).
pub fn deliver_writeable(ctx: &Context, conn: &Conn) {
    let mut rearm = false;
    if conn.has(flag::APP_EXT) && conn.is_ws_live() {
        use crate::io::ext_chain::WriteableStep;
        match crate::io::ext_chain::before_writeable(ctx, conn) {
            Ok(WriteableStep::Deliver) => {}
            Ok(WriteableStep::DeliverAndRearm) => rearm = true,
            Ok(WriteableStep::Hold) => {
                update_pollout(ctx, conn);
                return;
            }
            Err(_) => {
                conn.set(flag::FAILED);
                close_conn(ctx, conn, CloseHow::Abort);
                return;
            }
        }
        if conn.has(flag::FAILED) {
            close_conn(ctx, conn, CloseHow::Abort);
            return;
        }
    }
    if !conn.has(flag::WANT_WRITEABLE) {
        return; // woken only to spill
    }
    conn.clear(flag::WANT_WRITEABLE);
    // One shot, as in v1.23: POLLOUT is given back (CLEAR_MODE) before the callback
    // unless queued output still needs it; asking again from the callback sets it anew.
    update_pollout(ctx, conn);
    let reason = match conn.state.get() {
        ConnState::Ws if !conn.close_sent() => match conn.side() {
            Side::Server => Reason::ServerWriteable,
            Side::Client => Reason::ClientWriteable,
        },
        ConnState::Http => Reason::HttpWriteable,
        _ => return,
    };
    let n = invoke_conn(ctx, conn, reason, CallbackIn::Nothing);
    update_pollout(ctx, conn);
    if rearm && conn.is_ws_live() {
        // IS_WRITEABLE answered 1: v1.23 left POLLOUT armed, so WRITEABLE came again.
        request_writeable(ctx, conn);
    }
    if n < 0 {
        close_unless_vetoed(ctx, conn, CloseHow::Graceful(None));
    } else if conn.has(flag::FAILED) {
        close_conn(ctx, conn, CloseHow::Abort);
    }
}

/// A close that an application extension may defer (CHECK_OK_TO_REALLY_CLOSE): asked
/// by a user callback's return value. Otherwise `close_conn`.
pub fn close_unless_vetoed(ctx: &Context, conn: &Conn, how: CloseHow) {
    if conn.has(flag::APP_EXT) && crate::io::ext_chain::close_vetoed(ctx, conn) {
        return;
    }
    close_conn(ctx, conn, how);
}

/// `libwebsocket_callback_on_writable`: every request announces POLLOUT with
/// SET_MODE_POLL_FD, as in v1.23 (even when it is already set).
pub fn request_writeable(ctx: &Context, conn: &Conn) {
    if !conn.is_open() {
        return;
    }
    conn.set(flag::WANT_WRITEABLE);
    if !conn.has(flag::CHOKED) {
        ctx.enqueue(conn, flag::IN_WRITEABLE_Q);
    }
    if conn.has(flag::NO_POLL) {
        return;
    }
    conn.set(flag::POLLOUT_SET);
    poll_fd_event(ctx, Some(conn), Reason::SetModePollFd, conn.fd(), POLLOUT);
}

/// `libwebsocket_callback_on_writable` for one connection: an active application
/// extension may take the request over (LWS_EXT_CALLBACK_REQUEST_ON_WRITEABLE answering
/// non-zero), in which case nothing is armed, as in v1.23.
pub fn request_writeable_asking_extensions(ctx: &Context, conn: &Conn) {
    if conn.has(flag::APP_EXT) && crate::io::ext_chain::request_on_writeable_handled(ctx, conn) {
        return;
    }
    request_writeable(ctx, conn);
}

/// `libwebsocket_callback_on_writable_all_protocol`: WRITEABLE for every WebSocket
/// connection of protocol `idx` and (as in v1.23) HTTP_WRITEABLE for its HTTP
/// connections that are not serving a file.
pub fn writeable_all_protocol(ctx: &Context, idx: usize) {
    for conn in ctx.all_conns() {
        if conn.protocol.get() != idx {
            continue;
        }
        match conn.state.get() {
            ConnState::Ws => request_writeable_asking_extensions(ctx, conn),
            ConnState::Http if !serving_file(conn) => request_writeable(ctx, conn),
            _ => {}
        }
    }
}

/// True while `libwebsockets_serve_http_file` streams a file on the connection (or its
/// HTTP state is in use and cannot be looked at).
fn serving_file(conn: &Conn) -> bool {
    conn.http
        .try_borrow()
        .map_or(true, |h| h.as_ref().is_some_and(|h| h.file.is_some()))
}

/// POLL_FD convention (delivered whatever loop the application runs): keep POLLOUT
/// requested exactly while we have something to write, a connect is in progress or
/// a WRITEABLE callback (or stashed input) is waiting.
pub fn update_pollout(ctx: &Context, conn: &Conn) {
    if !conn.is_open() || conn.has(flag::NO_POLL) {
        return;
    }
    // Output merely batched for the flush at the end of this pass needs no POLLOUT
    // (that flush decides again); output the socket refused does.
    let output_waits =
        (!conn.has(flag::IN_DIRTY_Q) || conn.has(flag::CHOKED)) && has_pending_output(conn);
    let want = conn.state.get() == ConnState::ClientConnecting
        || output_waits
        || conn.has(flag::WANT_WRITEABLE)
        || conn.has(flag::EXT_SPILL_PENDING)
        || conn.ws.borrow().has_stash() && !conn.rx_paused()
        || conn
            .http
            .borrow()
            .as_ref()
            .is_some_and(|h| h.file.is_some());
    if want && !conn.has(flag::POLLOUT_SET) {
        conn.set(flag::POLLOUT_SET);
        poll_fd_event(ctx, Some(conn), Reason::SetModePollFd, conn.fd(), POLLOUT);
    } else if !want && conn.has(flag::POLLOUT_SET) {
        conn.clear(flag::POLLOUT_SET);
        poll_fd_event(ctx, Some(conn), Reason::ClearModePollFd, conn.fd(), POLLOUT);
    }
}

/// `libwebsocket_rx_flow_control`: pause (0) or resume (1) receiving.
pub fn rx_flow(ctx: &Context, conn: &Conn, enable: bool) {
    if !conn.is_open() {
        return;
    }
    if enable {
        if !conn.ws.borrow_mut().set_rx_paused(false) {
            return;
        }
        update_pollin(ctx, conn);
        // Edge-triggered: data that arrived while paused raises no new event.
        ctx.enqueue(conn, flag::IN_READ_Q);
        update_pollout(ctx, conn);
    } else {
        if !conn.ws.borrow_mut().set_rx_paused(true) {
            return;
        }
        update_pollin(ctx, conn);
    }
}

/// Fires due timeouts: the connection is closed, as the original did.
pub fn check_timeouts(ctx: &Context) {
    let now = ctx.now_ms();
    // Taken out first: a timeout armed while these are handled (even for 0 s) waits
    // for the next check, so a callback cannot keep this loop going.
    let mut due_now = Vec::new();
    {
        let mut timers = ctx.timers.borrow_mut();
        while let Some(d) = timers.pop_due(now) {
            due_now.push(d);
        }
        timers.shrink_if_sparse();
    }
    for d in due_now {
        let Some(conn) = ctx.conn(d.slot) else {
            continue;
        };
        if conn.timeout_stamp.get() != d.stamp
            || conn.timeout_reason.get() == pending_timeout::NO_PENDING_TIMEOUT
        {
            continue;
        }
        let reason = conn.timeout_reason.get();
        crate::log::lws_info!("timeout (reason {}) on fd {}", reason, conn.fd());
        conn.timeout_reason.set(pending_timeout::NO_PENDING_TIMEOUT);
        if conn.has(flag::APP_EXT) && crate::io::ext_chain::close_vetoed(ctx, conn) {
            // Deferred: unless the extension armed a timeout of its own, ask again in
            // a second (v1.23 re-checked expired timeouts once a second).
            if conn.timeout_reason.get() == pending_timeout::NO_PENDING_TIMEOUT {
                ctx.set_timeout(conn, reason, 1);
            }
            continue;
        }
        if conn.state.get() == ConnState::HttpHeaders {
            // Tell a slow client why, then go.
            let msg = crate::engine::http::response::error_response(408, "");
            let _ = net::send(conn.fd(), &msg);
        }
        close_conn(ctx, conn, CloseHow::Abort);
    }
}

/// The extension side of a close, once: DESTROY for the active extensions and
/// DESTROY_ANY_WSI_CLOSING for all, while the connection still has its state.
fn ext_closing(ctx: &Context, conn: &Conn) {
    if conn.has(flag::EXT_CLOSED) {
        return;
    }
    conn.set(flag::EXT_CLOSED);
    crate::io::ext_chain::on_close(ctx, conn);
}

/// What the application hears when a connection that was in state `was` goes.
fn closed_reason(conn: &Conn, was: ConnState) -> Option<Reason> {
    match was {
        ConnState::ClientResolving
        | ConnState::ClientConnecting
        | ConnState::ClientProxy
        | ConnState::ClientHandshake => Some(Reason::ClientConnectionError),
        ConnState::Ws => Some(Reason::Closed),
        ConnState::Http | ConnState::HttpHeaders if conn.has(flag::HTTP_CALLED) => {
            Some(Reason::ClosedHttp)
        }
        _ => None,
    }
}

/// Delivers `reason` (CLOSED / CLOSED_HTTP / CLIENT_CONNECTION_ERROR) once.
fn notify_closed(ctx: &Context, conn: &Conn, reason: Reason) {
    if conn.has(flag::CLOSED_NOTIFIED) {
        return;
    }
    conn.set(flag::CLOSED_NOTIFIED);
    invoke_conn(ctx, conn, reason, CallbackIn::Nothing);
}

/// Starts or completes closing a connection.
pub fn close_conn(ctx: &Context, conn: &Conn, how: CloseHow) {
    let state = conn.state.get();
    if state == ConnState::Dead {
        return;
    }
    let graceful = matches!(how, CloseHow::Graceful(_))
        && !conn.has(flag::FAILED)
        && !conn.is_client_pending()
        && !matches!(state, ConnState::Flushing | ConnState::Draining);
    if graceful {
        if let CloseHow::Graceful(code) = how {
            if state == ConnState::Ws && !conn.close_sent() {
                tx::queue_close(ctx, conn, code, b"");
            }
        }
        ext_closing(ctx, conn);
        if conn.state.get() == ConnState::Dead {
            return;
        }
        // As in v1.23, the application hears DEL_POLL_FD and then CLOSED / CLOSED_HTTP
        // now; the close handshake goes on out of its sight (io::linger).
        linger::hide(ctx, conn);
        if let Some(r) = closed_reason(conn, state) {
            notify_closed(ctx, conn, r);
        }
        if conn.state.get() == ConnState::Dead {
            return;
        }
        conn.clear(flag::WANT_WRITEABLE);
        *conn.http.borrow_mut() = None;
        conn.state.set(ConnState::Flushing);
        ctx.set_timeout(
            conn,
            pending_timeout::CLOSE_ACK,
            ctx.limits.close_secs as i32,
        );
        if closes_at_once(conn) {
            flush_before_close(ctx, conn);
        } else {
            flush(ctx, conn);
        }
        after_flush(ctx, conn);
        linger::keep(ctx, conn);
        return;
    }
    if matches!(how, CloseHow::Graceful(_)) && state == ConnState::Flushing {
        return; // already on its way out
    }
    if matches!(how, CloseHow::Graceful(_))
        && state == ConnState::Draining
        && !conn.has(flag::FAILED)
    {
        return;
    }
    finalize(ctx, conn, state);
}

/// Closes the socket. The order of the callbacks is v1.23's: a client that never got
/// established hears CLIENT_CONNECTION_ERROR, then DEL_POLL_FD; any other connection
/// DEL_POLL_FD, then CLOSED / CLOSED_HTTP (with the socket still open, the connection
/// already dead to writes). A detached connection heard both when it was detached.
fn finalize(ctx: &Context, conn: &Conn, was: ConnState) {
    if conn.state.get() == ConnState::Dead {
        return;
    }
    ext_closing(ctx, conn);
    if conn.state.get() == ConnState::Dead {
        return;
    }
    let reason = closed_reason(conn, was);
    let connect_failed = reason == Some(Reason::ClientConnectionError);
    if connect_failed {
        notify_closed(ctx, conn, Reason::ClientConnectionError);
        if conn.state.get() == ConnState::Dead {
            return;
        }
    }
    conn.state.set(ConnState::Dead);
    conn.timeout_reason.set(pending_timeout::NO_PENDING_TIMEOUT);
    if !conn.has(flag::NO_POLL) {
        poll_fd_event(ctx, Some(conn), Reason::DelPollFd, conn.fd(), 0);
    }
    if let Some(r) = reason.filter(|_| !connect_failed) {
        notify_closed(ctx, conn, r);
    }
    ctx.remove_conn(conn);
    // Free buffers now; the Rc itself goes when the last in-flight reference drops.
    *conn.http.borrow_mut() = None;
    conn.ws.borrow_mut().reset();
    drop(conn.user.take());
}

/// Closes everything (context destroy): a close frame (1001) to each live WebSocket
/// peer, sent as far as the socket takes it now (v1.23 sent none), then DEL_POLL_FD
/// and CLOSED / CLOSED_HTTP / CLIENT_CONNECTION_ERROR for each connection.
pub fn close_all(ctx: &Context) {
    for conn in ctx.all_conns() {
        let state = conn.state.get();
        if state == ConnState::Ws && !conn.close_sent() {
            tx::queue_close(ctx, conn, Some(CLOSE_GOING_AWAY), b"");
            flush(ctx, conn);
        }
        finalize(ctx, conn, state);
    }
}

// ---- The message path: received bytes -> engine -> application; writes -> socket ----

/// The largest piece RECEIVE gets on this connection (its protocol's rx_buffer_size).
pub fn rx_chunk(ctx: &Context, conn: &Conn) -> usize {
    ctx.protocols
        .get(conn.protocol.get())
        .map_or(4096, |p| p.rx_chunk)
}

/// The receive settings of `conn` for the engine.
fn rx_config(ctx: &Context, conn: &Conn) -> RxConfig {
    RxConfig {
        chunk: rx_chunk(ctx, conn),
        raw_data: conn.has_exts(),
        backlog: output_backlog(ctx),
        mask_key: crate::io::mask_keys::mask_key,
    }
}

/// More output queued than this and pongs are owed instead of queued.
pub fn output_backlog(ctx: &Context) -> usize {
    4 * ctx.limits.choke_bytes
}

/// WebSocket bytes `buf[start..end]` (the rest of `buf`, if any, is free room) through
/// the engine, and the application run for each event with no engine borrow held.
pub fn ws_input(ctx: &Context, conn: &Conn, buf: &mut [u8], start: usize, end: usize) {
    let cfg = rx_config(ctx, conn);
    let mut cur = Cursor::at(start);
    let len = end;
    loop {
        if conn.state.get() != ConnState::Ws {
            return;
        }
        let ev = {
            let Ok(mut ws) = conn.ws.try_borrow_mut() else {
                return;
            };
            ws.next_event(&mut buf[..len], &mut cur, &cfg)
        };
        match ev {
            RxEvent::NeedMore => return,
            RxEvent::Deliver {
                at,
                len: n,
                info,
                whole,
            } => {
                if whole && at >= PRE && at + n + POST < buf.len() && !conn.has(flag::APP_EXT) {
                    receive_in_place(ctx, conn, buf, at, n);
                } else {
                    ws_rx::receive(ctx, conn, &buf[at..at + n], info);
                }
            }
            RxEvent::DeliverOwned { data, info } => ws_rx::receive(ctx, conn, &data, info),
            RxEvent::ExtData {
                at,
                len: n,
                info,
                frame_remaining,
                frame_opcode,
                message_start,
            } => ws_rx::ext_data(
                ctx,
                conn,
                &buf[at..at + n],
                info,
                frame_remaining,
                frame_opcode,
                message_start,
            ),
            RxEvent::Extended {
                at,
                len: n,
                opcode,
                frame_remaining,
            } => crate::io::ext_chain::extended_payload_rx(
                ctx,
                conn,
                opcode,
                &buf[at..at + n],
                frame_remaining,
            ),
            RxEvent::Pong { payload, len: n } => {
                ws_rx::client_pong(ctx, conn, &payload[..usize::from(n)])
            }
            RxEvent::PeerClose(code) => {
                if !conn.close_sent() {
                    // Echo the peer's status (RFC 6455 5.5.1).
                    tx::queue_close(ctx, conn, code, b"");
                }
                close_conn(ctx, conn, CloseHow::Graceful(None));
            }
            RxEvent::ProtocolError(code) => {
                crate::log::lws_info!(
                    "closing fd {} with {} (protocol violation)",
                    conn.fd(),
                    code
                );
                close_conn(ctx, conn, CloseHow::Graceful(Some(code)));
                return;
            }
            RxEvent::Queued(n) => tx::queued(ctx, conn, n),
        }
    }
}

/// RECEIVE for a whole frame that lies in `input` with at least PRE bytes before it
/// (already parsed) and POST + 1 after it (the next frame, not parsed yet, or free
/// room): delivered where it is, without a copy. The bytes after it are saved, and
/// restored once the callback returns, so the NUL and anything the application writes
/// into the POST padding cannot reach the parser.
fn receive_in_place(ctx: &Context, conn: &Conn, input: &mut [u8], off: usize, len: usize) {
    let end = off + len;
    let mut saved = [0u8; POST + 1];
    saved.copy_from_slice(&input[end..end + POST + 1]);
    input[end] = 0;
    let reason = match conn.side() {
        Side::Server => Reason::Receive,
        Side::Client => Reason::ClientReceive,
    };
    let n = ctx.app.callback(
        ctx,
        Some(conn),
        conn.protocol.get(),
        reason,
        conn.user_ptr(),
        CallbackIn::Bytes {
            buf: input,
            at: off,
            len,
        },
    );
    input[end..end + POST + 1].copy_from_slice(&saved);
    if n < 0 {
        close_unless_vetoed(ctx, conn, CloseHow::Graceful(None));
    }
}

/// `libwebsocket_write` for the common case only, running no application code and
/// flushing nothing (so the connection cannot be closed or released meanwhile): None
/// when the general path (`io::tx::write`) is needed.
pub fn write_small_queued(
    ctx: &Context,
    conn: &Conn,
    payload: &[u8],
    protocol: u32,
) -> Option<i32> {
    write_small(ctx, conn, payload, protocol, false)
}

/// The common write in one step: a whole TEXT / BINARY message of at most 125 bytes
/// from a server connection without extensions, inside a service pass (so batched),
/// nothing choked. Appends header and payload to the queue as `write` would; None
/// sends everything else down the general path (and, without `may_flush`, also a write
/// that would reach the choke threshold).
#[inline(always)]
pub fn write_small(
    ctx: &Context,
    conn: &Conn,
    payload: &[u8],
    protocol: u32,
    may_flush: bool,
) -> Option<i32> {
    const SLOW: u32 = flag::FAILED | flag::APP_EXT | flag::CHOKED;
    let opcode = match protocol {
        WRITE_BINARY => OP_BINARY,
        WRITE_TEXT => OP_TEXT,
        _ => return None,
    };
    if payload.len() > 125
        || conn.flags.get() & SLOW != 0
        || conn.side() != Side::Server
        || conn.state.get() != ConnState::Ws
        || ctx.in_service.get() == 0
    {
        return None;
    }
    let queued = {
        let mut ws = conn.ws.try_borrow_mut().ok()?;
        if ws.close_sent()
            || conn
                .cold_opt()
                .is_some_and(|c| c.exts.try_borrow().map_or(true, |e| e.is_some()))
        {
            return None;
        }
        let before = ws.out().len();
        if before + payload.len() > ctx.limits.max_queued {
            return None; // the general path logs and refuses
        }
        if !may_flush && before + 2 + payload.len() >= ctx.limits.choke_bytes {
            return None;
        }
        if !ws.out().has_storage() {
            ws.out_mut().install(ctx.take_out_buf());
        }
        ws.queue_small(opcode, payload)
    };
    if queued >= ctx.limits.choke_bytes {
        flush(ctx, conn);
        update_pollout(ctx, conn);
    } else {
        ctx.enqueue(conn, flag::IN_DIRTY_Q);
    }
    Some(payload.len() as i32)
}

/// True while bytes are queued for the socket (in our buffer or inside rustls).
pub fn has_pending_output(conn: &Conn) -> bool {
    !conn.ws.borrow().out().is_empty()
        || (crate::io::tls_io::is_tls(conn) && crate::io::tls_io::wants_write(conn))
}

/// Sends queued bytes until the queue is empty or the socket is full.
pub fn flush(ctx: &Context, conn: &Conn) {
    flush_with(ctx, conn, false);
}

/// Like `flush`, for output the caller closes the socket right after: the bytes are
/// sent with MSG_MORE so that they leave in the same segment as the FIN of close().
/// Whoever flushes a remainder later with plain `flush` pushes them out as usual.
pub fn flush_before_close(ctx: &Context, conn: &Conn) {
    flush_with(ctx, conn, true);
}

fn flush_with(ctx: &Context, conn: &Conn, closing: bool) {
    if !conn.is_open() {
        return;
    }
    if conn.has(flag::APP_EXT) {
        tx::flush_app_ext(ctx, conn);
    } else if crate::io::tls_io::is_tls(conn) {
        crate::io::tls_io::flush_tls(ctx, conn);
    } else {
        let mut ws = conn.ws.borrow_mut();
        let out = ws.out_mut();
        while !out.is_empty() {
            let sent = if closing {
                net::send_more(conn.fd(), out.pending())
            } else {
                net::send(conn.fd(), out.pending())
            };
            match sent {
                Ok(n) => {
                    if let Some(v) = out.consume(n) {
                        ctx.give_out_buf(v);
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.set(flag::CHOKED);
                    break;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.set(flag::FAILED);
                    return;
                }
            }
        }
    }
    send_owed_pong(ctx, conn);
}

/// Queues the pong owed for the latest ping received while output was backed up,
/// once the queue has come down again.
fn send_owed_pong(ctx: &Context, conn: &Conn) {
    if conn.has(flag::FAILED) {
        return;
    }
    let Some(payload) = conn.ws.borrow_mut().take_owed_pong(output_backlog(ctx)) else {
        return;
    };
    if conn.state.get() == ConnState::Ws && !conn.close_sent() {
        tx::queue_frame(ctx, conn, OP_PONG, true, &payload);
    }
}

/// `choked` when it needs no flush (so runs no application code): None otherwise.
pub fn choked_quick(ctx: &Context, conn: &Conn) -> Option<bool> {
    if !conn.is_open() || conn.has(flag::CHOKED) {
        return Some(true);
    }
    let queued = conn.ws.try_borrow().ok()?.out().len();
    (queued < ctx.limits.choke_bytes).then_some(false)
}

/// `lws_send_pipe_choked`: true when more writes now would only grow the queue.
pub fn choked(ctx: &Context, conn: &Conn) -> bool {
    if !conn.is_open() {
        return true;
    }
    if conn.has(flag::CHOKED) {
        return true;
    }
    if conn.ws.borrow().out().len() >= ctx.limits.choke_bytes {
        flush(ctx, conn);
        return !conn.ws.borrow().out().is_empty();
    }
    false
}
