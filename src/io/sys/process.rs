//! Process-level system calls: signals and their handlers, fork, sessions, the
//! daemon's lock file removal on SIGTERM, pthread_atfork. Used by `io::daemon`
//! (`lws_daemonize`) and `io::mask_keys`.

use std::ffi::CString;
use std::io;
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

/// The lock file `lws_daemonize` removes when the daemon gets SIGTERM (a C string
/// leaked on purpose: the signal handler reads it at any time).
static LOCK_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
/// The daemon's pid: in the parent, the child's; in the daemon, its own.
static DAEMON_PID: AtomicI32 = AtomicI32::new(0);

/// getpid(2).
pub fn pid() -> i32 {
    // SAFETY: getpid takes no arguments and cannot fail.
    unsafe { libc::getpid() }
}

/// getppid(2).
pub fn parent_pid() -> i32 {
    // SAFETY: getppid takes no arguments and cannot fail.
    unsafe { libc::getppid() }
}

/// Whether a process `pid` exists (kill(2) with signal 0 succeeds).
pub fn exists(pid: i32) -> bool {
    // SAFETY: kill(2) with signal 0 sends nothing and takes no pointers.
    syscall!(kill(pid, 0)).is_ok()
}

/// kill(2): `sig` to `pid`.
pub fn signal(pid: i32, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) takes no pointers.
    syscall!(kill(pid, sig)).map(|_| ())
}

/// _exit(2): ends the process at once (no atexit handlers, no stdio flush).
pub fn exit_now(code: libc::c_int) -> ! {
    // SAFETY: _exit takes no pointers and never returns.
    unsafe { libc::_exit(code) }
}

/// Sets `f` as the handler of `sig` (sigaction, empty mask, no flags).
fn set_handler(sig: libc::c_int, f: extern "C" fn(libc::c_int)) {
    // SAFETY: sigaction is plain old data (zero is valid); the mask is initialised by
    // sigemptyset before the call, and `f` only calls async-signal-safe functions.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = f as usize;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut());
    }
}

/// Restores the default disposition of `sig`.
pub fn default_signal(sig: libc::c_int) {
    // SAFETY: signal(2) with SIG_DFL installs no code.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Ignores `sig`.
pub fn ignore_signal(sig: libc::c_int) {
    // SAFETY: signal(2) with SIG_IGN installs no code.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

extern "C" fn parent_on_signal(sig: libc::c_int) {
    // In the parent: SIGUSR1 = the daemon detached and wrote its lock file.
    exit_now(if sig == libc::SIGUSR1 { 0 } else { 1 })
}

/// The parent's side of `lws_daemonize`: SIGUSR1 ends the process with 0, SIGCHLD and
/// SIGALRM with 1.
pub fn exit_on_daemon_signals() {
    set_handler(libc::SIGCHLD, parent_on_signal);
    set_handler(libc::SIGUSR1, parent_on_signal);
    set_handler(libc::SIGALRM, parent_on_signal);
}

extern "C" fn daemon_on_sigterm(_sig: libc::c_int) {
    let path = LOCK_PATH.load(Ordering::SeqCst);
    if !path.is_null() && pid() == DAEMON_PID.load(Ordering::SeqCst) {
        // SAFETY: `path` is the C string leaked by `set_lock_path`, never freed.
        unsafe { libc::unlink(path) };
    }
    exit_now(0)
}

/// The lock file the daemon removes on SIGTERM (see [`unlink_lock_on_sigterm`]).
pub fn set_lock_path(path: CString) {
    let old = LOCK_PATH.swap(path.into_raw(), Ordering::SeqCst);
    // an earlier path stays leaked: a handler may still be reading it
    let _ = old;
}

/// Records the daemon's pid (the only process whose SIGTERM removes the lock file).
pub fn set_daemon_pid(pid: i32) {
    DAEMON_PID.store(pid, Ordering::SeqCst);
}

/// In the daemon: on SIGTERM, remove the lock file and exit 0.
pub fn unlink_lock_on_sigterm() {
    set_handler(libc::SIGTERM, daemon_on_sigterm);
}

/// Which side of a fork this is.
pub enum Forked {
    Parent { child: i32 },
    Child,
}

/// fork(2). The child has only the calling thread: `lws_daemonize` is called before
/// the application starts threads or contexts (as in v1.23).
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork(2) takes no pointers; the child only runs the daemon set-up that
    // follows in `io::daemon` (signals, setsid, chdir, stdio, the lock file).
    match syscall!(fork())? {
        0 => Ok(Forked::Child),
        child => Ok(Forked::Parent { child }),
    }
}

/// alarm(2): SIGALRM in `secs` seconds.
pub fn alarm(secs: u32) {
    // SAFETY: alarm takes no pointers.
    unsafe { libc::alarm(secs) };
}

/// Waits for signals forever (their handlers end the process).
pub fn pause_forever() -> ! {
    loop {
        // SAFETY: pause takes no arguments.
        unsafe { libc::pause() };
    }
}

/// setsid(2): a new session without a controlling terminal.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid takes no arguments.
    syscall!(setsid()).map(|_| ())
}

/// chdir("/").
pub fn chdir_root() -> io::Result<()> {
    // SAFETY: a static NUL-terminated string.
    syscall!(chdir(c"/".as_ptr())).map(|_| ())
}

/// Points stdin, stdout and stderr at /dev/null (left alone when it cannot be opened).
pub fn stdio_to_dev_null() {
    // SAFETY: a static NUL-terminated string.
    let Ok(null) = syscall!(open(c"/dev/null".as_ptr(), libc::O_RDWR)) else {
        return;
    };
    for fd in 0..=2 {
        // SAFETY: dup2 of a descriptor opened just above onto the stdio numbers.
        let _ = syscall!(dup2(null, fd));
    }
    if null > 2 {
        // SAFETY: `null` was opened above and is not used again.
        let _ = syscall!(close(null));
    }
}

/// Registers `f` to run in the child after every fork() (pthread_atfork); `f` must only
/// do async-signal-safe work (touch atomics).
pub fn on_fork_in_child(f: extern "C" fn()) {
    // SAFETY: registers a handler; glibc removes it if this library is unloaded.
    unsafe { libc::pthread_atfork(None, None, Some(f)) };
}

/// Runs `f` in a forked child and returns the bytes it produced (at most 4096), read
/// through a pipe; None when the child failed. For tests of fork behaviour.
#[cfg(test)]
pub fn in_forked_child(f: impl FnOnce() -> Vec<u8>) -> Option<Vec<u8>> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills the two-element array.
    syscall!(pipe(fds.as_mut_ptr())).ok()?;
    match fork().ok()? {
        Forked::Child => {
            // SAFETY: closes our copy of the read end.
            let _ = syscall!(close(fds[0]));
            let out = f();
            let n = out.len().min(4096);
            // SAFETY: writes n bytes from the live vector.
            let w = syscall!(write(fds[1], out.as_ptr() as *const libc::c_void, n));
            exit_now(if matches!(w, Ok(w) if w == n as isize) {
                0
            } else {
                1
            })
        }
        Forked::Parent { child } => {
            // SAFETY: closes our copy of the write end.
            let _ = syscall!(close(fds[1]));
            let mut buf = vec![0u8; 4096];
            let mut got = 0;
            loop {
                // SAFETY: reads into the live buffer, within its length.
                match syscall!(read(
                    fds[0],
                    buf[got..].as_mut_ptr() as *mut libc::c_void,
                    buf.len() - got
                )) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n as usize,
                }
                if got == buf.len() {
                    break;
                }
            }
            // SAFETY: closes the read end, not used again.
            let _ = syscall!(close(fds[0]));
            let mut status = 0;
            // SAFETY: waitpid on our own child, status into a live int.
            let _ = syscall!(waitpid(child, &mut status, 0));
            buf.truncate(got);
            (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0).then_some(buf)
        }
    }
}
