//! RFC 6455 conformance: the real Autobahn|Testsuite (fuzzingclient, groups 1-10)
//! against examples/test-echo.c built on this library, over 127.0.0.1.

mod common;

use std::process::Command;
use std::time::Duration;

use common::cc::CBuild;
use common::paths::{ctests_dir, release_dir};
use common::proc::{run, start_server};
use common::tools::{assert_autobahn_passed, autobahn_runner};

#[test]
fn autobahn_server_groups_1_to_10() {
    let Some(runner) = autobahn_runner("run-server-tests", "the conformance run") else {
        return;
    };
    let lib = release_dir();
    assert!(
        lib.join("libwebsockets.so").exists(),
        "target/release/libwebsockets.so missing: run `cargo build --release` first"
    );
    let out = ctests_dir("");
    let bin = CBuild::new("examples/test-echo.c", &out, &lib)
        .named("test-echo-autobahn")
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let server = start_server("test-echo", 1, Duration::from_secs(10), |port| {
        let mut cmd = Command::new(&bin);
        cmd.args(["--port", &port.to_string()]);
        cmd
    });
    let report = out.join("autobahn-server");
    let f = run(
        Command::new(&runner)
            .arg(format!("ws://127.0.0.1:{}/", server.port))
            .arg("--no-compression")
            .arg("--outdir")
            .arg(&report),
        Duration::from_secs(600),
    );
    println!("{}", f.stdout);
    assert_autobahn_passed(&f, "autobahn-server:", "groups 1-10");
}
