#!/usr/bin/env python3
"""Python `websockets` peers for tests/c/fragments_test.c and
tests/c/write_fidelity_test.c (driven by tests/fidelity_write.rs; loopback only).

  peer.py frag-server NMSG        server on 127.0.0.1, port chosen by the system
  peer.py frag-client PORT NMSG   client of ws://127.0.0.1:PORT/
      Both speak fragments_test's scheme: NMSG messages sent as runs of fragments
      (sizes 0..8000, some empty, the first four fixed corner cases), each followed
      by a 12-byte trailer (byte sum, length, fragment count; big-endian), then the
      text "done". What is received is checked the same way, counting the frames of
      each message (recv_streaming yields one item per frame). The server closes
      once both sides are done; the client waits for that close.
  peer.py write-server            server that records every message it receives
      until "bye", then closes with 1000
  peer.py write-client PORT       client that sends write_fidelity_test's client
      sequence and records what the server sends until it closes

Servers print "port N" first. Every peer prints one JSON line with what it saw and
exits 0 when it saw no error (a connection that failed, e.g. on an unmasked frame,
is an error).
"""

import asyncio
import json
import random
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

FRAG_PROTOCOL = "fraggle-check"
WRITE_PROTOCOL = "write-check"
MAX_FRAG = 8000
FIXED = [[8000], [100, 5000], [3000, 0], [0, 4096, 4097, 1]]


def out(obj):
    print(json.dumps(obj), flush=True)


def plan(rng, m):
    if m < len(FIXED):
        return FIXED[m]
    return [rng.randrange(MAX_FRAG + 1) for _ in range(1 + rng.randrange(24))]


async def frag_send(ws, nmsg, report):
    rng = random.Random(0x9E3779B9)
    for m in range(nmsg):
        sizes = plan(rng, m)
        frags = [rng.randbytes(n) for n in sizes]
        if len(frags) == 1:
            await ws.send(frags[0])
        else:
            await ws.send(frags)
        body = b"".join(frags)
        trailer = (
            (sum(body) & 0xFFFFFFFF).to_bytes(4, "big")
            + len(body).to_bytes(4, "big")
            + len(frags).to_bytes(4, "big")
        )
        await ws.send(trailer)
        report["sent"] += 1
    await ws.send("done")


async def frag_receive(ws, nmsg, report):
    errors = report["errors"]
    while True:
        frames = []
        async for fragment in ws.recv_streaming():
            frames.append(fragment)
        if frames and isinstance(frames[0], str):
            text = "".join(frames)
            if text != "done" or report["received"] != nmsg:
                errors.append(f"text {text!r} after {report['received']} messages")
            report["peer_done"] = True
            return
        body = b"".join(frames)
        trailer = await ws.recv()
        if not isinstance(trailer, bytes) or len(trailer) != 12:
            errors.append(f"message {report['received'] + 1}: bad trailer {trailer!r}")
            return
        want_sum = int.from_bytes(trailer[0:4], "big")
        want_len = int.from_bytes(trailer[4:8], "big")
        want_frames = int.from_bytes(trailer[8:12], "big")
        got = (sum(body) & 0xFFFFFFFF, len(body), len(frames))
        if got != (want_sum, want_len, want_frames):
            errors.append(
                f"message {report['received'] + 1}: got sum/len/frames {got}, "
                f"sender says {(want_sum, want_len, want_frames)}"
            )
        report["received"] += 1


def new_report():
    return {"sent": 0, "received": 0, "peer_done": False, "errors": []}


async def frag_session(ws, nmsg, report):
    try:
        await asyncio.gather(frag_send(ws, nmsg, report), frag_receive(ws, nmsg, report))
    except ConnectionClosed as e:
        report["errors"].append(f"connection closed early: {e}")


async def frag_server(nmsg):
    report = new_report()
    finished = asyncio.Event()

    async def handler(ws):
        await frag_session(ws, nmsg, report)
        await ws.close(1000)
        finished.set()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=[FRAG_PROTOCOL],
        max_size=None,
        ping_interval=None,
    ) as server:
        print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.wait_for(finished.wait(), 60)
    return report


async def frag_client(port, nmsg):
    report = new_report()
    async with connect(
        f"ws://127.0.0.1:{port}/",
        subprotocols=[FRAG_PROTOCOL],
        max_size=None,
        ping_interval=None,
    ) as ws:
        await frag_session(ws, nmsg, report)
        try:
            await asyncio.wait_for(ws.wait_closed(), 20)
        except asyncio.TimeoutError:
            report["errors"].append("the server did not close")
        report["close_code"] = ws.close_code
    return report


def describe(msg):
    if isinstance(msg, str):
        return {"text": msg}
    pattern = all(b == (i * 7) & 0xFF for i, b in enumerate(msg))
    return {"binary": len(msg), "head": msg[:8].hex(), "pattern": pattern}


async def write_server():
    report = {"messages": [], "errors": []}
    finished = asyncio.Event()

    async def handler(ws):
        try:
            while True:
                msg = await ws.recv()
                report["messages"].append(describe(msg))
                if msg == "bye":
                    break
            await ws.close(1000)
        except ConnectionClosed as e:
            report["errors"].append(f"connection closed: {e}")
        finished.set()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=[WRITE_PROTOCOL],
        max_size=None,
        ping_interval=None,
    ) as server:
        print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
        await asyncio.wait_for(finished.wait(), 30)
    return report


async def write_client(port):
    report = {"messages": [], "errors": []}
    async with connect(
        f"ws://127.0.0.1:{port}/",
        subprotocols=[WRITE_PROTOCOL],
        max_size=None,
        ping_interval=None,
    ) as ws:
        await ws.send("hello")
        await ws.send("")
        await ws.send([b"abc", b""])
        await ws.send(bytes((i * 7) & 0xFF for i in range(70000)))
        await ws.send("masked")
        await ws.send("bye")
        try:
            while True:
                report["messages"].append(describe(await ws.recv()))
        except ConnectionClosed:
            pass
        report["close_code"] = ws.close_code
    return report


def main(argv):
    mode = argv[1] if len(argv) > 1 else ""
    if mode == "frag-server" and len(argv) == 3:
        report = asyncio.run(frag_server(int(argv[2])))
    elif mode == "frag-client" and len(argv) == 4:
        report = asyncio.run(frag_client(int(argv[2]), int(argv[3])))
    elif mode == "write-server" and len(argv) == 2:
        report = asyncio.run(write_server())
    elif mode == "write-client" and len(argv) == 3:
        report = asyncio.run(write_client(int(argv[2])))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    out(report)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
