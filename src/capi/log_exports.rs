//! Logging exports: `lws_set_log_level`, `lwsl_emit_syslog`, `lwsl_hexdump` and the
//! `_lws_log` trampoline into the C formatting shim.

use crate::capi::boundary::ffi_guard;
use crate::log;
use libc::{c_char, c_int, c_void, size_t};
use std::ffi::CStr;

extern "C" {
    fn lws_rs_log_format(filter: c_int, format: *const c_char, ...);
    fn lws_rs_log_shim_install(
        enabled: extern "C" fn(c_int) -> c_int,
        sink: extern "C" fn(c_int, *const c_char),
    );
}

extern "C" fn shim_enabled(filter: c_int) -> c_int {
    log::enabled(filter) as c_int
}

extern "C" fn shim_sink(filter: c_int, line: *const c_char) {
    ffi_guard!((), {
        if !line.is_null() {
            // SAFETY: the shim passes its own NUL-terminated stack buffer.
            let line = unsafe { CStr::from_ptr(line) };
            log::emit_line(filter, line);
        }
    })
}

extern "C" fn install_log_shim() {
    // SAFETY: plain function pointers into this crate, stored by the shim.
    unsafe { lws_rs_log_shim_install(shim_enabled, shim_sink) }
}

/// Connects the C formatting shim to Rust when the library is loaded (or, linked
/// statically, when the program starts), before any `_lws_log` call can happen.
#[used]
#[link_section = ".init_array"]
static INSTALL_LOG_SHIM: extern "C" fn() = install_log_shim;

/// `void _lws_log(int filter, const char *format, ...)`: the exported variadic entry.
/// A naked tail jump keeps every variadic argument register and stack slot untouched.
#[cfg(target_arch = "x86_64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn _lws_log(filter: c_int, format: *const c_char) {
    core::arch::naked_asm!("jmp {}", sym lws_rs_log_format)
}

/// See the x86_64 variant.
#[cfg(target_arch = "aarch64")]
#[unsafe(naked)]
#[no_mangle]
pub unsafe extern "C" fn _lws_log(filter: c_int, format: *const c_char) {
    core::arch::naked_asm!("b {}", sym lws_rs_log_format)
}

/// A C log emit function `void (*)(int level, const char *line)`.
type EmitFn = unsafe extern "C" fn(level: c_int, line: *const c_char);

/// Calls the emitter installed by `lws_set_log_level` (registered into `log` as its
/// dispatch; `emitter` is the function's address).
fn call_emitter(emitter: usize, level: i32, line: &CStr) {
    // SAFETY: `log` hands back only words stored by `lws_set_log_level` below, each
    // the address of a non-NULL EmitFn.
    let f = unsafe { std::mem::transmute::<usize, EmitFn>(emitter) };
    // SAFETY: the application gave us this emitter; the line is a valid C string.
    unsafe { f(level, line.as_ptr()) }
}

/// Sets the enabled `LLL_*` bits and, when non-NULL, replaces the emit function.
#[no_mangle]
pub extern "C" fn lws_set_log_level(
    level: c_int,
    log_emit_function: Option<unsafe extern "C" fn(level: c_int, line: *const c_char)>,
) {
    ffi_guard!((), {
        log::set_level(level);
        if let Some(f) = log_emit_function {
            log::set_emitter(f as usize, call_emitter);
        }
    })
}

/// An emit function that sends each line to syslog with a matching priority.
#[no_mangle]
pub unsafe extern "C" fn lwsl_emit_syslog(level: c_int, line: *const c_char) {
    ffi_guard!((), {
        if line.is_null() {
            return;
        }
        let prio = match level {
            log::LLL_ERR => libc::LOG_ERR,
            log::LLL_WARN => libc::LOG_WARNING,
            log::LLL_NOTICE => libc::LOG_NOTICE,
            log::LLL_INFO => libc::LOG_INFO,
            _ => libc::LOG_DEBUG,
        };
        // SAFETY: a constant "%s" format and `line`, non-NULL (checked above) and
        // NUL-terminated (the contract of an emit function).
        unsafe { libc::syslog(prio, c"%s".as_ptr(), line) };
    })
}

/// Logs `len` bytes at `buf` as a hex and ASCII dump at debug level.
#[no_mangle]
pub unsafe extern "C" fn lwsl_hexdump(buf: *mut c_void, len: size_t) {
    ffi_guard!((), {
        if buf.is_null() || !log::enabled(log::LLL_DEBUG) {
            return;
        }
        // SAFETY: the caller passes `buf as *const u8` valid for `len` bytes (the C contract of this argument; checked non-NULL above).
        let data = unsafe { std::slice::from_raw_parts(buf as *const u8, len) };
        for line in crate::engine::util::hexdump_lines(data) {
            log::log(log::LLL_DEBUG, format_args!("{}", line));
        }
    })
}
