//! Context lifetime and the service loops.

use crate::capi::abi_types::*;
use crate::capi::boundary::{cstr_bytes, cstr_string, ffi_guard};
use crate::capi::callbacks::{capp, CApp};
use crate::io::app::{invoke, invoke_ext, poll_fd_event, CallbackIn, ExtReason, Reason, UserPtr};
use crate::io::context::{server_option, Context, ContextConfig, ProtocolInfo, DEFAULT_RX_CHUNK};
use crate::io::service::{self, POLLIN};
use libc::{c_char, c_int, c_void};

/// Borrows the context behind a C pointer.
///
/// # Safety
/// `p` must be NULL or a pointer returned by `libwebsocket_create_context` and not
/// yet destroyed.
pub unsafe fn ctx_ref<'a>(p: *mut libwebsocket_context) -> Option<&'a Context> {
    // SAFETY: the caller's contract (above): NULL or a live context.
    unsafe { (p as *const Context).as_ref() }
}

/// Builds the context: protocol table, listening socket (unless port is
/// CONTEXT_PORT_NO_LISTEN), privilege drop, then PROTOCOL_INIT for each protocol.
/// Returns NULL on failure (the reason is logged).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_create_context(
    info: *mut lws_context_creation_info,
) -> *mut libwebsocket_context {
    ffi_guard!(std::ptr::null_mut(), {
        // SAFETY: `info` is NULL or a creation info struct the caller keeps valid for the call.
        let Some(info) = (unsafe { info.as_ref() }) else {
            crate::log::lws_err!("libwebsocket_create_context: NULL info");
            return std::ptr::null_mut();
        };
        if info.protocols.is_null() {
            crate::log::lws_err!("libwebsocket_create_context: no protocols");
            return std::ptr::null_mut();
        }
        let mut protocols = Vec::new();
        let mut p = info.protocols;
        // SAFETY (this loop): `info.protocols` is an array ended by an entry with a NULL
        // callback (the C contract), so `p` stays within it up to that entry.
        while unsafe { (*p).callback.is_some() } && protocols.len() < 4096 {
            // SAFETY: as for the loop condition.
            let e = unsafe { &*p };
            protocols.push(ProtocolInfo {
                // SAFETY: `e.name` is NULL or a NUL-terminated string (the C contract of this argument).
                name: unsafe { cstr_bytes(e.name) }.map(|b| b.to_vec()),
                rx_chunk: if e.rx_buffer_size == 0 {
                    DEFAULT_RX_CHUNK
                } else {
                    e.rx_buffer_size
                },
                pss_size: e.per_session_data_size,
            });
            // SAFETY: `p` is not the terminating entry, so `p + 1` is still in the array.
            p = unsafe { p.add(1) };
        }
        if protocols.is_empty() {
            crate::log::lws_err!("libwebsocket_create_context: protocol list is empty");
            return std::ptr::null_mut();
        }
        // SAFETY: `info.ssl_ca_filepath` is NULL or a NUL-terminated string (the C contract of this argument).
        let ssl_ca = unsafe { cstr_string(info.ssl_ca_filepath) };
        // SAFETY: `info.ssl_cipher_list` is NULL or a NUL-terminated string (the C contract of this argument).
        let ssl_cipher_list = unsafe { cstr_string(info.ssl_cipher_list) };
        // SAFETY: `info.ssl_cert_filepath` is NULL or a NUL-terminated string (the C contract of this argument).
        let cert = unsafe { cstr_string(info.ssl_cert_filepath) };
        // SAFETY: `info.ssl_private_key_filepath` is NULL or a NUL-terminated string (the C contract of this argument).
        let key = unsafe { cstr_string(info.ssl_private_key_filepath) };
        crate::io::threads::warm_up_once();
        let tls_server = match (&cert, &key) {
            (Some(cert), Some(key)) if info.port != 0 => {
                // aws-lc's first user in this process may be this configuration.
                crate::io::threads::tls_warm_up_once();
                match crate::engine::tls::server_config(
                    cert,
                    key,
                    ssl_ca.as_deref(),
                    info.options & server_option::REQUIRE_VALID_CLIENT_CERT != 0,
                    ssl_cipher_list.as_deref(),
                ) {
                    Ok((cfg, warnings)) => {
                        for w in warnings {
                            crate::log::lws_warn!("{}", w);
                        }
                        crate::log::lws_notice!(" Using TLS (rustls) on the listening port");
                        Some(cfg)
                    }
                    Err(e) => {
                        crate::log::lws_err!(
                            "libwebsocket_create_context: TLS setup failed: {}",
                            e
                        );
                        return std::ptr::null_mut();
                    }
                }
            }
            (Some(_), None) | (None, Some(_)) if info.port != 0 => {
                crate::log::lws_err!(
                    "libwebsocket_create_context: TLS needs both certificate and key"
                );
                return std::ptr::null_mut();
            }
            _ => None,
        };
        let cfg = ContextConfig {
            tls_server,
            ssl_ca,
            ssl_cipher_list,
            port: info.port,
            // SAFETY: `info.iface` is NULL or a NUL-terminated string (the C contract of this argument).
            iface: unsafe { cstr_string(info.iface) },
            protocols,
            // SAFETY: `info.extensions` is NULL or an array ended by a NULL callback (the C contract).
            extensions: unsafe {
                crate::capi::extension_table::read_extension_array(info.extensions)
            },
            app: Box::new(CApp::new(info.protocols, info.extensions, info.user)),
            gid: info.gid,
            uid: info.uid,
            options: info.options,
            ka_time: info.ka_time,
            ka_probes: info.ka_probes,
            ka_interval: info.ka_interval,
        };
        let ctx = match Context::new(cfg) {
            Ok(c) => c,
            Err(e) => {
                crate::log::lws_err!("libwebsocket_create_context: {}", e);
                return std::ptr::null_mut();
            }
        };
        let raw = Box::into_raw(ctx);
        // SAFETY: `raw` comes from Box::into_raw just above and is freed only by
        // libwebsocket_context_destroy.
        let ctx = unsafe { &*raw };
        for (i, _) in ctx.protocols.iter().enumerate() {
            // SAFETY: `i` indexes one of the entries counted before the terminator above;
            // the application's array is writable and v1.23 filled these fields in too.
            let e = unsafe { &mut *info.protocols.add(i) };
            e.owning_server = raw as *mut libwebsocket_context;
            e.protocol_index = i as c_int;
        }
        if let Ok(proxy) = std::env::var("http_proxy") {
            let proxy = proxy
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            if !proxy.is_empty() {
                *ctx.proxy.borrow_mut() = Some(proxy);
            }
        }
        crate::log::lws_notice!("libwebsockets (Rust) {}", env!("LWS_BUILD_HASH"));
        if let Some(fd) = ctx.listener.get() {
            crate::log::lws_notice!(" Listening on port {}", ctx.listen_port.get());
            poll_fd_event(ctx, ctx.listener_conn(), Reason::AddPollFd, fd, POLLIN);
        }
        // The wake-up eventfd (requests from other threads, name lookups): external
        // poll loops must watch it too.
        poll_fd_event(ctx, None, Reason::AddPollFd, ctx.threads.waker_fd(), POLLIN);
        for i in 0..ctx.protocols.len() {
            invoke(
                ctx,
                i,
                None,
                Reason::ProtocolInit,
                UserPtr::NULL,
                CallbackIn::Nothing,
            );
        }
        let construct = if ctx.listener.get().is_some() {
            ExtReason::ServerContextConstruct
        } else {
            ExtReason::ClientContextConstruct
        };
        for e in ctx.extensions.iter() {
            invoke_ext(
                ctx,
                e.index,
                None,
                construct,
                UserPtr::NULL,
                CallbackIn::Nothing,
            );
        }
        raw as *mut libwebsocket_context
    })
}

/// Drops the listener, closes every connection (a close frame with 1001 to live
/// WebSocket peers; DEL_POLL_FD, then CLOSED / CLOSED_HTTP / CLIENT_CONNECTION_ERROR),
/// calls PROTOCOL_DESTROY for each protocol and frees the context.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_context_destroy(context: *mut libwebsocket_context) {
    ffi_guard!((), {
        // SAFETY: `context` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
        let Some(ctx) = (unsafe { ctx_ref(context) }) else {
            return;
        };
        if ctx.destroying.get() || ctx.in_service.get() > 0 {
            crate::log::lws_err!(
                "libwebsocket_context_destroy: called from inside a callback; ignored"
            );
            return;
        }
        ctx.destroying.set(true);
        // The listener goes first (as in v1.23), so nothing new arrives meanwhile.
        if let Some(fd) = ctx.listener.take() {
            poll_fd_event(ctx, ctx.listener_conn(), Reason::DelPollFd, fd, 0);
            crate::io::sys::net::close(fd);
        }
        service::close_all(ctx);
        crate::io::linger::forget(ctx);
        poll_fd_event(ctx, None, Reason::DelPollFd, ctx.threads.waker_fd(), 0);
        let destruct = if ctx.listener.get().is_some() || ctx.listen_port.get() != 0 {
            ExtReason::ServerContextDestruct
        } else {
            ExtReason::ClientContextDestruct
        };
        for e in ctx.extensions.iter() {
            invoke_ext(
                ctx,
                e.index,
                None,
                destruct,
                UserPtr::NULL,
                CallbackIn::Nothing,
            );
        }
        for i in 0..ctx.protocols.len() {
            invoke(
                ctx,
                i,
                None,
                Reason::ProtocolDestroy,
                UserPtr::NULL,
                CallbackIn::Nothing,
            );
        }
        // SAFETY: `context` came from Box::into_raw in libwebsocket_create_context (ctx_ref
        // found it above) and the C contract forbids using it after this call.
        drop(unsafe { Box::from_raw(context as *mut Context) });
    })
}

/// Services pending events, waiting up to `timeout_ms` (negative: indefinitely).
/// Returns 0, or -1 on a NULL context, a fatal poll error or when the wait was
/// interrupted by a signal (EINTR, as v1.23's poll() loop reported it).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_service(
    context: *mut libwebsocket_context,
    timeout_ms: c_int,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `context` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
        let Some(ctx) = (unsafe { ctx_ref(context) }) else {
            return -1;
        };
        service::service(ctx, timeout_ms)
    })
}

/// Services one descriptor from the application's poll loop; NULL runs timeouts only.
/// For a descriptor of ours `revents` is zeroed; a foreign one is left untouched.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_service_fd(
    context: *mut libwebsocket_context,
    pollfd: *mut libc::pollfd,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `context` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
        let Some(ctx) = (unsafe { ctx_ref(context) }) else {
            return -1;
        };
        if ctx.in_service.get() > 0 {
            crate::log::lws_err!("libwebsocket_service_fd called re-entrantly from a callback");
            return -1;
        }
        // SAFETY: `pollfd` is NULL or a pollfd the caller owns for the call.
        let arg = unsafe { pollfd.as_ref() }.map(|p| (p.fd, p.revents));
        let (r, handled) = service::service_fd(ctx, arg);
        if handled {
            // SAFETY: as above; no other reference to it exists here.
            if let Some(p) = unsafe { pollfd.as_mut() } {
                p.revents = 0;
            }
        }
        r
    })
}

/// The `user` pointer given at creation.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_context_user(
    context: *mut libwebsocket_context,
) -> *mut c_void {
    ffi_guard!(std::ptr::null_mut(), {
        // SAFETY: `context` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
        unsafe { ctx_ref(context) }
            .and_then(capp)
            .map_or(std::ptr::null_mut(), |a| a.user())
    })
}

/// Sets the HTTP proxy ("host:port") used by client connections. 0 on success.
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_set_proxy(
    context: *mut libwebsocket_context,
    proxy: *const c_char,
) -> c_int {
    ffi_guard!(-1, {
        // SAFETY: `context` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
        let Some(ctx) = (unsafe { ctx_ref(context) }) else {
            return -1;
        };
        // SAFETY: `proxy` is NULL or a NUL-terminated string (the C contract of this argument).
        let Some(p) = (unsafe { cstr_string(proxy) }) else {
            return -1;
        };
        let p = p
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        if p.is_empty() {
            *ctx.proxy.borrow_mut() = None;
            return 0;
        }
        *ctx.proxy.borrow_mut() = Some(p);
        0
    })
}

/// This host's name (empty with LWS_SERVER_OPTION_SKIP_SERVER_CANONICAL_NAME).
#[no_mangle]
pub unsafe extern "C" fn libwebsocket_canonical_hostname(
    context: *mut libwebsocket_context,
) -> *const c_char {
    ffi_guard!(std::ptr::null(), {
        // SAFETY: `context` is NULL or a context from libwebsocket_create_context not yet destroyed (the C contract).
        let Some(ctx) = (unsafe { ctx_ref(context) }) else {
            return std::ptr::null();
        };
        capp(ctx).map_or(std::ptr::null(), |a| a.hostname(ctx))
    })
}
