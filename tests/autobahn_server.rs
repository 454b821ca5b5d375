//! RFC 6455 conformance: the real Autobahn|Testsuite (fuzzingclient, groups 1-10)
//! against examples/test-echo.c built on this library, over 127.0.0.1.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn build_echo(out: &Path) -> PathBuf {
    let root = root();
    let lib = root.join("target/release");
    assert!(
        lib.join("libwebsockets.so").exists(),
        "target/release/libwebsockets.so missing: run `cargo build --release` first"
    );
    std::fs::create_dir_all(out).unwrap();
    let bin = out.join("test-echo-autobahn");
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg("-o")
        .arg(&bin)
        .arg(root.join("examples/test-echo.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lwebsockets")
        .status()
        .expect("cc");
    assert!(status.success(), "building examples/test-echo.c failed");
    bin
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not listen on {port}");
}

#[test]
fn autobahn_server_groups_1_to_10() {
    let runner = root().join("../shared/tools/autobahn/run-server-tests");
    if !runner.exists() || !Path::new("/opt/autobahn/venv/bin/wstest").exists() {
        if std::env::var_os("CI").is_some() {
            panic!("Autobahn is not installed (.ci/run runs ../shared/tools/autobahn/setup)");
        }
        eprintln!("NOTICE: Autobahn not installed; skipping conformance run");
        return;
    }
    let out = root().join("target/ctests");
    let bin = build_echo(&out);
    let port = free_port();
    let _server = Server(
        Command::new(&bin)
            .args(["--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start test-echo"),
    );
    wait_listening(port);
    let report = out.join("autobahn-server");
    let output = Command::new("timeout")
        .arg("600")
        .arg(&runner)
        .arg(format!("ws://127.0.0.1:{port}/"))
        .arg("--no-compression")
        .arg("--outdir")
        .arg(&report)
        .output()
        .expect("run-server-tests");
    let text = String::from_utf8_lossy(&output.stdout);
    println!("{text}");
    let summary = text
        .lines()
        .find(|l| l.starts_with("autobahn-server:"))
        .unwrap_or("no summary line");
    assert!(
        output.status.success(),
        "Autobahn reported failures: {summary}"
    );
    assert!(summary.contains(" 0 failed"), "{summary}");
    assert!(
        text.contains("close-behavior failures (FAILED/UNCLEAN): 0"),
        "unclean closes"
    );
}
