//! v1.23 fidelity of the write and receive path (issue 14, items 0, 7, 8, 10),
//! through the C API over 127.0.0.1:
//!
//! * `tests/c/fragments_test.c`: fragmented messages written one fragment per
//!   WRITEABLE (`LWS_WRITE_NO_FIN` / `LWS_WRITE_CONTINUATION`) and reassembled with
//!   `libwebsocket_is_final_fragment` / `libwebsockets_remaining_packet_payload`, as
//!   the original's test-fraggle does: server and client of this library in one
//!   process (deflate-frame, no extension, permessage-deflate), and each of them
//!   against a Python `websockets` peer (`tests/fidelity/peer.py`).
//! * `tests/c/write_fidelity_test.c`: `libwebsocket_write` return values (control
//!   frames count their header and mask), empty messages and fragments,
//!   `LWS_WRITE_CLIENT_IGNORE_XOR_MASK` (frames stay masked), the ignored return
//!   value of ESTABLISHED, `libwebsocket_rx_flow_control` inside ESTABLISHED and
//!   `libwebsocket_callback_on_writable_all_protocol` reaching HTTP connections; in
//!   one process and against Python peers.
//!
//! Programs are compiled into target/ctests/fidelity-write/ against
//! include/libwebsockets.h and the newest libwebsockets.so under target/ (or
//! LWS_LIB_DIR), with the shared harness of tests/common/: every process is held by
//! PID and killed when dropped; every wait has a deadline.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::cc::{built_once, require_library, CBuild};
use common::net::free_port;
use common::paths::{ctests_dir, lib_dir};
use common::proc::Background;
use common::py::start_python;

// ------------------------------------------------------------------ building

struct Progs {
    fragments: PathBuf,
    write: PathBuf,
}

fn progs() -> &'static Progs {
    static P: OnceLock<Result<Progs, String>> = OnceLock::new();
    built_once(&P, || {
        let (dir, lib) = (ctests_dir("fidelity-write"), lib_dir());
        require_library(&lib)?;
        Ok(Progs {
            fragments: CBuild::new("tests/c/fragments_test.c", &dir, &lib).build()?,
            write: CBuild::new("tests/c/write_fidelity_test.c", &dir, &lib).build()?,
        })
    })
}

// ------------------------------------------------------------------ processes

/// `exe args` in the background (killed by PID when dropped).
fn start(exe: &Path, args: &[String]) -> Background {
    let name = exe.file_name().unwrap().to_string_lossy().into_owned();
    Background::start(&name, std::process::Command::new(exe).args(args))
}

/// Waits up to `within` for its exit; true when it exited with status 0 in time
/// (killed otherwise).
fn finish(p: &mut Background, within: Duration) -> bool {
    match p.wait_exit(within) {
        Some(st) => st.success(),
        None => {
            p.kill();
            false
        }
    }
}

fn port_of(line: &str) -> String {
    line.split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no port in {line:?}"))
        .to_string()
}

/// A self-checking program run alone: exit 0 and "0 failure(s)".
fn run_self_test(exe: &Path) {
    let mut p = start(exe, &[]);
    let ok = finish(&mut p, Duration::from_secs(90));
    assert!(
        ok && p.stdout().contains(": 0 failure(s)"),
        "self-test failed: {}",
        p.tail()
    );
}

/// Our side `c_args` (with "{port}") against a Python peer; when `ours_serves`, ours
/// listens on a free port and the peer connects, otherwise the peer listens.
/// Returns the peer's JSON report line.
fn against_python(ours: &Path, c_args: &[&str], peer_args: &[&str], ours_serves: bool) -> String {
    let with_port = |args: &[&str], port: &str| -> Vec<String> {
        args.iter().map(|a| a.replace("{port}", port)).collect()
    };
    let (mut c, mut py);
    if ours_serves {
        let port = free_port().to_string();
        c = start(ours, &with_port(c_args, &port));
        c.line_starting("listening", Duration::from_secs(15));
        let pa = with_port(peer_args, &port);
        let pa: Vec<&str> = pa.iter().map(String::as_str).collect();
        py = start_python("tests/fidelity/peer.py", &pa);
    } else {
        py = start_python("tests/fidelity/peer.py", peer_args);
        let port = port_of(&py.line_starting("port ", Duration::from_secs(15)));
        c = start(ours, &with_port(c_args, &port));
    }
    let c_ok = finish(&mut c, Duration::from_secs(90));
    let py_ok = finish(&mut py, Duration::from_secs(30));
    assert!(
        c_ok && c.stdout().contains(": 0 failure(s)"),
        "our side failed: {}\n\npeer: {}",
        c.tail(),
        py.tail()
    );
    assert!(
        py_ok,
        "the Python peer failed: {}\n\nours: {}",
        py.tail(),
        c.tail()
    );
    py.stdout()
        .lines()
        .rfind(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no report from the peer: {}", py.tail()))
        .to_string()
}

// ------------------------------------------------------------------ item 0: fragments

/// Server and client of this library: deflate-frame (each frame reaches RECEIVE in one
/// piece, as v1.23 delivered it), no extension (pieces of at most rx_buffer_size), and
/// permessage-deflate. Before the fix, is_final_fragment was 1 on every piece of a FIN
/// frame and deflate-frame frames came in rx_buffer_size pieces: test-fraggle's way of
/// reading cut messages apart.
#[test]
fn fragments_between_server_and_client_of_this_library() {
    run_self_test(&progs().fragments);
}

/// A Python `websockets` server sends fragmented messages (frames up to 8000 bytes,
/// empty ones, permessage-deflate or none) to our client, which finds message ends
/// with is_final_fragment alone; the Python side checks our fragmented messages frame
/// by frame.
#[test]
fn fragments_python_server_and_our_client() {
    for exts in ["internal", "none"] {
        let report = against_python(
            &progs().fragments,
            &["client", "{port}", exts, "10"],
            &["frag-server", "10"],
            false,
        );
        assert!(
            report.contains("\"received\": 10") && report.contains("\"errors\": []"),
            "extensions {exts}: {report}"
        );
    }
}

/// The same with our server and a Python client.
#[test]
fn fragments_our_server_and_python_client() {
    for exts in ["internal", "none"] {
        let report = against_python(
            &progs().fragments,
            &["server", "{port}", exts, "10"],
            &["frag-client", "{port}", "10"],
            true,
        );
        assert!(
            report.contains("\"received\": 10") && report.contains("\"errors\": []"),
            "extensions {exts}: {report}"
        );
    }
}

// ------------------------------------------------------------------ items 7, 8, 10

/// Return values of libwebsocket_write (PING 4 bytes: 6 from a server, 10 from a
/// client; data and HTTP: len; len 0: 0 and an empty frame on the wire), an empty
/// final fragment, IGNORE_XOR_MASK (still masked: our server used to close with
/// 1002), -1 from ESTABLISHED and CLIENT_ESTABLISHED ignored, rx_flow_control(0)
/// inside ESTABLISHED holding RECEIVE back, and callback_on_writable_all_protocol
/// delivering HTTP_WRITEABLE to an HTTP connection of protocols[0].
#[test]
fn write_path_between_server_and_client_of_this_library() {
    run_self_test(&progs().write);
}

/// Our client's writes as an independent server sees them: the empty text message,
/// the binary message ended by an empty fragment, and the IGNORE_XOR_MASK frame (a
/// `websockets` server fails the connection on an unmasked frame).
#[test]
fn write_path_our_client_and_python_server() {
    let report = against_python(
        &progs().write,
        &["client", "{port}"],
        &["write-server"],
        false,
    );
    let want = concat!(
        "\"messages\": [{\"text\": \"hello\"}, {\"text\": \"\"}, ",
        "{\"binary\": 3, \"head\": \"616263\", \"pattern\": false}, ",
        "{\"binary\": 70000, \"head\": \"00070e151c232a31\", \"pattern\": true}, ",
        "{\"text\": \"masked\"}, {\"text\": \"bye\"}], \"errors\": []"
    );
    assert!(report.contains(want), "got {report}\nwant {want}");
}

/// Our server's writes as an independent client sees them (the empty text message
/// arrives as one), and our server reading a Python client's messages held back by
/// rx_flow_control(0) in ESTABLISHED until it resumes.
#[test]
fn write_path_our_server_and_python_client() {
    let report = against_python(
        &progs().write,
        &["server", "{port}"],
        &["write-client", "{port}"],
        true,
    );
    let want = concat!(
        "\"messages\": [{\"text\": \"hello\"}, {\"text\": \"\"}, ",
        "{\"binary\": 1048576, \"head\": \"00070e151c232a31\", \"pattern\": true}, ",
        "{\"text\": \"end\"}], \"errors\": [], \"close_code\": 1000"
    );
    assert!(report.contains(want), "got {report}\nwant {want}");
}
