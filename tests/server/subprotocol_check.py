#!/usr/bin/env python3
"""Subprotocol checks against examples/test-server.

    python3 tests/server/subprotocol_check.py --port 7681

dumb_increment   the counter climbs by one roughly every 50 ms; "reset\\n" resets it
mirror           a message from one client reaches it and 3 others exactly once, in order
mirror_burst     300 messages at once still arrive complete and in order
mirror_lagging_reader  a reader that stops reading makes the server pause the sender
                 (rx flow control); nothing is lost or reordered
no_subprotocol   a client naming no subprotocol gets protocols[0]; the server survives
unknown_subprotocol  v1.23 (lib/handshake.c) refuses a subprotocol it does not serve:
                 the connection is dropped without a 101
alive            after all that the server still answers HTTP and WebSocket
"""

import asyncio
import os
import time

from wscheck import (HOST, CheckFailed, Runner, base_parser, read_http_head, open_raw,
                     close_writer, require, upgrade_request, ws_connect)

DI = "dumb-increment-protocol"
MIRROR = "lws-mirror-protocol"


async def recv_for(ws, seconds):
    out = []
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return out
        try:
            out.append(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            return out


async def check_dumb_increment(port):
    async with ws_connect(port, subprotocols=[DI]) as ws:
        require(ws.subprotocol == DI, f"server chose subprotocol {ws.subprotocol!r}")
        msgs = await recv_for(ws, 0.6)
        require(all(isinstance(m, str) for m in msgs), "counter messages must be text")
        nums = [int(m) for m in msgs]
        require(len(nums) >= 4, f"only {len(nums)} counter messages in 0.6 s: {nums}")
        require(all(b == a + 1 for a, b in zip(nums, nums[1:])),
                f"counter does not climb by one: {nums}")
        before = nums[-1]

        await ws.send("reset\n")
        after = await recv_for(ws, 0.6)
        vals = [int(m) for m in after]
        require(vals, "no counter messages after reset")
        drop = [i for i in range(1, len(vals)) if vals[i] < vals[i - 1]]
        if vals[0] <= 2 and vals[0] < before:
            drop = [0]
        require(drop, f"counter was not reset: before {before}, after {vals}")
        i = drop[0]
        require(vals[i] <= 2, f"counter went back only to {vals[i]}: {vals}")
        require(all(b == a + 1 for a, b in zip(vals[i:], vals[i + 1:])),
                f"counter after reset does not climb by one: {vals}")

        # anything else is not a reset
        await ws.send("reset")
        await ws.send("hello\n")
        later = [int(m) for m in await recv_for(ws, 0.3)]
        require(later and later[0] > vals[-1] - 1 and
                all(b == a + 1 for a, b in zip(later, later[1:])),
                f"a non-reset message changed the counter: {vals[-3:]} then {later}")


async def check_mirror(port, count=20):
    clients = []
    try:
        for _ in range(4):
            ws = await ws_connect(port, subprotocols=[MIRROR])
            clients.append(ws)
            require(ws.subprotocol == MIRROR, f"server chose subprotocol {ws.subprotocol!r}")
        await asyncio.sleep(0.1)
        sender = clients[0]
        tag = os.urandom(4).hex()
        sent = [f"mirror {tag} #{i:03d} " + "x" * (i * 37) for i in range(count)]
        for m in sent:
            await sender.send(m)

        async def collect(ws):
            got = []
            while len(got) < count:
                got.append(await asyncio.wait_for(ws.recv(), 10))
            # nothing more may follow
            extra = await recv_for(ws, 0.4)
            return got, extra

        results = await asyncio.gather(*(collect(ws) for ws in clients))
        for n, (got, extra) in enumerate(results):
            who = "sender" if n == 0 else f"client {n}"
            require(got == sent, f"{who} got {len(got)} messages, not the ones sent in order: "
                    f"first {got[:2]!r}")
            require(not extra, f"{who} got {len(extra)} extra messages: {extra[:3]!r}")
    finally:
        for ws in clients:
            await ws.close()


async def check_mirror_burst(port, count=300):
    """A burst larger than the server's ring: every reader still gets all of it
    in order (the sender is slowed down by rx flow control, nothing is dropped)."""
    clients = []
    try:
        for _ in range(3):
            clients.append(await ws_connect(port, subprotocols=[MIRROR]))
        await asyncio.sleep(0.1)
        tag = os.urandom(4).hex()
        sent = [f"burst {tag} {i}" for i in range(count)]

        async def send_all():
            for m in sent:
                await clients[0].send(m)

        async def collect(ws):
            got = []
            while len(got) < count:
                try:
                    got.append(await asyncio.wait_for(ws.recv(), 15))
                except asyncio.TimeoutError:
                    raise CheckFailed(f"stalled after {len(got)} of {count} messages")
            return got

        _, *results = await asyncio.gather(send_all(), *(collect(ws) for ws in clients))
        for n, got in enumerate(results):
            require(got == sent, f"client {n}: burst arrived incomplete or out of order "
                    f"({len(got)} messages)")
    finally:
        for ws in clients:
            await ws.close()


async def check_mirror_lagging_reader(port, count=4000, size=2000, lag=2.0):
    """One reader does not read for a while (and keeps a tiny client-side queue)
    while 8 MB go through the mirror: the server pauses the sender with rx flow
    control instead of dropping, and every reader gets everything in order."""
    sender = await ws_connect(port, subprotocols=[MIRROR])
    laggard = await ws_connect(port, subprotocols=[MIRROR], max_queue=1)
    prompt = await ws_connect(port, subprotocols=[MIRROR])
    try:
        await asyncio.sleep(0.1)
        sent = [f"{i:05d} " + "m" * size for i in range(count)]

        async def send_all():
            for m in sent:
                await sender.send(m)

        async def collect(ws, delay):
            await asyncio.sleep(delay)
            got = []
            while len(got) < count:
                try:
                    got.append(await asyncio.wait_for(ws.recv(), 15))
                except asyncio.TimeoutError:
                    raise CheckFailed(f"stalled after {len(got)} of {count} messages")
            return got

        _, *results = await asyncio.gather(send_all(), collect(sender, 0),
                                           collect(laggard, lag), collect(prompt, 0))
        for who, got in zip(("sender", "lagging reader", "prompt reader"), results):
            if got != sent:
                i = next(i for i, (a, b) in enumerate(zip(got, sent)) if a != b)
                raise CheckFailed(f"{who}: message {i} is {got[i][:12]!r}, "
                                  f"expected {sent[i][:12]!r}")
    finally:
        for ws in (sender, laggard, prompt):
            await ws.close()


async def check_no_subprotocol(port):
    """v1.23 gives a client that names no subprotocol protocols[0] ("http-only").
    Accepted either way, as long as the server lives on."""
    try:
        async with ws_connect(port) as ws:
            require(ws.subprotocol is None, f"server named subprotocol {ws.subprotocol!r}")
            await ws.send("hello protocols[0]")
            await recv_for(ws, 0.2)
        print("  note: a client without subprotocol was accepted (protocols[0])")
    except CheckFailed:
        raise
    except Exception as e:
        print(f"  note: a client without subprotocol was refused: {e!r}")
    await check_server_alive(port)


async def check_unknown_subprotocol(port):
    reader, writer = await open_raw(port)
    try:
        req, _ = upgrade_request(port, protocol="no-such-protocol")
        writer.write(req)
        await writer.drain()
        headers = {}
        try:
            status, headers, head = await read_http_head(reader, 10)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            status = None
        require(status != 101, "an unknown subprotocol was accepted with 101 "
                f"(Sec-WebSocket-Protocol: {headers.get('sec-websocket-protocol')!r})")
    finally:
        close_writer(writer)
    await check_server_alive(port)


async def check_server_alive(port):
    reader, writer = await open_raw(port)
    try:
        writer.write(f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
        await writer.drain()
        status, _, _ = await read_http_head(reader, 10)
        require(status == 200, f"GET / answered {status}")
    finally:
        close_writer(writer)
    async with ws_connect(port, subprotocols=[DI]) as ws:
        await asyncio.wait_for(ws.recv(), 5)


async def main():
    args = base_parser(__doc__).parse_args()
    r = Runner(args)
    await r.run("dumb_increment", check_dumb_increment, args.port)
    await r.run("mirror", check_mirror, args.port)
    await r.run("mirror_burst", check_mirror_burst, args.port)
    await r.run("mirror_lagging_reader", check_mirror_lagging_reader, args.port)
    await r.run("no_subprotocol", check_no_subprotocol, args.port)
    await r.run("unknown_subprotocol", check_unknown_subprotocol, args.port)
    await r.run("alive", check_server_alive, args.port)
    r.finish()


if __name__ == "__main__":
    asyncio.run(main())
