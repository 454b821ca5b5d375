#!/usr/bin/env python3
"""WebSocket client for examples/haproxy-recipe.sh (needs the Python `websockets`
package: pip install -r tests/requirements.txt).

  burst --url URL --conns C --messages M [--size S]
      C connections at once, each sends M messages (binary, S bytes, random) one
      after the other and checks every echo. Prints
      "burst: C/C connections ok, N messages echoed" and exits 0 when all went well.

  hold --url URL --conns C --secs T [--interval 0.1] --ready FILE --mark FILE
      Opens C connections, echoes one message on each (then writes FILE --ready),
      and keeps echoing one message per connection every interval seconds for T
      seconds. When the --mark file appears (the recipe restarts a backend and then
      creates it), echoes from then on are counted apart. Prints
      "hold: conns=C survived=S lost=L min_after_mark=A" (A: the fewest echoes any
      surviving connection got after the mark) and exits 0 (the recipe judges).
"""

import argparse
import asyncio
import os
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def burst_one(url, messages, size):
    async with connect(url, open_timeout=10, close_timeout=5, compression=None,
                       max_size=None) as ws:
        for _ in range(messages):
            m = os.urandom(size)
            await ws.send(m)
            got = await asyncio.wait_for(ws.recv(), 10)
            if got != m:
                raise RuntimeError("echo differs")
    return messages


async def burst(args):
    results = await asyncio.gather(
        *(burst_one(args.url, args.messages, args.size) for _ in range(args.conns)),
        return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    print("burst: %d/%d connections ok, %d messages echoed%s" % (
        len(ok), args.conns, sum(ok),
        "" if not errors else "; errors: %s" % sorted({repr(e) for e in errors})[:3]),
        flush=True)
    return 0 if not errors else 1


class Held:
    def __init__(self):
        self.ws = None
        self.alive = False
        self.echoes = 0
        self.after_mark = 0


async def hold(args):
    conns = [Held() for _ in range(args.conns)]

    async def open_one(h):
        h.ws = await connect(args.url, open_timeout=10, close_timeout=2,
                             compression=None, ping_interval=None)
        await h.ws.send(b"first")
        if await asyncio.wait_for(h.ws.recv(), 10) != b"first":
            raise RuntimeError("first echo differs")
        h.alive = True
        h.echoes = 1

    opened = await asyncio.gather(*(open_one(h) for h in conns), return_exceptions=True)
    failed = [e for e in opened if isinstance(e, BaseException)]
    if failed:
        print("hold: %d connections failed to open: %r" % (len(failed), failed[0]), flush=True)
        for h in conns:
            if h.ws is not None:
                await h.ws.close()
        return 1
    with open(args.ready, "w") as f:
        f.write("READY %d\n" % len(conns))

    deadline = time.monotonic() + args.secs

    async def keep(h, k):
        await asyncio.sleep(args.interval * k / max(1, len(conns)))  # spread them out
        while time.monotonic() < deadline:
            marked = os.path.exists(args.mark)
            try:
                m = b"held %d %d" % (k, h.echoes)
                await h.ws.send(m)
                if await asyncio.wait_for(h.ws.recv(), 5) != m:
                    raise RuntimeError("echo differs")
            except (ConnectionClosed, OSError, asyncio.TimeoutError, RuntimeError):
                h.alive = False
                return
            h.echoes += 1
            if marked:
                h.after_mark += 1
            await asyncio.sleep(args.interval)

    await asyncio.gather(*(keep(h, k) for k, h in enumerate(conns)))
    for h in conns:
        if h.alive:
            await h.ws.close()
    survivors = [h for h in conns if h.alive]
    print("hold: conns=%d survived=%d lost=%d min_after_mark=%d echoes=%d" % (
        len(conns), len(survivors), len(conns) - len(survivors),
        min((h.after_mark for h in survivors), default=0),
        sum(h.echoes for h in conns)), flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("burst")
    b.add_argument("--url", required=True)
    b.add_argument("--conns", type=int, default=12)
    b.add_argument("--messages", type=int, default=50)
    b.add_argument("--size", type=int, default=64)
    h = sub.add_parser("hold")
    h.add_argument("--url", required=True)
    h.add_argument("--conns", type=int, default=6)
    h.add_argument("--secs", type=float, default=10.0)
    h.add_argument("--interval", type=float, default=0.1)
    h.add_argument("--ready", required=True)
    h.add_argument("--mark", required=True)
    args = ap.parse_args()
    return asyncio.run(burst(args) if args.cmd == "burst" else hold(args))


if __name__ == "__main__":
    sys.exit(main())
