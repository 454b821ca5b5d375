//! Compression extensions (permessage-deflate, RFC 7692, and deflate-frame) end to end
//! over 127.0.0.1, plus the zip-bomb limit at the engine level.
//!
//! Builds examples/test-echo.c (which registers `libwebsocket_get_internal_extensions()`)
//! and tests/ext/client_pmd.c against include/libwebsockets.h and the freshest
//! libwebsockets.so under target/ into target/ctests/ext/, and drives them with the
//! Python scripts in tests/ext (`pip install -r tests/requirements.txt`: the `websockets`
//! library, which negotiates permessage-deflate by default, plus raw-socket helpers).
//!
//! Every process is started here, recorded by PID and killed when its guard drops;
//! every wait has a deadline. The Autobahn groups 12 and 13 run in their own test
//! function (several minutes) so that the others can run alongside.

mod common;

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, FlushCompress};
use websockets::engine::extensions::deflate_frame::DeflateFrameSession;
use websockets::engine::extensions::pmd::{PmdError, PmdParams, PmdSession, Role};

use common::cc::{build_all, built_once};
use common::paths::{ctests_dir, lib_dir, TempDir};
use common::proc::{run_merged, start_server, Background, Finished};
use common::py::{python, start_python};
use common::tools::{assert_autobahn_passed, autobahn_runner};

// ------------------------------------------------------------------ locations

fn out_dir() -> PathBuf {
    ctests_dir("ext")
}

struct Programs {
    echo: PathBuf,
    client: PathBuf,
}

/// Compiles examples/test-echo.c and tests/ext/client_pmd.c once per test run.
fn programs() -> &'static Programs {
    static P: OnceLock<Result<Programs, String>> = OnceLock::new();
    built_once(&P, || {
        let lib = lib_dir();
        eprintln!("extensions_behaviour: linking against {}", lib.display());
        let [echo, client] = build_all(
            ["examples/test-echo.c", "tests/ext/client_pmd.c"],
            &out_dir(),
            &lib,
        )?;
        Ok(Programs { echo, client })
    })
}

// ------------------------------------------------------------------ processes

/// examples/test-echo with `args` on a free port, in a scratch directory of its own;
/// killed by PID when dropped.
fn start_echo(args: &[&str]) -> Background {
    let dir = TempDir::new("echo");
    let mut echo = start_server("test-echo", 3, Duration::from_secs(10), |port| {
        let mut cmd = Command::new(&programs().echo);
        cmd.arg("--port")
            .arg(port.to_string())
            .args(args)
            // cargo test puts target/<profile>/deps first, which beats the rpath
            .env("LD_LIBRARY_PATH", lib_dir())
            .current_dir(dir.path());
        cmd
    });
    echo.keep_dir(dir);
    echo
}

/// (VmRSS, VmHWM) of `p` in bytes.
fn memory(p: &Background) -> (u64, u64) {
    (p.status_kib("VmRSS:") * 1024, p.status_kib("VmHWM:") * 1024)
}

/// Runs a command to its end or kills it after `within`; stdout and stderr together.
fn run_bounded(cmd: &mut Command, within: Duration) -> Finished {
    run_merged(
        cmd.env("LD_LIBRARY_PATH", lib_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        within,
    )
}

/// Runs tests/ext/<name> against `echo` and asserts that all its checks passed
/// (exit 0 and a closing "<script>: N passed, 0 failed").
fn run_script(echo: &mut Background, name: &str, args: &[&str], within: Duration) -> String {
    let mut cmd = python(&format!("tests/ext/{name}"));
    cmd.arg("--port").arg(echo.port.to_string()).args(args);
    let f = run_bounded(&mut cmd, within);
    eprintln!("--- {name} {args:?} ---\n{}", f.stdout);
    let stem = name.trim_end_matches(".py");
    let closing = f
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with(&format!("{stem}: ")))
        .unwrap_or("");
    assert!(
        f.ok() && closing.ends_with(" 0 failed") && !closing.contains(": 0 passed"),
        "{name} {args:?} failed:\n{}\n{}",
        f.describe(),
        echo.tail()
    );
    echo.assert_alive(&format!("after {name}"));
    f.stdout
}

// ------------------------------------------------------------------ 1. server side

/// Python `websockets` client with compression against test-echo: text and binary
/// 0 B .. 16 MiB, compressed fragments, many messages, context takeover, every
/// no_context_takeover / window-bits combination (response checked against
/// RFC 7692 7.1 and the offer).
#[test]
fn server_pmd_echo_with_python_client() {
    let mut echo = start_echo(&[]);
    run_script(&mut echo, "pmd_echo.py", &[], Duration::from_secs(170));
}

// ------------------------------------------------------------------ 2. negotiation

/// Raw-socket offers: bad ones declined with a plain 101, a good offer after a bad
/// one taken, deflate-frame names answered, one compression extension at most; a
/// --no-extensions server ignores every offer.
#[test]
fn server_negotiation_edge_cases() {
    let mut echo = start_echo(&[]);
    let plain = start_echo(&["--no-extensions"]);
    let port = plain.port.to_string();
    run_script(
        &mut echo,
        "negotiate_raw.py",
        &["--plain-port", &port],
        Duration::from_secs(60),
    );
}

// ------------------------------------------------------------------ 3. hand-made frames

/// Corrupt streams (1007), RSV1 on continuations (1002), RSV2/RSV3 (1002), bad UTF-8
/// after inflating (1007), plain messages on a pmd connection, BFINAL blocks,
/// 1-byte frames, pings between compressed fragments.
#[test]
fn server_hand_made_frames() {
    let mut echo = start_echo(&[]);
    run_script(
        &mut echo,
        "frames_raw.py",
        &[
            "--only",
            "plain-ok,tiny-frames,bfinal,empty,corrupt,rsv1-cont,rsv23,utf8",
        ],
        Duration::from_secs(60),
    );
}

/// RSV1 on ping, pong and close frames of a connection with permessage-deflate must
/// fail the connection with 1002 (RFC 7692 6.1 defines RSV1 for data messages only;
/// RFC 6455 5.2 forbids other non-zero RSV bits).
#[test]
fn server_rsv1_on_control_frames_closes_1002() {
    let mut echo = start_echo(&[]);
    run_script(
        &mut echo,
        "frames_raw.py",
        &["--only", "rsv1-control"],
        Duration::from_secs(60),
    );
}

/// A 257 MiB message of zeros, compressed to about 260 KB, sent to test-echo: the
/// server closes with 1009 at its 256 MiB message limit. (There is no knob to lower
/// the limit yet; see `pmd_session_zip_bomb_stops_at_the_limit` for a small limit.)
#[test]
fn server_zip_bomb_closes_1009() {
    let mut echo = start_echo(&[]);
    run_script(
        &mut echo,
        "frames_raw.py",
        &["--only", "bomb", "--bomb"],
        Duration::from_secs(90),
    );
    let (rss, hwm) = memory(&echo);
    eprintln!(
        "zip bomb: test-echo VmHWM {} MiB, VmRSS after {} MiB (the echo app itself \
         buffers the message up to the limit)",
        hwm >> 20,
        rss >> 20
    );
    // 256 MiB of message in the application plus the library's share: far below this
    assert!(
        hwm < 1 << 30,
        "test-echo peaked at {} MiB for a bomb",
        hwm >> 20
    );
    // still serving
    run_script(
        &mut echo,
        "frames_raw.py",
        &["--only", "plain-ok"],
        Duration::from_secs(30),
    );
}

// ------------------------------------------------------------------ zip bomb, engine level

/// Raw DEFLATE of `total` bytes of `byte`, sync-flushed, `00 00 ff ff` removed.
fn deflate_raw(total: usize, byte: u8) -> Vec<u8> {
    let mut c = Compress::new_with_window_bits(Compression::new(9), false, 15);
    let block = vec![byte; 1 << 20];
    let mut out: Vec<u8> = Vec::with_capacity(total / 512 + 4096);
    let mut left = total;
    while left > 0 {
        let n = left.min(block.len());
        let mut input = &block[..n];
        while !input.is_empty() {
            if out.capacity() - out.len() < 4096 {
                out.reserve(1 << 16);
            }
            let before = c.total_in();
            c.compress_vec(input, &mut out, FlushCompress::None)
                .unwrap();
            input = &input[(c.total_in() - before) as usize..];
        }
        left -= n;
    }
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(1 << 16);
        }
        c.compress_vec(&[], &mut out, FlushCompress::Sync).unwrap();
        if out.capacity() - out.len() >= 64 {
            break;
        }
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "no sync tail");
    out.truncate(out.len() - 4);
    out
}

/// PmdSession with a 1 MiB limit, as the server uses it with its message limit:
/// a 64 MiB bomb (about 64 KB compressed) fails with TooBig (close 1009) having
/// produced at most limit + 1 bytes, whether it comes in one frame or in many;
/// exactly the limit passes, one byte more fails; the limit is per message; the
/// session stays failed; corrupt data is Corrupt (1007). The same for deflate-frame.
#[test]
fn pmd_session_zip_bomb_stops_at_the_limit() {
    const LIMIT: usize = 1 << 20;
    let bomb = deflate_raw(64 << 20, 0);
    assert!(bomb.len() < 200_000, "bomb is {} bytes", bomb.len());

    // one frame
    let start = Instant::now();
    let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    let mut out = Vec::new();
    let r = s.decompress_fragment(&bomb, true, &mut out);
    assert_eq!(r, Err(PmdError::TooBig));
    assert_eq!(PmdError::TooBig.close_code(), 1009);
    assert!(out.len() <= LIMIT + 1, "produced {} bytes", out.len());
    assert!(
        out.capacity() <= LIMIT + 64 * 1024,
        "output buffer grew to {} bytes",
        out.capacity()
    );
    eprintln!(
        "bomb of {} compressed bytes stopped after {} output bytes in {:?}",
        bomb.len(),
        out.len(),
        start.elapsed()
    );
    // poisoned: the connection is failed anyway, nothing more is inflated
    let mut more = Vec::new();
    assert_eq!(
        s.decompress_fragment(&deflate_raw(10, b'a'), true, &mut more),
        Err(PmdError::TooBig)
    );
    assert!(more.is_empty());

    // many fragments: fails before the end, never holding more than the limit
    let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = bomb.chunks(1024).collect();
    let mut failed_at = None;
    for (i, p) in pieces.iter().enumerate() {
        match s.decompress_fragment(p, i + 1 == pieces.len(), &mut out) {
            Ok(()) => assert!(out.len() <= LIMIT, "{} bytes after fragment {i}", out.len()),
            Err(e) => {
                assert_eq!(e, PmdError::TooBig);
                failed_at = Some(i);
                break;
            }
        }
    }
    let at = failed_at.expect("fragmented bomb accepted");
    assert!(at + 1 < pieces.len(), "failed only at the last fragment");
    assert!(out.len() <= LIMIT + 1);

    // exactly the limit, and one byte more
    for (len, want_ok) in [(LIMIT, true), (LIMIT + 1, false)] {
        let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
        let mut out = Vec::new();
        let r = s.decompress_fragment(&deflate_raw(len, b'z'), true, &mut out);
        assert_eq!(r.is_ok(), want_ok, "message of {len} bytes: {r:?}");
        if want_ok {
            assert_eq!(out.len(), LIMIT);
            assert!(out.iter().all(|&b| b == b'z'));
        }
    }

    // the limit is per message: three messages of 3/4 of it each, context kept
    let mut tx = PmdSession::new(Role::Client, PmdParams::default(), LIMIT);
    let mut rx = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    for i in 0..3u8 {
        let msg = vec![b'a' + i; LIMIT * 3 / 4];
        let mut wire = Vec::new();
        tx.compress_message(&msg, &mut wire).unwrap();
        let mut out = Vec::new();
        rx.decompress_fragment(&wire, true, &mut out)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(out, msg);
    }

    // corrupt
    let mut s = PmdSession::new(Role::Server, PmdParams::default(), LIMIT);
    let r = s.decompress_fragment(&[0x07, 0xff, 0xff, 0xff], true, &mut Vec::new());
    assert_eq!(r, Err(PmdError::Corrupt));
    assert_eq!(PmdError::Corrupt.close_code(), 1007);

    // deflate-frame: the limit applies to each frame
    let mut df = DeflateFrameSession::new(LIMIT);
    let mut out = Vec::new();
    assert_eq!(df.decompress_frame(&bomb, &mut out), Err(PmdError::TooBig));
    assert!(out.len() <= LIMIT + 1);
    assert!(out.capacity() <= LIMIT + 64 * 1024);
}

// ------------------------------------------------------------------ 4. deflate-frame

/// A small deflate-frame client (per-frame raw deflate, RSV1 per frame, context kept)
/// against test-echo, under both names.
#[test]
fn server_deflate_frame_interop() {
    let mut echo = start_echo(&[]);
    run_script(&mut echo, "dframe_client.py", &[], Duration::from_secs(60));
}

/// deflate-frame: a message of two compressed frames, each inflating to 129 MiB (below
/// the 256 MiB limit on its own), is over the message limit: close 1009 rather than
/// delivering 258 MiB to the application.
#[test]
fn server_deflate_frame_message_limit_closes_1009() {
    let mut echo = start_echo(&[]);
    run_script(
        &mut echo,
        "dframe_client.py",
        &["--only", "df-limit", "--limit"],
        Duration::from_secs(90),
    );
}

// ------------------------------------------------------------------ 5. client side

/// tests/ext/pmd_server.py: Python `websockets` echo servers (compression with
/// websockets' defaults, 15-bit, no-context-takeover with 10/9-bit windows, and
/// none). Killed by PID when dropped.
struct PyServer {
    proc: Background,
    ports: Vec<(String, u16)>,
}

impl PyServer {
    fn start() -> PyServer {
        let mut proc = start_python("tests/ext/pmd_server.py", &["--lifetime", "240"]);
        let line = proc.line_starting("ports ", Duration::from_secs(20));
        let ports = line
            .trim_start_matches("ports ")
            .split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_string(), v.parse().ok()?))
            })
            .collect();
        PyServer { proc, ports }
    }

    fn port(&self, name: &str) -> u16 {
        self.ports
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| *p)
            .unwrap_or_else(|| panic!("no listener {name} in {:?}", self.ports))
    }

    /// The "closed listener=NAME path=PATH ..." line of one finished connection.
    fn closed_line(&self, listener: &str, path: &str) -> String {
        let want = format!("closed listener={listener} path={path} ");
        self.proc
            .find_line(&want, Duration::from_secs(10))
            .unwrap_or_else(|| {
                panic!(
                    "pmd_server.py never logged the end of {listener} {path}\n{}",
                    self.proc.output()
                )
            })
    }
}

/// "key=value" of a pmd_server.py line (values are up to the next " key=").
fn field(line: &str, key: &str) -> String {
    let keys = [
        "listener=",
        " path=",
        " offer=",
        " reply=",
        " msgs=",
        " rsv1=",
        " code=",
    ];
    let pat = if key == "listener" {
        "listener=".to_string()
    } else {
        format!(" {key}=")
    };
    let Some(i) = line.find(&pat) else {
        return String::new();
    };
    let rest = &line[i + pat.len()..];
    let end = keys
        .iter()
        .filter_map(|k| rest.find(k))
        .min()
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

fn run_client(args: &[String], within: Duration) -> Finished {
    run_bounded(Command::new(&programs().client).args(args), within)
}

/// Number of whole (non-fragmented) messages client_pmd sends, which the library
/// compresses, and of all its messages (with --max 1048576).
const CLIENT_MSGS: u32 = 70;
const CLIENT_FRAGMENTED: u32 = 3;

/// tests/ext/client_pmd.c with the internal extensions against Python servers: with
/// compression on, permessage-deflate is negotiated (seen by the server) and every
/// whole message arrives compressed, also under the nct listener's no-context-takeover
/// and 9/10-bit windows (which a client ignoring them cannot pass); echoes also come
/// back as compressed fragments; with compression off the echo still works without
/// extension; and against test-echo.
#[test]
fn client_pmd_against_python_servers() {
    let py = PyServer::start();
    let runs = [
        ("default", "/default-ext"),
        ("full", "/full-ext"),
        ("nct", "/nct-ext"),
        ("plain", "/plain-ext"),
        // echoes come back in three (compressed) fragments
        ("default", "/frag-default"),
        ("nct", "/frag-nct"),
        ("plain", "/frag-plain"),
    ];
    for (listener, path) in runs {
        let path = path.to_string();
        let f = run_client(
            &[
                "--port".into(),
                py.port(listener).to_string(),
                "--path".into(),
                path.clone(),
            ],
            Duration::from_secs(70),
        );
        eprintln!("--- client_pmd against {listener} ---\n{}", f.stdout);
        assert!(
            f.ok()
                && f.stdout
                    .contains("client_pmd: 70 messages, 0 failed checks"),
            "client_pmd against {listener}:\n{}",
            f.stdout
        );
        let line = py.closed_line(listener, &path);
        eprintln!("{line}");
        let offer = field(&line, "offer");
        let reply = field(&line, "reply");
        assert!(
            offer.contains("permessage-deflate; client_max_window_bits"),
            "{listener}: offer {offer:?}"
        );
        assert_eq!(field(&line, "msgs"), CLIENT_MSGS.to_string(), "{line}");
        if listener == "plain" {
            assert_eq!(reply, "-", "{line}");
            assert_eq!(field(&line, "rsv1"), "0", "{line}");
        } else {
            assert!(reply.starts_with("permessage-deflate"), "{line}");
            assert_eq!(
                field(&line, "rsv1"),
                (CLIENT_MSGS - CLIENT_FRAGMENTED).to_string(),
                "{listener}: whole messages must go out compressed, fragmented ones plain: {line}"
            );
        }
        assert!(
            ["1000", "1005"].contains(&field(&line, "code").as_str()),
            "{line}"
        );
    }
    // without extensions registered nothing is offered
    let f = run_client(
        &[
            "--port".into(),
            py.port("default").to_string(),
            "--path".into(),
            "/no-ext".into(),
            "--no-extensions".into(),
            "--expect-rsv1".into(),
            "no".into(),
        ],
        Duration::from_secs(70),
    );
    assert!(f.ok(), "client_pmd --no-extensions:\n{}", f.stdout);
    let line = py.closed_line("default", "/no-ext");
    assert_eq!(field(&line, "offer"), "-", "{line}");
    assert_eq!(field(&line, "rsv1"), "0", "{line}");

    // the library's client against the library's server (deflate-frame or pmd)
    let mut echo = start_echo(&[]);
    let f = run_client(
        &[
            "--port".into(),
            echo.port.to_string(),
            "--path".into(),
            "/".into(),
        ],
        Duration::from_secs(70),
    );
    assert!(f.ok(), "client_pmd against test-echo:\n{}", f.stdout);
    echo.assert_alive("after client_pmd");
}

/// tests/ext/reply_server.py: answers each handshake with the extension value the
/// request path asks for, then echoes (inflating as agreed). Killed by PID on drop.
struct ReplyServer {
    proc: Background,
    port: u16,
}

impl ReplyServer {
    fn start() -> ReplyServer {
        let mut proc = start_python("tests/ext/reply_server.py", &["--lifetime", "240"]);
        let line = proc.line_starting("port ", Duration::from_secs(20));
        let port = line[5..].trim().parse().expect("port number");
        ReplyServer { proc, port }
    }

    /// The "done ext=VALUE ..." line of the connection that asked for `ext`.
    fn done_line(&self, ext: &str) -> Option<String> {
        let want = format!("done ext={} offer=", if ext.is_empty() { "-" } else { ext });
        self.proc.find_line(&want, Duration::from_secs(10))
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The client's handling of the server's choice (reply_server.py answers with a
/// chosen Sec-WebSocket-Extensions): replies RFC 7692 allows are taken and honoured
/// (the client compresses within the granted window, resets its context when told;
/// the server inflates accordingly and would close 1007 otherwise); replies with bad
/// or unknown parameters, window bits outside 8..15, a valueless
/// client_max_window_bits, two compression extensions, or an extension never offered
/// fail the handshake (CLIENT_CONNECTION_ERROR once).
#[test]
fn client_takes_only_valid_replies() {
    let srv = ReplyServer::start();
    let accepted = [
        "",
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits=9",
        "permessage-deflate; client_max_window_bits=12; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=8",
        "deflate-frame",
    ];
    let refused = [
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_max_window_bits=16",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; client_max_window_bits=1a",
        "permessage-deflate; foo",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate, permessage-deflate",
        "deflate-frame, permessage-deflate",
        "permessage-deflate, deflate-frame",
        "deflate-frame; max_window_bits=10",
        "foo-unknown",
        "permessage-deflate;;",
    ];
    let mut bad = Vec::new();
    for (ext, refuse) in accepted
        .iter()
        .map(|e| (*e, false))
        .chain(refused.iter().map(|e| (*e, true)))
    {
        let mut args: Vec<String> = vec![
            "--port".into(),
            srv.port.to_string(),
            "--path".into(),
            format!("/?ext={}", url_encode(ext)),
            "--max".into(),
            "300000".into(),
        ];
        if refuse {
            args.push("--expect-error".into());
        }
        let f = run_client(&args, Duration::from_secs(70));
        let line = srv.done_line(ext).unwrap_or_default();
        let ok = f.ok()
            && (refuse
                || (line.contains(" close=close ")
                    && (ext.is_empty() || !line.contains(" compressed=0 "))));
        eprintln!("reply {ext:?}: client ok={}, server: {line}", f.ok());
        if !ok {
            bad.push(format!(
                "reply {ext:?} ({}): {}\n  server: {line}",
                if refuse { "must fail" } else { "must work" },
                f.stdout
                    .lines()
                    .filter(|l| l.starts_with("FAIL"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The client's offer with the internal extensions: v1.23's deflate-frame vetoed the
/// `x-webkit-deflate-frame` name on the client side
/// (`LWS_EXT_CALLBACK_CHECK_OK_TO_PROPOSE_EXTENSION`, before the application's
/// CLIENT_CONFIRM_EXTENSION_SUPPORTED), so the offer is
/// `deflate-frame, permessage-deflate; client_max_window_bits` and the application is
/// asked about those two names only.
#[test]
fn client_offer_leaves_out_x_webkit_deflate_frame() {
    let py = PyServer::start();
    let f = run_client(
        &[
            "--port".into(),
            py.port("plain").to_string(),
            "--path".into(),
            "/offer".into(),
            "--max".into(),
            "1000".into(),
        ],
        Duration::from_secs(70),
    );
    assert!(f.ok(), "client_pmd:\n{}", f.stdout);
    let line = py.closed_line("plain", "/offer");
    assert_eq!(
        field(&line, "offer"),
        "deflate-frame, permessage-deflate; client_max_window_bits",
        "{line}"
    );
    assert!(
        f.stdout
            .contains("offered: deflate-frame,permessage-deflate\n"),
        "names CLIENT_CONFIRM_EXTENSION_SUPPORTED was called with:\n{}",
        f.stdout
    );
}

/// `libwebsocket_get_reserved_bits()` in CLIENT_RECEIVE of a compressed message: v1.23
/// returns the header bits unshifted (`wsi->u.ws.rsv = c & 0x70`), so RSV1 is 0x40;
/// uncompressed messages give 0.
#[test]
fn client_reserved_bits_match_v1_23() {
    let py = PyServer::start();
    for (listener, expect) in [("default", "yes"), ("plain", "no")] {
        let f = run_client(
            &[
                "--port".into(),
                py.port(listener).to_string(),
                "--path".into(),
                "/rsv".into(),
                "--expect-rsv1".into(),
                expect.into(),
            ],
            Duration::from_secs(70),
        );
        assert!(
            f.ok(),
            "client_pmd --expect-rsv1 {expect} against {listener}:\n{}",
            f.stdout
        );
    }
}

// ------------------------------------------------------------------ 6. memory

/// Opens `count` idle connections with `offer` to a fresh test-echo (one message
/// echoed on each) and returns the server's RSS growth per connection in bytes.
fn idle_growth_per_conn(count: usize, offer: &str) -> f64 {
    let mut echo = start_echo(&["--debug", "0"]);
    // settle: one connection first, so lazily made buffers are counted in the base
    let _ = run_bounded(
        python("tests/ext/idle_conns.py").args([
            "--port",
            &echo.port.to_string(),
            "--count",
            "1",
            "--offer",
            offer,
            "--hold",
            "0",
        ]),
        Duration::from_secs(20),
    );
    sleep(Duration::from_millis(300));
    let (before, _) = memory(&echo);
    let mut holder = Background::start_with_stdin(
        "idle_conns.py",
        python("tests/ext/idle_conns.py").args([
            "--port",
            &echo.port.to_string(),
            "--count",
            &count.to_string(),
            "--offer",
            offer,
            "--hold",
            "60",
        ]),
    );
    let Some(ready) = holder.try_line_starting("ready ", Duration::from_secs(60)) else {
        panic!(
            "idle_conns.py ({offer}) never got ready\n{}",
            holder.output()
        );
    };
    sleep(Duration::from_millis(500)); // let the last echoes' buffers go
    let (after, _) = memory(&echo);
    echo.assert_alive("holding idle connections");
    holder.close_stdin(); // EOF: the script closes its connections and exits
    holder.wait_exit(Duration::from_secs(20));
    drop(holder);
    let want_neg = if offer == "none" { 0 } else { count };
    assert!(
        ready.contains(&format!("ready {count} negotiated={want_neg}")),
        "{offer}: {ready}"
    );
    let per = (after.saturating_sub(before)) as f64 / count as f64;
    eprintln!(
        "idle memory, {count} connections, offer {offer:?}: RSS {} -> {} KiB = {:.0} bytes/connection",
        before >> 10,
        after >> 10,
        per
    );
    per
}

/// 1000 idle connections after one compressed message each: RSS growth per
/// connection, reported; asserted below 1 MB only (a leak catcher, not a budget).
/// For comparison the same with no context takeover both ways and without compression.
#[test]
fn idle_compressed_connections_memory() {
    const N: usize = 1000;
    let pmd = idle_growth_per_conn(N, "permessage-deflate");
    let nct = idle_growth_per_conn(
        N,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    );
    let plain = idle_growth_per_conn(N, "none");
    let report = format!(
        "idle RSS per connection: permessage-deflate (context takeover) {pmd:.0} B, \
         no context takeover {nct:.0} B, no compression {plain:.0} B\n"
    );
    eprint!("{report}");
    let _ = fs::create_dir_all(out_dir());
    if let Ok(mut f) = fs::File::create(out_dir().join("idle-memory.txt")) {
        let _ = f.write_all(report.as_bytes());
    }
    assert!(pmd < 1e6, "{pmd:.0} bytes per idle compressed connection");
    assert!(nct < 1e6, "{nct:.0} bytes per idle nct connection");
}

// ------------------------------------------------------------------ 7. Autobahn 12, 13

/// Autobahn|Testsuite groups 12 (permessage-deflate payloads) and 13 (parameters)
/// against test-echo: 0 failed. Skipped with a notice when Autobahn is not installed
/// and CI is unset. Takes several minutes.
#[test]
fn autobahn_compression_groups_12_13() {
    let Some(runner) = autobahn_runner("run-server-tests", "groups 12 and 13") else {
        return;
    };
    let mut echo = start_echo(&["--debug", "0"]);
    let report = out_dir().join("autobahn-12-13");
    // wstest (CPython 2.7) is the bottleneck: 216 cases took 27 min on a 2-core
    // machine shared with other jobs, the slowest case 92 s, hence the generous
    // per-case limit (the runner's default is 120 s).
    let f = run_bounded(
        Command::new(&runner)
            .arg(format!("ws://127.0.0.1:{}/", echo.port))
            .arg("12.*,13.*")
            .arg("--outdir")
            .arg(&report)
            .arg("--timeout")
            .arg("2400")
            .arg("--case-timeout")
            .arg("600"),
        Duration::from_secs(2500),
    );
    println!("{}", f.stdout);
    echo.assert_alive("after Autobahn 12/13");
    assert_autobahn_passed(
        &f,
        "autobahn-server:",
        &format!("12/13 (report in {})", report.display()),
    );
}
