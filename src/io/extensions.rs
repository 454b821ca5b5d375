//! WebSocket extensions on a connection: negotiation (server and client side), the
//! library's own compression extensions (permessage-deflate, deflate-frame) and the
//! v1.23 extension callbacks for extensions the application defines in C.

use crate::capi::abi_types::libwebsocket_callback_reasons::*;
use crate::capi::abi_types::libwebsocket_extension_callback_reasons as ExtReason;
use crate::capi::user_callbacks::{invoke, invoke_ext};
use crate::engine::extensions::deflate_frame::{deflate_frame_server_accept, DeflateFrameSession};
use crate::engine::extensions::negotiate::{parse_extensions, ExtOffer};
use crate::engine::extensions::pmd::{
    client_accept_response, client_offer_string, server_accept, ClientOffer, PmdSession,
    Role as PmdRole, ServerPolicy,
};
use crate::engine::ws::Utf8Validator;
use crate::io::conn::{Conn, UserSpace};
use crate::io::context::Context;

/// An application extension callback reported a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtensionFailed;

/// What an entry of the context's extension array is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtKind {
    /// The library's permessage-deflate (RFC 7692).
    PermessageDeflate,
    /// The library's deflate-frame / x-webkit-deflate-frame.
    DeflateFrame,
    /// An extension implemented by the application's callback.
    App,
}

/// One entry of `info.extensions`, copied at context creation.
#[derive(Clone, Debug)]
pub struct ExtEntry {
    /// Index in the application's C array (for its callback and struct pointer).
    pub index: usize,
    pub name: Vec<u8>,
    pub kind: ExtKind,
    pub pss_size: usize,
}

/// Extension state of one connection.
#[derive(Default)]
pub struct ConnExts {
    pub pmd: Option<PmdSession>,
    pub dframe: Option<DeflateFrameSession>,
    /// Active application extensions: (index into ctx.extensions, per-session data).
    pub app: Vec<(usize, Option<UserSpace>)>,
    /// The message being received is compressed (permessage-deflate RSV1).
    pub rx_compressed: bool,
    pub rx_text: bool,
    /// UTF-8 state of decompressed text (the parser only sees compressed bytes).
    pub utf8: Utf8Validator,
    /// deflate-frame: compressed bytes of the current frame, gathered until complete.
    pub dframe_rx: Vec<u8>,
    /// deflate-frame: bytes inflated so far for the current message.
    pub dframe_msg_len: u64,
    /// A fragmented message is being sent (its frames go out uncompressed).
    pub tx_fragmented: bool,
}

impl ConnExts {
    /// RSV bits the peer may set.
    pub fn allowed_rsv(&self) -> u8 {
        if self.pmd.is_some() || self.dframe.is_some() || !self.app.is_empty() {
            0x40
        } else {
            0
        }
    }
    /// True when the library decompresses, so UTF-8 is checked after inflating.
    pub fn compresses(&self) -> bool {
        self.pmd.is_some() || self.dframe.is_some()
    }
}

fn cname(name: &[u8]) -> Vec<u8> {
    let mut v = name.to_vec();
    v.push(0);
    v
}

/// Server side: chooses among the client's offers and returns the response value.
pub fn negotiate_server(ctx: &Context, conn: &Conn, header: &[u8]) -> Option<String> {
    if ctx.extensions.is_empty() {
        return None;
    }
    let offers = match parse_extensions(header) {
        Ok(o) => o,
        Err(e) => {
            crate::log::lws_info!("ignoring malformed Sec-WebSocket-Extensions: {}", e.0);
            return None;
        }
    };
    let mut exts = ConnExts::default();
    let mut replies: Vec<String> = Vec::new();
    let mut compression_chosen = false;
    let mut tried_pmd = false;
    for offer in &offers {
        let Some(entry) = ctx
            .extensions
            .iter()
            .find(|e| e.name == offer.name.as_bytes())
        else {
            continue;
        };
        match entry.kind {
            ExtKind::PermessageDeflate => {
                if compression_chosen || tried_pmd {
                    continue;
                }
                tried_pmd = true;
                if !confirm_okay(ctx, conn, &entry.name) {
                    continue;
                }
                let pmd_offers: Vec<ExtOffer> = offers
                    .iter()
                    .filter(|o| o.name == offer.name)
                    .cloned()
                    .collect();
                if let Some((params, reply)) = server_accept(&pmd_offers, &ServerPolicy::default())
                {
                    exts.pmd = Some(PmdSession::new(
                        PmdRole::Server,
                        params,
                        ctx.limits.max_message as usize,
                    ));
                    replies.push(reply);
                    compression_chosen = true;
                }
            }
            ExtKind::DeflateFrame => {
                if compression_chosen || !confirm_okay(ctx, conn, &entry.name) {
                    continue;
                }
                if let Some(reply) = deflate_frame_server_accept(offer) {
                    exts.dframe = Some(DeflateFrameSession::new(ctx.limits.max_message as usize));
                    replies.push(reply);
                    compression_chosen = true;
                }
            }
            ExtKind::App => {
                if exts
                    .app
                    .iter()
                    .any(|(i, _)| ctx.extensions[*i].name == entry.name)
                {
                    continue;
                }
                if !confirm_okay(ctx, conn, &entry.name) {
                    continue;
                }
                let pos = ctx
                    .extensions
                    .iter()
                    .position(|e| e.index == entry.index)
                    .unwrap_or(0);
                let user = UserSpace::zeroed(entry.pss_size);
                let uptr = user.as_ref().map_or(std::ptr::null_mut(), |u| u.ptr());
                invoke_ext(
                    ctx,
                    entry.index,
                    Some(conn),
                    ExtReason::LWS_EXT_CALLBACK_CONSTRUCT,
                    uptr,
                    std::ptr::null_mut(),
                    0,
                );
                exts.app.push((pos, user));
                replies.push(String::from_utf8_lossy(&entry.name).into_owned());
            }
        }
    }
    if replies.is_empty() {
        return None;
    }
    *conn.exts.borrow_mut() = Some(Box::new(exts));
    Some(replies.join(", "))
}

/// LWS_CALLBACK_CONFIRM_EXTENSION_OKAY (to protocols[0]): 0 allows the extension.
fn confirm_okay(ctx: &Context, conn: &Conn, name: &[u8]) -> bool {
    let mut n = cname(name);
    invoke(
        ctx,
        0,
        Some(conn),
        LWS_CALLBACK_CONFIRM_EXTENSION_OKAY,
        conn.user_ptr(),
        n.as_mut_ptr() as *mut libc::c_void,
        0,
    ) == 0
}

/// Client side: the Sec-WebSocket-Extensions value to offer (None: offer nothing).
pub fn client_offer(ctx: &Context, conn: &Conn) -> Option<String> {
    let mut parts = Vec::new();
    for e in &ctx.extensions {
        // v1.23's deflate-frame vetoed proposing its x-webkit- alias from a client.
        if e.kind == ExtKind::DeflateFrame && e.name == b"x-webkit-deflate-frame" {
            continue;
        }
        // Any extension may veto proposing another (LWS_EXT_CALLBACK_CHECK_OK_TO_PROPOSE_EXTENSION).
        let mut veto = false;
        for other in ctx.extensions.iter().filter(|o| o.kind == ExtKind::App) {
            let mut n = cname(&e.name);
            if invoke_ext(
                ctx,
                other.index,
                Some(conn),
                ExtReason::LWS_EXT_CALLBACK_CHECK_OK_TO_PROPOSE_EXTENSION,
                std::ptr::null_mut(),
                n.as_mut_ptr() as *mut libc::c_void,
                0,
            ) != 0
            {
                veto = true;
            }
        }
        let mut n = cname(&e.name);
        if veto
            || invoke(
                ctx,
                0,
                Some(conn),
                LWS_CALLBACK_CLIENT_CONFIRM_EXTENSION_SUPPORTED,
                conn.user_ptr(),
                n.as_mut_ptr() as *mut libc::c_void,
                0,
            ) != 0
        {
            continue;
        }
        match e.kind {
            ExtKind::PermessageDeflate => parts.push(client_offer_string(&default_client_offer())),
            _ => parts.push(String::from_utf8_lossy(&e.name).into_owned()),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(", "))
    }
}

fn default_client_offer() -> ClientOffer {
    ClientOffer {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        client_max_window_bits: Some(None),
    }
}

/// Client side: checks the server's choice. Err: fail the connection.
pub fn accept_client_response(
    ctx: &Context,
    conn: &Conn,
    header: &[u8],
    offered: &str,
) -> Result<(), String> {
    let chosen =
        parse_extensions(header).map_err(|e| format!("bad Sec-WebSocket-Extensions: {}", e.0))?;
    let offered_names: Vec<String> = parse_extensions(offered.as_bytes())
        .map(|v| v.into_iter().map(|o| o.name).collect())
        .unwrap_or_default();
    let mut exts = ConnExts::default();
    for c in &chosen {
        if !offered_names.contains(&c.name) {
            return Err(format!(
                "server chose extension {} we did not offer",
                c.name
            ));
        }
        let Some(entry) = ctx.extensions.iter().find(|e| e.name == c.name.as_bytes()) else {
            return Err(format!("unknown extension {}", c.name));
        };
        match entry.kind {
            ExtKind::PermessageDeflate => {
                if exts.compresses() {
                    return Err("two compression extensions".into());
                }
                let params = client_accept_response(&default_client_offer(), c)
                    .map_err(|e| e.0.to_string())?;
                exts.pmd = Some(PmdSession::new(
                    PmdRole::Client,
                    params,
                    ctx.limits.max_message as usize,
                ));
            }
            ExtKind::DeflateFrame => {
                if exts.compresses() {
                    return Err("two compression extensions".into());
                }
                if !c.params.is_empty() {
                    return Err(format!("unexpected parameter in the {} reply", c.name));
                }
                exts.dframe = Some(DeflateFrameSession::new(ctx.limits.max_message as usize));
            }
            ExtKind::App => {
                let pos = ctx
                    .extensions
                    .iter()
                    .position(|e| e.index == entry.index)
                    .unwrap_or(0);
                let user = UserSpace::zeroed(entry.pss_size);
                let uptr = user.as_ref().map_or(std::ptr::null_mut(), |u| u.ptr());
                invoke_ext(
                    ctx,
                    entry.index,
                    Some(conn),
                    ExtReason::LWS_EXT_CALLBACK_CLIENT_CONSTRUCT,
                    uptr,
                    std::ptr::null_mut(),
                    0,
                );
                exts.app.push((pos, user));
            }
        }
    }
    if !chosen.is_empty() {
        *conn.exts.borrow_mut() = Some(Box::new(exts));
    }
    Ok(())
}

/// Calls `reason` on every active application extension of the connection with an
/// `lws_tokens` describing `buf`; returns the (possibly replaced) buffer, or Err when
/// an extension reports a fatal error.
pub fn app_payload_hook(
    ctx: &Context,
    conn: &Conn,
    reason: ExtReason,
    buf: &mut Vec<u8>,
) -> Result<(), ExtensionFailed> {
    let targets: Vec<(usize, *mut libc::c_void)> = match conn.exts.borrow().as_ref() {
        Some(e) if !e.app.is_empty() => e
            .app
            .iter()
            .map(|(i, u)| {
                (
                    ctx.extensions[*i].index,
                    u.as_ref().map_or(std::ptr::null_mut(), |u| u.ptr()),
                )
            })
            .collect(),
        _ => return Ok(()),
    };
    for (index, user) in targets {
        let replaced =
            crate::capi::user_callbacks::invoke_ext_tokens(ctx, index, conn, reason, user, buf)?;
        if let Some(v) = replaced {
            *buf = v;
        }
    }
    Ok(())
}

/// LWS_EXT_CALLBACK_ANY_WSI_ESTABLISHED to every application extension of the context.
pub fn notify_established(ctx: &Context, conn: &Conn) {
    for e in ctx.extensions.iter().filter(|e| e.kind == ExtKind::App) {
        let user = conn
            .exts
            .borrow()
            .as_ref()
            .and_then(|x| {
                x.app
                    .iter()
                    .find(|(i, _)| ctx.extensions[*i].index == e.index)
                    .and_then(|(_, u)| u.as_ref().map(|u| u.ptr()))
            })
            .unwrap_or(std::ptr::null_mut());
        invoke_ext(
            ctx,
            e.index,
            Some(conn),
            ExtReason::LWS_EXT_CALLBACK_ANY_WSI_ESTABLISHED,
            user,
            std::ptr::null_mut(),
            0,
        );
    }
}

/// DESTROY to the connection's active application extensions, and
/// DESTROY_ANY_WSI_CLOSING to all of the context's.
pub fn on_close(ctx: &Context, conn: &Conn) {
    let active = conn.exts.borrow_mut().take();
    if let Some(ex) = active {
        for (i, user) in &ex.app {
            let uptr = user.as_ref().map_or(std::ptr::null_mut(), |u| u.ptr());
            invoke_ext(
                ctx,
                ctx.extensions[*i].index,
                Some(conn),
                ExtReason::LWS_EXT_CALLBACK_DESTROY,
                uptr,
                std::ptr::null_mut(),
                0,
            );
        }
    }
    if ctx.extensions.iter().any(|e| e.kind == ExtKind::App)
        && conn.state.get() != crate::io::conn::ConnState::HttpHeaders
    {
        for e in ctx.extensions.iter().filter(|e| e.kind == ExtKind::App) {
            invoke_ext(
                ctx,
                e.index,
                Some(conn),
                ExtReason::LWS_EXT_CALLBACK_DESTROY_ANY_WSI_CLOSING,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }
}

/// Once a second: LWS_EXT_CALLBACK_1HZ to the active application extensions.
pub fn tick_1hz(ctx: &Context) {
    for conn in ctx.all_conns() {
        let targets: Vec<(usize, *mut libc::c_void)> = match conn.exts.borrow().as_ref() {
            Some(e) => e
                .app
                .iter()
                .map(|(i, u)| {
                    (
                        ctx.extensions[*i].index,
                        u.as_ref().map_or(std::ptr::null_mut(), |u| u.ptr()),
                    )
                })
                .collect(),
            None => continue,
        };
        for (index, user) in targets {
            invoke_ext(
                ctx,
                index,
                Some(&conn),
                ExtReason::LWS_EXT_CALLBACK_1HZ,
                user,
                std::ptr::null_mut(),
                0,
            );
        }
    }
}
