#!/usr/bin/env python3
"""Keeps connections open (with data in flight) so that a server can be stopped
while it still has live sessions: used by the valgrind test.

    python3 tests/server/hold_open.py --port N [--protocol P ...] [--seconds 20]

Opens one WebSocket per --protocol (or one without subprotocol), sends each a
message it never reads the answer to, plus a connection stuck in its HTTP head,
prints "holding" and waits until killed or --seconds pass.
"""

import argparse
import asyncio
import os

from wscheck import HOST, ws_connect


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--protocol", action="append", default=[])
    p.add_argument("--seconds", type=float, default=20.0)
    args = p.parse_args()

    conns = []
    for proto in args.protocol or [None]:
        kw = {"subprotocols": [proto]} if proto else {}
        ws = await ws_connect(args.port, max_queue=1, **kw)
        await ws.send(os.urandom(200000))
        conns.append(ws)
    _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, args.port), 10)
    writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n".encode())
    await writer.drain()
    print("holding", flush=True)
    try:
        await asyncio.sleep(args.seconds)
    finally:
        writer.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception:
        # the server going away under us is the expected ending
        pass
