#!/usr/bin/env python3
"""Partial writes against tests/c/servers/server_bigsend.c: the server pushes 20 binary
messages of 1 MiB while this client reads slowly; every byte must arrive intact.

    python3 tests/server/bigsend_check.py --port N [--protocol bigsend|bigsend-buffered]

Message k is little-endian 32-bit words, word j = (k << 24) + j.
"""

import array
import asyncio
import hashlib
import sys

from wscheck import CheckFailed, Runner, base_parser, require, ws_connect

MSG_COUNT = 20
MSG_SIZE = 1 << 20


def expected(k):
    words = array.array("I", range(k << 24, (k << 24) + MSG_SIZE // 4))
    if sys.byteorder == "big":
        words.byteswap()
    return words.tobytes()


def first_difference(a, b):
    for i in range(0, min(len(a), len(b)), 4096):
        if a[i:i + 4096] != b[i:i + 4096]:
            for j in range(i, min(i + 4096, len(a), len(b))):
                if a[j] != b[j]:
                    return j
    return min(len(a), len(b))


async def check_bigsend(port, protocol, delay):
    async with ws_connect(port, subprotocols=[protocol], max_queue=1) as ws:
        require(ws.subprotocol == protocol, f"server chose {ws.subprotocol!r}")
        for k in range(MSG_COUNT):
            try:
                got = await asyncio.wait_for(ws.recv(), 30)
            except asyncio.TimeoutError:
                raise CheckFailed(f"message {k}: nothing for 30 s")
            require(isinstance(got, bytes), f"message {k} arrived as text")
            want = expected(k)
            if got != want:
                raise CheckFailed(
                    f"message {k}: {len(got)} B, sha1 {hashlib.sha1(got).hexdigest()[:12]} "
                    f"vs expected {hashlib.sha1(want).hexdigest()[:12]}; first difference "
                    f"at byte {first_difference(got, want)}")
            await asyncio.sleep(delay)


async def main():
    p = base_parser(__doc__)
    p.add_argument("--protocol", default="bigsend")
    p.add_argument("--delay", type=float, default=0.1, help="seconds between reads")
    args = p.parse_args()
    r = Runner(args)
    await r.run(f"bigsend[{args.protocol}]", check_bigsend, args.port, args.protocol,
                args.delay, timeout=120)
    r.finish()


if __name__ == "__main__":
    asyncio.run(main())
