//! Library logging: the `LLL_*` level mask, the replaceable emitter and the default
//! stderr emitter (`[sec:usec/100] LEVEL: line`, as the original printed it).
//!
//! An emitter the application installs (a C function, `lws_set_log_level`) is kept as
//! an opaque word together with the function that calls it, both registered by capi:
//! this module knows nothing of C function pointers.

use std::ffi::CStr;
use std::io::Write;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::OnceLock;

#[allow(dead_code)]
pub(crate) const LLL_ERR: i32 = 1;
#[allow(dead_code)]
pub(crate) const LLL_WARN: i32 = 2;
#[allow(dead_code)]
pub(crate) const LLL_NOTICE: i32 = 4;
#[allow(dead_code)]
pub(crate) const LLL_INFO: i32 = 8;
#[allow(dead_code)]
pub(crate) const LLL_DEBUG: i32 = 16;
#[allow(dead_code)]
pub(crate) const LLL_PARSER: i32 = 32;
#[allow(dead_code)]
pub(crate) const LLL_HEADER: i32 = 64;
#[allow(dead_code)]
pub(crate) const LLL_EXT: i32 = 128;
#[allow(dead_code)]
pub(crate) const LLL_CLIENT: i32 = 256;
#[allow(dead_code)]
pub(crate) const LLL_LATENCY: i32 = 512;

const LEVEL_NAMES: [&str; 10] = [
    "ERR",
    "WARN",
    "NOTICE",
    "INFO",
    "DEBUG",
    "PARSER",
    "HEADER",
    "EXTENSION",
    "CLIENT",
    "LATENCY",
];

/// Enabled level bits; ERR|WARN|NOTICE by default, as documented.
static LEVEL: AtomicI32 = AtomicI32::new(LLL_ERR | LLL_WARN | LLL_NOTICE);

/// The installed emitter as an opaque non-zero word, or 0 for the default.
static EMITTER: AtomicUsize = AtomicUsize::new(0);

/// Calls an installed emitter: `(emitter word, level, line)`.
pub type Dispatch = fn(usize, i32, &CStr);

/// The one function that calls installed emitters (capi's, registered with the first).
static DISPATCH: OnceLock<Dispatch> = OnceLock::new();

pub fn set_level(level: i32) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// Installs an emitter: `emitter` is an opaque non-zero word that `dispatch` knows how
/// to call. Every caller passes the same `dispatch`.
pub fn set_emitter(emitter: usize, dispatch: Dispatch) {
    let _ = DISPATCH.set(dispatch);
    EMITTER.store(emitter, Ordering::Relaxed);
}

pub fn enabled(filter: i32) -> bool {
    LEVEL.load(Ordering::Relaxed) & filter != 0
}

/// Writes one line to stderr with the original's timestamp and level prefix.
pub fn emit_stderr(level: i32, line: &[u8]) {
    let mut prefix = String::new();
    if let Some(n) = (0..10).find(|n| level == 1 << n) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        prefix = format!(
            "[{}:{:04}] {}: ",
            now.as_secs(),
            now.subsec_micros() / 100,
            LEVEL_NAMES[n]
        );
    }
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(prefix.as_bytes());
    let _ = err.write_all(line);
}

/// Emits an already formatted line through the configured emitter.
pub fn emit_line(level: i32, line: &CStr) {
    let emitter = EMITTER.load(Ordering::Relaxed);
    match DISPATCH.get() {
        Some(dispatch) if emitter != 0 => dispatch(emitter, level, line),
        _ => emit_stderr(level, line.to_bytes()),
    }
}

/// Logs a Rust-formatted message at `level` (a trailing newline is added).
pub fn log(level: i32, args: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let mut s = std::fmt::format(args);
    s.push('\n');
    let s = s.replace('\0', "\\0");
    if let Ok(c) = std::ffi::CString::new(s) {
        emit_line(level, &c);
    }
}

macro_rules! lws_err { ($($a:tt)*) => { $crate::log::log($crate::log::LLL_ERR, format_args!($($a)*)) } }
macro_rules! lws_warn { ($($a:tt)*) => { $crate::log::log($crate::log::LLL_WARN, format_args!($($a)*)) } }
macro_rules! lws_notice { ($($a:tt)*) => { $crate::log::log($crate::log::LLL_NOTICE, format_args!($($a)*)) } }
macro_rules! lws_info { ($($a:tt)*) => { $crate::log::log($crate::log::LLL_INFO, format_args!($($a)*)) } }
macro_rules! lws_debug { ($($a:tt)*) => { $crate::log::log($crate::log::LLL_DEBUG, format_args!($($a)*)) } }
pub(crate) use {lws_debug, lws_err, lws_info, lws_notice, lws_warn};

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn level_mask_filters() {
        let old = LEVEL.load(Ordering::Relaxed);
        set_level(LLL_ERR);
        assert!(enabled(LLL_ERR));
        assert!(!enabled(LLL_NOTICE));
        set_level(old);
    }
}
