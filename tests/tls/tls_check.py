#!/usr/bin/env python3
"""TLS checks against the example servers built on this library (loopback only).

    python3 tests/tls/tls_check.py --port P --ca CA.pem CHECK...

Each check prints "PASS name (..)" or "FAIL name: why"; the last line is
"tls_check: N passed, M failed" and the exit status is 0 only when all passed.
Every network wait is bounded.

Against examples/test-echo.c --ssl (wss://):
  sizes            text and binary messages of 0, 125, 126, 65535, 65536 bytes,
                   1 MiB and 16 MiB, one client, each echoed unchanged
  parallel         20 clients at once, each echoing text and binary messages of
                   every size up to 1 MiB
  fragments        fragmented text and binary messages with a ping between the
                   fragments (the pong comes first, then the whole message), a
                   UTF-8 character split over two frames, a 125-byte ping
  close-codes      close 1000, 1001, 3000 and 4999 answered with that code (or
                   1000); close codes 0, 999, 1004, 1005, 1006, 1016, 2999 and a
                   1-byte close payload answered with 1002
  invalid-utf8     invalid UTF-8 in a text message (whole, and split over
                   fragments) and in a close reason: close 1007
  protocol-errors  reserved opcode, RSV bit, unmasked frame, 126-byte ping,
                   fragmented ping, continuation without a start: close 1002

Against examples/test-server.c --ssl (https://):
  get              GET --path; the body must equal --expect-file byte for byte
  plain-http       a plain-text HTTP request on the TLS port: closed within 10 s,
                   never answered in HTTP
  garbage          1 KB of random bytes, and a TLS record header followed by 1 KB of
                   random bytes, instead of a ClientHello: each closed within 10 s;
                   then a normal request is still served
  handshakes       50 TLS handshakes at once, all kept open, then a request on each
  idle             a client that completes the handshake and sends nothing is
                   closed within 15 s (and one that sends nothing at all)
  client-cert      a request with the client certificate --cert/--key (if given):
                   --expect ok (200) or refused (no HTTP answer)
  tls12-cipher     TLS 1.2 only, offering --cipher (an OpenSSL name):
                   --expect ok or refused
  tls13            a TLS 1.3 handshake (whatever --ciphers the server was given)
"""

import argparse
import asyncio
import base64
import os
import socket
import ssl
import struct
import sys
import time
import traceback

HOST = "127.0.0.1"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
SIZES = [0, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


class CheckFailed(Exception):
    pass


def require(cond, message):
    if not cond:
        raise CheckFailed(message)


def pattern(n, seed):
    """Deterministic bytes (fast for 16 MiB)."""
    block = bytes((i * 31 + seed * 7 + (i >> 8)) & 0xFF for i in range(4096))
    return (block * (n // 4096 + 1))[:n]


def text_of(n, seed):
    """ASCII text of n bytes."""
    alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ,.-"
    block = bytes(alphabet[(i * 7 + seed) % len(alphabet)] for i in range(4096))
    return (block * (n // 4096 + 1))[:n].decode()


# ---------------------------------------------------------------- TLS contexts

def client_context(args, cert=True, max_tls12=False, cipher=None):
    ctx = ssl.create_default_context(cafile=args.ca)
    ctx.check_hostname = True
    if cert and args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if cipher:
        ctx.set_ciphers(cipher)
    return ctx


async def open_tls(args, ctx=None, limit=10.0):
    ctx = ctx or client_context(args)
    return await asyncio.wait_for(
        asyncio.open_connection(HOST, args.port, ssl=ctx, server_hostname=args.host,
                                ssl_handshake_timeout=limit), limit)


async def open_tcp(args, limit=10.0):
    return await asyncio.wait_for(asyncio.open_connection(HOST, args.port), limit)


def close_writer(writer):
    try:
        writer.close()
    except Exception:
        pass


async def wait_eof(reader, limit):
    """Reads until the peer closes; returns (seconds, bytes read). A reset or a TLS
    error counts as closed."""
    start = time.monotonic()
    got = b""
    while True:
        left = start + limit - time.monotonic()
        if left <= 0:
            raise CheckFailed(f"connection still open after {limit:.0f} s")
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except asyncio.TimeoutError:
            raise CheckFailed(f"connection still open after {limit:.0f} s")
        except (ConnectionError, ssl.SSLError, OSError):
            return time.monotonic() - start, got
        if not chunk:
            return time.monotonic() - start, got
        got += chunk


async def http_get(reader, writer, path="/", limit=30.0):
    """Sends a GET; returns (status, headers, body) (body read to Content-Length or EOF)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                 .encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), limit)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    require(len(parts) >= 2 and parts[0].startswith("HTTP/"), f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        body = await asyncio.wait_for(reader.readexactly(n), limit) if n else b""
    else:
        _, body = await wait_eof(reader, limit)
    return int(parts[1]), headers, body


# ---------------------------------------------------------------- websockets

def wss_connect(args, **kw):
    from websockets.asyncio.client import connect

    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 10)
    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    kw.setdefault("ping_interval", None)
    return connect(f"wss://{HOST}:{args.port}/", ssl=client_context(args),
                   server_hostname=args.host, **kw)


async def echo_round(ws, msg, limit=60.0):
    await ws.send(msg)
    got = await asyncio.wait_for(ws.recv(), limit)
    require(type(got) is type(msg),
            f"{len(msg)}-byte {type(msg).__name__} came back as {type(got).__name__}")
    require(got == msg, f"{len(msg)}-byte {type(msg).__name__} came back different "
            f"({len(got)} bytes)")


async def check_sizes(args):
    async with wss_connect(args) as ws:
        for n in SIZES:
            await echo_round(ws, text_of(n, n % 251))
            await echo_round(ws, pattern(n, n % 253))
        await ws.close(1000)


async def check_parallel(args):
    async def one(i):
        async with wss_connect(args) as ws:
            for n in SIZES[:-1]:
                await echo_round(ws, text_of(n, i))
                await echo_round(ws, pattern(n, i))
            await ws.close(1000)
            require(ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000,
                    f"client {i}: no clean close from the server")

    results = await asyncio.gather(*(one(i) for i in range(20)), return_exceptions=True)
    bad = [(i, r) for i, r in enumerate(results) if isinstance(r, BaseException)]
    if bad:
        raise CheckFailed(f"{len(bad)} of 20 clients failed; first: client {bad[0][0]}: "
                          f"{bad[0][1]!r}")


# ---------------------------------------------------------------- raw frames over TLS

def mask_bytes(payload, mask):
    if not payload:
        return b""
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def frame(opcode, payload=b"", fin=True, masked=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    m = 0x80 if masked else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, m | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, m | 127, n)
    if not masked:
        return hdr + payload
    mask = os.urandom(4)
    return hdr + mask + mask_bytes(payload, mask)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


async def read_frame(reader, limit=10.0):
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), limit)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), limit))[0]
    elif n == 127:
        n = struct.unpack("!Q", await asyncio.wait_for(reader.readexactly(8), limit))[0]
    require(not b1 & 0x80, "the server masked a frame")
    payload = await asyncio.wait_for(reader.readexactly(n), limit) if n else b""
    return bool(b0 & 0x80), b0 & 0x0F, payload


async def ws_open(args):
    reader, writer = await open_tls(args)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET / HTTP/1.1\r\nHost: localhost:{args.port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    require(head.startswith(b"HTTP/1.1 101"), f"upgrade answered {head[:60]!r}")
    return reader, writer


async def expect_message(reader, opcode, payload, limit=10.0):
    """The next data message (control frames before it are returned)."""
    controls, parts, op0 = [], [], None
    while True:
        fin, op, data = await read_frame(reader, limit)
        if op >= 8:
            require(op != OP_CLOSE, f"closed ({data[:2].hex()}) instead of a message")
            controls.append((op, data))
            continue
        if op0 is None:
            op0 = op
        parts.append(data)
        if fin:
            break
    got = b"".join(parts)
    require(op0 == opcode, f"message came back with opcode {op0}, sent {opcode}")
    require(got == payload, f"{len(payload)}-byte message came back different")
    return controls


async def expect_close(reader, writer, codes, what, limit=10.0):
    """Reads until a close frame: its code must be one of `codes`; then EOF."""
    while True:
        try:
            fin, op, data = await read_frame(reader, limit)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as e:
            raise CheckFailed(f"{what}: connection ended without a close frame ({e!r})")
        if op == OP_CLOSE:
            break
    code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
    require(code in codes, f"{what}: close code {code}, expected {sorted(codes)}")
    # complete the closing handshake if the server is waiting for us
    try:
        writer.write(frame(OP_CLOSE, data[:2]))
        await writer.drain()
    except Exception:
        pass
    await wait_eof(reader, 10)
    close_writer(writer)


async def check_fragments(args):
    reader, writer = await ws_open(args)
    writer.write(frame(OP_TEXT, b"Hello, ", fin=False))
    writer.write(frame(OP_PING, b"between fragments"))
    writer.write(frame(OP_CONT, b"fragmented ", fin=False))
    writer.write(frame(OP_CONT, b"world", fin=True))
    await writer.drain()
    controls = await expect_message(reader, OP_TEXT, b"Hello, fragmented world")
    require((OP_PONG, b"between fragments") in controls,
            f"no pong before the message: {controls!r}")

    data = pattern(200000, 5)
    writer.write(frame(OP_BINARY, data[:70000], fin=False))
    writer.write(frame(OP_CONT, data[70000:70001], fin=False))
    writer.write(frame(OP_CONT, b"", fin=False))
    writer.write(frame(OP_CONT, data[70001:], fin=True))
    await writer.drain()
    await expect_message(reader, OP_BINARY, data)

    euro = "price: 10 \u20ac".encode()
    writer.write(frame(OP_TEXT, euro[:-2], fin=False))
    writer.write(frame(OP_CONT, euro[-2:], fin=True))
    await writer.drain()
    await expect_message(reader, OP_TEXT, euro)

    writer.write(frame(OP_PING, b"p" * 125))
    await writer.drain()
    fin, op, data = await read_frame(reader)
    require(op == OP_PONG and data == b"p" * 125, f"125-byte ping answered with op {op}")

    writer.write(frame(OP_CLOSE, close_payload(1000, b"done")))
    await writer.drain()
    await expect_close(reader, writer, {1000}, "close after fragments")


async def check_close_codes(args):
    for code in (1000, 1001, 3000, 4999):
        reader, writer = await ws_open(args)
        writer.write(frame(OP_CLOSE, close_payload(code, b"bye")))
        await writer.drain()
        await expect_close(reader, writer, {code, 1000}, f"close {code}")
    for code in (0, 999, 1004, 1005, 1006, 1016, 2999):
        reader, writer = await ws_open(args)
        writer.write(frame(OP_CLOSE, close_payload(code)))
        await writer.drain()
        await expect_close(reader, writer, {1002}, f"close {code}")
    reader, writer = await ws_open(args)
    writer.write(frame(OP_CLOSE, b"\x03"))
    await writer.drain()
    await expect_close(reader, writer, {1002}, "1-byte close payload")


BAD_UTF8 = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"


async def check_invalid_utf8(args):
    reader, writer = await ws_open(args)
    writer.write(frame(OP_TEXT, BAD_UTF8))
    await writer.drain()
    await expect_close(reader, writer, {1007}, "invalid UTF-8 message")

    reader, writer = await ws_open(args)
    writer.write(frame(OP_TEXT, BAD_UTF8[:12], fin=False))
    writer.write(frame(OP_CONT, BAD_UTF8[12:], fin=True))
    await writer.drain()
    await expect_close(reader, writer, {1007}, "invalid UTF-8 over fragments")

    reader, writer = await ws_open(args)
    writer.write(frame(OP_CLOSE, close_payload(1000, b"\xff\xfe")))
    await writer.drain()
    await expect_close(reader, writer, {1007}, "invalid UTF-8 close reason")


async def check_protocol_errors(args):
    cases = [
        ("reserved opcode 3", [frame(3, b"x")]),
        ("reserved opcode 11", [frame(11)]),
        ("RSV1 set", [frame(OP_TEXT, b"x", rsv=4)]),
        ("unmasked frame", [frame(OP_TEXT, b"x", masked=False)]),
        ("126-byte ping", [frame(OP_PING, b"p" * 126)]),
        ("fragmented ping", [frame(OP_PING, b"p", fin=False)]),
        ("continuation first", [frame(OP_CONT, b"x")]),
        ("text inside a fragmented message",
         [frame(OP_TEXT, b"a", fin=False), frame(OP_TEXT, b"b")]),
    ]
    for what, frames in cases:
        reader, writer = await ws_open(args)
        for f in frames:
            writer.write(f)
        await writer.drain()
        await expect_close(reader, writer, {1002}, what)


# ---------------------------------------------------------------- https server checks

async def check_get(args):
    reader, writer = await open_tls(args)
    status, headers, body = await http_get(reader, writer, args.path)
    close_writer(writer)
    require(status == 200, f"GET {args.path} answered {status}")
    with open(args.expect_file, "rb") as f:
        want = f.read()
    require(body == want, f"body differs: {len(body)} bytes, expected {len(want)}")


async def still_served(args):
    reader, writer = await open_tls(args)
    status, _, _ = await http_get(reader, writer, "/")
    close_writer(writer)
    require(status == 200, f"afterwards, GET / answered {status}")


async def check_plain_http(args):
    reader, writer = await open_tcp(args)
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    took, got = await wait_eof(reader, 10)
    close_writer(writer)
    require(not got.startswith(b"HTTP/"), f"answered in plain HTTP: {got[:40]!r}")
    print(f"  plain-http: closed after {took:.2f} s, {len(got)} bytes back "
          f"({got[:7].hex()})", flush=True)
    await still_served(args)


async def check_garbage(args):
    junk = bytearray(os.urandom(1024))
    if junk[0] == 0x16:
        junk[0] = 0x17
    record = b"\x16\x03\x01" + struct.pack("!H", 1024) + os.urandom(1024)
    for what, data in (("random bytes", bytes(junk)), ("handshake record of random bytes",
                                                       record)):
        reader, writer = await open_tcp(args)
        writer.write(data)
        await writer.drain()
        took, got = await wait_eof(reader, 10)
        close_writer(writer)
        print(f"  garbage ({what}): closed after {took:.2f} s, {len(got)} bytes back",
              flush=True)
    await still_served(args)


async def check_handshakes(args):
    n = 50
    start = time.monotonic()
    results = await asyncio.gather(*(open_tls(args, limit=30) for _ in range(n)),
                                   return_exceptions=True)
    bad = [r for r in results if isinstance(r, BaseException)]
    conns = [r for r in results if not isinstance(r, BaseException)]
    try:
        if bad:
            raise CheckFailed(f"{len(bad)} of {n} handshakes failed: {bad[0]!r}")
        took = time.monotonic() - start
        statuses = await asyncio.gather(*(http_get(r, w, "/") for r, w in conns),
                                        return_exceptions=True)
        ok = sum(1 for s in statuses if not isinstance(s, BaseException) and s[0] == 200)
        require(ok == n, f"only {ok} of {n} requests answered 200: "
                f"{[s for s in statuses if isinstance(s, BaseException)][:1]!r}")
        print(f"  handshakes: {n} concurrent handshakes in {took:.2f} s", flush=True)
    finally:
        for _, w in conns:
            close_writer(w)


async def check_idle(args):
    reader, writer = await open_tls(args)
    took, got = await wait_eof(reader, 15)
    close_writer(writer)
    require(not got, f"{len(got)} bytes arrived on an idle connection")
    print(f"  idle after the handshake: closed after {took:.2f} s", flush=True)
    reader, writer = await open_tcp(args)
    took, got = await wait_eof(reader, 15)
    close_writer(writer)
    print(f"  idle before the handshake: closed after {took:.2f} s", flush=True)


async def check_client_cert(args):
    refused = None
    try:
        reader, writer = await open_tls(args)
        try:
            status, _, body = await http_get(reader, writer, "/", limit=10)
        finally:
            close_writer(writer)
        outcome = f"answered {status} ({len(body)} bytes)"
        accepted = status == 200
    except (ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, OSError) as e:
        refused = e
        outcome = f"refused ({type(e).__name__}: {e})"
        accepted = False
    print(f"  client-cert ({'with ' + os.path.basename(args.cert) if args.cert else 'none'}): "
          f"{outcome}", flush=True)
    if args.expect == "ok":
        require(accepted, outcome)
    else:
        require(refused is not None, f"expected a refusal, but {outcome}")


async def check_tls12_cipher(args):
    ctx = client_context(args, max_tls12=True, cipher=args.cipher)
    try:
        reader, writer = await open_tls(args, ctx)
    except (ssl.SSLError, ConnectionError, OSError, asyncio.IncompleteReadError) as e:
        print(f"  tls12-cipher {args.cipher}: handshake failed ({e})", flush=True)
        require(args.expect == "refused", f"handshake failed: {e}")
        return
    try:
        obj = writer.get_extra_info("ssl_object")
        print(f"  tls12-cipher {args.cipher}: {obj.version()} {obj.cipher()[0]}", flush=True)
        status, _, _ = await http_get(reader, writer, "/")
    finally:
        close_writer(writer)
    require(args.expect == "ok", f"{args.cipher} was accepted")
    require(status == 200, f"GET / answered {status}")


async def check_tls13(args):
    ctx = client_context(args)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    reader, writer = await open_tls(args, ctx)
    try:
        obj = writer.get_extra_info("ssl_object")
        print(f"  tls13: {obj.version()} {obj.cipher()[0]}", flush=True)
        status, _, _ = await http_get(reader, writer, "/")
    finally:
        close_writer(writer)
    require(status == 200, f"GET / answered {status}")


CHECKS = {
    "sizes": (check_sizes, 120),
    "parallel": (check_parallel, 120),
    "fragments": (check_fragments, 30),
    "close-codes": (check_close_codes, 60),
    "invalid-utf8": (check_invalid_utf8, 30),
    "protocol-errors": (check_protocol_errors, 60),
    "get": (check_get, 30),
    "plain-http": (check_plain_http, 30),
    "garbage": (check_garbage, 40),
    "handshakes": (check_handshakes, 60),
    "idle": (check_idle, 40),
    "client-cert": (check_client_cert, 30),
    "tls12-cipher": (check_tls12_cipher, 30),
    "tls13": (check_tls13, 30),
}


async def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True, help="CA file to trust")
    p.add_argument("--host", default="localhost", help="name to verify and send as SNI")
    p.add_argument("--cert", help="client certificate")
    p.add_argument("--key", help="client key")
    p.add_argument("--expect", choices=["ok", "refused"], default="ok")
    p.add_argument("--cipher", default="ECDHE-RSA-AES128-GCM-SHA256")
    p.add_argument("--path", default="/")
    p.add_argument("--expect-file")
    p.add_argument("checks", nargs="+", choices=sorted(CHECKS))
    args = p.parse_args()

    passed = failed = 0
    for name in args.checks:
        fn, limit = CHECKS[name]
        start = time.monotonic()
        try:
            await asyncio.wait_for(fn(args), limit)
        except asyncio.TimeoutError:
            failed += 1
            print(f"FAIL {name}: timed out after {limit} s", flush=True)
            continue
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            continue
        except Exception as e:
            failed += 1
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"FAIL {name}: unexpected {detail}", flush=True)
            continue
        passed += 1
        print(f"PASS {name} ({time.monotonic() - start:.2f} s)", flush=True)
    print(f"tls_check: {passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    socket.setdefaulttimeout(30)
    asyncio.run(main())
