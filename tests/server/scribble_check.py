#!/usr/bin/env python3
"""Frames that share a read survive an application that writes over the padding of the
receive buffer (tests/c/servers/server_scribble.c).

    python3 tests/server/scribble_check.py --port N [--count 400]

Sends COUNT masked frames of 0 to 125 bytes (text and binary, distinct contents) in one
write, several times over, and expects every echo back intact and in order.
"""

import asyncio
import os

from wscheck import (CheckFailed, Runner, base_parser, client_frame, close_writer,
                     raw_ws_open, read_frame, require)


async def check_batches(port, count):
    reader, writer = await raw_ws_open(port, protocol="scribble")
    try:
        for batch in range(4):
            sent = []
            for i in range(count):
                n = (i * 37 + batch) % 126
                payload = bytes((i + j + batch) % 251 for j in range(n))
                opcode = 2
                if i % 3 == 0:
                    payload = bytes(0x41 + (i + j) % 26 for j in range(n))
                    opcode = 1
                sent.append((opcode, payload))
            writer.write(b"".join(client_frame(op, p, mask=os.urandom(4)) for op, p in sent))
            await writer.drain()
            for i, (op, p) in enumerate(sent):
                fin, got_op, got = await read_frame(reader)
                if (fin, got_op, got) != (True, op, p):
                    raise CheckFailed(
                        f"batch {batch} frame {i}: sent opcode {op} {p[:16].hex()}.. ({len(p)} B), "
                        f"echo opcode {got_op} fin {fin} {got[:16].hex()}.. ({len(got)} B)")
        writer.write(client_frame(8, b"\x03\xe8"))
        await writer.drain()
        fin, op, _ = await read_frame(reader)
        require(op == 8, f"expected the close echo, got opcode {op}")
    finally:
        close_writer(writer)


async def main():
    p = base_parser(__doc__)
    p.add_argument("--count", type=int, default=400)
    args = p.parse_args()
    r = Runner(args)
    await r.run("scribble", check_batches, args.port, args.count, timeout=60)
    r.finish()


if __name__ == "__main__":
    asyncio.run(main())
