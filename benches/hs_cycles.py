#!/usr/bin/env python3
"""Sequential handshake cycles for benches/profile-handshake.sh.

usage: hs_cycles.py PORT COUNT

Each cycle is wsload's handshake cycle with its request bytes: connect, upgrade request,
read the 101, masked close frame (1000), read until the server closes, close. One at a
time, so every connection goes through the server alone (a deterministic profile).
Exits non-zero on the first cycle that goes wrong.
"""
import socket
import sys


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    req = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n\r\n").encode()
    mask = b"\x37\xfa\x21\x3d"
    close = bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"\x03\xe8"))
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(req)
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(4096)
            if not b:
                sys.exit(f"cycle {i}: EOF before the 101")
            head += b
        if not head.startswith(b"HTTP/1.1 101 "):
            sys.exit(f"cycle {i}: {head[:40]!r}")
        s.sendall(close)
        rest = head[head.index(b"\r\n\r\n") + 4:]
        while True:
            b = s.recv(4096)
            if not b:
                break
            rest += b
        if rest[:2] != b"\x88\x02":
            sys.exit(f"cycle {i}: no close frame ({rest[:8]!r})")
        s.close()


if __name__ == "__main__":
    main()
