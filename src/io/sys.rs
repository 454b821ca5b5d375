//! The few raw system calls the I/O layer needs, each wrapped to return `io::Result`.

use std::io;

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
