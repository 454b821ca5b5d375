//! Python peers: the scripts under tests/ run by python3, unbuffered, writing no
//! bytecode into the tree.

use std::process::Command;

use super::paths::repo;
use super::proc::Background;
use super::tools::python_websockets;

/// `python3 -u <repo>/<script>`, once python3 is known to have `websockets`.
pub fn python(script: &str) -> Command {
    python_websockets();
    let mut cmd = Command::new("python3");
    cmd.arg("-u")
        .arg(repo().join(script))
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

/// [`python`] with `args`, in the background, named after the script.
pub fn start_python(script: &str, args: &[&str]) -> Background {
    let name = script.rsplit('/').next().unwrap_or(script);
    Background::start(name, python(script).args(args))
}

/// tests/client/connect_proxy.py (an HTTP CONNECT proxy) and its port.
pub fn connect_proxy() -> (Background, u16) {
    let mut proxy = start_python("tests/client/connect_proxy.py", &[]);
    let port = proxy.read_port("proxy");
    (proxy, port)
}
