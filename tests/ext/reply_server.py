#!/usr/bin/env python3
"""A hand-made WebSocket server on 127.0.0.1 whose handshake reply carries
whatever Sec-WebSocket-Extensions value the client's request path asks for, to
test how a client takes the server's choice.

Usage: reply_server.py [--lifetime SECONDS]

Prints "port N" once listening. A request for /?ext=<url-encoded value> is
answered 101 with "Sec-WebSocket-Extensions: <value>" (no such header when
the value is empty). Afterwards the server echoes every message back
uncompressed, in one frame, inflating what the client compressed as the reply
agreed: for permessage-deflate with the client_max_window_bits window and a
fresh inflater per message under client_no_context_takeover; for
deflate-frame frame by frame with one inflater for the connection. An
inflate error closes with 1007. After each connection one line goes to stdout:
  done ext=<value> offer=<client's offer> msgs=N compressed=M close=<how>
Exits by itself after --lifetime seconds (default 300).
"""

import argparse
import base64
import hashlib
import socket
import struct
import sys
import threading
import time
import zlib
from urllib.parse import parse_qs, urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TAIL = b"\x00\x00\xff\xff"


class Gone(Exception):
    pass


def read_exact(sock, buf, n):
    while len(buf[0]) < n:
        d = sock.recv(1 << 16)
        if not d:
            raise Gone()
        buf[0] += d
    out, buf[0] = buf[0][:n], buf[0][n:]
    return out


def read_frame(sock, buf):
    b0, b1 = read_exact(sock, buf, 2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", read_exact(sock, buf, 2))
    elif n == 127:
        (n,) = struct.unpack("!Q", read_exact(sock, buf, 8))
    key = read_exact(sock, buf, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = read_exact(sock, buf, n)
    if n:
        k = (key * (n // 4 + 1))[:n]
        data = (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")
    return b0 & 0x80, b0 & 0x70, b0 & 0x0F, data


def send_frame(sock, op, data):
    n = len(data)
    if n < 126:
        head = struct.pack("!BB", 0x80 | op, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | op, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | op, 127, n)
    sock.sendall(head + data)


def params_of(ext):
    """(name, {param: value}) of the first element of a reply value."""
    first = ext.split(",")[0]
    items = [x.strip() for x in first.split(";")]
    params = {}
    for it in items[1:]:
        k, _, v = it.partition("=")
        params[k.strip()] = v.strip()
    return items[0], params


def serve_conn(sock):
    sock.settimeout(30)
    buf = [b""]
    ext, offer, msgs, compressed, how = "", "-", 0, 0, "?"
    try:
        while b"\r\n\r\n" not in buf[0]:
            d = sock.recv(16384)
            if not d:
                raise Gone()
            buf[0] += d
        head, buf[0] = buf[0].split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        path = lines[0].split(" ")[1]
        headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers[k.strip().lower()] = v.strip()
        offer = headers.get("sec-websocket-extensions", "-")
        ext = parse_qs(urlsplit(path).query).get("ext", [""])[0]
        accept = base64.b64encode(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest())
        resp = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept.decode()}\r\n"
        )
        if ext:
            resp += f"Sec-WebSocket-Extensions: {ext}\r\n"
        sock.sendall((resp + "\r\n").encode("latin-1"))
        name, params = params_of(ext) if ext else ("", {})
        pmd = name == "permessage-deflate"
        dframe = name in ("deflate-frame", "x-webkit-deflate-frame")
        try:
            wbits = int(params.get("client_max_window_bits") or 15)
        except ValueError:
            wbits = 15  # a reply the client must refuse anyway
        fresh = "client_no_context_takeover" in params
        inflater = None
        parts, op0, rsv0 = [], None, 0
        while True:
            fin, rsv, op, data = read_frame(sock, buf)
            if op == 8:
                send_frame(sock, 8, data[:2])
                how = f"close {struct.unpack('!H', data[:2])[0] if len(data) >= 2 else 'none'}"
                break
            if op == 9:
                send_frame(sock, 10, data)
                continue
            if op == 10:
                continue
            if op0 is None:
                op0, rsv0 = op, rsv
            if dframe and rsv & 0x40:
                if inflater is None:
                    inflater = zlib.decompressobj(-15)
                data = inflater.decompress(data + TAIL)
            parts.append(data)
            if not fin:
                continue
            payload = b"".join(parts)
            if pmd and rsv0 & 0x40:
                if inflater is None or fresh:
                    inflater = zlib.decompressobj(-wbits)
                payload = inflater.decompress(payload + TAIL)
            if rsv0 & 0x40:
                compressed += 1
            msgs += 1
            send_frame(sock, op0, payload)
            parts, op0, rsv0 = [], None, 0
    except zlib.error as e:
        how = f"inflate error {e}"
        try:
            send_frame(sock, 8, struct.pack("!H", 1007))
        except OSError:
            pass
    except (Gone, OSError) as e:
        how = f"gone {type(e).__name__}"
    finally:
        sock.close()
        print(f"done ext={ext or '-'} offer={offer} msgs={msgs} compressed={compressed} close={how}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=300.0)
    a = ap.parse_args()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    ls.settimeout(1.0)
    print(f"port {ls.getsockname()[1]}", flush=True)
    end = time.monotonic() + a.lifetime
    while time.monotonic() < end:
        try:
            s, _ = ls.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve_conn, args=(s,), daemon=True).start()
    print("reply_server: lifetime over", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
