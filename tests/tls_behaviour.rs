//! TLS (rustls) through real sockets on 127.0.0.1, with certificates made for the run by
//! `examples/gen-test-certs.sh` (a throwaway CA, RSA and ECDSA server certificates, a
//! chain through an intermediate, client certificates):
//!
//! * `examples/test-server.c --ssl` under curl: the page byte-exact, 20 parallel
//!   downloads of a 5 MB file; an ECDSA certificate; a leaf + intermediate chain;
//!   required client certificates (PERFORM_CLIENT_CERT_VERIFICATION, and its veto);
//!   the cipher-list mapping; misbehaving clients (plain HTTP, garbage instead of a
//!   ClientHello, 50 handshakes at once, silence after the handshake);
//! * `examples/test-echo.c --ssl` under Python `websockets` (`tests/tls/tls_check.py`):
//!   message sizes up to 16 MiB, 20 parallel clients, fragments, pings, close codes,
//!   invalid UTF-8; and Autobahn's fuzzingclient over wss:// (groups 1-10);
//! * the client: `tests/tls/client_tls.c` against `tests/tls/wss_server.py`
//!   (`ssl_connection` 1 with the CA, a wrong host name, an untrusted certificate;
//!   `ssl_connection` 2), and `examples/test-client.c --ssl/--ssl-verify`;
//! * application extensions over TLS: `tests/c/ext_hooks_test.c` with its server on
//!   TLS (every v1.23 extension hook through rustls);
//! * `ldd` of the library: no libssl/libcrypto; the system's OpenSSL in the same process
//!   (`tests/tls/openssl_coexist.c`, linked with the shared and with the static library):
//!   its client handshakes with the library's server, and no global symbol of
//!   `libwebsockets.a` (aws-lc's included) is also one of libssl's or libcrypto's;
//! * TLS contexts created and used on three threads at once (`tests/tls/tls_threads.c`)
//!   under helgrind and drd, with the RSA and the ECDSA certificate.
//!
//! The library must have been built first (`cargo build --release`). Build products and
//! certificates go to `target/ctests/tls/`. Every process is killed by its PID when its
//! test ends, and every wait is bounded.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::cc::{build_all, built_once, CBuild, Link};
use common::net::{free_port, free_ports_below_ephemeral};
use common::paths::{ctests_dir, release_dir, repo};
use common::pattern;
use common::proc::{run, start_server, Background, Finished};
use common::py::{connect_proxy, python, start_python};
use common::tools::{assert_autobahn_passed, autobahn_runner, optional_tool};

fn out_dir() -> PathBuf {
    ctests_dir("tls")
}

// ----------------------------------------------------------------- building

struct Programs {
    test_server: PathBuf,
    test_echo: PathBuf,
    test_client: PathBuf,
    client_tls: PathBuf,
}

fn programs() -> &'static Programs {
    static BUILT: OnceLock<Result<Programs, String>> = OnceLock::new();
    built_once(&BUILT, || {
        let [test_server, test_echo, test_client, client_tls] = build_all(
            [
                "examples/test-server.c",
                "examples/test-echo.c",
                "examples/test-client.c",
                "tests/tls/client_tls.c",
            ],
            &out_dir(),
            &release_dir(),
        )?;
        Ok(Programs {
            test_server,
            test_echo,
            test_client,
            client_tls,
        })
    })
}

/// The certificates of this run (examples/gen-test-certs.sh --ecdsa), made once.
fn certs() -> &'static Path {
    static MADE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    built_once::<PathBuf>(&MADE, || {
        let dir = out_dir().join("certs");
        let _ = std::fs::remove_dir_all(&dir);
        let f = run(
            Command::new("bash")
                .arg(repo().join("examples/gen-test-certs.sh"))
                .arg("--ecdsa")
                .arg(&dir),
            Duration::from_secs(90),
        );
        if f.ok() && dir.join("ca.pem").is_file() {
            Ok(dir)
        } else {
            Err(format!(
                "examples/gen-test-certs.sh failed: {}",
                f.describe()
            ))
        }
    })
}

fn cert(name: &str) -> String {
    certs().join(name).display().to_string()
}

// ----------------------------------------------------------------- peers

/// test-server with `--ssl` and `extra` arguments, on a free port.
fn tls_test_server(extra: &[&str]) -> (Background, u16) {
    let server = start_server("test-server", 1, Duration::from_secs(10), |port| {
        let mut cmd = Command::new(&programs().test_server);
        cmd.args(["--port", &port.to_string(), "--ssl"]).args(extra);
        cmd
    });
    let port = server.port;
    (server, port)
}

/// test-echo with `--ssl` and the RSA certificate.
fn tls_test_echo() -> (Background, u16) {
    let server = start_server("test-echo", 1, Duration::from_secs(10), |port| {
        let mut cmd = Command::new(&programs().test_echo);
        cmd.args([
            "--port",
            &port.to_string(),
            "--ssl",
            "--cert",
            &cert("server.pem"),
            "--key",
            &cert("server-key.pem"),
        ]);
        cmd
    });
    let port = server.port;
    (server, port)
}

fn rsa_args() -> Vec<String> {
    vec![
        "--cert".into(),
        cert("server.pem"),
        "--key".into(),
        cert("server-key.pem"),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// tests/tls/wss_server.py with the certificate `name`.pem.
fn python_wss_server(name: &str) -> (Background, u16) {
    let cert_arg = cert(&format!("{name}.pem"));
    let key_arg = cert(&format!("{name}-key.pem"));
    let mut server = start_python(
        "tests/tls/wss_server.py",
        &["--cert", &cert_arg, "--key", &key_arg],
    );
    let port = server.read_port("wss");
    (server, port)
}

/// Runs tests/tls/tls_check.py (`args` then the check names) and asserts all passed.
fn tls_check(port: u16, args: &[&str], server: &Background, limit: Duration) -> Finished {
    let f = run(
        python("tests/tls/tls_check.py")
            .args(["--port", &port.to_string(), "--ca", &cert("ca.pem")])
            .args(args),
        limit,
    );
    println!("tls_check {args:?}:\n{}", f.stdout);
    assert!(
        f.ok() && f.stdout.contains(" 0 failed"),
        "tls_check {args:?}: {}\n{}",
        f.describe(),
        server.output()
    );
    f
}

fn curl(args: &[&str], limit_s: u64) -> Finished {
    run(
        Command::new("curl")
            .args(["-sS", "--fail", "--max-time", &limit_s.to_string()])
            .args(args),
        Duration::from_secs(limit_s + 10),
    )
}

/// curl https://localhost:PORT/ with the test CA: the body must equal examples/test.html.
fn assert_page(port: u16, host: &str, server: &Background) {
    let want = std::fs::read(repo().join("examples/test.html")).unwrap();
    let dest = out_dir().join(format!("page-{port}-{host}.html"));
    let url = format!("https://{host}:{port}/");
    let f = curl(
        &[
            "--cacert",
            &cert("ca.pem"),
            "-o",
            dest.to_str().unwrap(),
            &url,
        ],
        30,
    );
    assert!(f.ok(), "curl {url}: {}\n{}", f.describe(), server.output());
    let got = std::fs::read(&dest).unwrap_or_default();
    assert!(
        got == want,
        "{url}: {} bytes, not the {} bytes of examples/test.html",
        got.len(),
        want.len()
    );
}

// ----------------------------------------------------------------- https

#[test]
fn https_page_and_parallel_downloads() {
    let res = out_dir().join("res");
    std::fs::create_dir_all(&res).unwrap();
    let big = pattern(5 * 1000 * 1000, 7);
    std::fs::write(res.join("big.bin"), &big).unwrap();

    let mut args = rsa_args();
    args.extend(["--resource-path".into(), res.display().to_string()]);
    let (mut server, port) = tls_test_server(&strs(&args));
    assert!(
        server.wait_for_stderr(|s| s.contains("(TLS only)"), Duration::from_secs(5)),
        "{}",
        server.output()
    );
    assert_page(port, "localhost", &server);
    assert_page(port, "127.0.0.1", &server);

    // plain http:// on the TLS port gets no page
    let f = curl(&[&format!("http://127.0.0.1:{port}/")], 10);
    assert!(
        !f.ok(),
        "http:// on the TLS port succeeded: {}",
        f.describe()
    );
    assert!(
        f.elapsed < Duration::from_secs(10),
        "http:// on the TLS port: {}",
        f.describe()
    );

    // 20 downloads of 5 MB at once
    let url = format!("https://localhost:{port}/big.bin");
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let dest = out_dir().join(format!("big-{port}-{i}.bin"));
            let url = url.clone();
            let ca = cert("ca.pem");
            std::thread::spawn(move || {
                let f = curl(&["--cacert", &ca, "-o", dest.to_str().unwrap(), &url], 90);
                (dest, f)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (dest, f) = h.join().unwrap();
        assert!(
            f.ok(),
            "download {i}: {}\n{}",
            f.describe(),
            server.output()
        );
        let got = std::fs::read(&dest).unwrap_or_default();
        assert!(
            got == big,
            "download {i}: {} bytes, expected the {} bytes of big.bin",
            got.len(),
            big.len()
        );
        let _ = std::fs::remove_file(&dest);
    }
    server.assert_alive("");
}

#[test]
fn ecdsa_certificate() {
    let (server, port) = tls_test_server(&[
        "--cert",
        &cert("server-ecdsa.pem"),
        "--key",
        &cert("server-ecdsa-key.pem"),
    ]);
    assert_page(port, "localhost", &server);
    tls_check(
        port,
        &[
            "--cipher",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "--expect",
            "ok",
            "tls12-cipher",
            "tls13",
        ],
        &server,
        Duration::from_secs(60),
    );
    // our client verifies an ECDSA chain too
    let f = run(
        Command::new(&programs().test_client).args([
            "--port",
            &port.to_string(),
            "--ssl-verify",
            "--ca",
            &cert("ca.pem"),
            "--count",
            "5",
            "--timeout",
            "20",
            "--interval",
            "20",
            "localhost",
        ]),
        Duration::from_secs(30),
    );
    assert!(f.ok(), "test-client: {}\n{}", f.describe(), server.output());
}

#[test]
fn certificate_chain_verifies_at_the_client() {
    // the server sends leaf + intermediate; clients trust only the root
    let (server, port) = tls_test_server(&[
        "--cert",
        &cert("chain.pem"),
        "--key",
        &cert("chain-key.pem"),
    ]);
    assert_page(port, "localhost", &server);
    let f = run(
        Command::new(&programs().test_client).args([
            "--port",
            &port.to_string(),
            "--ssl-verify",
            "--ca",
            &cert("ca.pem"),
            "--count",
            "5",
            "--timeout",
            "20",
            "--interval",
            "20",
            "127.0.0.1",
        ]),
        Duration::from_secs(30),
    );
    assert!(f.ok(), "test-client: {}\n{}", f.describe(), server.output());

    let (py, py_port) = python_wss_server("chain");
    let f = client_tls(py_port, &["--ssl", "1", "--ca", &cert("ca.pem")], "ok");
    assert!(f.ok(), "client_tls: {}\n{}", f.describe(), py.output());
}

// ----------------------------------------------------------------- wss echo

#[test]
fn wss_echo_sizes_and_parallel_clients() {
    let (server, port) = tls_test_echo();
    tls_check(
        port,
        &["sizes", "parallel"],
        &server,
        Duration::from_secs(150),
    );
}

#[test]
fn wss_fragments_close_codes_invalid_utf8() {
    let (server, port) = tls_test_echo();
    tls_check(
        port,
        &[
            "fragments",
            "close-codes",
            "invalid-utf8",
            "protocol-errors",
        ],
        &server,
        Duration::from_secs(120),
    );
}

#[test]
fn autobahn_wss_groups_1_to_10() {
    let Some(runner) = autobahn_runner("run-server-tests", "the wss conformance run") else {
        return;
    };
    let (server, port) = tls_test_echo();
    let report = out_dir().join("autobahn-wss");
    let _ = std::fs::remove_dir_all(&report);
    // The fuzzingclient connects with Twisted's ClientContextFactory: no certificate
    // verification, no SNI; nothing to trust.
    let f = run(
        Command::new(&runner)
            .arg(format!("wss://127.0.0.1:{port}/"))
            .arg("--no-compression")
            .arg("--timeout")
            .arg("240")
            .arg("--outdir")
            .arg(&report),
        Duration::from_secs(300),
    );
    println!("{}", f.stdout);
    assert_autobahn_passed(
        &f,
        "autobahn-server:",
        &format!("over wss\n{}", server.output()),
    );
}

// ----------------------------------------------------------------- our client

fn client_tls(port: u16, args: &[&str], expect: &str) -> Finished {
    let f = run(
        Command::new(&programs().client_tls)
            .args(["--port", &port.to_string(), "--timeout", "60"])
            .args(args)
            .args(["--expect", expect]),
        Duration::from_secs(90),
    );
    println!("client_tls {args:?} --expect {expect}:\n{}", f.stdout);
    f
}

#[test]
fn client_verification_and_allow_self_signed() {
    let ca = cert("ca.pem");
    let (mut py, port) = python_wss_server("server");
    let cases: &[(&[&str], &str)] = &[
        // the CA in ssl_ca_filepath: verified, by name and by address
        (
            &["--ssl", "1", "--ca", &ca, "--host", "localhost", "--big"],
            "ok",
        ),
        (&["--ssl", "1", "--ca", &ca], "ok"),
        (&["--ssl", "1", "--ca", &ca, "--no-host"], "ok"),
        (&["--ssl", "1", "--ca", &ca, "--host", ""], "ok"),
        // the certificate is for localhost/127.0.0.1, not wrong.example
        (
            &["--ssl", "1", "--ca", &ca, "--host", "wrong.example"],
            "error",
        ),
        // nobody vouches for the test CA
        (&["--ssl", "1", "--host", "localhost"], "error"),
        // allow self-signed: anything goes
        (&["--ssl", "2", "--host", "localhost"], "ok"),
        (&["--ssl", "2", "--host", "wrong.example"], "ok"),
    ];
    for (args, expect) in cases {
        let f = client_tls(port, args, expect);
        assert!(
            f.ok(),
            "client_tls {args:?} --expect {expect}: {}\n{}",
            f.describe(),
            py.output()
        );
    }
    // SNI: the host argument, none for an address
    assert!(
        py.wait_for_stderr(|s| s.contains("sni localhost"), Duration::from_secs(5))
            && py.stderr().contains("sni wrong.example")
            && py.stderr().contains("sni none"),
        "SNI names not as expected\n{}",
        py.output()
    );
    // every session ended with a complete closing handshake
    assert!(
        !py.stderr().contains("ConnectionClosedError"),
        "a client close was not clean\n{}",
        py.output()
    );
    py.assert_alive("");

    // a self-signed server certificate
    let (py2, port2) = python_wss_server("selfsigned");
    let f = client_tls(port2, &["--ssl", "1", "--host", "localhost"], "error");
    assert!(
        f.ok(),
        "self-signed, verifying: {}\n{}",
        f.describe(),
        py2.output()
    );
    let f = client_tls(
        port2,
        &["--ssl", "1", "--ca", &ca, "--host", "localhost"],
        "error",
    );
    assert!(
        f.ok(),
        "self-signed, verifying with another CA: {}\n{}",
        f.describe(),
        py2.output()
    );
    let f = client_tls(port2, &["--ssl", "2", "--host", "localhost"], "ok");
    assert!(
        f.ok(),
        "self-signed, allowed: {}\n{}",
        f.describe(),
        py2.output()
    );
}

#[test]
fn client_through_connect_proxy() {
    let (py, port) = python_wss_server("server");
    let (mut px, px_port) = connect_proxy();
    // http_proxy is read by libwebsocket_create_context; TLS starts after the CONNECT
    let f = run(
        Command::new(&programs().client_tls)
            .env("http_proxy", format!("127.0.0.1:{px_port}"))
            .args(["--port", &port.to_string(), "--timeout", "60"])
            .args(["--ssl", "1", "--ca", &cert("ca.pem"), "--host", "localhost"])
            .args(["--expect", "ok"]),
        Duration::from_secs(90),
    );
    assert!(
        f.ok(),
        "client_tls through the proxy: {}\n{}\n{}",
        f.describe(),
        py.output(),
        px.output()
    );
    // the proxy saw the tunnel request
    px.line_starting(&format!("CONNECT 127.0.0.1:{port}"), Duration::from_secs(5));
}

/// The extension-hook conversation of `tests/c/ext_hooks_test.c` (PREPARSE on the
/// decrypted bytes, PRESEND/DO_SEND before encryption, the close veto, FLUSH before
/// the close frame...) with its server on TLS and its clients on `ssl_connection` 2.
#[test]
fn application_extension_hooks_over_tls() {
    let _ = programs(); // the library is built
    let bin = CBuild::new("tests/c/ext_hooks_test.c", &out_dir(), &release_dir())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let f = run(
        Command::new(&bin)
            .env("EXT_HOOKS_CERT", cert("server.pem"))
            .env("EXT_HOOKS_KEY", cert("server-key.pem")),
        Duration::from_secs(60),
    );
    assert!(f.ok(), "ext_hooks_test over TLS: {}", f.describe());
    assert!(
        f.stdout.contains("ext_hooks_test: all checks passed"),
        "{}",
        f.describe()
    );
}

#[test]
fn ssl_option_errors() {
    let p = programs();
    let cases: Vec<(&Path, Vec<&str>, &str)> = vec![
        (&p.test_server, vec!["--cert", "x.pem"], "need --ssl"),
        (
            &p.test_server,
            vec!["--ssl", "--require-client-cert"],
            "needs --ca",
        ),
        (&p.test_echo, vec!["--key", "x.pem"], "need --ssl"),
        (
            &p.test_client,
            vec!["--ssl", "--ssl-verify", "127.0.0.1"],
            "exclude each other",
        ),
        (
            &p.test_server,
            vec!["--ssl", "--cert", "/nonexistent/cert.pem", "--key", "k.pem"],
            "cannot read the certificate file '/nonexistent/cert.pem'",
        ),
    ];
    for (bin, args, message) in cases {
        let f = run(Command::new(bin).args(&args), Duration::from_secs(10));
        assert_eq!(f.code(), Some(1), "{args:?}: {}", f.describe());
        assert!(f.stderr.contains(message), "{args:?}: {}", f.describe());
    }
    // the default certificate is not in the repository: a clear message, exit 1
    if !repo().join("examples/test-cert.pem").exists() {
        for bin in [&p.test_server, &p.test_echo] {
            let f = run(
                Command::new(bin).args(["--ssl", "--port", &free_port().to_string()]),
                Duration::from_secs(10),
            );
            assert_eq!(f.code(), Some(1), "{}", f.describe());
            assert!(
                f.stderr.contains("examples/test-cert.pem")
                    && f.stderr.contains("gen-test-certs.sh"),
                "{}",
                f.describe()
            );
        }
    }
}

#[test]
fn test_client_over_tls() {
    let (server, port) = tls_test_server(&strs(&rsa_args()));
    let p = programs();
    let base = [
        "--port".to_string(),
        port.to_string(),
        "--count".into(),
        "10".into(),
        "--timeout".into(),
        "30".into(),
        "--interval".into(),
        "20".into(),
    ];
    let ca = cert("ca.pem");
    for extra in [
        vec!["--ssl", "127.0.0.1"],
        vec!["--ssl-verify", "--ca", &ca, "localhost"],
    ] {
        let f = run(
            Command::new(&p.test_client).args(&base).args(&extra),
            Duration::from_secs(45),
        );
        assert!(
            f.ok(),
            "test-client {extra:?}: {}\n{}",
            f.describe(),
            server.output()
        );
        let echoes = f.stdout.matches("mirror echo ").count();
        let counters = f.stdout.matches("counter: ").count();
        assert!(
            echoes >= 10 && counters >= 2,
            "test-client {extra:?}: {echoes} echoes, {counters} counters\n{}",
            f.stdout
        );
    }
    // verifying without the CA: both connections fail
    let f = run(
        Command::new(&p.test_client)
            .args(&base)
            .args(["--ssl-verify", "localhost"]),
        Duration::from_secs(45),
    );
    assert_eq!(f.code(), Some(1), "unverified: {}", f.describe());
    assert!(
        f.stderr.contains("connection failed"),
        "unverified: {}",
        f.describe()
    );
}

// ----------------------------------------------------------------- client certificates

fn der_len(pem: &str) -> usize {
    let der = out_dir().join("client.der");
    let f = run(
        Command::new("openssl")
            .args(["x509", "-in", pem, "-outform", "DER", "-out"])
            .arg(&der),
        Duration::from_secs(20),
    );
    assert!(f.ok(), "openssl x509: {}", f.describe());
    std::fs::metadata(&der).unwrap().len() as usize
}

fn client_cert_check(port: u16, cert_name: Option<&str>, expect: &str, server: &Background) {
    let mut args: Vec<String> = Vec::new();
    if let Some(name) = cert_name {
        args.extend([
            "--cert".into(),
            cert(&format!("{name}.pem")),
            "--key".into(),
            cert(&format!("{name}-key.pem")),
        ]);
    }
    args.extend(["--expect".into(), expect.into(), "client-cert".into()]);
    tls_check(port, &strs(&args), server, Duration::from_secs(45));
}

#[test]
fn required_client_certificates() {
    let mut args = rsa_args();
    args.extend([
        "--ca".into(),
        cert("ca.pem"),
        "--require-client-cert".into(),
    ]);
    let (mut server, port) = tls_test_server(&strs(&args));
    client_cert_check(port, None, "refused", &server);
    client_cert_check(port, Some("rogue-client"), "refused", &server);
    assert!(
        !server.stderr().contains("client certificate verification"),
        "PERFORM_CLIENT_CERT_VERIFICATION for a certificate rustls refused\n{}",
        server.output()
    );
    client_cert_check(port, Some("client"), "ok", &server);
    let line = format!(
        "client certificate verification: {} bytes of DER, accepted",
        der_len(&cert("client.pem"))
    );
    assert!(
        server.wait_for_stderr(|s| s.contains(&line), Duration::from_secs(5)),
        "no '{line}' on the server's stderr\n{}",
        server.output()
    );
    server.assert_alive("");

    // the application vetoes every certificate
    args.push("--veto-client-cert".into());
    let (mut veto, vport) = tls_test_server(&strs(&args));
    client_cert_check(vport, Some("client"), "refused", &veto);
    assert!(
        veto.wait_for_stderr(
            |s| s.contains("client certificate verification: "),
            Duration::from_secs(5)
        ) && veto.stderr().contains(", vetoed"),
        "the veto was not consulted\n{}",
        veto.output()
    );
    veto.assert_alive("");
}

// ----------------------------------------------------------------- ciphers

#[test]
fn cipher_list_narrows_tls12_suites() {
    let mut args = rsa_args();
    args.extend([
        "--ciphers".into(),
        "ECDHE-RSA-AES256-GCM-SHA384:HIGH:!aNULL:RC4-MD5".into(),
    ]);
    let (server, port) = tls_test_server(&strs(&args));
    for (cipher, expect) in [
        ("ECDHE-RSA-AES256-GCM-SHA384", "ok"),
        ("ECDHE-RSA-AES128-GCM-SHA256", "refused"),
        ("ECDHE-RSA-CHACHA20-POLY1305", "refused"),
    ] {
        tls_check(
            port,
            &["--cipher", cipher, "--expect", expect, "tls12-cipher"],
            &server,
            Duration::from_secs(30),
        );
    }
    tls_check(port, &["tls13"], &server, Duration::from_secs(30));
    assert!(
        server.stderr().contains("RC4-MD5"),
        "no warning about the RC4-MD5 rustls lacks\n{}",
        server.output()
    );
}

// ----------------------------------------------------------------- robustness

#[test]
fn misbehaving_tls_clients() {
    let (mut server, port) = tls_test_server(&strs(&rsa_args()));
    let f = tls_check(
        port,
        &["plain-http", "garbage", "handshakes", "idle"],
        &server,
        Duration::from_secs(120),
    );
    server.assert_alive("");
    assert!(
        f.stdout.contains("PASS idle"),
        "idle connections\n{}",
        f.stdout
    );
    assert_page(port, "localhost", &server);
}

// ----------------------------------------------------------------- no OpenSSL

#[test]
fn library_does_not_link_openssl() {
    let so = release_dir().join("libwebsockets.so");
    assert!(
        so.is_file(),
        "{} missing: cargo build --release",
        so.display()
    );
    let f = run(Command::new("ldd").arg(&so), Duration::from_secs(20));
    assert!(f.ok(), "ldd: {}", f.describe());
    println!("{}", f.stdout);
    for lib in ["libssl", "libcrypto", "libgnutls", "libmbedtls"] {
        assert!(
            !f.stdout.contains(lib),
            "{} links {lib}:\n{}",
            so.display(),
            f.stdout
        );
    }
}

/// The system's shared library `name` (libssl.so, libcrypto.so) as the C compiler finds
/// it, or None when it is not installed (libssl-dev).
fn system_lib(name: &str) -> Option<PathBuf> {
    let f = run(
        Command::new(common::cc::compiler(common::cc::Lang::C))
            .arg(format!("-print-file-name={name}")),
        Duration::from_secs(20),
    );
    let p = PathBuf::from(f.stdout.trim());
    (f.ok() && p.is_absolute() && p.exists()).then_some(p)
}

/// Global and weak symbols a file defines (`readelf -sW`, `--dyn-syms` for a shared
/// library; not nm, which hands the LTO objects of the archive to its LLVM plugin).
fn defined_globals(file: &Path, dynamic: bool) -> std::collections::BTreeSet<String> {
    let mut cmd = Command::new("readelf");
    cmd.arg("-W").arg(if dynamic { "--dyn-syms" } else { "-s" });
    let f = run(cmd.arg(file), Duration::from_secs(60));
    assert!(f.ok(), "readelf {}: {}", file.display(), f.describe());
    f.stdout
        .lines()
        .filter_map(|l| {
            // Num: Value Size Type Bind Vis Ndx Name
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() >= 8 && matches!(w[4], "GLOBAL" | "WEAK") && w[6] != "UND")
                .then(|| w[7].split('@').next().unwrap_or(w[7]).to_string())
        })
        .collect()
}

/// A program using OpenSSL itself links with this library, shared or static, and both
/// TLS stacks work in one process: OpenSSL's client (TLS 1.3, then 1.2) handshakes with
/// the library's wss server and gets its echo, and OpenSSL's own known answers hold
/// before and after. No global symbol of libwebsockets.a (the crypto code compiled into
/// it included) is one that libssl or libcrypto also defines.
#[test]
fn openssl_in_the_same_process() {
    let (Some(ssl), Some(crypto)) = (system_lib("libssl.so"), system_lib("libcrypto.so")) else {
        println!("SKIP: libssl-dev is not installed");
        return;
    };
    let ours = defined_globals(&release_dir().join("libwebsockets.a"), false);
    assert!(
        ours.contains("libwebsocket_create_context"),
        "readelf of libwebsockets.a"
    );
    for lib in [&ssl, &crypto] {
        let theirs = defined_globals(lib, true);
        assert!(
            theirs.len() > 100,
            "readelf --dyn-syms {}: {} symbols",
            lib.display(),
            theirs.len()
        );
        let both: Vec<_> = ours.intersection(&theirs).collect();
        assert!(
            both.is_empty(),
            "libwebsockets.a and {} both define {both:?}",
            lib.display()
        );
    }
    for link in [Link::Dynamic, Link::Static] {
        let bin = CBuild::new("tests/tls/openssl_coexist.c", &out_dir(), &release_dir())
            .named(&format!("openssl_coexist_{link:?}").to_lowercase())
            .link(link)
            .flag("-Wl,--push-state,--no-as-needed")
            .flag("-lssl")
            .flag("-lcrypto")
            .flag("-Wl,--pop-state")
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let port = free_port();
        let f = run(
            Command::new(&bin)
                .arg(cert("server.pem"))
                .arg(cert("server-key.pem"))
                .arg(port.to_string()),
            Duration::from_secs(60),
        );
        println!("{link:?}: {}", f.stdout);
        assert!(
            f.ok() && f.stdout.contains("openssl_coexist: PASS"),
            "openssl_coexist ({link:?}): {}",
            f.describe()
        );
    }
}

/// Three threads create a TLS context each at the same moment and handshake with it:
/// helgrind and drd report nothing, with the RSA and with the ECDSA certificate. The
/// crypto code's first-use initialisations all run once, under a mutex, before the
/// first TLS configuration is built (`engine::tls::warm_up`); without that, the
/// checkers report every table set up under `pthread_once` as a race.
#[test]
fn tls_contexts_on_three_threads_under_helgrind_and_drd() {
    if !optional_tool("valgrind", "the helgrind and drd runs") {
        return;
    }
    let bin = CBuild::new("tests/tls/tls_threads.c", &out_dir(), &release_dir())
        .flag("-pthread")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    for tool in ["helgrind", "drd"] {
        for name in ["server", "server-ecdsa"] {
            let port = free_ports_below_ephemeral(3);
            let f = run(
                Command::new("valgrind")
                    .args([&format!("--tool={tool}"), "-q", "--error-exitcode=97"])
                    .arg(&bin)
                    .arg(cert(&format!("{name}.pem")))
                    .arg(cert(&format!("{name}-key.pem")))
                    .arg(port.to_string()),
                Duration::from_secs(300),
            );
            println!("{tool} {name}: {}", f.stdout);
            assert!(
                f.ok() && f.stdout.contains("tls_threads: PASS"),
                "tls_threads under {tool} with {name}.pem: {}",
                f.describe()
            );
        }
    }
}
