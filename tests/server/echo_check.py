#!/usr/bin/env python3
"""Echo conformance checks against examples/test-echo (or any echo server whose
protocols[0] echoes every message with its opcode).

    python3 tests/server/echo_check.py --port 9000 [--quick] [--only sizes,close]
"""

import asyncio
import os
import random
import string
import struct

from wscheck import (CheckFailed, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, OP_CONT, Runner,
                     base_parser, client_frame, close_writer, raw_ws_open, read_message,
                     require, wait_eof, ws_connect)

SIZES = [1, 125, 126, 65535, 65536, 1 << 20]


def text_of(n, seed):
    rnd = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + " -_.,"
    return "".join(rnd.choice(alphabet) for _ in range(n)) if n < 4096 else \
        ("".join(rnd.choice(alphabet) for _ in range(4096)) * (n // 4096 + 1))[:n]


def bytes_of(n, seed):
    return random.Random(seed).randbytes(n)


def describe(msg):
    kind = "text" if isinstance(msg, str) else "binary"
    return f"{kind} {len(msg)} B"


async def expect_echo(ws, sent, limit=10):
    got = await asyncio.wait_for(ws.recv(), limit)
    require(type(got) is type(sent),
            f"sent {describe(sent)}, got back {describe(got)} (type changed)")
    require(len(got) == len(sent), f"sent {describe(sent)}, got back {len(got)} B")
    require(got == sent, f"{describe(sent)}: echo content differs")


async def check_sizes(port, sizes):
    async with ws_connect(port) as ws:
        for n in sizes:
            for msg in (text_of(n, n), bytes_of(n, n + 1)):
                await ws.send(msg)
                await expect_echo(ws, msg)


async def check_empty(port):
    """Zero-length text and binary messages come back as zero-length messages of
    the same type (the library must deliver an empty frame to LWS_CALLBACK_RECEIVE
    with len 0, and send one for a zero-length libwebsocket_write)."""
    async with ws_connect(port) as ws:
        for msg in ("", b"", "after empty"):
            await ws.send(msg)
            await expect_echo(ws, msg)


async def check_fragmented_iter(port):
    """websockets sends an async iterator as fragments and closes the message with
    an EMPTY final continuation frame; the echo must be the whole message, same
    type (so the library must report that empty final frame to the callback)."""
    async def pieces(items):
        for item in items:
            yield item

    async with ws_connect(port) as ws:
        text_parts = ["Hello, ", "fragmented ", "world", "!" * 300]
        await ws.send(pieces(text_parts))
        await expect_echo(ws, "".join(text_parts))

        bin_parts = [bytes_of(70000, 7), bytes_of(10, 8), bytes_of(130000, 9)]
        await ws.send(pieces(bin_parts))
        await expect_echo(ws, b"".join(bin_parts))


async def check_fragmented_raw(port):
    """Fragments written by hand, the last one carrying data, with a ping in the
    middle of the message: the echo is one whole message and the ping gets a pong."""
    reader, writer = await raw_ws_open(port)
    try:
        parts = [b"first-", b"second-", b"third"]
        writer.write(client_frame(OP_TEXT, parts[0], fin=False))
        writer.write(client_frame(OP_PING, b"ping-in-the-middle"))
        writer.write(client_frame(OP_CONT, parts[1], fin=False))
        writer.write(client_frame(OP_CONT, parts[2], fin=True))
        big = [bytes_of(50000, 11), bytes_of(50000, 12)]
        writer.write(client_frame(OP_BINARY, big[0], fin=False))
        writer.write(client_frame(OP_CONT, big[1], fin=True))
        await writer.drain()

        pongs = []
        op, data, controls = await read_message(reader)
        pongs += [c for c in controls if c[0] == OP_PONG]
        require(op == OP_TEXT, f"first echo has opcode {op}, expected text")
        require(data == b"".join(parts), f"text echo was {data[:80]!r}")
        op, data, controls = await read_message(reader)
        pongs += [c for c in controls if c[0] == OP_PONG]
        require(op == OP_BINARY, f"second echo has opcode {op}, expected binary")
        require(data == b"".join(big), f"binary echo differs ({len(data)} B)")
        require(pongs == [(OP_PONG, b"ping-in-the-middle")],
                f"expected one pong carrying the ping payload, got {pongs!r}")

        writer.write(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
        await writer.drain()
        await wait_eof(reader, 10)
    finally:
        close_writer(writer)


async def check_pipelined(port, count):
    """Many messages of mixed type and size sent before reading any echo."""
    rnd = random.Random(42)
    msgs = []
    for i in range(count):
        n = rnd.choice([1, 10, 125, 126, 1000, 4096, 20000, 100000])
        msgs.append(text_of(n, i) if i % 2 else bytes_of(n, i))
    async with ws_connect(port) as ws:
        for m in msgs:
            await ws.send(m)
        for i, m in enumerate(msgs):
            try:
                await expect_echo(ws, m)
            except Exception as e:
                raise CheckFailed(f"message {i} of {count} ({describe(m)}): {e!r}") from e


async def check_compression_offer(port):
    """A client offering permessage-deflate still gets correct echoes."""
    async with ws_connect(port, compression="deflate") as ws:
        for msg in ("offered compression", bytes_of(3000, 5)):
            await ws.send(msg)
            await expect_echo(ws, msg)


async def check_close(port):
    """A client close with code 1000 is answered with a 1000 close."""
    async with ws_connect(port) as ws:
        await ws.send("before close")
        await expect_echo(ws, "before close")
        await ws.close(code=1000, reason="done")
        rcvd = ws.protocol.close_rcvd
        require(rcvd is not None, "server sent no close frame back")
        require(rcvd.code == 1000, f"server answered close code {rcvd.code}, expected 1000")

    reader, writer = await raw_ws_open(port)
    try:
        writer.write(client_frame(OP_CLOSE, struct.pack("!H", 1000) + b"bye"))
        await writer.drain()
        op, data, controls = await read_message(reader)
        closes = [c for c in controls if c[0] == OP_CLOSE]
        require(closes, "raw client: no close frame came back")
        payload = closes[0][1]
        require(len(payload) >= 2 and struct.unpack("!H", payload[:2])[0] == 1000,
                f"raw client: close payload {payload!r}, expected code 1000")
        await wait_eof(reader, 10)
    finally:
        close_writer(writer)


async def check_ping(port):
    reader, writer = await raw_ws_open(port)
    try:
        writer.write(client_frame(OP_PING, b"hello-ping"))
        writer.write(client_frame(OP_TEXT, b"after ping"))
        await writer.drain()
        op, data, controls = await read_message(reader)
        require((OP_PONG, b"hello-ping") in controls, f"no matching pong, got {controls!r}")
        require(op == OP_TEXT and data == b"after ping", f"echo after ping was {op} {data!r}")
    finally:
        close_writer(writer)


async def main():
    p = base_parser(__doc__)
    p.add_argument("--quick", action="store_true", help="a short session (valgrind runs)")
    p.set_defaults(timeout=40.0)
    args = p.parse_args()
    r = Runner(args)
    port = args.port
    if args.quick:
        await r.run("sizes", check_sizes, port, [1, 125, 126, 70000])
        await r.run("empty", check_empty, port)
        await r.run("fragmented_raw", check_fragmented_raw, port)
        await r.run("pipelined", check_pipelined, port, 20)
        await r.run("close", check_close, port)
    else:
        await r.run("sizes", check_sizes, port, SIZES)
        await r.run("empty", check_empty, port)
        await r.run("fragmented_iter", check_fragmented_iter, port)
        await r.run("fragmented_raw", check_fragmented_raw, port)
        await r.run("ping", check_ping, port)
        await r.run("pipelined", check_pipelined, port, 100)
        await r.run("compression_offer", check_compression_offer, port)
        await r.run("close", check_close, port)
    r.finish()


if __name__ == "__main__":
    os.chdir(os.path.dirname(os.path.abspath(__file__)))
    asyncio.run(main())
