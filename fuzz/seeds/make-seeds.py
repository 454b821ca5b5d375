#!/usr/bin/env python3
"""Writes the hand-made seed corpora under fuzz/corpus/<target>/.

Run from anywhere: python3 fuzz/seeds/make-seeds.py. Deterministic (fixed mask keys),
so re-running leaves the committed files unchanged.
"""
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- HTTP requests
CRLF = "\r\n"


def req(lines):
    return (CRLF.join(lines) + CRLF + CRLF).encode()


requests = {
    "upgrade-rfc6455": req([
        "GET /chat HTTP/1.1", "Host: server.example.com", "Upgrade: websocket",
        "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Origin: http://example.com", "Sec-WebSocket-Protocol: chat, superchat",
        "Sec-WebSocket-Version: 13"]),
    "upgrade-browser": req([
        "GET /?token=abc HTTP/1.1", "Host: 127.0.0.1:7681", "Connection: keep-alive, Upgrade",
        "Pragma: no-cache", "Cache-Control: no-cache",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
        "Upgrade: websocket", "Origin: http://127.0.0.1:7681", "Sec-WebSocket-Version: 13",
        "Accept-Encoding: gzip, deflate, br", "Accept-Language: en-US,en;q=0.9",
        "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"]),
    "get-plain": req(["GET /index.html HTTP/1.1", "Host: localhost", "Accept: */*"]),
    "get-http10": req(["GET / HTTP/1.0"]),
    "head": req(["HEAD /test.html HTTP/1.1", "Host: a"]),
    "post-body": req(["POST /form HTTP/1.1", "Host: a", "Content-Length: 7",
                      "Content-Type: application/x-www-form-urlencoded"]) + b"a=1&b=2",
    "repeated-headers": req(["GET / HTTP/1.1", "Connection: keep-alive", "Connection: Upgrade",
                             "Upgrade: websocket", "Host: a", "Host: b"]),
    "old-draft-keys": req(["GET /demo HTTP/1.1", "Host: example.com", "Connection: Upgrade",
                           "Sec-WebSocket-Key2: 12998 5 Y3 1  .P00",
                           "Sec-WebSocket-Protocol: sample", "Upgrade: WebSocket",
                           "Sec-WebSocket-Key1: 4 @1  46546xW%0l 1 5", "Origin: http://example.com"]) + b"^n:ds[4U",
    "partial": b"GET /chat HTTP/1.1\r\nHost: server.exa",
    "bare-lf": b"GET / HTTP/1.1\nHost: a\nUpgrade: websocket\n\n",
    "http2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "with-frame-after": req(["GET / HTTP/1.1", "Host: a"]) + b"\x81\x85" + KEY + b"hello",
}
for name, data in requests.items():
    write("http_request", name, data)

# ---------------------------------------------------------------- HTTP responses
responses = {
    "101": req(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                "Sec-WebSocket-Protocol: chat"]),
    "101-with-frame": req(["HTTP/1.1 101 Switching Protocols", "Upgrade: WebSocket",
                           "Connection: Upgrade",
                           "Sec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk="]) + b"\x81\x02hi",
    "proxy-200": req(["HTTP/1.1 200 Connection established", "Proxy-Agent: test"]),
    "proxy-407": req(["HTTP/1.1 407 Proxy Authentication Required",
                      'Proxy-Authenticate: Basic realm="x"', "Content-Length: 0"]),
    "426": req(["HTTP/1.1 426 Upgrade Required", "Sec-WebSocket-Version: 13",
                "Content-Length: 0"]),
    "404-http10": req(["HTTP/1.0 404 Not Found", "Content-Type: text/html"]) + b"<html></html>",
    "no-reason": req(["HTTP/1.1 101", "Upgrade: websocket"]),
    "partial": b"HTTP/1.1 101 Switching Protocols\r\nUpgr",
}
for name, data in responses.items():
    write("http_response", name, data)


# ---------------------------------------------------------------- frames
def frame(opcode, payload=b"", fin=True, rsv=0, mask=None, force_len=None, len64=False):
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload) if force_len is None else force_len
    mbit = 0x80 if mask else 0
    if len64:
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    elif n < 126:
        hdr = bytes([b0, mbit | n])
    elif n < 65536:
        hdr = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        hdr += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return hdr + payload


def prefix(flags=0, sizes=()):
    """Fuzz-input header: flags byte, count, read sizes (see fuzz/src/lib.rs Split)."""
    return bytes([flags, len(sizes)]) + bytes(sizes)


def streams(mask):
    m = mask
    text = "Hello, wörld — ✓ 😀".encode()
    return {
        "text": frame(1, b"Hello", mask=m),
        "text-utf8": frame(1, text, mask=m),
        "binary": frame(2, bytes(range(256)) * 2, mask=m),
        "empty-binary": frame(2, b"", mask=m),
        "fragmented-text": frame(1, text[:8], fin=False, mask=m) + frame(0, text[8:15], fin=False, mask=m)
        + frame(9, b"ping-in-the-middle", mask=m) + frame(0, text[15:], mask=m),
        "ping-pong": frame(9, b"are you there", mask=m) + frame(10, b"", mask=m),
        "close-1000": frame(8, struct.pack(">H", 1000) + b"bye", mask=m),
        "close-empty": frame(8, b"", mask=m),
        "len16": frame(2, b"x" * 300, mask=m),
        "len64-nonminimal": frame(2, b"y" * 10, mask=m, len64=True),
        "len64-top-bit": frame(2, b"", mask=m, force_len=1 << 63),
        "len64-short-data": frame(2, b"z" * 20, mask=m, force_len=1 << 40),
        "several": frame(1, b"a", mask=m) + frame(2, b"bc", mask=m) + frame(9, b"", mask=m)
        + frame(8, struct.pack(">H", 1001), mask=m),
        "rsv1": frame(1, b"compressed?", rsv=0x40, mask=m),
        "bad-opcode": frame(3, b"", mask=m),
        "bad-utf8": frame(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited", mask=m),
        "control-126": frame(9, b"p" * 126, mask=m),
    }


for target, mask in (("frame_server", KEY), ("frame_client", None)):
    for name, s in streams(mask).items():
        write(target, name, prefix() + s)
    s = streams(mask)["fragmented-text"]
    write(target, "fragmented-bytewise", prefix(0, [1]) + s)
    write(target, "fragmented-splits", prefix(0, [3, 0, 7, 1, 250]) + s)
    write(target, "rsv1-allowed", prefix(0x40, [5]) + streams(mask)["rsv1"])
    write(target, "limit-64", prefix(0x02, [2]) + streams(mask)["binary"])
    write(target, "no-utf8-check", prefix(0x01) + streams(mask)["bad-utf8"])
    # RSV1 negotiated, but never valid on a control frame
    write(target, "control-rsv1-allowed", prefix(0x40) + frame(9, b"", rsv=0x40, mask=mask))
# the wrong masking for each role
write("frame_server", "unmasked", prefix() + frame(1, b"hi"))
write("frame_client", "masked", prefix() + frame(1, b"hi", mask=KEY))

# ---------------------------------------------------------------- close / utf-8
close_utf8 = {
    "close-1000": struct.pack(">H", 1000),
    "close-reason": struct.pack(">H", 1001) + "going away ✓".encode(),
    "close-4999": struct.pack(">H", 4999) + b"app",
    "close-1005": struct.pack(">H", 1005),
    "close-999": struct.pack(">H", 999),
    "close-5000": struct.pack(">H", 5000),
    "close-one-byte": b"\x03",
    "close-bad-reason": struct.pack(">H", 1000) + b"\xce\xba\xed\xa0\x80",
    "utf8-mixed": "κόσμε — 日本語 — 😀 — \u0000 \u007f \u0080 \u07ff \u0800 \uffff \U00010000 \U0010ffff".encode(),
    "utf8-overlong": b"\xc0\xaf\xe0\x80\xaf\xf0\x80\x80\xaf",
    "utf8-surrogate": b"ab\xed\xa0\x80cd",
    "utf8-too-big": b"\xf4\x90\x80\x80",
    "utf8-truncated": "€".encode()[:2],
    "utf8-ascii-long": b"The quick brown fox jumps over the lazy dog. " * 4,
}
for i, (name, data) in enumerate(close_utf8.items()):
    write("close_utf8", name, bytes([i * 37 % 256]) + data)


# ---------------------------------------------------------------- handshake
def rec(slot, value):
    return bytes([slot, len(value)]) + value


def names(*ns):
    out = b"\xff"
    for n in ns:
        out += b"\xff" if n is None else bytes([len(n)]) + n
    return out


UPGRADE, CONNECTION, KEYSLOT, VERSION, PROTOCOL = 6, 2, 10, 11, 5
good = (rec(UPGRADE, b"websocket") + rec(CONNECTION, b"Upgrade")
        + rec(VERSION, b"13") + rec(KEYSLOT, b"dGhlIHNhbXBsZSBub25jZQ=="))
handshake = {
    "valid": b"\x00" + good,
    "valid-protocols": b"\x00" + good + rec(PROTOCOL, b"x, chat ,mirror")
    + names(b"http-only", b"chat", b"mirror"),
    "whole-offer": b"\x00" + good + rec(PROTOCOL, b"a,b") + names(b"a,b", b"a"),
    "null-name": b"\x00" + good + rec(PROTOCOL, b"z") + names(None, b"z"),
    "post": b"\x01" + good,
    "version-8": b"\x00" + rec(UPGRADE, b"websocket") + rec(CONNECTION, b"keep-alive, upgrade")
    + rec(VERSION, b"8") + rec(KEYSLOT, b"dGhlIHNhbXBsZSBub25jZQ=="),
    "short-key": b"\x00" + rec(UPGRADE, b"WebSocket") + rec(CONNECTION, b"Upgrade")
    + rec(VERSION, b"13") + rec(KEYSLOT, b"c2hvcnQ="),
    "unpadded-key": b"\x00" + rec(UPGRADE, b"websocket") + rec(CONNECTION, b"Upgrade")
    + rec(VERSION, b"13") + rec(KEYSLOT, b"dGhlIHNhbXBsZSBub25jZQ"),
    "repeated": b"\x00" + rec(CONNECTION, b"keep-alive") + good + rec(UPGRADE, b"h2c"),
}
for name, data in handshake.items():
    write("handshake", name, data)

# ---------------------------------------------------------------- extensions
ext_headers = {
    "pmd-plain": b"permessage-deflate",
    "pmd-client-bits": b"permessage-deflate; client_max_window_bits",
    "pmd-all": b"permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
               b"server_max_window_bits=10; client_max_window_bits=12, permessage-deflate",
    "pmd-quoted": b'foo; bar="baz", permessage-deflate; client_max_window_bits="10"',
    "pmd-bad-bits": b"permessage-deflate; server_max_window_bits=7, "
                    b"permessage-deflate; client_max_window_bits=16",
    "pmd-duplicate": b"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "deflate-frame": b"deflate-frame",
    "webkit": b"x-webkit-deflate-frame, deflate-frame; x=1",
    "empty-elements": b" , ,permessage-deflate , ",
    "bad-syntax": b"a;;b, =c, d; e=\"unterminated",
}
selectors = [b"\x0f\x0f\x00\x00", b"\x4a\x44\x1f\x05", b"\x8f\x90\x0c\x83", b"\x07\x47\x07\x17"]
for i, (name, text) in enumerate(ext_headers.items()):
    write("ext_negotiate", name, selectors[i % len(selectors)] + text)

import zlib


def raw_deflate(data, wbits=15, final=False):
    c = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = c.compress(data) + (c.flush(zlib.Z_FINISH) if final else c.flush(zlib.Z_SYNC_FLUSH))
    return out if final else out[:-4]


hello = b"Hello"
inflate_seeds = {
    # flags: bit0 client role, bit1/2 no_context_takeover, bit3 retain state
    "rfc7692-hello": bytes([0, 7, 0x3f]) + bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00]),
    "stored-block": bytes([1, 3, 0x3f]) + bytes([0x00, 0x05, 0x00, 0xFA, 0xFF]) + hello,
    "text": bytes([0, 13, 0x3f]) + raw_deflate("Hello, wörld — compression ✓ ".encode() * 20),
    "window-9": bytes([2, 40, 0x09]) + raw_deflate(bytes(range(256)) * 8, wbits=9),
    "bfinal": bytes([4, 5, 0x3f]) + raw_deflate(b"the end " * 30, final=True),
    "plain-roundtrip": bytes([8, 200, 0x12]) + b"round trip me " * 40,
    "zeros": bytes([1, 77, 0x24]) + raw_deflate(bytes(60000)),
    "garbage": bytes([6, 1, 0x00]) + bytes([0xFF, 0xFE, 0x13, 0x37] * 16),
}
for name, data in inflate_seeds.items():
    write("inflate", name, data)
