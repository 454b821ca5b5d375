#!/usr/bin/env python3
"""A tiny deflate-frame client (the pre-RFC 7692 per-frame extension that
libwebsockets v1.23 shipped) against an echo server (examples/test-echo).

deflate-frame as spoken here: every data frame with RSV1 carries its own
payload compressed with raw DEFLATE, sync-flushed, the trailing 00 00 ff ff
removed; the receiver appends the 4 octets and inflates that frame alone. One
compressor and one decompressor per direction live as long as the connection
(context kept across frames and messages), 15-bit window. RSV1 may be set on
any data frame, continuation frames included; a frame without RSV1 is plain.

Usage: dframe_client.py --port P [--only a,b]

Checks (each for "deflate-frame" and "x-webkit-deflate-frame"):
  sizes       single-frame messages 0 B .. 1 MiB, text and binary: echo equal,
              every echoed data frame has RSV1 and inflates per frame
  fragmented  messages of several frames, each compressed with RSV1 (also on
              continuations), some frames plain
  many        500 messages in a row, written before reading (shared context)
  corrupt     an undecodable frame: close 1007
  utf8        a compressed text frame with invalid UTF-8: close 1007
  df-limit    (only with --limit) a message of two frames inflating to 129 MiB
              each: over the 256 MiB message limit, close 1009
"""

import argparse
import os
import random
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from extcheck import (  # noqa: E402
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    Checks,
    Deflater,
    Fail,
    Inflater,
    RawConn,
    need,
)

NAMES = ("deflate-frame", "x-webkit-deflate-frame")


class DFConn:
    """A RawConn that speaks deflate-frame."""

    def __init__(self, port, name):
        self.c = RawConn(port, name)
        need(self.c.status == 101, f"{name}: status {self.c.status}")
        ext = self.c.header("sec-websocket-extensions")
        need(ext == name, f"{name}: reply {ext!r}")
        self.tx = Deflater(15, takeover=True)
        self.rx = Inflater(15, takeover=True)
        self.name = name

    def send(self, op, parts, compress=None):
        """Sends a message as frames `parts`; compress[i] tells whether frame i
        is compressed (default: all)."""
        if compress is None:
            compress = [True] * len(parts)
        for i, p in enumerate(parts):
            data = self.tx.message(p) if compress[i] else p
            self.c.send_frame(op if i == 0 else OP_CONT, data, fin=i == len(parts) - 1,
                              rsv=RSV1 if compress[i] else 0)

    def recv(self):
        """(opcode, payload, frames) of the next message; every data frame must
        carry RSV1 (the server compresses each one)."""
        out, op0, frames = [], None, 0
        while True:
            fin, rsv, op, payload = self.c.recv_frame()
            if op == OP_PING:
                self.c.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                raise Fail(f"{self.name}: unexpected close {payload[:2].hex()}")
            need(rsv == RSV1, f"{self.name}: echoed data frame with rsv {rsv:#x}")
            out.append(self.rx.message(payload))
            frames += 1
            if op0 is None:
                op0 = op
            if fin:
                return op0, b"".join(out), frames

    def close(self):
        self.c.close()


def text(n, seed):
    """Exactly n bytes of UTF-8 text with multi-byte characters."""
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "\u00e9t\u00e9", "\u20ac", "\U0001f600", "delta", " "]
    b = "".join(rnd.choices(words, k=n // 3 + 8)).encode()[:n]
    while True:
        try:
            return b.decode()
        except UnicodeDecodeError:
            b = b[:-1] + b"x"  # a cut character becomes an ASCII byte


def check_sizes(port, name):
    c = DFConn(port, name)
    try:
        for n in (0, 1, 125, 126, 1000, 65535, 65536, 200_000, 1 << 20):
            t = text(n, n).encode()
            c.send(OP_TEXT, [t])
            op, data, _ = c.recv()
            need(op == OP_TEXT and data == t, f"{name}: text {n} echo differs ({len(data)} B)")
            b = random.Random(n).randbytes(n)
            c.send(OP_BINARY, [b])
            op, data, _ = c.recv()
            need(op == OP_BINARY and data == b, f"{name}: binary {n} echo differs ({len(data)} B)")
            z = bytes(n)
            c.send(OP_BINARY, [z])
            op, data, _ = c.recv()
            need(data == z, f"{name}: zeros {n} echo differs")
    finally:
        c.close()


def check_fragmented(port, name):
    c = DFConn(port, name)
    try:
        cases = [
            ([b"one ", b"two ", b"three"], None),
            ([b"x" * 70000, b"y" * 70000, b"z"], None),
            ([b"plain first ", b"compressed second ", b"plain third"], [False, True, False]),
            ([b"", b"after empty", b""], None),
            ([("\u20ac" * 10).encode()[:5], ("\u20ac" * 10).encode()[5:]], None),  # split character
        ]
        for parts, comp in cases:
            c.send(OP_TEXT, parts, comp)
            op, data, _ = c.recv()
            need(op == OP_TEXT and data == b"".join(parts), f"{name}: fragmented echo differs: {data[:40]!r}")
    finally:
        c.close()


def check_many(port, name):
    c = DFConn(port, name)
    try:
        msgs = [(f"message {i} " * (1 + i % 30)).encode() for i in range(500)]
        for m in msgs:
            c.send(OP_BINARY, [m])
        for i, m in enumerate(msgs):
            op, data, _ = c.recv()
            need(data == m, f"{name}: message {i} echo differs")
    finally:
        c.close()


def check_corrupt(port, name):
    c = DFConn(port, name)
    try:
        c.c.send_frame(OP_BINARY, b"\x07\xff\xff\xff\xff", rsv=RSV1)
        c.c.expect_close(1007)
    finally:
        c.close()


def check_utf8(port, name):
    c = DFConn(port, name)
    try:
        c.send(OP_TEXT, [b"fine"])
        op, data, _ = c.recv()
        need(data == b"fine", f"{name}: first echo differs")
        c.send(OP_TEXT, [b"not \xff fine"])
        c.c.expect_close(1007)
    finally:
        c.close()


def check_limit(port, name):
    """Two frames of one message, each inflating to 129 MiB of zeros (about
    130 KB compressed): the message (258 MiB) is over the server's 256 MiB
    message limit although each frame is below it: close 1009."""
    c = DFConn(port, name)
    try:
        c.c.sock.settimeout(60)
        blk = bytes(1 << 20)
        for i in range(2):
            co = c.tx.c or zlib.compressobj(6, zlib.DEFLATED, -15)
            c.tx.c = co
            data = b"".join(co.compress(blk) for _ in range(129)) + co.flush(zlib.Z_SYNC_FLUSH)
            c.c.send_frame(OP_BINARY if i == 0 else OP_CONT, data[:-4], fin=i == 1, rsv=RSV1)
        c.c.expect_close(1009, within=60)
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--limit", action="store_true", help="also the 258 MiB message check")
    a = ap.parse_args()
    c = Checks("dframe_client", a.only)
    for name in NAMES:
        short = "xw-" if name.startswith("x-") else "df-"
        c.run(short + "sizes", check_sizes, a.port, name)
        c.run(short + "fragmented", check_fragmented, a.port, name)
        c.run(short + "many", check_many, a.port, name)
        c.run(short + "corrupt", check_corrupt, a.port, name)
        c.run(short + "utf8", check_utf8, a.port, name)
    if a.limit:
        c.run("df-limit", check_limit, a.port, "deflate-frame")
    c.finish()


if __name__ == "__main__":
    main()
