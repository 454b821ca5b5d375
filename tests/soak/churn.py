#!/usr/bin/env python3
"""Connection and message churn against an echo server, with VmRSS sampling.

    churn.py --port N --pid PID --seconds S --csv FILE [--workers 8]

Each worker loops: connect, upgrade, echo a few messages of random size (whole and
fragmented, text and binary, checking every byte), then leaves in one of several ways
(clean close, close without waiting, RST, RST mid-message). One in twenty connections
is garbage or a half request instead. Every 10 s the server's VmRSS, descriptor count
and the counters are appended to the CSV. Standard library only.

Exit status 1 when the server died or an echo came back wrong.
"""
import argparse
import os
import random
import socket
import struct
import sys
import threading
import time

UPGRADE = (b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.conns = 0
        self.msgs = 0
        self.bytes = 0
        self.aborts = 0
        self.errors = []

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def error(self, text):
        with self.lock:
            self.errors.append(text)


def frame(opcode, payload, fin=True):
    key = os.urandom(4)
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < 126:
        hdr = bytes([b0, 0x80 | n])
    elif n < 65536:
        hdr = bytes([b0, 0x80 | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, 0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        (int.from_bytes(payload, "little") ^ int.from_bytes((key * (n // 4 + 1))[:n], "little")
         ).to_bytes(n, "little")
    return hdr + key + masked


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("EOF")
        buf += chunk
    return bytes(buf)


def read_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", recv_exact(s, 8))[0]
    return b0, recv_exact(s, n)


def read_message(s):
    data = bytearray()
    while True:
        b0, payload = read_frame(s)
        if b0 & 0x0F >= 8:
            continue
        data += payload
        if b0 & 0x80:
            return data


def rst(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def session(port, rng, c):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        kind = rng.randrange(20)
        if kind == 0:
            s.sendall(os.urandom(rng.randrange(1, 8192)))
            c.add(aborts=1)
            return
        if kind == 1:
            s.sendall(UPGRADE[: rng.randrange(1, len(UPGRADE))])
            rst(s)
            c.add(aborts=1)
            return
        s.sendall(UPGRADE)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("EOF during upgrade")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            c.error("upgrade answered %r" % head[:40])
            return
        for _ in range(rng.randrange(1, 8)):
            size = rng.choice([0, 1, 10, 125, 126, 1000, 4096, 65535, 65536, 200000])
            text = rng.random() < 0.3
            payload = (b"soak " * (size // 5 + 1))[:size] if text else os.urandom(size)
            if size > 10 and rng.random() < 0.3:
                cut = rng.randrange(1, size)
                s.sendall(frame(1 if text else 2, payload[:cut], fin=False)
                          + frame(9, b"ping") + frame(0, payload[cut:]))
            else:
                s.sendall(frame(1 if text else 2, payload))
            echo = read_message(s)
            if echo != payload:
                c.error("echo of %d bytes differs (got %d)" % (size, len(echo)))
                return
            c.add(msgs=1, bytes=size)
        end = rng.randrange(4)
        if end == 0:
            s.sendall(frame(8, struct.pack(">H", 1000)))
            try:
                while read_frame(s)[0] & 0x0F != 8:
                    pass
            except (ConnectionError, OSError):
                pass
        elif end == 1:
            s.sendall(frame(8, struct.pack(">H", 1001)))
        elif end == 2:
            rst(s)
            c.add(aborts=1)
        else:
            s.sendall(frame(2, os.urandom(50000))[:30000])
            rst(s)
            c.add(aborts=1)
    finally:
        try:
            s.close()
        except OSError:
            pass
        c.add(conns=1)


def worker(port, seed, deadline, c, stop):
    rng = random.Random(seed)
    while time.time() < deadline and not stop.is_set():
        try:
            session(port, rng, c)
        except (ConnectionError, OSError) as e:
            # A worker's own RST or the server closing a garbage connection is fine;
            # a refused connection is not.
            if isinstance(e, ConnectionRefusedError):
                c.error("connection refused: server gone?")
                stop.set()


def status(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        return -1
    return -1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--interval", type=float, default=10.0)
    a = ap.parse_args()

    c = Counters()
    stop = threading.Event()
    start = time.time()
    deadline = start + a.seconds
    threads = [threading.Thread(target=worker, args=(a.port, i, deadline, c, stop), daemon=True)
               for i in range(a.workers)]
    for t in threads:
        t.start()
    rows = []
    with open(a.csv, "w") as out:
        out.write("elapsed_s,vm_rss_kib,fds,connections,messages,payload_bytes,aborts,errors\n")

        def sample():
            try:
                fds = len(os.listdir("/proc/%d/fd" % a.pid))
            except OSError:
                fds = -1
            row = (round(time.time() - start), status(a.pid, "VmRSS:"), fds, c.conns, c.msgs,
                   c.bytes, c.aborts, len(c.errors))
            rows.append(row)
            out.write(",".join(str(v) for v in row) + "\n")
            out.flush()
            print("soak: t=%ds rss=%d KiB fds=%d conns=%d msgs=%d errors=%d"
                  % (row[0], row[1], row[2], row[3], row[4], row[7]), flush=True)
            return row[1] >= 0

        alive = sample()
        next_at = start + a.interval
        while alive and time.time() < deadline and not stop.is_set():
            time.sleep(max(0.0, min(next_at, deadline) - time.time()))
            if time.time() >= next_at:
                alive = sample()
                next_at += a.interval
        stop.set()
        for t in threads:
            t.join(timeout=40)
        time.sleep(2)  # let the server notice the last closes
        alive = sample() and alive

    rss = [r[1] for r in rows if r[1] >= 0]
    print("soak: VmRSS first %d KiB, last %d KiB, max %d KiB; %d connections, %d messages, "
          "%d aborted on purpose" % (rss[0], rss[-1], max(rss), c.conns, c.msgs, c.aborts))
    for e in c.errors[:20]:
        print("soak: error: %s" % e, file=sys.stderr)
    if not alive:
        print("soak: the server is gone", file=sys.stderr)
    return 0 if alive and not c.errors else 1


if __name__ == "__main__":
    sys.exit(main())
