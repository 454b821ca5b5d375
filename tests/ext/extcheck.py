"""Helpers shared by the extension test scripts in tests/ext.

* `Checks`: runs named checks (plain functions or coroutines), prints one
  "PASS name" / "FAIL name: why" line each and a closing
  "<script>: N passed, M failed" line; the exit status is 1 when a check failed
  or none ran.
* `RawConn`: a WebSocket client on a plain socket, for hand-made handshakes and
  frames (every read has a deadline).
* `Deflater` / `Inflater`: raw DEFLATE with sync flush and the `00 00 ff ff`
  tail stripped / appended, as RFC 7692 and deflate-frame use it.

Only 127.0.0.1 is ever contacted.
"""

import asyncio
import base64
import hashlib
import os
import socket
import struct
import sys
import time
import traceback
import zlib

HOST = "127.0.0.1"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TAIL = b"\x00\x00\xff\xff"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10


class Fail(Exception):
    """A check's expectation did not hold."""


def need(cond, why):
    if not cond:
        raise Fail(why)


class Checks:
    def __init__(self, script, only=""):
        self.script = script
        self.only = {n for n in only.split(",") if n}
        self.passed = 0
        self.failed = 0

    def wanted(self, name):
        return not self.only or name in self.only

    def _report(self, name, start, exc):
        if exc is None:
            self.passed += 1
            print(f"PASS {name} ({time.monotonic() - start:.2f} s)", flush=True)
            return
        self.failed += 1
        if isinstance(exc, Fail):
            why = str(exc)
        elif isinstance(exc, (asyncio.TimeoutError, socket.timeout, TimeoutError)):
            why = f"timed out ({type(exc).__name__}: {exc})"
        else:
            why = "unexpected " + "".join(traceback.format_exception_only(type(exc), exc)).strip()
        print(f"FAIL {name}: {why}", flush=True)

    def run(self, name, fn, *args):
        """Runs a plain function (its socket timeouts bound it)."""
        if not self.wanted(name):
            return
        start = time.monotonic()
        try:
            fn(*args)
        except Exception as e:  # every failure is reported, never raised
            self._report(name, start, e)
            return
        self._report(name, start, None)

    async def run_async(self, name, coro_fn, *args, limit=60.0):
        """Runs a coroutine function under `limit` seconds."""
        if not self.wanted(name):
            return
        start = time.monotonic()
        try:
            await asyncio.wait_for(coro_fn(*args), limit)
        except Exception as e:
            self._report(name, start, e)
            return
        self._report(name, start, None)

    def finish(self):
        print(f"{self.script}: {self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)


# ------------------------------------------------------------------ raw socket client


class Closed(Exception):
    """The peer closed the TCP connection (EOF) while a frame was expected."""


class RawConn:
    """One WebSocket connection on a plain socket.

    `RawConn(port, extensions)` sends an upgrade request offering `extensions`
    (a string, a list of header values sent as separate lines, or None) and
    reads the response head; `status`, `headers` (lower-case names, list of
    values per name) are then available. The constructor does not fail on a
    non-101 answer: the checks look at `status` themselves.
    """

    def __init__(self, port, extensions=None, timeout=10.0, path="/", extra=()):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.buf = b""
        key = base64.b64encode(os.urandom(16))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {HOST}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + key.decode(),
            "Sec-WebSocket-Version: 13",
        ]
        if isinstance(extensions, str):
            lines.append("Sec-WebSocket-Extensions: " + extensions)
        elif extensions:
            for v in extensions:
                lines.append("Sec-WebSocket-Extensions: " + v)
        lines.extend(extra)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        head = self._read_until(b"\r\n\r\n", 16384)
        text = head.decode("latin-1")
        first, *rest = text.split("\r\n")
        parts = first.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.headers = {}
        for line in rest:
            if ":" in line:
                n, v = line.split(":", 1)
                self.headers.setdefault(n.strip().lower(), []).append(v.strip())
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            got = self.header("sec-websocket-accept")
            need(got == want, f"bad Sec-WebSocket-Accept {got!r}")

    def header(self, name):
        """The single value of a header; None if absent; Fail if repeated."""
        vals = self.headers.get(name.lower(), [])
        need(len(vals) <= 1, f"header {name} sent {len(vals)} times: {vals}")
        return vals[0] if vals else None

    def extensions(self):
        """The response's extension elements as (name, [params]) (no header: [])."""
        v = self.header("sec-websocket-extensions")
        if v is None:
            return []
        out = []
        for element in v.split(","):
            items = [x.strip() for x in element.split(";")]
            need(items[0] != "", f"empty extension element in {v!r}")
            out.append((items[0], items[1:]))
        return out

    def _fill(self):
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        if not data:
            raise Closed()
        self.buf += data

    def _read_until(self, marker, limit):
        while marker not in self.buf:
            need(len(self.buf) < limit, "response head too long")
            self._fill()
        i = self.buf.index(marker) + len(marker)
        head, self.buf = self.buf[:i], self.buf[i:]
        return head

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, rsv=0, mask=True):
        self.sock.sendall(frame_bytes(opcode, payload, fin, rsv, mask))

    def recv_frame(self):
        """(fin, rsv, opcode, payload) of the next frame; Closed on EOF."""
        b0, b1 = self._read_exact(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read_exact(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read_exact(8))
        key = self._read_exact(4) if b1 & 0x80 else None
        payload = self._read_exact(n)
        if key:
            payload = xor(payload, key)
        return bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, payload

    def recv_message(self, inflater=None, answer_pings=True):
        """Reads one data message: (opcode, payload, first frame's rsv).

        With `inflater` a message whose first frame has RSV1 is inflated.
        Pongs are skipped, pings answered; a close frame raises Fail."""
        frames = []
        while True:
            fin, rsv, op, payload = self.recv_frame()
            if op == OP_PONG:
                continue
            if op == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, payload)
                continue
            if op == OP_CLOSE:
                raise Fail(f"unexpected close {close_info(payload)}")
            frames.append((rsv, op, payload))
            if fin:
                break
        data = b"".join(p for _, _, p in frames)
        rsv0 = frames[0][0]
        if rsv0 & RSV1:
            need(inflater is not None, "RSV1 message without an inflater")
            data = inflater.message(data)
        return frames[0][1], data, rsv0

    def expect_close(self, want_code, within=10.0):
        """Reads (discarding data) until the server's close frame; checks its
        code and that the TCP connection then ends. Returns the code."""
        deadline = time.monotonic() + within
        seen = []
        self.sock.settimeout(within)
        while True:
            need(time.monotonic() < deadline, f"no close frame within {within} s (got {seen})")
            try:
                fin, rsv, op, payload = self.recv_frame()
            except Closed:
                raise Fail(f"connection ended without a close frame (wanted {want_code}; got {seen})")
            except (socket.timeout, TimeoutError):
                raise Fail(f"no close frame within {within} s (wanted {want_code}; got {seen})")
            if op != OP_CLOSE and len(seen) < 4:
                seen.append(f"opcode {op} rsv {rsv:#x} {len(payload)} B")
            if op == OP_CLOSE:
                code = close_info(payload)[0]
                need(code == want_code, f"close code {code}, wanted {want_code}")
                break
        # answer the close and wait for the server to end the TCP connection
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        end = time.monotonic() + 10
        try:
            while time.monotonic() < end:
                self._fill()
                self.buf = b""
        except (Closed, OSError):
            return code
        raise Fail("server kept the connection open after its close frame")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def xor(data, key):
    if not data:
        return data
    k = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(len(data), "big")


def frame_bytes(opcode, payload=b"", fin=True, rsv=0, mask=True):
    b0 = (0x80 if fin else 0) | (rsv & 0x70) | (opcode & 0x0F)
    n = len(payload)
    m = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, m | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + xor(payload, key)


def close_info(payload):
    """(code or None, reason bytes) of a close frame payload."""
    if len(payload) >= 2:
        return struct.unpack("!H", payload[:2])[0], payload[2:]
    return None, b""


# ------------------------------------------------------------------ DEFLATE


class Deflater:
    """Raw DEFLATE, sync flush, tail stripped. `takeover=False` starts every
    message with a fresh compressor."""

    def __init__(self, wbits=15, takeover=True, level=6):
        self.wbits, self.takeover, self.level = wbits, takeover, level
        self.c = None

    def message(self, data):
        if self.c is None or not self.takeover:
            self.c = zlib.compressobj(self.level, zlib.DEFLATED, -self.wbits)
        if not data:
            # an empty stored block; zlib emits nothing for a flush without
            # new data (RFC 7692 7.2.3.6 suggests this single octet)
            return b"\x00"
        out = self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH)
        need(out.endswith(TAIL), "compressor output lacks the sync tail")
        return out[:-4]


class Inflater:
    """Raw DEFLATE inflater; appends the tail to each message (or frame)."""

    def __init__(self, wbits=15, takeover=True):
        self.wbits, self.takeover = wbits, takeover
        self.d = None

    def message(self, data):
        if self.d is None or not self.takeover:
            self.d = zlib.decompressobj(-self.wbits)
        out = self.d.decompress(data + TAIL)
        if self.d.eof:  # a BFINAL block ended the stream: start afresh next time
            self.d = None
        return out
