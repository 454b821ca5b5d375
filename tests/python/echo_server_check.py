#!/usr/bin/env python3
"""Drives python/echo_server.py (the Python echo server on libwebsockets) with the
Python `websockets` client, then runs python/echo_client.py against it.

    python3 tests/python/echo_server_check.py PORT [--deflate]

Starts the server itself (LWS_LIBRARY is passed on), checks, stops it with SIGTERM
and checks its clean exit. Prints "OK" last and exits 0 when every check passed.
Every wait is bounded; the server is killed by PID on any failure.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYDIR = os.path.join(REPO, "python")

failures = []


def check(cond, what):
    if cond:
        print("ok   " + what, flush=True)
    else:
        print("FAIL " + what, flush=True)
        failures.append(what)
    return cond


def wait_listening(port, proc, within=15.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def text_of(size):
    unit = "h\u00e9\u20ac\U0001f600"  # 1 to 4 bytes per character
    s = unit * (size // 10 + 1)
    b = s.encode()[:size]
    while True:
        try:
            return b.decode()
        except UnicodeDecodeError:
            b = b[:-1]


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20, 3 << 20]


def echo_sizes(port, deflate):
    kwargs = {"max_size": None, "open_timeout": 10, "close_timeout": 5}
    if not deflate:
        kwargs["compression"] = None
    with connect("ws://127.0.0.1:%d/" % port, subprotocols=["echo"], **kwargs) as ws:
        check(ws.subprotocol == "echo", "subprotocol 'echo' negotiated")
        negotiated = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        if deflate:
            check("permessage-deflate" in negotiated,
                  "permessage-deflate negotiated (%r)" % negotiated)
        else:
            check(negotiated == "", "no extension without --deflate (%r)" % negotiated)
        bad = []
        for size in SIZES:
            b = os.urandom(size)
            ws.send(b)
            r = ws.recv(timeout=20)
            if not (isinstance(r, bytes) and r == b):
                bad.append("binary %d" % size)
            t = text_of(size)
            ws.send(t)
            r = ws.recv(timeout=20)
            if not (isinstance(r, str) and r == t):
                bad.append("text %d" % size)
        check(not bad, "binary and text echoed at sizes %s %s" % (SIZES, bad or ""))

        # a fragmented message comes back whole, with its opcode
        ws.send(["frag", "mented ", "\u00e9"])
        check(ws.recv(timeout=10) == "fragmented \u00e9", "fragmented text echoed whole")
        ws.send([b"\x00\x01", b"\x02"])
        check(ws.recv(timeout=10) == b"\x00\x01\x02", "fragmented binary echoed whole")

        # pipelined: many messages without waiting, order kept
        msgs = [("m%d " % i) * (i % 7 + 1) for i in range(300)]
        for m in msgs:
            ws.send(m)
        got = [ws.recv(timeout=10) for _ in msgs]
        check(got == msgs, "300 pipelined messages echoed in order")

        pong = ws.ping(b"py")
        check(pong.wait(5), "ping answered")


def concurrent(port, nconns=8, per_conn=100):
    errors = []

    def worker(k):
        try:
            with connect("ws://127.0.0.1:%d/" % port, subprotocols=["echo"],
                         max_size=None, open_timeout=10, compression=None) as ws:
                for i in range(per_conn):
                    m = os.urandom(1 + (k * 131 + i * 17) % 3000)
                    ws.send(m)
                    if ws.recv(timeout=10) != m:
                        errors.append("conn %d message %d differs" % (k, i))
                        return
        except Exception as e:  # noqa: BLE001
            errors.append("conn %d: %r" % (k, e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(nconns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not errors and not any(t.is_alive() for t in threads),
          "%d concurrent connections x %d messages %s" % (nconns, per_conn, errors[:3] or ""))


def no_subprotocol(port):
    with connect("ws://127.0.0.1:%d/" % port, open_timeout=10, compression=None) as ws:
        ws.send("no subprotocol")
        check(ws.recv(timeout=10) == "no subprotocol",
              "a client asking for no subprotocol gets protocols[0]")


def http(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as r:
        body = r.read()
        check(r.status == 200 and b"echo server" in body, "GET / answered 200 (%r)" % body)


def python_client(port, deflate):
    cmd = [sys.executable, os.path.join(PYDIR, "echo_client.py"), "--port", str(port),
           "--rounds", "2", "--timeout", "30"]
    if deflate:
        cmd.append("--deflate")
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        check(False, "python/echo_client.py finished within 60 s")
        return
    check(r.returncode == 0 and "messages echoed" in r.stdout,
          "python/echo_client.py against the Python server%s: %s %s" % (
              " (deflate)" if deflate else "", r.stdout.strip(), r.stderr.strip()[-500:]))


def main():
    port = int(sys.argv[1])
    deflate = "--deflate" in sys.argv[2:]
    cmd = [sys.executable, os.path.join(PYDIR, "echo_server.py"), "--port", str(port),
           "--iface", "127.0.0.1"]
    if deflate:
        cmd.append("--deflate")
    log_path = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                            "lws-py-echo-server-%d-%d.log" % (os.getpid(), port))
    log = open(log_path, "w+")
    server = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        if not check(wait_listening(port, server), "echo_server.py listening on %d" % port):
            raise SystemExit(1)
        echo_sizes(port, deflate)
        no_subprotocol(port)
        concurrent(port)
        http(port)
        python_client(port, deflate)
        check(server.poll() is None, "the server is still running")

        server.send_signal(signal.SIGTERM)
        try:
            rc = server.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "SIGTERM: clean exit (status %r)" % rc)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(5)
        log.seek(0)
        text = log.read()
        log.close()
        os.unlink(log_path)
    check("stopped after" in text, "the server printed its summary")
    # echo_sizes 1, no_subprotocol 1, concurrent 8, echo_client.py 1
    opened = text.count("established session")
    closed = text.count("closed session")
    check(opened == 11 and closed == 11,
          "the server logged 11 sessions opened and closed (%d, %d)" % (opened, closed))
    if failures:
        print("server log (tail):\n" + "\n".join(text.splitlines()[-30:]))
        print("FAILED: %d checks: %s" % (len(failures), "; ".join(failures)))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
