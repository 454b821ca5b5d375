#!/usr/bin/env python3
"""A deliberately wrong echo server, to check that lwsload notices wrong echoes.

Usage: faulty_echo.py PORT MODE [SECONDS]

Echoes every message (same type) except every 100th, starting with the 50th, which it
spoils according to MODE: flip (one bit flipped in the middle), short (last byte cut),
drop (not echoed), dup (echoed twice). Exits after SECONDS (default 30). Needs the
Python websockets package (tests/requirements.txt).
"""
import asyncio
import logging
import sys

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed


def spoil(msg, mode):
    data = bytearray(msg.encode() if isinstance(msg, str) else msg)
    if mode == "flip":
        data[len(data) // 2] ^= 0x01
    elif mode == "short":
        del data[-1:]
    return data.decode() if isinstance(msg, str) else bytes(data)


async def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0

    async def handler(ws):
        n = 0
        try:
            async for msg in ws:
                n += 1
                if n % 100 != 50:
                    await ws.send(msg)
                elif mode in ("flip", "short"):
                    await ws.send(spoil(msg, mode))
                elif mode == "dup":
                    await ws.send(msg)
                    await ws.send(msg)
                # drop: nothing
        except ConnectionClosed:
            pass

    quiet = logging.getLogger("faulty_echo")
    quiet.setLevel(logging.CRITICAL)
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=None,
                     logger=quiet):
        print("listening", flush=True)
        await asyncio.sleep(secs)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
