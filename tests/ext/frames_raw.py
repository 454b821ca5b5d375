#!/usr/bin/env python3
"""Hand-made frames on permessage-deflate connections to an echo server
(examples/test-echo with the internal extensions), over a plain socket.

Usage: frames_raw.py --port P [--only a,b] [--bomb]

Checks:
  plain-ok        RSV1=0 messages (whole and fragmented) on a pmd connection echo
                  right, mixed with compressed ones (context takeover intact)
  tiny-frames     a compressed message cut into 1-byte frames; a compressed text
                  whose UTF-8 characters are split across frames; a ping between
                  compressed fragments
  bfinal          a message ending with a BFINAL block (RFC 7692 7.2.3.4), then
                  more messages
  empty           the compressed empty message (one 00 octet) echoes empty
  corrupt         reserved block type, stored block with bad NLEN, distance too
                  far back, garbage in a later fragment: close 1007
  rsv1-cont       RSV1 on a continuation frame (after a compressed or a plain first
                  frame): close 1002
  rsv1-control    RSV1 on ping, pong, close (also inside a fragmented message),
                  with permessage-deflate and with deflate-frame: close 1002
  rsv23           RSV2, RSV3, RSV1|RSV2 on data frames, RSV2 on a continuation and
                  a ping: close 1002
  utf8            invalid UTF-8 in compressed text (bad byte, truncated at the
                  end, surrogate, overlong; in the first of several fragments with
                  no FIN sent yet), and in uncompressed text: close 1007
  bomb            (only with --bomb) 257 MiB of zeros compressed to about 260 KB:
                  close 1009 (the server's 256 MiB message limit)
"""

import argparse
import os
import struct
import sys
import time
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
    RSV2,
    RSV3,
    TAIL,
    Checks,
    Deflater,
    Fail,
    Inflater,
    RawConn,
    need,
)

PMD = "permessage-deflate"


def pmd_conn(port, offer=PMD):
    """A connection on which the (first) offered extension was accepted."""
    c = RawConn(port, offer)
    need(c.status == 101, f"status {c.status}")
    names = [n for n, _ in c.extensions()]
    want = offer.split(";")[0].split(",")[0].strip()
    need(names == [want], f"{want} not negotiated: {names}")
    return c


def echo_ok(c, inf, op, want, what):
    got_op, data, rsv = c.recv_message(inf)
    need(got_op == op, f"{what}: echo opcode {got_op}")
    need(data == want, f"{what}: echo differs ({len(data)} vs {len(want)} bytes)")


def check_plain_ok(port):
    c = pmd_conn(port)
    try:
        d, inf = Deflater(), Inflater()
        a = b"compressed first message " * 40
        c.send_frame(OP_TEXT, d.message(a), rsv=RSV1)
        echo_ok(c, inf, OP_TEXT, a, "compressed a")
        c.send_frame(OP_TEXT, "plain text \u00e9".encode())
        echo_ok(c, inf, OP_TEXT, "plain text \u00e9".encode(), "plain text")
        c.send_frame(OP_BINARY, bytes(range(256)) * 10)
        echo_ok(c, inf, OP_BINARY, bytes(range(256)) * 10, "plain binary")
        c.send_frame(OP_BINARY, b"")
        echo_ok(c, inf, OP_BINARY, b"", "plain empty")
        c.send_frame(OP_TEXT, b"frag-one ", fin=False)
        c.send_frame(OP_CONT, b"frag-two ", fin=False)
        c.send_frame(OP_CONT, b"frag-three")
        echo_ok(c, inf, OP_TEXT, b"frag-one frag-two frag-three", "plain fragmented")
        # history of the compressed messages only: `a` again is a back-reference
        c.send_frame(OP_TEXT, d.message(a), rsv=RSV1)
        echo_ok(c, inf, OP_TEXT, a, "compressed a again")
    finally:
        c.close()


def check_tiny_frames(port):
    c = pmd_conn(port)
    try:
        d, inf = Deflater(), Inflater()
        msg = ("tiny frames \u00e9\u20ac\U0001f600 " * 50).encode()
        comp = d.message(msg)
        for i in range(len(comp)):
            op = OP_TEXT if i == 0 else OP_CONT
            c.send_frame(op, comp[i:i + 1], fin=i == len(comp) - 1, rsv=RSV1 if i == 0 else 0)
        echo_ok(c, inf, OP_TEXT, msg, "1-byte frames")
        # characters split across frames, each frame's data flushed on its own
        text = "\u20ac\U0001f600" * 100
        raw = text.encode()
        cuts = [0, 1, 5, 6, 7, 100, 101, 102, len(raw)]
        comp_obj = zlib.compressobj(6, zlib.DEFLATED, -15)
        parts = []
        for lo, hi in zip(cuts, cuts[1:]):
            parts.append(comp_obj.compress(raw[lo:hi]) + comp_obj.flush(zlib.Z_SYNC_FLUSH))
        parts[-1] = parts[-1][:-4]
        d.c = comp_obj  # the context continues for the next message
        for i, p in enumerate(parts):
            c.send_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(parts) - 1, rsv=RSV1 if i == 0 else 0)
        echo_ok(c, inf, OP_TEXT, raw, "split characters")
        # a ping between compressed fragments
        msg = b"ping in the middle " * 100
        comp = d.message(msg)
        half = len(comp) // 2
        c.send_frame(OP_BINARY, comp[:half], fin=False, rsv=RSV1)
        c.send_frame(OP_PING, b"mid")
        fin, rsv, op, payload = c.recv_frame()
        need((op, payload, rsv) == (OP_PONG, b"mid", 0), f"wanted a pong 'mid', got op {op} rsv {rsv} {payload!r}")
        c.send_frame(OP_CONT, comp[half:])
        echo_ok(c, inf, OP_BINARY, msg, "ping between fragments")
    finally:
        c.close()


def check_bfinal(port):
    c = pmd_conn(port)
    try:
        inf = Inflater()
        for i in range(3):
            msg = f"final block {i} ".encode() * 100
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            comp = co.compress(msg) + co.flush(zlib.Z_FINISH)
            c.send_frame(OP_TEXT, comp, rsv=RSV1)
            echo_ok(c, inf, OP_TEXT, msg, f"BFINAL message {i}")
        d = Deflater()
        c.send_frame(OP_TEXT, d.message(b"after"), rsv=RSV1)
        echo_ok(c, inf, OP_TEXT, b"after", "message after BFINAL ones")
    finally:
        c.close()


def check_empty(port):
    c = pmd_conn(port)
    try:
        inf = Inflater()
        c.send_frame(OP_TEXT, b"\x00", rsv=RSV1)
        echo_ok(c, inf, OP_TEXT, b"", "empty compressed text")
        c.send_frame(OP_BINARY, b"\x00", rsv=RSV1)
        echo_ok(c, inf, OP_BINARY, b"", "empty compressed binary")
        d = Deflater()
        c.send_frame(OP_TEXT, d.message(b"x" * 100), rsv=RSV1)
        echo_ok(c, inf, OP_TEXT, b"x" * 100, "after the empty ones")
    finally:
        c.close()


def expect_code(port, frames, code, what, offer=PMD, within=10.0):
    """New pmd connection, send the frames ((op, payload, fin, rsv) tuples),
    expect a close with `code`."""
    c = pmd_conn(port, offer)
    try:
        for op, payload, fin, rsv in frames:
            c.send_frame(op, payload, fin=fin, rsv=rsv)
        try:
            c.expect_close(code, within=within)
        except Fail as e:
            raise Fail(f"{what}: {e}")
    finally:
        c.close()


def too_far_back():
    """A raw DEFLATE stream that refers to a preset dictionary the server never
    saw (distance too far back)."""
    zd = b"the quick brown fox jumps over the lazy dog " * 20
    co = zlib.compressobj(9, zlib.DEFLATED, -15, zdict=zd)
    out = co.compress(b"the quick brown fox jumps over the lazy dog " * 3) + co.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]


def check_corrupt(port):
    good = Deflater().message(b"valid start of a message " * 50)
    cases = [
        ("reserved block type", [(OP_TEXT, b"\x07" + b"\xaa" * 20, True, RSV1)]),
        ("reserved block type, binary", [(OP_BINARY, b"\xff\xff\xff\xff\xff\xff", True, RSV1)]),
        ("stored block with bad NLEN", [(OP_BINARY, b"\x00\x05\x00\x00\x00abcde", True, RSV1)]),
        ("distance too far back", [(OP_TEXT, too_far_back(), True, RSV1)]),
        ("garbage in a later fragment",
         [(OP_BINARY, good, False, RSV1), (OP_CONT, b"\x07\xff\xff\xff", True, 0)]),
    ]
    for what, frames in cases:
        expect_code(port, frames, 1007, what)


def check_rsv1_cont(port):
    comp = Deflater().message(b"abc" * 100)
    expect_code(port, [(OP_TEXT, comp[:5], False, RSV1), (OP_CONT, comp[5:], True, RSV1)], 1002,
                "RSV1 on the continuation of a compressed message")
    expect_code(port, [(OP_TEXT, b"plain", False, 0), (OP_CONT, comp, True, RSV1)], 1002,
                "RSV1 on the continuation of a plain message")
    expect_code(port, [(OP_BINARY, comp[:5], False, RSV1), (OP_CONT, comp[5:8], False, 0),
                       (OP_CONT, comp[8:], True, RSV1)], 1002,
                "RSV1 on the last of three frames")


def check_rsv1_control(port):
    comp = Deflater().message(b"xyz" * 100)
    cases = [
        ("RSV1 on a ping", [(OP_PING, b"p", True, RSV1)]),
        ("RSV1 on a pong", [(OP_PONG, b"p", True, RSV1)]),
        ("RSV1 on a close", [(OP_CLOSE, struct.pack("!H", 1000), True, RSV1)]),
        ("RSV1 on a ping inside a compressed message", [(OP_TEXT, comp[:4], False, RSV1), (OP_PING, b"m", True, RSV1)]),
    ]
    bad = []
    for offer in (PMD, "deflate-frame"):
        for what, frames in cases:
            try:
                expect_code(port, frames, 1002, f"{offer}: {what}", offer=offer, within=3)
            except Fail as e:
                bad.append(str(e))
    need(not bad, "; ".join(bad))


def check_rsv23(port):
    comp = Deflater().message(b"data " * 20)
    cases = [
        ("RSV2 on text", [(OP_TEXT, b"hello", True, RSV2)]),
        ("RSV3 on binary", [(OP_BINARY, b"hello", True, RSV3)]),
        ("RSV1|RSV2 on compressed text", [(OP_TEXT, comp, True, RSV1 | RSV2)]),
        ("RSV1|RSV3 on compressed binary", [(OP_BINARY, comp, True, RSV1 | RSV3)]),
        ("RSV2 on a continuation", [(OP_TEXT, comp[:3], False, RSV1), (OP_CONT, comp[3:], True, RSV2)]),
        ("RSV3 on a ping", [(OP_PING, b"", True, RSV3)]),
    ]
    for what, frames in cases:
        expect_code(port, frames, 1002, what)


def check_utf8(port):
    def comp(b):
        return Deflater().message(b)

    # a valid first fragment, the bad byte in the last one
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    p1 = co.compress(b"good part ") + co.flush(zlib.Z_SYNC_FLUSH)
    p2 = co.compress(b"bad \x80 part") + co.flush(zlib.Z_SYNC_FLUSH)
    cases = [
        ("bad byte", [(OP_TEXT, comp(b"valid \xff\xfe"), True, RSV1)]),
        ("truncated at the end", [(OP_TEXT, comp(b"caf\xc3"), True, RSV1)]),
        ("surrogate", [(OP_TEXT, comp(b"a\xed\xa0\x80b"), True, RSV1)]),
        ("overlong", [(OP_TEXT, comp(b"\xc0\xaf"), True, RSV1)]),
        ("above U+10FFFF", [(OP_TEXT, comp(b"\xf4\x90\x80\x80"), True, RSV1)]),
        ("bad byte in the last fragment", [(OP_TEXT, p1, False, RSV1), (OP_CONT, p2[:-4], True, 0)]),
        ("uncompressed on a pmd connection", [(OP_TEXT, b"plain \xff", True, 0)]),
        ("uncompressed, truncated", [(OP_TEXT, b"plain \xe2\x82", True, 0)]),
    ]
    for what, frames in cases:
        expect_code(port, frames, 1007, f"invalid UTF-8, {what}")
    # fail fast: the bad byte is in the first fragment and no FIN ever comes
    c = pmd_conn(port)
    try:
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        first = co.compress(b"\xff starts badly") + co.flush(zlib.Z_SYNC_FLUSH)
        c.send_frame(OP_TEXT, first, fin=False, rsv=RSV1)
        c.expect_close(1007, within=5)
    finally:
        c.close()


def zeros_stream(total):
    """Raw DEFLATE of `total` zero bytes, sync-flushed, tail stripped."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1 << 20)
    parts = []
    left = total
    while left > 0:
        n = min(left, len(block))
        parts.append(co.compress(block[:n]))
        left -= n
    parts.append(co.flush(zlib.Z_SYNC_FLUSH))
    out = b"".join(parts)
    need(out.endswith(TAIL), "no sync tail")
    return out[:-4]


def check_bomb(port):
    total = 257 << 20
    comp = zeros_stream(total)
    print(f"  bomb: {total} zero bytes as {len(comp)} compressed bytes", flush=True)
    c = pmd_conn(port)
    try:
        start = time.monotonic()
        c.send_frame(OP_BINARY, comp, rsv=RSV1)
        c.expect_close(1009, within=60)
        print(f"  bomb: closed with 1009 after {time.monotonic() - start:.2f} s", flush=True)
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--bomb", action="store_true")
    a = ap.parse_args()
    c = Checks("frames_raw", a.only)
    c.run("plain-ok", check_plain_ok, a.port)
    c.run("tiny-frames", check_tiny_frames, a.port)
    c.run("bfinal", check_bfinal, a.port)
    c.run("empty", check_empty, a.port)
    c.run("corrupt", check_corrupt, a.port)
    c.run("rsv1-cont", check_rsv1_cont, a.port)
    c.run("rsv1-control", check_rsv1_control, a.port)
    c.run("rsv23", check_rsv23, a.port)
    c.run("utf8", check_utf8, a.port)
    if a.bomb:
        c.run("bomb", check_bomb, a.port)
    c.finish()


if __name__ == "__main__":
    main()
