//! Client connections: resolve, connect (optionally through an HTTP CONNECT proxy),
//! send the upgrade request, verify the response, then run as a WebSocket with the
//! client role. Every failure before CLIENT_ESTABLISHED ends in exactly one
//! CLIENT_CONNECTION_ERROR.

use crate::engine::http::headers::*;
use crate::engine::timers::pending_timeout;
use crate::engine::util::b64_encode_into;
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
use std::rc::Rc;

/// Room the APPEND_HANDSHAKE_HEADER callback may fill.
const APPEND_ROOM: usize = 2048;
/// Longest response head accepted from a server or proxy.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;

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
pub fn connect(ctx: &Context, req: ConnectRequest) -> Option<Rc<Conn>> {
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
    conn.external_user.set(req.userdata);
    let mut key_raw = [0u8; 16];
    let _ = crate::io::sys::fill_random(&mut key_raw);
    let mut key = [0u8; 32];
    let kl = b64_encode_into(&key_raw, &mut key).unwrap_or(0);
    let serial = ctx.next_serial.get();
    ctx.next_serial.set(serial + 1);
    *conn.client.borrow_mut() = Some(Box::new(ClientSetup {
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
        key: String::from_utf8_lossy(&key[..kl]).into_owned(),
        ssl: req.ssl,
        ext_offer: None,
        proxy,
    }));
    *conn.http.borrow_mut() = Some(Box::default());
    let address = conn
        .client
        .borrow()
        .as_ref()
        .map_or_else(String::new, |c| c.address.clone());
    if let Some(name) = crate::io::extensions::client_proxy_claim(ctx, &conn, &address, req.port) {
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
            &conn,
            pending_timeout::AWAITING_EXTENSION_CONNECT_RESPONSE,
            ctx.limits.handshake_secs as i32,
        );
        return Some(conn);
    }
    poll_fd_event(ctx, Some(&conn), Reason::AddPollFd, fd, POLLIN);
    ctx.set_timeout(
        &conn,
        pending_timeout::AWAITING_CONNECT_RESPONSE,
        ctx.limits.handshake_secs.max(5) as i32,
    );
    match numeric {
        Some(ip) => start_connect(ctx, &conn, SocketAddr::new(ip, target_port), v6_socket),
        None => {
            if !ensure_resolver(ctx) {
                fail_later(ctx, &conn);
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

fn start_connect(ctx: &Context, conn: &Rc<Conn>, addr: SocketAddr, v6_socket: bool) {
    let addr = match (addr, v6_socket) {
        (SocketAddr::V4(a), true) => SocketAddr::new(IpAddr::V6(a.ip().to_ipv6_mapped()), a.port()),
        (a, _) => a,
    };
    conn.state.set(ConnState::ClientConnecting);
    match net::connect(conn.fd, addr) {
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
        let Some(conn) = ctx
            .all_conns()
            .into_iter()
            .find(|c| c.client.borrow().as_ref().map(|s| s.serial) == Some(r.serial))
        else {
            continue;
        };
        if conn.state.get() != ConnState::ClientResolving {
            continue;
        }
        let v6_socket = net::local_addr(conn.fd).is_none_or(|a| a.is_ipv6());
        let addr = r
            .result
            .ok()
            .and_then(|addrs| addrs.iter().find(|a| v6_socket || a.is_ipv4()).copied());
        match addr {
            Some(a) => start_connect(ctx, &conn, a, v6_socket),
            None => {
                crate::log::lws_info!("client: cannot resolve the server name");
                close_conn(ctx, &conn, CloseHow::Abort);
            }
        }
    }
}

/// The non-blocking connect finished (or failed).
pub fn on_connect_ready(ctx: &Context, conn: &Rc<Conn>) {
    if conn.state.get() != ConnState::ClientConnecting {
        return;
    }
    let err = net::socket_error(conn.fd);
    if err != 0 || net::peer_addr(conn.fd).is_none() {
        if err == 0 {
            return; // not connected yet
        }
        crate::log::lws_info!("client connect: {}", std::io::Error::from_raw_os_error(err));
        close_conn(ctx, conn, CloseHow::Abort);
        return;
    }
    let proxy_target = conn.client.borrow().as_ref().and_then(|c| {
        c.proxy
            .as_ref()
            .map(|_| format!("{}:{}", host_for_authority(&c.address), c.port))
    });
    match proxy_target {
        Some(target) => {
            conn.state.set(ConnState::ClientProxy);
            let req = format!(
                "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: libwebsockets\r\n\r\n"
            );
            tx::write(ctx, conn, req.as_bytes(), tx::WRITE_HTTP);
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
fn start_client_tls(ctx: &Context, conn: &Rc<Conn>) -> bool {
    let Some((ssl, name)) = conn.client.borrow().as_ref().map(|c| {
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
        None => match crate::engine::tls::client_config(
            ssl == ClientTls::Verify,
            ctx.ssl_ca.as_deref(),
            ctx.ssl_cipher_list.as_deref(),
        ) {
            Ok(c) => {
                ctx.tls_client.borrow_mut()[slot] = Some(c.clone());
                c
            }
            Err(e) => {
                crate::log::lws_err!("client TLS setup: {}", e);
                fail_later(ctx, conn);
                return false;
            }
        },
    };
    let session = crate::engine::tls::server_name(&name)
        .and_then(|sn| rustls::ClientConnection::new(cfg, sn).map_err(|e| e.to_string()));
    match session {
        Ok(s) => {
            *conn.tls.borrow_mut() = Some(Box::new(s.into()));
            true
        }
        Err(e) => {
            crate::log::lws_err!("client TLS session: {}", e);
            fail_later(ctx, conn);
            false
        }
    }
}

fn host_for_authority(h: &str) -> String {
    if h.contains(':') && !h.starts_with('[') {
        format!("[{h}]")
    } else {
        h.to_string()
    }
}

fn clean(s: &str) -> String {
    s.chars().filter(|&c| c != '\r' && c != '\n').collect()
}

/// Builds and sends the upgrade request.
fn send_handshake(ctx: &Context, conn: &Rc<Conn>) {
    let Some((path, host, origin, protocols, key)) = conn.client.borrow().as_ref().map(|c| {
        (
            clean(&c.path),
            clean(&c.host),
            c.origin.as_deref().map(clean),
            c.protocols.as_deref().map(clean),
            c.key.clone(),
        )
    }) else {
        return;
    };
    let mut req = String::with_capacity(512);
    req.push_str(&format!("GET {path} HTTP/1.1\r\n"));
    req.push_str("Pragma: no-cache\r\nCache-Control: no-cache\r\n");
    req.push_str(&format!("Host: {host}\r\n"));
    req.push_str("Upgrade: websocket\r\nConnection: Upgrade\r\n");
    req.push_str(&format!("Sec-WebSocket-Key: {key}\r\n"));
    if let Some(o) = origin.filter(|o| !o.is_empty()) {
        if o.contains("://") {
            req.push_str(&format!("Origin: {o}\r\n"));
        } else {
            req.push_str(&format!("Origin: http://{o}\r\n"));
        }
    }
    if let Some(p) = protocols.filter(|p| !p.is_empty()) {
        req.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    if let Some(offer) = crate::io::extensions::client_offer(ctx, conn) {
        req.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        if let Some(c) = conn.client.borrow_mut().as_mut() {
            c.ext_offer = Some(offer);
        }
    }
    req.push_str("Sec-WebSocket-Version: 13\r\n");
    let mut bytes = req.into_bytes();
    append_user_headers(ctx, conn, &mut bytes);
    bytes.extend_from_slice(b"\r\n");
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
fn append_user_headers(ctx: &Context, conn: &Rc<Conn>, out: &mut Vec<u8>) {
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
    if written == 0 {
        return;
    }
    if written > APPEND_ROOM {
        crate::log::lws_err!(
            "APPEND_HANDSHAKE_HEADER wrote past its {} bytes; ignored",
            APPEND_ROOM
        );
        return;
    }
    let added = &buf[..written];
    let valid = added.ends_with(b"\r\n")
        && added[..added.len() - 2].split(|&b| b == b'\n').all(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            !line.is_empty() && line.contains(&b':') && !line.contains(&b'\r') && line[0] != b' '
        });
    if valid {
        out.extend_from_slice(added);
    } else {
        crate::log::lws_err!("APPEND_HANDSHAKE_HEADER added malformed header lines; ignored");
    }
}

/// Response bytes from the proxy or the server.
pub fn on_head_bytes(ctx: &Context, conn: &Rc<Conn>, data: &mut [u8]) {
    let parsed = {
        let mut http = conn.http.borrow_mut();
        let Some(h) = http.as_mut() else { return };
        h.inbuf.extend_from_slice(data);
        parse_response(&h.inbuf)
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
                .is_some_and(|h| h.inbuf.len() > MAX_RESPONSE_HEAD);
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

/// The response head could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MalformedHead;

pub type ParsedHead = Option<(u16, HeaderTable, usize)>;

/// Parses a response head (server or proxy): Ok(None) while incomplete.
pub fn parse_response(buf: &[u8]) -> Result<ParsedHead, MalformedHead> {
    let mut storage = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut storage);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(n)) => {
            let status = resp.code.unwrap_or(0);
            let status_line = format!("{} {}", status, resp.reason.unwrap_or(""));
            let mut pairs: Vec<(usize, &[u8])> =
                vec![(TOKEN_HTTP, status_line.trim_end().as_bytes())];
            for h in resp.headers.iter() {
                if let Some(idx) = token_for_name(h.name) {
                    pairs.push((idx, h.value.trim_ascii()));
                }
            }
            let t = HeaderTable::from_pairs(&pairs);
            Ok(Some((status, t, n)))
        }
        Err(_) => Err(MalformedHead),
    }
}

fn finish_handshake(
    ctx: &Context,
    conn: &Rc<Conn>,
    status: u16,
    mut table: HeaderTable,
    mut rest: Vec<u8>,
) {
    let (key, offered) = match conn.client.borrow().as_ref() {
        Some(c) => (c.key.clone(), c.protocols.clone()),
        None => return,
    };
    let fail = |why: &str| {
        crate::log::lws_info!("client handshake failed: {}", why);
        close_conn(ctx, conn, CloseHow::Abort);
    };
    if status != 101 {
        return fail("status is not 101");
    }
    if !table.list_contains(TOKEN_UPGRADE, "websocket") {
        return fail("Upgrade is not websocket");
    }
    if !table.list_contains(TOKEN_CONNECTION, "upgrade") {
        return fail("Connection lacks upgrade");
    }
    let expect = crate::engine::handshake::accept_key(key.as_bytes());
    if table.get(TOKEN_ACCEPT) != Some(expect.as_bytes()) {
        return fail("Sec-WebSocket-Accept does not match");
    }
    if let Some(chosen) = table.get(TOKEN_EXTENSIONS) {
        let offered = conn
            .client
            .borrow()
            .as_ref()
            .and_then(|c| c.ext_offer.clone());
        let Some(offered) = offered else {
            return fail("server chose an extension we did not offer");
        };
        if let Err(e) = crate::io::extensions::accept_client_response(ctx, conn, chosen, &offered) {
            return fail(&e);
        }
    }
    // Protocol: absent -> protocols[0]; else it must be one we offered and know.
    let index = match table.get(TOKEN_PROTOCOL) {
        None => 0,
        Some(chosen) => {
            let was_offered = offered
                .as_deref()
                .is_some_and(|o| o.split(',').any(|p| p.trim().as_bytes() == chosen));
            if !was_offered {
                return fail("server chose a protocol we did not offer");
            }
            match ctx
                .protocols
                .iter()
                .position(|p| p.name.as_deref() == Some(chosen))
            {
                Some(i) => i,
                None => return fail("server chose a protocol we do not have"),
            }
        }
    };
    if let Some(c) = conn.client.borrow().as_ref() {
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
    if conn.external_user.get().is_null() {
        *conn.user.borrow_mut() = UserSpace::zeroed(ctx.protocols[index].pss_size);
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
    if let Some(ex) = conn.exts.borrow().as_ref() {
        cfg.allowed_rsv = ex.allowed_rsv();
        cfg.validate_utf8 = !ex.compresses();
    }
    cfg.extended_opcodes = conn.has(flag::APP_EXT);
    *conn.parser.borrow_mut() = Some(FrameParser::new(cfg));
    *conn.http.borrow_mut() = None;
    *conn.client.borrow_mut() = None;
    conn.state.set(ConnState::Ws);
    ctx.set_timeout(conn, pending_timeout::NO_PENDING_TIMEOUT, 0);
    let n = invoke_conn(ctx, conn, Reason::ClientEstablished, CallbackIn::Nothing);
    if n != 0 {
        // v1.23 ignored CLIENT_ESTABLISHED's return value; applications rely on that.
        crate::log::lws_info!(
            "CLIENT_ESTABLISHED returned {} on fd {}: ignored",
            n,
            conn.fd
        );
    }
    crate::io::extensions::notify_established(ctx, conn);
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
