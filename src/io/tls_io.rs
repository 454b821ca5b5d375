//! TLS on a connection: ciphertext from the socket into rustls and plaintext out to
//! the HTTP/WebSocket layers; queued plaintext into rustls and records to the socket.
//! Nothing is lost on partial writes: rustls keeps what the socket did not take.

use crate::engine::timers::pending_timeout;
use crate::io::app::{invoke, CallbackIn, Reason, UserPtr};
use crate::io::conn::{flag, Conn, ConnState};
use crate::io::context::{server_option, Context};
use crate::io::service::{close_conn, process_received, CloseHow};
use crate::io::sys::net;
use std::io::{ErrorKind, Read, Write};

/// Adapts a socket to `io::Write` for `write_tls`.
struct FdWriter(i32);
impl Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        net::send(self.0, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn is_tls(conn: &Conn) -> bool {
    conn.cold_opt().is_some_and(|c| c.tls.borrow().is_some())
}

/// True while rustls holds records for the socket.
pub fn wants_write(conn: &Conn) -> bool {
    conn.cold_opt()
        .is_some_and(|c| c.tls.borrow().as_ref().is_some_and(|t| t.wants_write()))
}

/// Handles ciphertext just received. Returns false when the connection was closed.
pub fn on_ciphertext(ctx: &Context, conn: &Conn, mut data: &[u8]) -> bool {
    let Ok(mut plain) = ctx.tls_plain.try_borrow_mut() else {
        return true;
    };
    while !data.is_empty() {
        let step = {
            let mut t = conn.cold().tls.borrow_mut();
            let Some(tls) = t.as_mut() else { return true };
            let was_handshaking = tls.is_handshaking();
            match tls.read_tls(&mut data) {
                Err(e) => Err(e.to_string()),
                Ok(_) => match tls.process_new_packets() {
                    Err(e) => Err(e.to_string()),
                    Ok(_) => Ok(was_handshaking && !tls.is_handshaking()),
                },
            }
        };
        match step {
            Err(e) => {
                crate::log::lws_info!("TLS error on fd {}: {}", conn.fd(), e);
                flush_tls(ctx, conn); // deliver the alert if we can
                drop(plain);
                close_conn(ctx, conn, CloseHow::Abort);
                return false;
            }
            Ok(true) => {
                if !handshake_done(ctx, conn) {
                    drop(plain);
                    close_conn(ctx, conn, CloseHow::Abort);
                    return false;
                }
            }
            Ok(false) => {}
        }
        loop {
            let n = {
                let mut t = conn.cold().tls.borrow_mut();
                let Some(tls) = t.as_mut() else { return false };
                match tls.reader().read(&mut plain[..]) {
                    Ok(0) => {
                        conn.set(flag::READ_EOF); // close_notify
                        0
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                    Err(_) => {
                        conn.set(flag::READ_EOF);
                        0
                    }
                }
            };
            if n == 0 {
                break;
            }
            // Stashed bytes must be past PACKET_RX_PREPARSE (the stash is replayed
            // without it), so with an application extension they take the normal
            // path, whose parser stashes them while receiving is paused.
            if conn.has(flag::RX_PAUSED)
                && !(conn.has(flag::APP_EXT) && conn.state.get() == ConnState::Ws)
            {
                conn.rx_stash().extend(&plain[..n], 0);
            } else {
                process_received(ctx, conn, &mut plain[..n]);
            }
            if !conn.is_open() {
                return false;
            }
        }
        if conn.has(flag::READ_EOF) {
            break;
        }
    }
    drop(plain);
    if wants_write(conn) {
        crate::io::tx::flush(ctx, conn);
    }
    true
}

/// Checks made once the TLS handshake completes. False rejects the connection.
fn handshake_done(ctx: &Context, conn: &Conn) -> bool {
    if conn.state.get() == ConnState::HttpHeaders {
        // From now on the ordinary HTTP head deadline applies.
        ctx.set_timeout(
            conn,
            pending_timeout::ESTABLISH_WITH_SERVER,
            ctx.limits.handshake_secs as i32,
        );
    }
    if ctx.options & server_option::REQUIRE_VALID_CLIENT_CERT == 0
        || conn.side() != crate::io::conn::Side::Server
    {
        return true;
    }
    // rustls has verified the client's chain; let the application veto, as it could
    // from OpenSSL's verify callback (in: leaf certificate DER, len: its length, so a
    // non-zero `len` still reads as "pre-verified").
    let der = conn.cold().tls.borrow().as_ref().and_then(|t| {
        t.peer_certificates()
            .and_then(|c| c.first().map(|d| d.to_vec()))
    });
    let Some(mut der) = der else { return false };
    let n = invoke(
        ctx,
        0,
        None,
        Reason::OpensslPerformClientCertVerification,
        UserPtr::NULL,
        CallbackIn::bytes(&mut der),
    );
    n == 0
}

/// Moves queued plaintext into rustls and its records into the socket.
pub fn flush_tls(ctx: &Context, conn: &Conn) {
    loop {
        let mut progress = false;
        {
            let mut out = conn.out.borrow_mut();
            let mut t = conn.cold().tls.borrow_mut();
            let Some(tls) = t.as_mut() else { return };
            if !out.is_empty() {
                if let Ok(n) = tls.writer().write(out.pending()) {
                    if n > 0 {
                        progress = true;
                        if let Some(v) = out.consume(n) {
                            ctx.give_out_buf(v);
                        }
                    }
                }
            }
            while tls.wants_write() {
                match tls.write_tls(&mut FdWriter(conn.fd())) {
                    Ok(0) => break,
                    Ok(_) => progress = true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        conn.set(flag::CHOKED);
                        return;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => {
                        conn.set(flag::FAILED);
                        return;
                    }
                }
            }
        }
        if !progress || conn.out.borrow().is_empty() {
            return;
        }
    }
}

/// Moves up to `len` queued plaintext bytes into rustls and its records towards the
/// socket; returns how many plaintext bytes rustls took (the caller consumes them).
/// Sets CHOKED / FAILED as `flush_tls` does.
pub fn send_prefix(_ctx: &Context, conn: &Conn, len: usize) -> usize {
    let mut taken = 0;
    loop {
        let mut t = conn.cold().tls.borrow_mut();
        let Some(tls) = t.as_mut() else { return taken };
        if taken < len {
            let out = conn.out.borrow();
            let end = len.min(out.len());
            if taken < end {
                if let Ok(n) = tls.writer().write(&out.pending()[taken..end]) {
                    taken += n;
                }
            }
        }
        let mut wrote = false;
        while tls.wants_write() {
            match tls.write_tls(&mut FdWriter(conn.fd())) {
                Ok(0) => break,
                Ok(_) => wrote = true,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    conn.set(flag::CHOKED);
                    return taken;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    conn.set(flag::FAILED);
                    return taken;
                }
            }
        }
        if taken >= len || !wrote {
            return taken;
        }
    }
}

/// Queues close_notify (graceful close of a TLS connection).
pub fn send_close_notify(conn: &Conn) {
    let Some(c) = conn.cold_opt() else { return };
    if let Some(t) = c.tls.borrow_mut().as_mut() {
        t.send_close_notify();
    }
}
