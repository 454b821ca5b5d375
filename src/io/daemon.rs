//! `lws_daemonize`: fork into the background with a pid lock file.
//!
//! The parent waits (at most 2 s) for the child to confirm it detached, writes the
//! child's pid into the lock file and exits 0. The child starts a new session, moves
//! to `/`, points stdio at /dev/null and removes the lock file on SIGTERM.

use crate::io::sys::process::{self, Forked};
use std::ffi::CString;

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

fn os_path(path: &[u8]) -> &std::ffi::OsStr {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::OsStr::from_bytes(path)
}

fn read_lock_pid(path: &[u8]) -> Option<i32> {
    let text = std::fs::read(os_path(path)).ok()?;
    std::str::from_utf8(&text).ok()?.trim().parse().ok()
}

pub fn daemonize(path: &[u8]) -> i32 {
    if process::parent_pid() == 1 {
        return 1;
    }
    if let Some(pid) = read_lock_pid(path) {
        if pid > 0 && process::exists(pid) {
            crate::log::lws_err!("Daemon already running from pid {}", pid);
            return 1;
        }
        crate::log::lws_notice!("Removing stale lock file from dead pid {}", pid);
        let _ = std::fs::remove_file(os_path(path));
    }
    let Ok(cpath) = CString::new(path.to_vec()) else {
        return 1;
    };
    process::set_lock_path(cpath);
    process::exit_on_daemon_signals();
    match process::fork() {
        Err(_) => {
            crate::log::lws_err!("lws_daemonize: fork failed");
            return 1;
        }
        Ok(Forked::Parent { child }) => {
            process::set_daemon_pid(child);
            process::alarm(2);
            process::pause_forever();
        }
        Ok(Forked::Child) => {}
    }
    // The daemon.
    process::set_daemon_pid(process::pid());
    let parent = process::parent_pid();
    for sig in [libc::SIGCHLD, libc::SIGUSR1, libc::SIGALRM] {
        process::default_signal(sig);
    }
    for sig in [libc::SIGTSTP, libc::SIGTTOU, libc::SIGTTIN, libc::SIGHUP] {
        process::ignore_signal(sig);
    }
    if process::new_session().is_err() {
        process::exit_now(1);
    }
    let _ = process::chdir_root();
    process::stdio_to_dev_null();
    process::unlink_lock_on_sigterm();
    if !write_lock_file(path, process::pid()) {
        process::exit_now(1); // the parent sees SIGCHLD and exits 1
    }
    let _ = process::signal(parent, libc::SIGUSR1);
    0
}
