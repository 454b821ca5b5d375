//! Every raw system call of the I/O layer, each behind a safe function returning
//! `io::Result` (errno captured): the rest of `io` is `#[forbid(unsafe_code)]` and
//! calls these. [`net`]: sockets, addresses, interfaces; [`process`]: signals, fork,
//! the daemon's detaching, pthread_atfork; here: randomness, the per-session memory
//! handed to C, malloc tuning, eventfd. The one exception is `io::threads` (see its
//! module doc).

use std::cell::UnsafeCell;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// `syscall!(name(args...))`: `libc::name(args...)` as an `io::Result` of its return
/// value, `Err(last_os_error())` when it returned -1. The unsafe call is inside the
/// macro; every use says in a `// SAFETY:` note why its arguments are valid.
macro_rules! syscall {
    ($name:ident ( $($arg:expr),* $(,)? )) => {{
        #[allow(unused_unsafe, clippy::macro_metavars_in_unsafe)]
        let r = unsafe { libc::$name($($arg),*) };
        if r == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }};
}

pub mod net;
pub mod process;

/// Milliseconds of CLOCK_MONOTONIC (the clock `Instant` reads), without `Instant`'s
/// checked arithmetic: the service loop reads it a few times per pass.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec. CLOCK_MONOTONIC cannot fail here.
    let _ = syscall!(clock_gettime(libc::CLOCK_MONOTONIC, &mut ts));
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// A non-blocking, close-on-exec eventfd (the context's wake-up descriptor).
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: eventfd(2) takes no pointers.
    let fd = syscall!(eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC))?;
    // SAFETY: a new descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to the eventfd `fd` (a wake-up); errors (the counter full) are ignored.
pub fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64.
    let _ = syscall!(write(fd, &one as *const u64 as *const libc::c_void, 8));
}

/// Fills `buf` from the kernel CSPRNG (getrandom(2), blocking until seeded).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writes at most `buf.len() - done` bytes into the live slice.
        let n = unsafe {
            libc::getrandom(
                buf[done..].as_mut_ptr() as *mut libc::c_void,
                buf.len() - done,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += n as usize;
    }
    Ok(())
}

/// Zeroed per-session memory handed to C as `void *user`: exactly the requested size
/// from malloc (calloc), as the original's malloc gave. C writes through the pointer;
/// Rust never reads or references the contents. One pointer (free() needs no size).
pub struct UserSpace {
    ptr: std::ptr::NonNull<u8>,
}

impl UserSpace {
    /// None for a zero size (the original passed NULL then) or a failed allocation.
    pub fn zeroed(size: usize) -> Option<UserSpace> {
        if size == 0 {
            return None;
        }
        // SAFETY: calloc(3) with a non-zero size; NULL on failure, checked below.
        let raw = unsafe { libc::calloc(1, size) } as *mut u8;
        std::ptr::NonNull::new(raw).map(|ptr| UserSpace { ptr })
    }

    /// The address handed to the application.
    pub fn ptr(&self) -> crate::io::app::UserPtr {
        crate::io::app::UserPtr::from_raw(self.ptr.as_ptr() as *mut libc::c_void)
    }
}

impl Drop for UserSpace {
    fn drop(&mut self) {
        // SAFETY: allocated by calloc in `zeroed`, freed exactly once.
        unsafe { libc::free(self.ptr.as_ptr() as *mut libc::c_void) }
    }
}

/// glibc malloc thresholds the library sets once per process (see `tune_malloc_once`).
const MMAP_THRESHOLD: libc::c_int = 4 << 20;
const TRIM_THRESHOLD: libc::c_int = 16 << 20;

/// Keeps glibc from handing large message buffers back to the kernel after every message.
///
/// Echo-style applications (the v1.23 pattern: realloc a buffer per message in RECEIVE,
/// free it after the write) allocate and free blocks of about the message size on every
/// message. With glibc's defaults a 1 MiB block is mmap()ed or the heap top is trimmed
/// on free, so each message page-faults its buffer in again: measured 1.0 GB/s vs
/// 3.2 GB/s for 1 MiB echoes with the thresholds below. Both values stay inside the
/// range glibc's own dynamic threshold would reach (32 MiB / 64 MiB).
///
/// Left alone when the process already chose (GLIBC_TUNABLES with glibc.malloc.*, or the
/// legacy MALLOC_*_ variables) or when `LWS_MALLOC_TUNING=0`.
pub fn tune_malloc_once() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let env = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
        if env("LWS_MALLOC_TUNING").as_deref() == Some("0") {
            return;
        }
        let chosen = env("GLIBC_TUNABLES").is_some_and(|t| t.contains("glibc.malloc."))
            || [
                "MALLOC_MMAP_THRESHOLD_",
                "MALLOC_TRIM_THRESHOLD_",
                "MALLOC_TOP_PAD_",
                "MALLOC_MMAP_MAX_",
            ]
            .iter()
            .any(|k| env(k).is_some());
        if chosen {
            crate::log::lws_info!("malloc thresholds left as the environment set them");
            return;
        }
        set_malloc_thresholds();
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_malloc_thresholds() {
    // SAFETY: mallopt only adjusts allocator parameters under glibc's own arena lock.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    };
    if ok {
        crate::log::lws_info!(
            "malloc: mmap threshold {} MiB, trim threshold {} MiB (LWS_MALLOC_TUNING=0 keeps glibc's)",
            MMAP_THRESHOLD >> 20,
            TRIM_THRESHOLD >> 20
        );
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_malloc_thresholds() {}

/// A mutex on `pthread_mutex_t` (std's is built on futexes, which valgrind's thread
/// checkers do not understand). Never held while user code runs. It must not move once
/// used: it lives in a static or inside the boxed context.
pub struct PMutex<T> {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached through the lock (or, for `peek`, under the
// single-writer rule stated there).
unsafe impl<T: Send> Sync for PMutex<T> {}
unsafe impl<T: Send> Send for PMutex<T> {}

pub struct PGuard<'a, T> {
    m: &'a PMutex<T>,
}

impl<T> PMutex<T> {
    pub const fn new(value: T) -> PMutex<T> {
        PMutex {
            lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
            value: UnsafeCell::new(value),
        }
    }

    pub fn lock(&self) -> PGuard<'_, T> {
        // SAFETY: statically initialised and never moved once used (see the type); a
        // default mutex cannot fail to lock except on self-deadlock, which the lock
        // order (registry, then one context) and never locking around user code rule out.
        unsafe { libc::pthread_mutex_lock(self.lock.get()) };
        PGuard { m: self }
    }

    /// Reads the value without the lock.
    ///
    /// # Safety
    /// Only on the one thread that ever writes the value (others only read it, under
    /// the lock), so nothing can change it during the borrow.
    pub unsafe fn peek(&self) -> &T {
        &*self.value.get()
    }
}

impl<T> Drop for PMutex<T> {
    fn drop(&mut self) {
        // SAFETY: nobody holds the mutex any more (we have `&mut self`).
        unsafe { libc::pthread_mutex_destroy(self.lock.get()) };
    }
}

impl<T> std::ops::Deref for PGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the lock is held for the guard's life.
        unsafe { &*self.m.value.get() }
    }
}

impl<T> std::ops::DerefMut for PGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the lock is held for the guard's life, and `&mut self` is unique.
        unsafe { &mut *self.m.value.get() }
    }
}

impl<T> Drop for PGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: locked by this guard in `lock`.
        unsafe { libc::pthread_mutex_unlock(self.m.lock.get()) };
    }
}

/// Entries in the first segment of a [`StableSlab`]; segment `k` holds
/// `SLAB_FIRST << k`.
const SLAB_FIRST: usize = 16;

/// Append-only storage whose entries never move: entry `i` keeps its address from its
/// creation until the slab is dropped, so `&T` handed out live as long as `&self`.
/// Entries are never removed (a caller reuses them through interior mutability). The
/// memory is a few segments of doubling size (16, 32, 64, ... entries), each one
/// allocation with no per-entry header; a segment's pages the kernel maps only once
/// entries are written to them.
///
/// The connection table of a context (`io::context`): a `struct libwebsocket *` stays
/// a valid address for the whole life of its context, whatever happened to the
/// connection.
pub struct StableSlab<T> {
    /// Segment `k` starts at entry `SLAB_FIRST * (2^k - 1)` and holds `SLAB_FIRST << k`.
    /// Only this type touches the vector (no reference to it escapes).
    segs: UnsafeCell<Vec<std::ptr::NonNull<T>>>,
    len: std::cell::Cell<usize>,
}

impl<T> Default for StableSlab<T> {
    fn default() -> Self {
        StableSlab {
            segs: UnsafeCell::new(Vec::new()),
            len: std::cell::Cell::new(0),
        }
    }
}

impl<T> StableSlab<T> {
    /// (segment, offset in it) of entry `i`.
    #[inline]
    fn locate(i: usize) -> (usize, usize) {
        let q = i / SLAB_FIRST + 1;
        let k = (usize::BITS - 1 - q.leading_zeros()) as usize;
        (k, i - SLAB_FIRST * ((1 << k) - 1))
    }

    fn layout(k: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<T>(SLAB_FIRST << k).expect("slab segment size")
    }

    /// Entries created so far.
    #[inline]
    pub fn len(&self) -> usize {
        self.len.get()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry `i`, if created.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len.get() {
            return None;
        }
        let (k, off) = Self::locate(i);
        // SAFETY: no reference to the vector escapes this type and none is held
        // across calls; entries below `len` were written by `push` into segment `k`
        // (allocated for `SLAB_FIRST << k` entries, `off` below that) and are never
        // moved or dropped before the slab.
        unsafe {
            let seg = (&*self.segs.get())[k];
            Some(&*seg.as_ptr().add(off))
        }
    }

    /// Adds `v` as entry `len()`; returns its index and, when the entry opened a new
    /// segment, that segment as (address, first index, entries).
    pub fn push(&self, v: T) -> (usize, Option<(usize, usize, usize)>) {
        assert!(std::mem::size_of::<T>() != 0);
        let i = self.len.get();
        let (k, off) = Self::locate(i);
        // SAFETY: as in `get`: the vector is only touched inside these methods, never
        // while a reference to it lives; a new segment is allocated with the layout of
        // `SLAB_FIRST << k` entries (non-zero size, checked above) before entry `off` of
        // it is written, and the slot written is past every created entry.
        unsafe {
            let segs = &mut *self.segs.get();
            let mut opened = None;
            if k == segs.len() {
                let p = std::alloc::alloc(Self::layout(k)) as *mut T;
                let Some(p) = std::ptr::NonNull::new(p) else {
                    std::alloc::handle_alloc_error(Self::layout(k));
                };
                segs.push(p);
                opened = Some((p.as_ptr() as usize, i, SLAB_FIRST << k));
            }
            segs[k].as_ptr().add(off).write(v);
            self.len.set(i + 1);
            (i, opened)
        }
    }
}

impl<T> Drop for StableSlab<T> {
    fn drop(&mut self) {
        let len = self.len.get();
        let segs = self.segs.get_mut();
        for (k, seg) in segs.iter().enumerate() {
            let first = SLAB_FIRST * ((1 << k) - 1);
            let n = (SLAB_FIRST << k).min(len.saturating_sub(first));
            // SAFETY: the first `n` entries of segment `k` were written by `push` and
            // not dropped; `&mut self` means no reference to them is left; the
            // segment was allocated with this layout.
            unsafe {
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(seg.as_ptr(), n));
                std::alloc::dealloc(seg.as_ptr() as *mut u8, Self::layout(k));
            }
        }
    }
}

#[cfg(test)]
mod slab_tests {
    use super::StableSlab;
    use std::rc::Rc;

    #[test]
    fn entries_keep_their_address_and_are_dropped_once() {
        let counter = Rc::new(());
        let slab = StableSlab::default();
        let mut addrs = Vec::new();
        let mut opened = Vec::new();
        for i in 0..1000usize {
            let (idx, seg) = slab.push((i, counter.clone()));
            assert_eq!(idx, i);
            if let Some(s) = seg {
                opened.push(s);
            }
            addrs.push(slab.get(i).unwrap() as *const _ as usize);
        }
        assert_eq!(slab.len(), 1000);
        assert!(slab.get(1000).is_none());
        for (i, &a) in addrs.iter().enumerate() {
            let e = slab.get(i).unwrap();
            assert_eq!(e.0, i);
            assert_eq!(e as *const _ as usize, a);
        }
        // 16 + 32 + ... + 512 = 1008 >= 1000: six segments, each contiguous.
        assert_eq!(opened.len(), 6);
        let size = std::mem::size_of::<(usize, Rc<()>)>();
        for &(base, first, n) in &opened {
            for j in 0..n.min(1000 - first) {
                assert_eq!(addrs[first + j], base + j * size);
            }
        }
        assert_eq!(Rc::strong_count(&counter), 1001);
        drop(slab);
        assert_eq!(Rc::strong_count(&counter), 1);
    }
}
