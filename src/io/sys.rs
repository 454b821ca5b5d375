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
/// with malloc's 16-byte alignment, as the original's malloc gave. C writes through the
/// pointer; Rust never reads or references the contents.
pub struct UserSpace {
    ptr: std::ptr::NonNull<u8>,
    size: usize,
}

impl UserSpace {
    /// None for a zero size (the original passed NULL then) or a failed allocation.
    pub fn zeroed(size: usize) -> Option<UserSpace> {
        if size == 0 {
            return None;
        }
        let layout = std::alloc::Layout::from_size_align(size, 16).ok()?;
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc_zeroed(layout) };
        std::ptr::NonNull::new(raw).map(|ptr| UserSpace { ptr, size })
    }

    /// The address handed to the application.
    pub fn ptr(&self) -> crate::io::app::UserPtr {
        crate::io::app::UserPtr::from_raw(self.ptr.as_ptr() as *mut libc::c_void)
    }
}

impl Drop for UserSpace {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this size and alignment (a layout that
        // was valid then), freed exactly once.
        unsafe {
            let layout = std::alloc::Layout::from_size_align_unchecked(self.size, 16);
            std::alloc::dealloc(self.ptr.as_ptr(), layout)
        }
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
