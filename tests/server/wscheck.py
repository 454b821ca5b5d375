"""Shared helpers for the server behaviour scripts in tests/server.

Each script runs a list of named checks against a server already listening on
127.0.0.1, prints one "PASS name" or "FAIL name: reason" line per check and a
closing "N passed, N failed" line, and exits 1 when any check failed. Every
network wait is bounded.
"""

import argparse
import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import time
import traceback

HOST = "127.0.0.1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class CheckFailed(Exception):
    pass


def require(cond, message):
    if not cond:
        raise CheckFailed(message)


def base_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--only", default="", help="comma-separated check names to run")
    p.add_argument("--timeout", type=float, default=60.0, help="per-check limit, seconds")
    return p


class Runner:
    """Runs named async checks, each under a time limit, and reports them."""

    def __init__(self, args):
        self.args = args
        self.only = {n for n in args.only.split(",") if n}
        self.passed = 0
        self.failed = 0

    def wanted(self, name):
        return not self.only or name in self.only

    async def run(self, name, coro_fn, *fn_args, timeout=None):
        if not self.wanted(name):
            return
        limit = timeout if timeout is not None else self.args.timeout
        start = time.monotonic()
        try:
            await asyncio.wait_for(coro_fn(*fn_args), limit)
        except asyncio.TimeoutError:
            self.failed += 1
            print(f"FAIL {name}: timed out after {limit:.0f} s", flush=True)
            return
        except CheckFailed as e:
            self.failed += 1
            print(f"FAIL {name}: {e}", flush=True)
            return
        except Exception as e:  # anything unexpected is a failure of that check
            self.failed += 1
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            print(f"FAIL {name}: unexpected {detail}", flush=True)
            return
        self.passed += 1
        print(f"PASS {name} ({time.monotonic() - start:.2f} s)", flush=True)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        if self.passed == 0 and self.failed == 0:
            print("no check matched --only", flush=True)
            sys.exit(2)
        sys.exit(1 if self.failed else 0)


def ws_url(port, path="/"):
    return f"ws://{HOST}:{port}{path}"


def ws_connect(port, **kw):
    """websockets client connection with the settings these tests rely on."""
    from websockets.asyncio.client import connect

    kw.setdefault("open_timeout", 10)
    kw.setdefault("close_timeout", 10)
    kw.setdefault("max_size", None)
    kw.setdefault("compression", None)
    kw.setdefault("ping_interval", None)
    return connect(ws_url(port), **kw)


# ---------------------------------------------------------------- raw sockets

async def open_raw(port):
    return await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)


def upgrade_request(port, protocol=None, path="/", key=None, extra=""):
    key = key or base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {HOST}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        f"Origin: http://{HOST}:{port}",
    ]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    req = "\r\n".join(lines) + "\r\n" + extra + "\r\n"
    return req.encode(), key


def expected_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


async def read_http_head(reader, limit=10.0):
    """Reads up to the blank line; returns (status_code, headers dict, raw head)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), limit)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    require(len(parts) >= 2 and parts[0].startswith("HTTP/"), f"bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers, head


async def raw_ws_open(port, protocol=None):
    """Opens a WebSocket by hand; returns (reader, writer) after a checked 101."""
    reader, writer = await open_raw(port)
    req, key = upgrade_request(port, protocol)
    writer.write(req)
    await writer.drain()
    status, headers, head = await read_http_head(reader)
    require(status == 101, f"upgrade answered {status}: {head[:200]!r}")
    require(headers.get("sec-websocket-accept") == expected_accept(key),
            f"wrong Sec-WebSocket-Accept {headers.get('sec-websocket-accept')!r}")
    return reader, writer


def client_frame(opcode, payload=b"", fin=True, mask=None):
    """One masked client frame."""
    mask = mask if mask is not None else os.urandom(4)
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    return hdr + mask + mask_bytes(payload, mask)


def mask_bytes(payload, mask):
    if not payload:
        return b""
    n = len(payload)
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


async def read_frame(reader, limit=10.0):
    """Reads one server frame: returns (fin, opcode, payload)."""
    b0, b1 = await asyncio.wait_for(reader.readexactly(2), limit)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), limit))[0]
    elif n == 127:
        n = struct.unpack("!Q", await asyncio.wait_for(reader.readexactly(8), limit))[0]
    mask = await asyncio.wait_for(reader.readexactly(4), limit) if b1 & 0x80 else None
    payload = await asyncio.wait_for(reader.readexactly(n), limit) if n else b""
    if mask:
        payload = mask_bytes(payload, mask)
    return bool(b0 & 0x80), b0 & 0x0F, payload


async def read_message(reader, limit=10.0):
    """Reads frames until one whole data message; control frames are returned
    separately as a list of (opcode, payload)."""
    controls = []
    opcode = None
    parts = []
    while True:
        fin, op, payload = await read_frame(reader, limit)
        if op >= 8:
            controls.append((op, payload))
            if op == OP_CLOSE:
                return None, b"", controls
            continue
        if opcode is None:
            require(op in (OP_TEXT, OP_BINARY), f"message starts with opcode {op}")
            opcode = op
        else:
            require(op == OP_CONT, f"expected a continuation frame, got opcode {op}")
        parts.append(payload)
        if fin:
            return opcode, b"".join(parts), controls


async def wait_eof(reader, limit):
    """Reads and discards until the peer closes; returns (seconds, bytes read).
    A connection reset counts as closed."""
    start = time.monotonic()
    got = b""
    deadline = start + limit
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise CheckFailed(f"connection still open after {limit:.0f} s")
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start, got
        except asyncio.TimeoutError:
            raise CheckFailed(f"connection still open after {limit:.0f} s")
        if not chunk:
            return time.monotonic() - start, got
        got += chunk


def close_writer(writer, abort=False):
    try:
        if abort:
            sock = writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()
    except Exception:
        pass
