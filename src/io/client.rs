//! Client connections: resolve, connect (optionally through an HTTP CONNECT proxy),
//! send the upgrade request, verify the response, then run as a WebSocket with the
//! client role. Every failure before CLIENT_ESTABLISHED ends in exactly one
//! CLIENT_CONNECTION_ERROR. The request bytes and the response checks are
//! `engine::handshake::client`; this file keeps sockets, callbacks and state.

use crate::engine::handshake::client::{self as hs, Appended, MalformedHead, APPEND_ROOM};
use crate::engine::http::headers::*;
use crate::engine::timers::pending_timeout;
use crate::engine::ws::{FrameParser, ParserConfig, Role};
use crate::io::app::{invoke, invoke_conn, poll_fd_event, CallbackIn, Reason, UserPtr};
use crate::io::conn::{flag, ClientSetup, ClientTls, Conn, ConnState, HttpState, Side, UserSpace};
use crate::io::context::Context;
use crate::io::resolver::Resolver;
use crate::io::service::{close_conn, update_pollout, CloseHow, POLLIN};
use crate::io::sys::net;
use crate::io::tx;
use mio::unix::SourceFd;
use std::net::{IpAddr, SocketAddr};

/// What `libwebsocket_client_connect_extended` was asked for.
pub struct ConnectRequest {
    pub address: String,
    pub port: u16,
    pub path: String,
    pub host: String,
    pub origin: Option<String>,
    pub protocols: Option<String>,
    pub userdata: UserPtr,
    pub ssl: ClientTls,
}

fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (h, p) = s.rsplit_once(':')?;
    let port = p.parse().ok()?;
    Some((h.trim_matches(|c| c == '[' || c == ']').to_string(), port))
}

/// Creates the connection and starts resolving/connecting. None on immediate failure
/// (no socket could be created).
pub fn connect(ctx: &Context, req: ConnectRequest) -> Option<&Conn> {
    let proxy = ctx.proxy.borrow().as_deref().and_then(split_host_port);
    let (target_host, target_port) = match &proxy {
        Some((h, p)) => (h.clone(), *p),
        None => (req.address.clone(), req.port),
    };
    let numeric: Option<IpAddr> = target_host.parse().ok();
    let v6 = match numeric {
        Some(IpAddr::V4(_)) => false,
        Some(IpAddr::V6(_)) => true,
        None => true,
    };
    let fd = match net::tcp_socket(v6).or_else(|_| net::tcp_socket(false)) {
        Ok(fd) => fd,
        Err(e) => {
            crate::log::lws_err!("client socket: {}", e);
            return None;
        }
    };
    let v6_socket = net::local_addr(fd).is_none_or(|a| a.is_ipv6());
    let (ka_time, ka_probes, ka_interval) = ctx.ka;
    net::set_conn_options(fd, ka_time, ka_probes, ka_interval);
    let state = if numeric.is_some() {
        ConnState::ClientConnecting
    } else {
        ConnState::ClientResolving
    };
    let Some(conn) = ctx.add_conn(fd, Side::Client, state) else {
        net::close(fd);
        return None;
    };
    if !req.userdata.is_null() {
        conn.cold().external_user.set(req.userdata);
    }
    let mut key_raw = [0u8; 16];
    let _ = crate::io::sys::fill_random(&mut key_raw);
    let serial = ctx.next_serial.get();
    ctx.next_serial.set(serial + 1);
    *conn.cold().client.borrow_mut() = Some(Box::new(ClientSetup {
        serial,
        address: req.address,
        port: req.port,
        path: if req.path.is_empty() {
            "/".into()
        } else {
            req.path
        },
        host: req.host,
        origin: req.origin,
        protocols: req.protocols,
        key: hs::key_from_random(&key_raw),
        ssl: req.ssl,
        ext_offer: None,
        proxy,
    }));
    *conn.http.borrow_mut() = Some(Box::default());
    let address = conn
        .cold()
        .client
        .borrow()
        .as_ref()
        .map_or_else(String::new, |c| c.address.clone());
    if let Some(name) = crate::io::ext_chain::client_proxy_claim(ctx, conn, &address, req.port) {
        // The extension carries this connection (v1.23: no socket of its own). Nothing
        // is connected; without the extension completing it, it fails after the wait.
        crate::log::lws_info!(
            "client connection to {}:{} taken over by extension '{}'",
            address,
            req.port,
            name
        );
        let _ = ctx.poll.borrow().registry().deregister(&mut SourceFd(&fd));
        conn.set(flag::NO_POLL);
        conn.state.set(ConnState::ClientResolving);
        // v1.23's AWAITING_TIMEOUT.
        ctx.set_timeout(
            conn,
            pending_timeout::AWAITING_EXTENSION_CONNECT_RESPONSE,
            ctx.limits.handshake_secs as i32,
        );
        return Some(conn);
    }
    poll_fd_event(ctx, Some(conn), Reason::AddPollFd, fd, POLLIN);
    ctx.set_timeout(
        conn,
        pending_timeout::AWAITING_CONNECT_RESPONSE,
        ctx.limits.handshake_secs.max(5) as i32,
    );
    match numeric {
        Some(ip) => start_connect(ctx, conn, SocketAddr::new(ip, target_port), v6_socket),
        None => {
            if !ensure_resolver(ctx) {
                fail_later(ctx, conn);
            } else if let Some(r) = ctx.resolver.borrow().as_ref() {
                r.start(serial, target_host, target_port);
            }
        }
    }
    Some(conn)
}

fn ensure_resolver(ctx: &Context) -> bool {
    let mut r = ctx.resolver.borrow_mut();
    if r.is_none() {
        // Results wake the loop through the context's eventfd (io::threads), which is
        // registered with epoll and announced to external poll loops at creation.
        *r = Some(Resolver::new(ctx.threads.waker()));
    }
    true
}

/// Fails the connection on the next pass (never inside the caller's connect call).
fn fail_later(ctx: &Context, conn: &Conn) {
    conn.set(flag::FAILED);
    ctx.enqueue(conn, flag::IN_CLOSE_Q);
}

fn start_connect(ctx: &Context, conn: &Conn, addr: SocketAddr, v6_socket: bool) {
    let addr = match (addr, v6_socket) {
        (SocketAddr::V4(a), true) => SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port()),
        (a, _) => a,
    };
    conn.state.set(ConnState::ClientConnecting);
    match net::connect(conn.fd(), addr) {
        Ok(true) => on_connect_ready(ctx, conn),
        Ok(false) => update_pollout(ctx, conn),
        Err(e) => {
            crate::log::lws_info!("client connect to {}: {}", addr, e);
            fail_later(ctx, conn);
        }
    }
}

/// Name lookups finished: connect the connections that were waiting for them.
pub fn resolutions_ready(ctx: &Context) {
    let done = match ctx.resolver.borrow().as_ref() {
        Some(r) => r.drain(),
        None => return,
    };
    for r in done {
        let Some(conn) = ctx.all_conns().into_iter().find(|c| {
            c.cold_opt()
                .and_then(|cold| cold.client.borrow().as_ref().map(|s| s.serial))
                == Some(r.serial)
        }) else {
            continue;
        };
        if conn.state.get() != ConnState::ClientResolving {
            continue;
        }
        let v6_socket = net::local_addr(conn.fd()).is_none_or(|a| a.is_ipv6());
        let addr = r
            .result
            .ok()
            .and_then(|addrs| addrs.iter().find(|a| v6_socket || a.is_ipv4()).copied());
        match addr {
            Some(a) => start_connect(ctx, conn, a, v6_socket),
            None => {
                crate::log::lws_info!("client: cannot resolve the server name");
                close_conn(ctx, conn, CloseHow::Abort);
            }
        }
    }
}

/// The non-blocking connect finished (or failed).
pub fn on_connect_ready(ctx: &Context, conn: &Conn) {
    if conn.state.get() != ConnState::ClientConnecting {
        return;
    }
    let err = net::socket_error(conn.fd());
    if err != 0 || net::peer_addr(conn.fd()).is_none() {
        if err == 0 {
            return; // not connected yet
        }
        crate::log::lws_info!("client connect: {}", std::io::Error::from_raw_os_error(err));
        close_conn(ctx, conn, CloseHow::Abort);
        return;
    }
    let proxy_request = conn.cold().client.borrow().as_ref().and_then(|c| {
        c.proxy
            .as_ref()
            .map(|_| hs::proxy_connect_request(&c.address, c.port))
    });
    match proxy_request {
        Some(req) => {
            conn.state.set(ConnState::ClientProxy);
            tx::write(ctx, conn, &req, tx::WRITE_HTTP);
            ctx.set_timeout(
                conn,
                pending_timeout::AWAITING_PROXY_RESPONSE,
                ctx.limits.handshake_secs.max(5) as i32,
            );
        }
        None => {
            if start_client_tls(ctx, conn) {
                send_handshake(ctx, conn);
            }
        }
    }
    update_pollout(ctx, conn);
}

/// Wraps the connection in TLS when the application asked for it. False: failed
/// (the connection is being closed with CLIENT_CONNECTION_ERROR).
fn start_client_tls(ctx: &Context, conn: &Conn) -> bool {
    let Some((ssl, name)) = conn.cold().client.borrow().as_ref().map(|c| {
        (
            c.ssl,
            if c.host.is_empty() {
                c.address.clone()
            } else {
                c.host.clone()
            },
        )
    }) else {
        return false;
    };
    let slot = match ssl {
        ClientTls::Plain => return true,
        ClientTls::Verify => 0,
        ClientTls::AllowSelfSigned => 1,
    };
    let cfg = ctx.tls_client.borrow()[slot].clone();
    let cfg = match cfg {
        Some(c) => c,
        None => {
            // aws-lc's first user in this process may be this configuration.
            crate::io::threads::tls_warm_up_once();
            let built = crate::engine::tls::client_config(
                ssl == ClientTls::Verify,
                ctx.ssl_ca.as_deref(),
                ctx.ssl_cipher_list.as_deref(),
            );
            match built {
                Ok(c) => {
                    ctx.tls_client.borrow_mut()[slot] = Some(c.clone());
                    c
                }
                Err(e) => {
                    crate::log::lws_err!("client TLS setup: {}", e);
                    fail_later(ctx, conn);
                    return false;
                }
            }
        }
    };
    let session = crate::engine::tls::server_name(&name)
        .and_then(|sn| rustls::ClientConnection::new(cfg, sn).map_err(|e| e.to_string()));
    match session {
        Ok(s) => {
            *conn.cold().tls.borrow_mut() = Some(Box::new(s.into()));
            true
        }
        Err(e) => {
            crate::log::lws_err!("client TLS session: {}", e);
            fail_later(ctx, conn);
            false
        }
    }
}

/// Builds and sends the upgrade request.
fn send_handshake(ctx: &Context, conn: &Conn) {
    if conn.cold().client.borrow().is_none() {
        return;
    }
    // The extension offer runs callbacks (CLIENT_CONFIRM_EXTENSION_SUPPORTED): made
    // before the client setup is borrowed.
    let offer = crate::io::extensions::client_offer(ctx, conn);
    let mut bytes = {
        let mut client = conn.cold().client.borrow_mut();
        let Some(c) = client.as_mut() else { return };
        let bytes = hs::build_request(&hs::Request {
            path: &c.path,
            host: &c.host,
            origin: c.origin.as_deref(),
            protocols: c.protocols.as_deref(),
            key: &c.key,
            extensions: offer.as_deref(),
        });
        if offer.is_some() {
            c.ext_offer = offer;
        }
        bytes
    };
    append_user_headers(ctx, conn, &mut bytes);
    hs::finish_request(&mut bytes);
    tx::write(ctx, conn, &bytes, tx::WRITE_HTTP);
    conn.state.set(ConnState::ClientHandshake);
    ctx.set_timeout(
        conn,
        pending_timeout::AWAITING_SERVER_RESPONSE,
        ctx.limits.handshake_secs.max(5) as i32,
    );
    if let Some(h) = conn.http.borrow_mut().as_mut() {
        h.inbuf.clear();
    }
}

/// CLIENT_APPEND_HANDSHAKE_HEADER: the application writes header lines through a
/// `char **` into a bounded buffer. What it wrote is kept only when it stays
/// inside the buffer and consists of complete `Name: value` lines.
fn append_user_headers(ctx: &Context, conn: &Conn, out: &mut Vec<u8>) {
    let mut buf = vec![0u8; APPEND_ROOM + 1];
    let mut written = 0usize;
    invoke(
        ctx,
        0,
        Some(conn),
        Reason::ClientAppendHandshakeHeader,
        UserPtr::NULL,
        CallbackIn::Cursor {
            buf: &mut buf,
            room: APPEND_ROOM,
            written: &mut written,
        },
    );
    match hs::check_appended(&buf, written) {
        Appended::Nothing => {}
        Appended::Lines => out.extend_from_slice(&buf[..written]),
        Appended::Overflow => crate::log::lws_err!(
            "APPEND_HANDSHAKE_HEADER wrote past its {} bytes; ignored",
            APPEND_ROOM
        ),
        Appended::Malformed => {
            crate::log::lws_err!("APPEND_HANDSHAKE_HEADER added malformed header lines; ignored")
        }
    }
}

/// Response bytes from the proxy or the server.
pub fn on_head_bytes(ctx: &Context, conn: &Conn, data: &mut [u8]) {
    let parsed = {
        let mut http = conn.http.borrow_mut();
        let Some(h) = http.as_mut() else { return };
        h.inbuf.extend_from_slice(data);
        hs::parse_response(&h.inbuf)
    };
    match parsed {
        Err(MalformedHead) => {
            crate::log::lws_info!("client: malformed response head");
            close_conn(ctx, conn, CloseHow::Abort);
        }
        Ok(None) => {
            let too_long = conn
                .http
                .borrow()
                .as_ref()
                .is_some_and(|h| h.inbuf.len() > hs::MAX_RESPONSE_HEAD);
            if too_long {
                close_conn(ctx, conn, CloseHow::Abort);
            }
        }
        Ok(Some((status, table, head_len))) => {
            let rest = {
                let mut http = conn.http.borrow_mut();
                let h = http.as_mut().expect("http state");
                let rest = h.inbuf.split_off(head_len);
                h.inbuf = Vec::new();
                rest
            };
            if conn.state.get() == ConnState::ClientProxy {
                if status != 200 {
                    crate::log::lws_info!("client: proxy answered {}", status);
                    close_conn(ctx, conn, CloseHow::Abort);
                    return;
                }
                if start_client_tls(ctx, conn) {
                    send_handshake(ctx, conn);
                }
                return;
            }
            finish_handshake(ctx, conn, status, table, rest);
        }
    }
}

fn finish_handshake(
    ctx: &Context,
    conn: &Conn,
    status: u16,
    mut table: HeaderTable,
    mut rest: Vec<u8>,
) {
    let fail = |why: &str| {
        crate::log::lws_info!("client handshake failed: {}", why);
        close_conn(ctx, conn, CloseHow::Abort);
    };
    let ext_offer = {
        let client = conn.cold().client.borrow();
        let Some(c) = client.as_ref() else { return };
        let checked = hs::verify_response(status, &table, c.key.as_bytes())
            .and_then(|()| hs::chosen_extensions(&table, c.ext_offer.as_deref()));
        match checked {
            Err(why) => {
                drop(client);
                return fail(why);
            }
            Ok(None) => None,
            Ok(Some(_)) => c.ext_offer.clone(),
        }
    };
    if let (Some(chosen), Some(offered)) = (table.get(TOKEN_EXTENSIONS), ext_offer) {
        if let Err(e) = crate::io::extensions::accept_client_response(ctx, conn, chosen, &offered) {
            return fail(&e);
        }
    }
    // Protocol: absent -> protocols[0]; else it must be one we offered and know.
    let chosen = conn.cold().client.borrow().as_ref().map(|c| {
        let names = ctx.protocols.iter().map(|p| p.name.as_deref());
        hs::chosen_protocol(&table, c.protocols.as_deref(), names)
    });
    let index = match chosen {
        None => return,
        Some(Ok(i)) => i,
        Some(Err(why)) => return fail(why),
    };
    if let Some(c) = conn.cold().client.borrow().as_ref() {
        if let Some(p) = &c.protocols {
            table.add(TOKEN_CLIENT_SENT_PROTOCOLS, p.as_bytes());
        }
        table.add(TOKEN_CLIENT_URI, c.path.as_bytes());
        table.add(TOKEN_CLIENT_HOST, c.host.as_bytes());
        if let Some(o) = &c.origin {
            table.add(TOKEN_CLIENT_ORIGIN, o.as_bytes());
        }
        table.add(TOKEN_CLIENT_PEER_ADDRESS, c.address.as_bytes());
    }
    conn.protocol.set(index);
    if conn.cold().external_user.get().is_null() {
        conn.user
            .set(UserSpace::zeroed(ctx.protocols[index].pss_size));
    }
    *conn.http.borrow_mut() = Some(Box::new(HttpState {
        headers: Some(table),
        ..Default::default()
    }));
    if invoke_conn(
        ctx,
        conn,
        Reason::ClientFilterPreEstablish,
        CallbackIn::Nothing,
    ) != 0
    {
        return fail("refused by CLIENT_FILTER_PRE_ESTABLISH");
    }
    if !conn.is_open() {
        return;
    }
    let mut cfg = ParserConfig::new(Role::Client);
    cfg.max_message_size = ctx.limits.max_message;
    if let Some(ex) = conn.cold().exts.borrow().as_ref() {
        cfg.allowed_rsv = ex.allowed_rsv();
        cfg.validate_utf8 = !ex.compresses();
    }
    cfg.extended_opcodes = conn.has(flag::APP_EXT);
    conn.ws.borrow_mut().upgrade(FrameParser::new(cfg));
    *conn.http.borrow_mut() = None;
    *conn.cold().client.borrow_mut() = None;
    conn.state.set(ConnState::Ws);
    ctx.set_timeout(conn, pending_timeout::NO_PENDING_TIMEOUT, 0);
    let n = invoke_conn(ctx, conn, Reason::ClientEstablished, CallbackIn::Nothing);
    if n != 0 {
        // v1.23 ignored CLIENT_ESTABLISHED's return value; applications rely on that.
        crate::log::lws_info!(
            "CLIENT_ESTABLISHED returned {} on fd {}: ignored",
            n,
            conn.fd()
        );
    }
    crate::io::ext_chain::notify_established(ctx, conn);
    // v1.23 left the connect's POLLOUT armed, so one CLIENT_WRITEABLE followed
    // CLIENT_ESTABLISHED without the application asking; clients that send their
    // first message from CLIENT_WRITEABLE rely on it.
    if conn.is_ws_live() {
        crate::io::service::request_writeable(ctx, conn);
    }
    if !rest.is_empty() && conn.state.get() == ConnState::Ws {
        crate::io::service::process_received(ctx, conn, &mut rest);
    }
}
