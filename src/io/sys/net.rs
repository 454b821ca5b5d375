//! Socket system calls used by the service loop, each a thin wrapper (mostly
//! `syscall!`) returning `io::Result` so the callers stay free of `unsafe`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

fn sockaddr_from(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; zero is a valid bit pattern.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write(&mut ss as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

fn sockaddr_to(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

fn set_int_opt(fd: RawFd, level: libc::c_int, name: libc::c_int, v: libc::c_int) -> io::Result<()> {
    // SAFETY: passes a pointer to a live c_int and its size.
    syscall!(setsockopt(
        fd,
        level,
        name,
        &v as *const _ as *const libc::c_void,
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    ))
    .map(|_| ())
}

/// A non-blocking listening TCP socket bound to `addr` (dual-stack when `addr` is `[::]`).
pub fn listen(addr: SocketAddr, reuseport: bool) -> io::Result<RawFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call.
    let fd = syscall!(socket(
        family,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
    ))?;
    let setup = || -> io::Result<()> {
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if reuseport {
            set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        }
        if family == libc::AF_INET6 {
            let _ = set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0);
        }
        let (ss, len) = sockaddr_from(&addr);
        // SAFETY: ss/len describe a valid sockaddr for this family.
        syscall!(bind(fd, &ss as *const _ as *const libc::sockaddr, len))?;
        // SAFETY: plain listen(2).
        syscall!(listen(fd, libc::SOMAXCONN))?;
        Ok(())
    };
    if let Err(e) = setup() {
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

/// The port a bound socket ended up on.
pub fn local_addr(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: getsockname fills the zeroed storage up to len.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let r = unsafe { libc::getsockname(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) };
    if r < 0 {
        None
    } else {
        sockaddr_to(&ss)
    }
}

/// The peer of a connected socket.
pub fn peer_addr(fd: RawFd) -> Option<SocketAddr> {
    // SAFETY: getpeername fills the zeroed storage up to len.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let r = unsafe { libc::getpeername(fd, &mut ss as *mut _ as *mut libc::sockaddr, &mut len) };
    if r < 0 {
        None
    } else {
        sockaddr_to(&ss)
    }
}

/// The peer address as an application should see it: an IPv4 peer of a dual-stack
/// socket (`::ffff:a.b.c.d`) is the IPv4 address it is.
pub fn unmapped(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => addr,
        },
        a => a,
    }
}

/// Reverse-resolves `addr` (hosts file, then DNS); None when no name is found (no
/// numeric fallback).
pub fn name_of(addr: &SocketAddr) -> Option<String> {
    let (ss, len) = sockaddr_from(addr);
    let mut host = [0 as libc::c_char; 256];
    // SAFETY: ss/len valid; host buffer and its length passed together.
    let r = unsafe {
        libc::getnameinfo(
            &ss as *const _ as *const libc::sockaddr,
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: getnameinfo NUL-terminates on success.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Some(name)
}

/// Accepts one pending connection, non-blocking and close-on-exec.
pub fn accept(listener: RawFd) -> io::Result<RawFd> {
    // SAFETY: NULL address pointers are allowed by accept4.
    syscall!(accept4(
        listener,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
    ))
}

/// Low-latency and keepalive options for an accepted or connecting socket.
pub fn set_conn_options(fd: RawFd, ka_time: i32, ka_probes: i32, ka_interval: i32) {
    let _ = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    if ka_time > 0 {
        let _ = set_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1);
        let _ = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, ka_time);
        if ka_probes > 0 {
            let _ = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, ka_probes);
        }
        if ka_interval > 0 {
            let _ = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, ka_interval);
        }
    }
}

/// recv(2) into `buf`.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: writes at most buf.len() bytes into the live slice.
    syscall!(recv(
        fd,
        buf.as_mut_ptr() as *mut libc::c_void,
        buf.len(),
        0
    ))
    .map(|n| n as usize)
}

/// send(2) without SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: reads at most buf.len() bytes from the live slice.
    syscall!(send(
        fd,
        buf.as_ptr() as *const libc::c_void,
        buf.len(),
        libc::MSG_NOSIGNAL,
    ))
    .map(|n| n as usize)
}

/// send(2) with MSG_MORE: the kernel may hold the bytes back to join whatever is sent
/// next (used for the last bytes before close(), so they travel with the FIN).
pub fn send_more(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: reads at most buf.len() bytes from the live slice.
    syscall!(send(
        fd,
        buf.as_ptr() as *const libc::c_void,
        buf.len(),
        libc::MSG_NOSIGNAL | libc::MSG_MORE,
    ))
    .map(|n| n as usize)
}

/// Sends two buffers with one sendmsg(2), without SIGPIPE.
pub fn send2(fd: RawFd, a: &[u8], b: &[u8]) -> io::Result<usize> {
    let mut iov = [
        libc::iovec {
            iov_base: a.as_ptr() as *mut libc::c_void,
            iov_len: a.len(),
        },
        libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        },
    ];
    // SAFETY: msghdr zeroed, then pointed at the two live iovecs (only read by the kernel).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = 2;
    syscall!(sendmsg(fd, &msg, libc::MSG_NOSIGNAL)).map(|n| n as usize)
}

/// shutdown(2) of the write side: the peer sees EOF after our queued bytes.
pub fn shutdown_write(fd: RawFd) {
    // SAFETY: plain shutdown(2).
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// close(2).
pub fn close(fd: RawFd) {
    // SAFETY: the caller owns fd and never uses it again.
    unsafe { libc::close(fd) };
}

/// Drops privileges after binding: group first, then user. -1 leaves one unchanged.
pub fn drop_privileges(gid: i32, uid: i32) {
    // SAFETY: plain setgid/setuid calls.
    unsafe {
        if gid != -1 && libc::setgid(gid as libc::gid_t) != 0 {
            crate::log::lws_warn!("setgid: {}", io::Error::last_os_error());
        }
        if uid != -1 && libc::setuid(uid as libc::uid_t) != 0 {
            crate::log::lws_warn!("setuid: {}", io::Error::last_os_error());
        }
    }
}

/// The first IPv4 (else IPv6) address of interface `name`, via getifaddrs(3).
pub fn interface_addr(name: &str) -> Option<IpAddr> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list we walk read-only and free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return None;
    }
    let mut v4 = None;
    let mut v6 = None;
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list returned by getifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
        if ifname.to_bytes() != name.as_bytes() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr of the family it announces.
        let fam = unsafe { (*ifa.ifa_addr).sa_family } as libc::c_int;
        let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let size = match fam {
            libc::AF_INET => std::mem::size_of::<libc::sockaddr_in>(),
            libc::AF_INET6 => std::mem::size_of::<libc::sockaddr_in6>(),
            _ => continue,
        };
        // SAFETY: copies exactly the family's sockaddr size into the larger storage.
        unsafe {
            std::ptr::copy_nonoverlapping(
                ifa.ifa_addr as *const u8,
                &mut ss as *mut _ as *mut u8,
                size,
            )
        };
        match sockaddr_to(&ss) {
            Some(SocketAddr::V4(a)) if v4.is_none() => v4 = Some(IpAddr::V4(*a.ip())),
            Some(SocketAddr::V6(a)) if v6.is_none() => v6 = Some(IpAddr::V6(*a.ip())),
            _ => {}
        }
    }
    // SAFETY: frees the list allocated above exactly once.
    unsafe { libc::freeifaddrs(head) };
    v4.or(v6)
}

/// This host's name, for `libwebsocket_canonical_hostname`.
pub fn hostname() -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: buffer and length passed together; NUL-terminated below.
    let r = unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) };
    if r != 0 {
        return String::new();
    }
    buf[255] = 0;
    // SAFETY: NUL-terminated above.
    unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// A non-blocking TCP socket of the family that can reach `v6` / IPv4 addresses.
pub fn tcp_socket(v6: bool) -> io::Result<RawFd> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    // SAFETY: plain socket(2) call.
    let fd = syscall!(socket(
        family,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0,
    ))?;
    if v6 {
        let _ = set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0);
    }
    Ok(fd)
}

/// Starts a non-blocking connect: Ok(true) connected, Ok(false) in progress.
pub fn connect(fd: RawFd, addr: SocketAddr) -> io::Result<bool> {
    let (ss, len) = sockaddr_from(&addr);
    // SAFETY: ss/len describe a valid sockaddr.
    let r = unsafe { libc::connect(fd, &ss as *const _ as *const libc::sockaddr, len) };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINPROGRESS) | Some(libc::EALREADY) | Some(libc::EINTR) => Ok(false),
        _ => Err(e),
    }
}

/// The pending error of a socket (SO_ERROR), 0 when none.
pub fn socket_error(fd: RawFd) -> i32 {
    let mut v: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: v and len are live and sized for SO_ERROR.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut v as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if r < 0 {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    } else {
        v
    }
}
