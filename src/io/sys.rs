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

    pub fn ptr(&self) -> *mut libc::c_void {
        self.ptr.as_ptr() as *mut libc::c_void
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
