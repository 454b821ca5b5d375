#!/usr/bin/env python3
"""Opens N WebSocket connections to an echo server, sends one message on each
(compressed when the offer is accepted) and reads its echo, then keeps them
all open and idle.

Usage: idle_conns.py --port P [--count N] [--offer OFFER|none] [--hold SECONDS]

Prints "ready N negotiated=M" once all N echoes came back (M: connections
whose reply accepted the offer), then holds the connections until stdin
reaches EOF or --hold seconds (default 60) have passed, and exits. Raises the
open-files limit as far as the hard limit allows.
"""

import argparse
import os
import resource
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from extcheck import OP_TEXT, RSV1, Deflater, Inflater, RawConn, need  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--offer", default="permessage-deflate")
    ap.add_argument("--hold", type=float, default=60.0)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    offer = None if a.offer == "none" else a.offer
    conns = []
    negotiated = 0
    msg = ("an idle connection's only message; " * 30).encode()
    start = time.monotonic()
    for i in range(a.count):
        c = RawConn(a.port, offer, timeout=20)
        need(c.status == 101, f"connection {i}: status {c.status}")
        compressed = any(n == "permessage-deflate" for n, _ in c.extensions())
        if compressed:
            negotiated += 1
            params = dict((p.partition("=")[0], p) for _, ps in c.extensions() for p in ps)
            d = Deflater(takeover="client_no_context_takeover" not in params)
            inf = Inflater(takeover="server_no_context_takeover" not in params)
            c.send_frame(OP_TEXT, d.message(msg), rsv=RSV1)
        else:
            inf = None
            c.send_frame(OP_TEXT, msg)
        op, data, rsv = c.recv_message(inf)
        need(data == msg, f"connection {i}: echo differs")
        need(bool(rsv & RSV1) == compressed, f"connection {i}: echo rsv {rsv:#x}")
        conns.append(c)
    print(f"ready {len(conns)} negotiated={negotiated} in {time.monotonic() - start:.2f} s", flush=True)
    deadline = time.monotonic() + a.hold
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], min(1.0, max(0.0, deadline - time.monotonic())))
        if r and not sys.stdin.buffer.read1(4096):
            break
    for c in conns:
        c.close()


if __name__ == "__main__":
    main()
