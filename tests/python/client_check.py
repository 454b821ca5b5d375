#!/usr/bin/env python3
"""Runs python/echo_client.py (the Python client on libwebsockets) against a Python
`websockets` echo server started here on a port the system picks, with and without
permessage-deflate, and checks it fails cleanly (exit 1, no hang) against a server
that closes after one message.

    python3 tests/python/client_check.py

Prints "OK" last and exits 0 when every check passed.
"""

import asyncio
import os
import subprocess
import sys
import threading

from websockets.asyncio.server import serve

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENT = os.path.join(REPO, "python", "echo_client.py")

failures = []
seen = {"subprotocols": [], "extensions": []}


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


async def handler(ws):
    seen["subprotocols"].append(ws.subprotocol)
    seen["extensions"].append(ws.request.headers.get("Sec-WebSocket-Extensions"))
    if ws.request.path == "/close-after-one":
        await ws.recv()
        await ws.close(1000, "enough")
        return
    async for msg in ws:
        await ws.send(msg)


def start_server():
    ready = threading.Event()
    box = {}

    def run():
        async def main():
            async with serve(handler, "127.0.0.1", 0, subprotocols=["echo"],
                             max_size=None) as server:
                box["port"] = server.sockets[0].getsockname()[1]
                box["loop"] = asyncio.get_running_loop()
                box["stop"] = asyncio.Event()
                ready.set()
                await box["stop"].wait()

        asyncio.run(main())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    if not ready.wait(10):
        raise RuntimeError("the websockets server did not start")
    return box, t


def run_client(port, *extra):
    cmd = [sys.executable, CLIENT, "--port", str(port), "--timeout", "20", *extra]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return None


def main():
    box, thread = start_server()
    port = box["port"]
    try:
        r = run_client(port)
        check(r is not None and r.returncode == 0 and "messages echoed" in r.stdout,
              "echo_client.py against a websockets server: %s %s"
              % (r and r.stdout.strip(), r and r.stderr.strip()[-400:]))
        check(seen["subprotocols"][-1:] == ["echo"], "the client asked for subprotocol echo")
        check(not seen["extensions"][-1], "no extension offered by default")

        r = run_client(port, "--deflate", "--rounds", "3")
        check(r is not None and r.returncode == 0 and "21 messages echoed" in r.stdout,
              "echo_client.py --deflate: %s %s"
              % (r and r.stdout.strip(), r and r.stderr.strip()[-400:]))
        check("permessage-deflate" in (seen["extensions"][-1] or ""),
              "--deflate offers permessage-deflate (%r)" % seen["extensions"][-1])

        r = run_client(port, "--path", "/close-after-one")
        check(r is not None and r.returncode == 1 and "FAILED after 0 of" in r.stderr,
              "a server closing early makes the client fail cleanly: %r"
              % (r and r.stderr.strip()[-300:]))
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)
    if failures:
        print("FAILED: %d checks: %s" % (len(failures), "; ".join(failures)))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
