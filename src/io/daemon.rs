//! `lws_daemonize`: fork into the background with a pid lock file.
//!
//! The parent waits (at most 2 s) for the child to confirm it detached, writes the
//! child's pid into the lock file and exits 0. The child starts a new session, moves
//! to `/`, points stdio at /dev/null and removes the lock file on SIGTERM.

use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};

static LOCK_PATH: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn parent_on_signal(sig: libc::c_int) {
    // Runs in the parent: SIGUSR1 = the daemon detached and wrote its lock file.
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(if sig == libc::SIGUSR1 { 0 } else { 1 }) }
}

/// Writes the daemon's pid to the lock file atomically (temporary file + rename), so a
/// reader never sees it empty or half written.
fn write_lock_file(path: &[u8], pid: i32) -> bool {
    let mut tmp = path.to_vec();
    tmp.extend_from_slice(format!(".{pid}.tmp").as_bytes());
    if std::fs::write(os_path(&tmp), pid.to_string()).is_err() {
        return false;
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(os_path(&tmp), std::fs::Permissions::from_mode(0o640));
    std::fs::rename(os_path(&tmp), os_path(path)).is_ok()
}

static DAEMON_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn daemon_on_sigterm(_sig: libc::c_int) {
    let path = LOCK_PATH.load(Ordering::SeqCst);
    unsafe {
        if !path.is_null() && libc::getpid() == DAEMON_PID.load(Ordering::SeqCst) {
            libc::unlink(path);
        }
        libc::_exit(0);
    }
}

fn os_path(path: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(path)
}

fn read_lock_pid(path: &[u8]) -> Option<i32> {
    let text = std::fs::read(os_path(path)).ok()?;
    std::str::from_utf8(&text).ok()?.trim().parse().ok()
}

unsafe fn set_handler(sig: libc::c_int, f: extern "C" fn(libc::c_int)) {
    let mut act: libc::sigaction = std::mem::zeroed();
    act.sa_sigaction = f as usize;
    libc::sigemptyset(&mut act.sa_mask);
    libc::sigaction(sig, &act, std::ptr::null_mut());
}

pub fn daemonize(path: &[u8]) -> i32 {
    unsafe {
        if libc::getppid() == 1 {
            return 1;
        }
    }
    if let Some(pid) = read_lock_pid(path) {
        if pid > 0 && unsafe { libc::kill(pid, 0) } == 0 {
            crate::log::lws_err!("Daemon already running from pid {}", pid);
            return 1;
        }
        crate::log::lws_notice!("Removing stale lock file from dead pid {}", pid);
        let _ = std::fs::remove_file(os_path(path));
    }
    let Ok(cpath) = CString::new(path.to_vec()) else {
        return 1;
    };
    LOCK_PATH.store(cpath.into_raw(), Ordering::SeqCst);
    unsafe {
        set_handler(libc::SIGCHLD, parent_on_signal);
        set_handler(libc::SIGUSR1, parent_on_signal);
        set_handler(libc::SIGALRM, parent_on_signal);
        let pid = libc::fork();
        if pid < 0 {
            crate::log::lws_err!("lws_daemonize: fork failed");
            return 1;
        }
        if pid > 0 {
            DAEMON_PID.store(pid, Ordering::SeqCst);
            libc::alarm(2);
            loop {
                libc::pause();
            }
        }
        // The daemon.
        DAEMON_PID.store(libc::getpid(), Ordering::SeqCst);
        let parent = libc::getppid();
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::signal(libc::SIGUSR1, libc::SIG_DFL);
        libc::signal(libc::SIGALRM, libc::SIG_DFL);
        libc::signal(libc::SIGTSTP, libc::SIG_IGN);
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::signal(libc::SIGTTIN, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        if libc::setsid() < 0 {
            libc::_exit(1);
        }
        let _ = libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
        set_handler(libc::SIGTERM, daemon_on_sigterm);
        if !write_lock_file(path, libc::getpid()) {
            libc::_exit(1); // the parent sees SIGCHLD and exits 1
        }
        libc::kill(parent, libc::SIGUSR1);
    }
    0
}
