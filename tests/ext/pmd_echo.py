#!/usr/bin/env python3
"""permessage-deflate against an echo server (examples/test-echo), with the
Python `websockets` client (compression on).

Usage: pmd_echo.py --port P [--only a,b] [--no-big]

Checks:
  sizes       text and binary messages of 0 B .. 16 MiB (compressible and
              random): echo equal, same type, every echo compressed (RSV1)
  fragmented  messages sent as several compressed frames (websockets compresses
              fragments): 3 x 100 KB, 1000 x 10 B, empty fragments, 16 MiB in 16
  many        2000 messages written before any echo is read, in order
  flow        24 x 1 MiB written while reading (the server pauses and resumes
              reading compressed input)
  takeover    the same message twice: the second is tiny on the wire both ways
              (context takeover) and still echoes right
  params      every combination of server/client_no_context_takeover,
              server_max_window_bits (none, 8..15), client_max_window_bits
              (none, bare, 9..15): the response obeys RFC 7692 7.1 and the
              offer, websockets accepts it, and window-sensitive data echoes
  header      the Sec-WebSocket-Extensions response header appears once

The closing line is "pmd_echo: N passed, M failed".
"""

import argparse
import asyncio
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from extcheck import Checks, Fail, need  # noqa: E402

import websockets.extensions.permessage_deflate as pmdmod  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory,
)
from websockets.frames import Opcode  # noqa: E402

MIB = 1 << 20

# ---- record RSV1 and wire size of every data frame the client receives
RX_LOG = []
_orig_decode = pmdmod.PerMessageDeflate.decode


def _logging_decode(self, frame, *, max_size=None):
    if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
        RX_LOG.append((frame.opcode, frame.rsv1, len(frame.data)))
    return _orig_decode(self, frame, max_size=max_size)


pmdmod.PerMessageDeflate.decode = _logging_decode

TX_LOG = []
_orig_encode = pmdmod.PerMessageDeflate.encode


def _logging_encode(self, frame):
    out = _orig_encode(self, frame)
    if out.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
        TX_LOG.append((out.opcode, out.rsv1, len(out.data)))
    return out


pmdmod.PerMessageDeflate.encode = _logging_encode


def url(port):
    return f"ws://127.0.0.1:{port}/"


def open_ws(port, factory=None, **kw):
    args = dict(max_size=None, proxy=None, ping_interval=None, open_timeout=10, close_timeout=5)
    args.update(kw)
    if factory is not None:
        args["extensions"] = [factory]
    return connect(url(port), **args)


_TEXT_POOL = {}


def _text_pool(seed):
    """About 256 KB of UTF-8 text with 1-4 byte characters."""
    if seed not in _TEXT_POOL:
        rnd = random.Random(seed)
        alphabet = "abcdefghij KLMNOP \u00e9\u00fc\u20ac\u4e2d\U0001f600"
        _TEXT_POOL[seed] = "".join(rnd.choices(alphabet, k=100_000))
    return _TEXT_POOL[seed]


def text_of(n, seed):
    """Exactly n bytes of UTF-8 text mixing 1-4 byte characters, fairly
    compressible (longer texts repeat a 256 KB pool)."""
    pool = _text_pool(seed % 4)
    pool_bytes = len(pool.encode())
    parts = [pool] * (n // pool_bytes)
    size = pool_bytes * len(parts)
    for ch in pool:
        b = len(ch.encode())
        if size + b > n:
            break
        parts.append(ch)
        size += b
    parts.append("x" * (n - size))
    out = "".join(parts)
    assert len(out.encode()) == n
    return out


def random_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def negotiated(ws):
    exts = [e for e in ws.protocol.extensions if e.name == "permessage-deflate"]
    need(len(exts) == 1, f"permessage-deflate not negotiated: {ws.protocol.extensions}")
    return exts[0]


async def echo_one(ws, msg, what):
    start = len(RX_LOG)
    await ws.send(msg)
    back = await asyncio.wait_for(ws.recv(), 60)
    need(type(back) is type(msg), f"{what}: echo type {type(back).__name__}")
    need(back == msg, f"{what}: echo differs (len {len(back)} vs {len(msg)})")
    frames = RX_LOG[start:]
    need(frames, f"{what}: no data frame recorded")
    need(frames[0][1], f"{what}: echo not compressed (no RSV1 on its first frame)")
    return frames


async def check_sizes(port, big):
    sizes = [0, 1, 2, 125, 126, 127, 1000, 65535, 65536, 65537, 300_000, MIB]
    async with open_ws(port) as ws:
        negotiated(ws)
        for n in sizes:
            await echo_one(ws, text_of(n, n), f"text {n}")
            await echo_one(ws, random_bytes(n, n), f"random binary {n}")
            await echo_one(ws, bytes(n), f"zero binary {n}")
            await echo_one(ws, ("0123456789abcdef" * (n // 16 + 1))[:n], f"repetitive text {n}")
        if big:
            # the Python side needs about 5 s for each of these
            n = 16 * MIB
            await echo_one(ws, text_of(n, 3), "text 16 MiB")
            await echo_one(ws, random_bytes(n, 5), "random binary 16 MiB")
            await echo_one(ws, bytes(n), "zero binary 16 MiB")


async def check_fragmented(port, big):
    async with open_ws(port) as ws:
        negotiated(ws)
        cases = [
            ("3 x 100 KB text", [text_of(100_000, i) for i in range(3)]),
            ("1000 x 10 B binary", [random_bytes(10, i) for i in range(1000)]),
            ("with empty fragments", [b"", b"abc", b"", b"", b"def" * 1000, b""]),
            ("text with empty fragments", ["", "caf\u00e9 ", "", "\U0001f600" * 500, ""]),
            ("2 x 64 KiB random", [random_bytes(65536, 7), random_bytes(65536, 8)]),
        ]
        if big:
            cases.append(("16 MiB in 16", [bytes([i]) * MIB for i in range(16)]))
        for what, parts in cases:
            start_tx = len(TX_LOG)
            await ws.send(parts)
            sent = TX_LOG[start_tx:]
            # websockets ends a fragmented message with an empty final frame
            need(len(sent) >= len(parts), f"{what}: sent {len(sent)} frames for {len(parts)} parts")
            need(sent[0][1], f"{what}: websockets did not compress the first fragment")
            whole = "".join(parts) if isinstance(parts[0], str) else b"".join(parts)
            back = await asyncio.wait_for(ws.recv(), 60)
            need(back == whole, f"{what}: echo differs (len {len(back)} vs {len(whole)})")
        # whole messages still fine afterwards (the context survived the fragments)
        await echo_one(ws, "after fragments " * 100, "message after fragments")


async def check_many(port):
    async with open_ws(port, max_queue=None) as ws:
        negotiated(ws)
        msgs = []
        for i in range(2000):
            if i % 3 == 0:
                msgs.append(f"message {i} " + "lorem ipsum " * (i % 50))
            elif i % 3 == 1:
                msgs.append(random_bytes(i % 700, i))
            else:
                msgs.append(bytes(i % 5000))

        async def writer():
            for m in msgs:
                await ws.send(m)

        w = asyncio.ensure_future(writer())
        for i, m in enumerate(msgs):
            back = await asyncio.wait_for(ws.recv(), 60)
            need(back == m, f"message {i} differs (len {len(back)} vs {len(m)})")
        await w


async def check_flow(port):
    """24 messages of 1 MiB (text and random binary) written while the echoes
    are read concurrently: the server pauses reading above its queue mark and
    must resume with the inflater state intact."""
    async with open_ws(port, max_queue=None, write_limit=1 << 22) as ws:
        negotiated(ws)
        msgs = [random_bytes(1 << 20, 1000 + i) if i % 2 else text_of(1 << 20, i) for i in range(24)]

        async def writer():
            for m in msgs:
                await ws.send(m)

        w = asyncio.ensure_future(writer())
        for i, m in enumerate(msgs):
            back = await asyncio.wait_for(ws.recv(), 60)
            need(back == m, f"message {i} differs")
        await w


async def check_takeover(port):
    async with open_ws(port) as ws:
        negotiated(ws)
        msg = text_of(20_000, 99)
        first = await echo_one(ws, msg, "first")
        tx_before = len(TX_LOG)
        second = await echo_one(ws, msg, "second")
        need(TX_LOG[tx_before][2] < 200, f"client side: second message {TX_LOG[tx_before][2]} B")
        f1 = sum(f[2] for f in first)
        f2 = sum(f[2] for f in second)
        need(f2 < 200 and f2 * 20 < f1, f"server did not use context takeover: {f1} B then {f2} B")


def parse_response(value):
    """[(name, {param: value or None})] from a response header value, with
    duplicate detection."""
    out = []
    for element in value.split(","):
        items = [x.strip() for x in element.split(";")]
        params = {}
        for it in items[1:]:
            n, _, v = it.partition("=")
            n = n.strip().lower()
            need(n not in params, f"duplicate parameter {n} in {value!r}")
            params[n] = v.strip().strip('"') if _ else None
        out.append((items[0].strip(), params))
    return out


def check_rfc7692_response(value, snct, cnct, smwb, cmwb):
    """RFC 7692 7.1 rules for a server response to one offer with these
    parameters (cmwb: None, True for the bare parameter, or a number); also the
    engine's documented default policy (echo what was asked, no more)."""
    elements = parse_response(value)
    need(len(elements) == 1, f"response {value!r} has {len(elements)} elements")
    name, params = elements[0]
    need(name == "permessage-deflate", f"response names {name!r}")
    known = {
        "server_no_context_takeover",
        "client_no_context_takeover",
        "server_max_window_bits",
        "client_max_window_bits",
    }
    need(set(params) <= known, f"unknown parameters in {value!r}")
    for flag in ("server_no_context_takeover", "client_no_context_takeover"):
        if flag in params:
            need(params[flag] is None, f"{flag} has a value in {value!r}")
    for bits in ("server_max_window_bits", "client_max_window_bits"):
        if bits in params:
            v = params[bits]
            need(
                v is not None and v.isdigit() and not v.startswith("0") and 8 <= int(v) <= 15,
                f"bad {bits} value in {value!r}",
            )
    # 7.1.1.1: requested server_no_context_takeover must be accepted
    if snct:
        need("server_no_context_takeover" in params, f"server_no_context_takeover missing: {value!r}")
    # 7.1.2.1: requested server_max_window_bits=N: same or smaller value
    if smwb is not None:
        need("server_max_window_bits" in params, f"server_max_window_bits missing: {value!r}")
        need(int(params["server_max_window_bits"]) <= smwb, f"server window above {smwb}: {value!r}")
    # 7.1.2.2: client_max_window_bits only if offered; not above an offered value
    if cmwb is None:
        need("client_max_window_bits" not in params, f"unoffered client_max_window_bits: {value!r}")
    elif cmwb is not True and "client_max_window_bits" in params:
        need(int(params["client_max_window_bits"]) <= cmwb, f"client window above {cmwb}: {value!r}")
    # the engine's default policy (README "Extensions"): grant exactly what was asked
    want = set()
    if snct:
        want.add("server_no_context_takeover")
    if cnct:
        want.add("client_no_context_takeover")
    if smwb is not None:
        want.add(f"server_max_window_bits={smwb}")
    if cmwb not in (None, True):
        want.add(f"client_max_window_bits={cmwb}")
    got = {n if v is None else f"{n}={v}" for n, v in params.items()}
    need(got == want, f"response {value!r}: parameters {sorted(got)}, expected {sorted(want)}")


_WINDOW_DATA = {}


def window_data(seed):
    """Text whose repeats sit at distances of 300 B .. 20 KB, so a compressor
    using a larger window than agreed produces references the peer's smaller
    window rejects."""
    if seed not in _WINDOW_DATA:
        rnd = random.Random(seed)
        out = []
        for dist in (300, 700, 1500, 3000, 6000, 12000, 20000):
            block = "".join(rnd.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=dist))
            out.append(block + block)
        _WINDOW_DATA[seed] = "".join(out)
    return _WINDOW_DATA[seed]


async def one_param_combo(port, snct, cnct, smwb, cmwb):
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=snct,
        client_no_context_takeover=cnct,
        server_max_window_bits=smwb,
        client_max_window_bits=cmwb,
    )
    what = f"snct={snct} cnct={cnct} smwb={smwb} cmwb={cmwb}"
    try:
        ws_cm = open_ws(port, factory)
        ws = await ws_cm.__aenter__()
    except Exception as e:
        raise Fail(f"{what}: handshake failed: {e!r}")
    try:
        values = ws.response.headers.get_all("Sec-WebSocket-Extensions")
        need(len(values) == 1, f"{what}: {len(values)} Sec-WebSocket-Extensions headers")
        try:
            check_rfc7692_response(values[0], snct, cnct, smwb, cmwb)
        except Fail as e:
            raise Fail(f"{what}: {e}")
        ext = negotiated(ws)
        if smwb is not None:
            need(ext.remote_max_window_bits == smwb, f"{what}: server window {ext.remote_max_window_bits}")
        data = window_data((smwb or 0) + (cmwb if isinstance(cmwb, int) and cmwb is not True else 0))
        for i in range(3):
            msg = data if i != 1 else data.encode()
            start = len(RX_LOG)
            await ws.send(msg)
            back = await asyncio.wait_for(ws.recv(), 30)
            need(back == msg, f"{what}: message {i} echo differs")
            need(RX_LOG[start][1], f"{what}: message {i} echo not compressed")
    finally:
        await ws_cm.__aexit__(None, None, None)


async def check_params(port):
    count = 0
    for snct in (False, True):
        for cnct in (False, True):
            for smwb in [None] + list(range(8, 16)):
                for cmwb in [None, True] + list(range(9, 16)):
                    await one_param_combo(port, snct, cnct, smwb, cmwb)
                    count += 1
    print(f"  params: {count} offers negotiated and echoed", flush=True)


async def check_header(port):
    async with open_ws(port) as ws:
        values = ws.response.headers.get_all("Sec-WebSocket-Extensions")
        need(len(values) == 1, f"{len(values)} Sec-WebSocket-Extensions headers: {values}")
        check_rfc7692_response(values[0], False, False, None, True)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--only", default="")
    p.add_argument("--no-big", action="store_true", help="skip the 4 and 16 MiB messages")
    a = p.parse_args()
    c = Checks("pmd_echo", a.only)
    await c.run_async("header", check_header, a.port)
    await c.run_async("sizes", check_sizes, a.port, not a.no_big, limit=120)
    await c.run_async("fragmented", check_fragmented, a.port, not a.no_big, limit=120)
    await c.run_async("many", check_many, a.port, limit=60)
    await c.run_async("flow", check_flow, a.port, limit=90)
    await c.run_async("takeover", check_takeover, a.port)
    await c.run_async("params", check_params, a.port, limit=120)
    c.finish()


if __name__ == "__main__":
    asyncio.run(main())
