#!/usr/bin/env python3
"""Receive flow control against tests/c/servers/server_flow.c, which turns receiving off
for 200 ms after every message.

    python3 tests/server/flow_check.py --port N [--count 50] [--pause-ms 200]

All messages are sent at once; every echo must come back, in order, and the
whole exchange cannot take less than (count - 1) pauses.
"""

import asyncio
import time

from wscheck import CheckFailed, Runner, base_parser, require, ws_connect


async def check_flow(port, count, pause_ms):
    sent = [f"flow message {i:03d} " + "." * (i % 7) for i in range(count)]
    start = time.monotonic()
    async with ws_connect(port) as ws:
        for m in sent:
            await ws.send(m)
        got = []
        while len(got) < count:
            try:
                got.append(await asyncio.wait_for(ws.recv(), 10))
            except asyncio.TimeoutError:
                raise CheckFailed(f"stalled after {len(got)} of {count} echoes")
        elapsed = time.monotonic() - start
        await ws.close()
    if got != sent:
        i = next(i for i, (a, b) in enumerate(zip(got, sent)) if a != b)
        raise CheckFailed(f"echoes out of order or altered: message {i} came back as {got[i]!r}")
    floor = (count - 1) * pause_ms / 1000.0 * 0.9
    print(f"  note: {count} messages took {elapsed:.2f} s (at least {floor:.2f} s expected)")
    require(elapsed >= floor, f"took {elapsed:.2f} s: the server's pauses were not honoured")


async def main():
    p = base_parser(__doc__)
    p.add_argument("--count", type=int, default=50)
    p.add_argument("--pause-ms", type=int, default=200)
    args = p.parse_args()
    r = Runner(args)
    await r.run("flow", check_flow, args.port, args.count, args.pause_ms,
                timeout=args.count * args.pause_ms / 1000.0 * 3 + 10)
    r.finish()


if __name__ == "__main__":
    asyncio.run(main())
