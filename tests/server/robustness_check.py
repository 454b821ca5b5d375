#!/usr/bin/env python3
"""Misbehaving clients: the server must drop them and keep serving the others.

    python3 tests/server/robustness_check.py --port 9000 --mode echo
    python3 tests/server/robustness_check.py --port 7681 --mode test-server

vanish_mid_frame      a client sends half of a masked frame and disappears (FIN, and
                      again with RST); others are still served
vanish_mid_handshake  same, halfway through the upgrade request
timeouts              a connection that sends nothing, and one that stops in the
                      middle of its HTTP header, are both closed by the server within
                      --idle-limit seconds (v1.23: AWAITING_TIMEOUT, 5 s); meanwhile
                      other clients are served
"""

import asyncio
import os
import struct
import time

from wscheck import (HOST, OP_BINARY, Runner, base_parser, close_writer, open_raw,
                     raw_ws_open, require, upgrade_request, wait_eof, ws_connect)


async def served(port, mode):
    """One normal exchange with the server."""
    if mode == "echo":
        async with ws_connect(port) as ws:
            msg = os.urandom(3000)
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 10)
            require(got == msg, "echo differs while another client misbehaved")
    else:
        async with ws_connect(port, subprotocols=["dumb-increment-protocol"]) as ws:
            got = await asyncio.wait_for(ws.recv(), 10)
            require(got.isdigit(), f"dumb-increment sent {got!r}")


def protocol_for(mode):
    return None if mode == "echo" else "dumb-increment-protocol"


async def check_vanish_mid_frame(port, mode):
    for abort in (False, True):
        reader, writer = await raw_ws_open(port, protocol_for(mode))
        mask = os.urandom(4)
        # header of a 1000-byte masked binary frame, then 300 of its bytes
        writer.write(struct.pack("!BBH", 0x80 | OP_BINARY, 0x80 | 126, 1000) + mask)
        writer.write(os.urandom(300))
        await writer.drain()
        await asyncio.sleep(0.05)
        close_writer(writer, abort=abort)
        await asyncio.sleep(0.1)
        await served(port, mode)

    # a vanished client in the middle of a server->client stream of data
    reader, writer = await raw_ws_open(port, protocol_for(mode))
    await asyncio.sleep(0.2)
    close_writer(writer, abort=True)
    await asyncio.sleep(0.1)
    await served(port, mode)


async def check_vanish_mid_handshake(port, mode):
    for abort in (False, True):
        reader, writer = await open_raw(port)
        req, _ = upgrade_request(port, protocol_for(mode))
        writer.write(req[: len(req) // 2])
        await writer.drain()
        await asyncio.sleep(0.05)
        close_writer(writer, abort=abort)
        await asyncio.sleep(0.1)
        await served(port, mode)


async def check_timeouts(port, mode, limit):
    async def silent():
        reader, writer = await open_raw(port)
        try:
            seconds, _ = await wait_eof(reader, limit)
            return seconds
        finally:
            close_writer(writer)

    async def partial_header():
        reader, writer = await open_raw(port)
        try:
            writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUser-Agent: slow".encode())
            await writer.drain()
            seconds, _ = await wait_eof(reader, limit)
            return seconds
        finally:
            close_writer(writer)

    async def others_meanwhile():
        # keep checking other clients are served while the idle ones hang around
        for _ in range(3):
            await asyncio.sleep(1.0)
            await served(port, mode)

    start = time.monotonic()
    t_silent, t_partial, _ = await asyncio.gather(silent(), partial_header(), others_meanwhile())
    print(f"  note: idle connection closed after {t_silent:.1f} s, "
          f"partial header after {t_partial:.1f} s")
    require(time.monotonic() - start <= limit + 5, "timeouts took too long overall")
    await served(port, mode)


async def main():
    p = base_parser(__doc__)
    p.add_argument("--mode", choices=["echo", "test-server"], default="echo")
    p.add_argument("--idle-limit", type=float, default=15.0)
    args = p.parse_args()
    r = Runner(args)
    await r.run("vanish_mid_frame", check_vanish_mid_frame, args.port, args.mode)
    await r.run("vanish_mid_handshake", check_vanish_mid_handshake, args.port, args.mode)
    await r.run("timeouts", check_timeouts, args.port, args.mode, args.idle_limit,
                timeout=args.idle_limit + 20)
    r.finish()


if __name__ == "__main__":
    asyncio.run(main())
