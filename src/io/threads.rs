//! Calls from other threads: `libwebsocket_callback_on_writable`,
//! `libwebsocket_callback_on_writable_all_protocol` and `libwebsocket_rx_flow_control`
//! may come from any thread while another one runs the service loop.
//!
//! * **The service thread** of a context is the thread that last entered
//!   `libwebsocket_service` / `libwebsocket_service_fd` on it (none before the first
//!   call). A call made on it takes the direct path, as before; the only extra cost is
//!   a thread-local lookup and an atomic load.
//! * **Other threads** never touch the connection or the context's single-threaded
//!   state. They look the `wsi` up in the context's table of live connections (which
//!   entry of the context's connection table the address is, found from the table's
//!   few segments without dereferencing it, and the generation of the connection in
//!   that entry; under a short mutex), queue the request with entry and generation, and write to the context's eventfd, which wakes
//!   `epoll_wait` (or the application's poll(): the descriptor is announced with
//!   `LWS_CALLBACK_ADD_POLL_FD` at creation). The service thread takes the queue and
//!   applies each request only if the same connection (entry and generation) is
//!   still live; then the callbacks run there, as for any request.
//! * No lock is held while user code runs; locks are pthread mutexes, so that
//!   valgrind's helgrind and drd see them.
//!
//! The eventfd is shared with the name resolver (`io::resolver`).
//!
//! # Why this module keeps `unsafe`
//!
//! Its system calls (eventfd, the pthread mutex) are in `io::sys`, but the table of
//! live connections is not a system call: a `wsi` reaches us from C as an address that
//! may already be freed. Checking it against the table, under the mutex or on the one
//! thread that writes the table, is what makes turning it into a `&Conn` sound, so
//! `route_conn` / `route_protocol` stay `unsafe fn`s (their callers in capi promise the
//! context is live). Moving them to `sys` would mean a safe function that turns an arbitrary
//! address into a reference. The `unsafe` here is: `Entry: Send` (a pointer into a
//! live context, removed before the context is freed), `live_gen_here` (the lock-free
//! read of the table on its writer thread, `PMutex::peek`).

use crate::io::conn::Conn;
use crate::io::context::Context;
use crate::io::sys::PMutex;
use std::cell::{Cell, RefCell};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// mio token of the wake-up eventfd.
pub const WAKER: mio::Token = mio::Token(usize::MAX - 1);

/// Requests queued per context at most; a call beyond fails (-1) until the service
/// thread has taken them.
const MAX_QUEUED: usize = 1 << 20;

/// What a thread knows about itself: a number unique for the life of the process
/// (thread ids and `pthread_t` values are reused; these never are), and the contexts it
/// has served. Only a thread that served a context ever reads that context's `owner`,
/// so threads that never served it do not touch memory its service thread writes.
struct Me {
    id: Cell<u64>,
    /// Serial numbers of the contexts this thread entered a service call for (newest
    /// last; bounded, so entries of destroyed contexts do not pile up).
    served: RefCell<Vec<u64>>,
}

/// Contexts remembered per thread; a thread serving more is only slower (its calls
/// between service calls on the oldest ones go through the queue).
const SERVED_MAX: usize = 16;

thread_local! {
    static ME: Me = const {
        Me {
            id: Cell::new(0),
            served: RefCell::new(Vec::new()),
        }
    };
}

fn my_id(me: &Me) -> u64 {
    let v = me.id.get();
    if v != 0 {
        return v;
    }
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let v = NEXT.fetch_add(1, Ordering::Relaxed);
    me.id.set(v);
    v
}

/// The calling thread's number (0 only while its thread-locals are being destroyed).
pub fn thread_id() -> u64 {
    ME.try_with(my_id).unwrap_or(0)
}

/// What another thread asked for, applied on the service thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// `libwebsocket_callback_on_writable` for the connection in entry `slot` of the
    /// connection table, generation `gen`.
    Writable { slot: u32, gen: u32 },
    /// `libwebsocket_rx_flow_control`.
    RxFlow { slot: u32, gen: u32, enable: bool },
    /// `libwebsocket_callback_on_writable_all_protocol` for protocol `index`.
    AllProtocol { index: usize },
}

struct Inner {
    /// The generation of the connection in each entry of the context's connection
    /// table, 0 while the entry holds none.
    gens: Vec<u32>,
    /// The table's segments: (address of entry `first`, `first`, entries), entries
    /// `entry_size` bytes apart; how an address becomes an entry without reading it.
    segs: Vec<(usize, u32, u32)>,
    entry_size: usize,
    next_gen: u32,
    queue: Vec<Request>,
    /// The eventfd was written since the queue was last taken.
    woken: bool,
}

impl Inner {
    /// (entry, generation) of the live connection at `addr`.
    fn live(&self, addr: usize) -> Option<(u32, u32)> {
        let size = self.entry_size;
        let &(base, first, n) = self
            .segs
            .iter()
            .find(|&&(base, _, n)| addr >= base && addr - base < n as usize * size)?;
        let off = addr - base;
        if !off.is_multiple_of(size) {
            return None;
        }
        let slot = first + (off / size) as u32;
        let _ = n;
        match self.gens.get(slot as usize) {
            Some(&gen) if gen != 0 => Some((slot, gen)),
            _ => None,
        }
    }
}

/// The part of a context other threads may touch.
pub struct Threads {
    /// `thread_id()` of the service thread; 0 before the first service call. Written
    /// by a thread entering a service call; read only by threads that once did.
    owner: AtomicU64,
    /// Unique for the life of the process (context addresses are reused); set at
    /// creation, before any other thread can know the context.
    serial: u64,
    /// The eventfd that wakes the service loop (also the resolver's).
    waker: Arc<OwnedFd>,
    inner: PMutex<Inner>,
}

impl Threads {
    pub fn new() -> std::io::Result<Threads> {
        let waker = crate::io::sys::eventfd()?;
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        Ok(Threads {
            owner: AtomicU64::new(0),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            waker: Arc::new(waker),
            inner: PMutex::new(Inner {
                gens: Vec::new(),
                segs: Vec::new(),
                entry_size: 1,
                next_gen: 0,
                queue: Vec::new(),
                woken: false,
            }),
        })
    }

    pub fn waker_fd(&self) -> RawFd {
        self.waker.as_raw_fd()
    }

    /// The eventfd, for writers that may outlive the context (resolver threads).
    pub fn waker(&self) -> Arc<OwnedFd> {
        self.waker.clone()
    }

    /// True on the context's service thread. Costs a thread-local lookup and, on
    /// threads that served this context, one atomic load.
    pub fn is_service_thread(&self) -> bool {
        ME.try_with(|me| {
            me.served.borrow().contains(&self.serial)
                && self.owner.load(Ordering::Relaxed) == my_id(me)
        })
        .unwrap_or(false)
    }

    /// Records a new segment of the connection table (service thread).
    pub fn add_segment(&self, base: usize, first: u32, entries: u32, entry_size: usize) {
        let mut g = self.inner.lock();
        g.entry_size = entry_size;
        g.segs.push((base, first, entries));
    }

    /// Records a new connection in entry `slot` (service thread).
    pub fn add_live(&self, slot: u32) {
        let mut g = self.inner.lock();
        g.next_gen = g.next_gen.wrapping_add(1).max(1);
        let gen = g.next_gen;
        let i = slot as usize;
        if g.gens.len() <= i {
            g.gens.resize(i + 1, 0);
        }
        g.gens[i] = gen;
    }

    /// Forgets the connection in entry `slot`, closing for good (service thread).
    /// Requests queued for it are dropped when the queue is taken (the generation no
    /// longer matches).
    pub fn remove_live(&self, slot: u32) {
        let mut g = self.inner.lock();
        if let Some(e) = g.gens.get_mut(slot as usize) {
            *e = 0;
        }
    }

    /// (entry, generation) of the live connection at `addr`, without locking.
    ///
    /// # Safety
    /// Only on the context's service thread while it drives the context (the only
    /// thread that adds or removes connections).
    unsafe fn live_gen_here(&self, addr: usize) -> Option<(u32, u32)> {
        self.inner.peek().live(addr)
    }

    /// Queues a request and wakes the loop (caller holds the registry lock).
    fn push(&self, g: &mut Inner, r: Request) -> bool {
        if g.queue.len() >= MAX_QUEUED {
            return false;
        }
        g.queue.push(r);
        if !g.woken {
            g.woken = true;
            wake(self.waker_fd());
        }
        true
    }
}

/// Wakes a loop waiting on the eventfd.
pub fn wake(fd: RawFd) {
    crate::io::sys::eventfd_signal(fd);
}

/// Live contexts, so that other threads can find a connection's context without
/// dereferencing the connection, and never reach a destroyed context.
struct Entry {
    ctx: usize,
    threads: *const Threads,
}
// SAFETY: `threads` points into a live context (removed from the registry, under the
// lock, before the context is freed); only its Sync part is reached through it.
unsafe impl Send for Entry {}

static REGISTRY: PMutex<Vec<Entry>> = PMutex::new(Vec::new());

/// Makes a new context findable by other threads (its address is final: boxed).
pub fn register(ctx: &Context) {
    REGISTRY.lock().push(Entry {
        ctx: ctx as *const Context as usize,
        threads: &ctx.threads,
    });
}

impl Drop for Threads {
    fn drop(&mut self) {
        // Under the registry lock: a thread that found this context finishes first.
        REGISTRY
            .lock()
            .retain(|e| !std::ptr::eq(e.threads, self as *const Threads));
    }
}

thread_local! {
    /// The context whose service call is running on this thread (NULL outside).
    static SERVING: Cell<*const Context> = const { Cell::new(std::ptr::null()) };
}

/// Held for the duration of `libwebsocket_service` / `_service_fd`: makes the calling
/// thread the context's service thread and records the context as being served here.
pub struct Serving {
    prev: *const Context,
}

impl Serving {
    pub fn enter(ctx: &Context) -> Serving {
        let serial = ctx.threads.serial;
        let _ = ME.try_with(|me| {
            let id = my_id(me);
            let mut served = me.served.borrow_mut();
            if served.last() != Some(&serial) {
                served.retain(|&s| s != serial);
                if served.len() >= SERVED_MAX {
                    served.remove(0);
                }
                served.push(serial);
            }
            // Read by a thread that served before, or written by this one: a hand-over
            // between threads is ordered by the application (see the README).
            if ctx.threads.owner.load(Ordering::Relaxed) != id {
                ctx.threads.owner.store(id, Ordering::Relaxed);
            }
        });
        let prev = SERVING
            .try_with(|c| c.replace(ctx as *const Context))
            .unwrap_or(std::ptr::null());
        Serving { prev }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let prev = self.prev;
        let _ = SERVING.try_with(|c| c.set(prev));
    }
}

/// Decides how a call about connection `wsi` proceeds: `None` when the caller is the
/// service thread of the connection's context (the caller then does the work itself,
/// as before), else the call's result after the request was queued for that thread
/// (`queued`), or -1 when no context has `wsi` as a live connection. `wsi` is never
/// dereferenced here.
///
/// # Safety
/// `context` must be NULL or a live context; when it is the caller's own context, `wsi`
/// must be NULL or one of its connections (as v1.23 required).
pub unsafe fn route_conn(
    context: *const Context,
    wsi: usize,
    make: impl Fn(u32, u32) -> Request,
    queued: libc::c_int,
) -> Option<libc::c_int> {
    // Inside this context's own service call (a callback): its service thread.
    let here = SERVING.try_with(|c| c.get()).unwrap_or(std::ptr::null());
    if !context.is_null() && std::ptr::eq(here, context) {
        return None;
    }
    if let Some(ctx) = context.as_ref() {
        if ctx.threads.is_service_thread() {
            return None;
        }
    }
    if wsi == 0 {
        return Some(-1);
    }
    // Inside a service call (a callback): most likely a connection of that context.
    if let Some(ctx) = here.as_ref() {
        // SAFETY: this thread is inside `ctx`'s service call, so it is the service
        // thread, the only one adding or removing connections.
        if ctx.threads.live_gen_here(wsi).is_some() {
            return None;
        }
    }
    let reg = REGISTRY.lock();
    for e in reg.iter() {
        // SAFETY: registered contexts are live while the registry lock is held.
        let t = &*e.threads;
        let mut g = t.inner.lock();
        let Some((slot, gen)) = g.live(wsi) else {
            continue;
        };
        if t.is_service_thread() {
            // Our own context, called between service calls.
            return None;
        }
        return Some(if t.push(&mut g, make(slot, gen)) {
            queued
        } else {
            -1
        });
    }
    Some(-1)
}

/// As `route_conn`, for a request about every connection of protocol `index` of
/// context `ctx` (the protocol's `owning_server`): `None` on its service thread, else 0
/// once queued, -1 when the context is not live.
///
/// # Safety
/// `ctx` must be a live context.
pub unsafe fn route_protocol(ctx: &Context, index: usize) -> Option<libc::c_int> {
    if ctx.threads.is_service_thread() {
        return None;
    }
    let reg = REGISTRY.lock();
    let Some(e) = reg.iter().find(|e| e.ctx == ctx as *const Context as usize) else {
        return Some(-1);
    };
    // SAFETY: registered contexts are live while the registry lock is held.
    let t = &*e.threads;
    let mut g = t.inner.lock();
    Some(if t.push(&mut g, Request::AllProtocol { index }) {
        0
    } else {
        -1
    })
}

/// The eventfd fired: clears it, then hands over finished name lookups and requests
/// from other threads (service thread).
pub fn on_wake(ctx: &Context) {
    let mut v = [0u8; 8];
    // SAFETY: reads at most 8 bytes into the live array from our eventfd.
    unsafe {
        libc::read(
            ctx.threads.waker_fd(),
            v.as_mut_ptr() as *mut libc::c_void,
            8,
        )
    };
    crate::io::client::resolutions_ready(ctx);
    run_requests(ctx);
}

/// Applies what other threads queued, in order (service thread, inside a service
/// call). A request for a connection that has closed since, even if its address now
/// belongs to a newer connection, is dropped: the generation differs.
pub fn run_requests(ctx: &Context) {
    let reqs = {
        let mut g = ctx.threads.inner.lock();
        g.woken = false;
        std::mem::take(&mut g.queue)
    };
    if reqs.is_empty() {
        return;
    }
    for r in reqs {
        match r {
            Request::Writable { slot, gen } => {
                if let Some(conn) = live_conn(ctx, slot, gen) {
                    crate::io::service::request_writeable_asking_extensions(ctx, conn);
                }
            }
            Request::RxFlow { slot, gen, enable } => {
                if let Some(conn) = live_conn(ctx, slot, gen) {
                    crate::io::service::rx_flow(ctx, conn, enable);
                }
            }
            Request::AllProtocol { index } => {
                if index < ctx.protocols.len() {
                    crate::io::service::writeable_all_protocol(ctx, index);
                }
            }
        }
    }
}

/// The connection in entry `slot` if it is still the live connection of generation
/// `gen` (service thread).
fn live_conn(ctx: &Context, slot: u32, gen: u32) -> Option<&Conn> {
    // SAFETY: called on the service thread from `run_requests`.
    let live = unsafe { ctx.threads.inner.peek() }.gens.get(slot as usize) == Some(&gen);
    if !live {
        return None;
    }
    ctx.conn(slot)
}

/// Fills, once per process and under a pthread mutex (at the first context creation),
/// the CPU-feature caches that dependencies fill lazily on first use: httparse, sha1,
/// std's feature detection, zlib-rs and aws-lc. Each is a benign race when two threads
/// first use them at once (both store the same value), but one that thread checkers
/// such as helgrind report; filled here, every later use is ordered after this by the
/// mutex and the application's own hand-over of the context.
pub fn warm_up_once() {
    static DONE: PMutex<bool> = PMutex::new(false);
    let mut done = DONE.lock();
    if *done {
        return;
    }
    *done = true;
    // Long enough for httparse's vector paths (URI and header values).
    let head = b"GET /warming-up-the-vectorised-parser/of-httparse HTTP/1.1\r\n\
Host: warm-up.localdomain.invalid\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let _ = crate::engine::http::request::parse_request_head(head, &Default::default());
    let _ = crate::engine::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
    #[cfg(target_arch = "x86_64")]
    let _ = std::is_x86_feature_detected!("avx2");
    let mut c = flate2::Compress::new(flate2::Compression::fast(), false);
    let mut out = [0u8; 64];
    let _ = c.compress(b"warm-up", &mut out, flate2::FlushCompress::Finish);
}

/// `engine::tls::warm_up` once per process, under a mutex (for the same thread
/// checkers as `warm_up_once`), right before the first TLS configuration is built:
/// aws-lc seeds its random generator there, which takes tens of milliseconds, so
/// programs that never use TLS do not pay it.
pub fn tls_warm_up_once() {
    static DONE: PMutex<bool> = PMutex::new(false);
    let mut done = DONE.lock();
    if !*done {
        *done = true;
        crate::engine::tls::warm_up();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_ids_differ_and_stay() {
        let a = thread_id();
        assert_ne!(a, 0);
        assert_eq!(a, thread_id());
        let b = std::thread::spawn(thread_id).join().unwrap();
        assert_ne!(a, b);
        assert_ne!(b, 0);
    }

    #[test]
    fn pmutex_excludes() {
        static M: PMutex<u64> = PMutex::new(0);
        let hs: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..10_000 {
                        *M.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*M.lock(), 40_000);
    }

    #[test]
    fn live_finds_entries_by_address_only_at_entry_starts() {
        let g = Inner {
            gens: vec![7, 0, 9, 0, 0, 0, 0, 0, 0, 0, 11],
            segs: vec![(0x10_000, 0, 2), (0x20_000, 2, 4), (0x40_000, 6, 8)],
            entry_size: 240,
            next_gen: 11,
            queue: Vec::new(),
            woken: false,
        };
        assert_eq!(g.live(0x10_000), Some((0, 7)));
        assert_eq!(g.live(0x10_000 + 240), None); // vacant
        assert_eq!(g.live(0x10_000 + 480), None); // past the segment
        assert_eq!(g.live(0x20_000), Some((2, 9)));
        assert_eq!(g.live(0x20_000 + 1), None); // inside an entry
        assert_eq!(g.live(0x40_000 + 4 * 240), Some((10, 11)));
        assert_eq!(g.live(0x40_000 + 8 * 240), None);
        assert_eq!(g.live(0x0fff0), None);
        assert_eq!(g.live(0), None);
    }
}
