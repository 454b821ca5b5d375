//! WebSocket extension negotiation on a connection, server and client side: what is
//! offered and accepted, with which parameters (the pure parsing and parameter rules
//! are in `engine::extensions`), the library's own compression extensions
//! (permessage-deflate, deflate-frame), and the per-connection extension state
//! ([`ConnExts`]). The callback chain of extensions the application implements in C
//! is in [`crate::io::ext_chain`]; its entry points are re-exported here so that
//! existing callers keep their paths.

use crate::engine::extensions::app_hooks::TxUnits;
use crate::engine::extensions::deflate_frame::{deflate_frame_server_accept, DeflateFrameSession};
use crate::engine::extensions::negotiate::{parse_extensions, ExtOffer};
use crate::engine::extensions::pmd::{
    client_accept_response, client_offer_string, server_accept, ClientOffer, PmdSession,
    Role as PmdRole, ServerPolicy,
};
use crate::engine::ws::Utf8Validator;
use crate::io::app::{invoke, invoke_ext, CallbackIn, ExtReason, Reason, UserPtr};
use crate::io::conn::{flag, Conn, UserSpace};
use crate::io::context::Context;

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
    /// Application extensions: boundaries of the queued output (PACKET_TX_DO_SEND).
    pub tx_units: TxUnits,
    /// Application extensions: payload of a reserved-opcode frame being gathered for
    /// EXTENDED_PAYLOAD_RX.
    pub ext_rx: Vec<u8>,
}

impl ConnExts {
    /// RSV bits the peer may set.
    pub fn allowed_rsv(&self) -> u8 {
        if self.pmd.is_some() || self.dframe.is_some() || !self.app.is_empty() {
            crate::engine::ws::RSV1
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
                let uptr = user.as_ref().map_or(UserPtr::NULL, |u| u.ptr());
                invoke_ext(
                    ctx,
                    entry.index,
                    Some(conn),
                    ExtReason::Construct,
                    uptr,
                    CallbackIn::Nothing,
                );
                exts.app.push((pos, user));
                replies.push(String::from_utf8_lossy(&entry.name).into_owned());
            }
        }
    }
    if replies.is_empty() {
        return None;
    }
    install(conn, exts);
    Some(replies.join(", "))
}

/// Makes the negotiated extensions the connection's, raising [`flag::APP_EXT`] when
/// an application extension is among them. Bytes already queued then were sent raw in
/// v1.23 (before any extension was active), so they are not offered to DO_SEND.
fn install(conn: &Conn, mut exts: ConnExts) {
    let app = !exts.app.is_empty();
    if app {
        exts.tx_units.reconcile(conn.out.borrow().len());
    }
    *conn.cold().exts.borrow_mut() = Some(Box::new(exts));
    if app {
        conn.set(flag::APP_EXT);
    }
}

/// CONFIRM_EXTENSION_OKAY (to protocols[0]): 0 allows the extension.
fn confirm_okay(ctx: &Context, conn: &Conn, name: &[u8]) -> bool {
    let mut n = cname(name);
    invoke(
        ctx,
        0,
        Some(conn),
        Reason::ConfirmExtensionOkay,
        conn.user_ptr(),
        CallbackIn::c_string(&mut n, 0),
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
        // Any extension may veto proposing another (CHECK_OK_TO_PROPOSE_EXTENSION).
        let mut veto = false;
        for other in ctx.extensions.iter().filter(|o| o.kind == ExtKind::App) {
            let mut n = cname(&e.name);
            if invoke_ext(
                ctx,
                other.index,
                Some(conn),
                ExtReason::CheckOkToProposeExtension,
                UserPtr::NULL,
                CallbackIn::c_string(&mut n, 0),
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
                Reason::ClientConfirmExtensionSupported,
                conn.user_ptr(),
                CallbackIn::c_string(&mut n, 0),
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
                let uptr = user.as_ref().map_or(UserPtr::NULL, |u| u.ptr());
                invoke_ext(
                    ctx,
                    entry.index,
                    Some(conn),
                    ExtReason::ClientConstruct,
                    uptr,
                    CallbackIn::Nothing,
                );
                exts.app.push((pos, user));
            }
        }
    }
    if !chosen.is_empty() {
        install(conn, exts);
    }
    Ok(())
}
