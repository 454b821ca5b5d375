#!/usr/bin/env python3
"""Raw-socket HTTP checks against examples/test-server (curl covers the
byte-exact downloads; this covers what curl would tidy up or cannot send).

    python3 tests/server/http_check.py --port 7681

traversal      "..", "%2e%2e" and friends never leave the resource directory:
               a 4xx answer or a closed connection, and never /etc/passwd
missing        a missing file gets a 404
malformed      a garbage request line gets a 4xx (or, as v1.23 does for requests
               its parser rejects, a close with no answer) and the connection
               closes within a few seconds
http11         an HTTP/1.1 request is answered with a status line and a body
alive          GET / still answers 200 afterwards
"""

import asyncio

from wscheck import (HOST, Runner, base_parser, close_writer, open_raw, require, wait_eof)

TRAVERSALS = [
    "/../etc/passwd",
    "/../../../../../../etc/passwd",
    "/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
    "/..%2fetc%2fpasswd",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/./../etc/passwd",
    "/sub/../../etc/passwd",
]

MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    b"GET /" + b"A" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
]


async def exchange(port, request, limit=10):
    """Sends request, reads until the server closes; returns (response, seconds)."""
    reader, writer = await open_raw(port)
    try:
        writer.write(request)
        try:
            await writer.drain()
        except (ConnectionResetError, BrokenPipeError):
            pass
        seconds, data = await wait_eof(reader, limit)
        return data, seconds
    finally:
        close_writer(writer)


def status_of(resp):
    line = resp.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


async def check_traversal(port):
    for path in TRAVERSALS:
        req = f"GET {path} HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode()
        resp, _ = await exchange(port, req)
        require(b"root:" not in resp, f"{path}: served /etc/passwd!")
        if resp:
            st = status_of(resp)
            require(st is not None and 400 <= st < 500,
                    f"{path}: answered {resp[:60]!r}, expected a 4xx")


async def check_missing(port):
    req = f"GET /no-such-file-{id(port)}.txt HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode()
    resp, _ = await exchange(port, req)
    require(status_of(resp) == 404, f"missing file answered {resp[:60]!r}")


async def check_malformed(port):
    silent = 0
    for req in MALFORMED:
        resp, seconds = await exchange(port, req, limit=10)
        label = repr(req[:24])
        if resp:
            st = status_of(resp)
            require(st is not None and 400 <= st < 500,
                    f"{label}: answered {resp[:60]!r}, expected a 4xx")
        else:
            silent += 1
    if silent:
        print(f"  note: {silent} of {len(MALFORMED)} malformed requests were closed "
              "without an HTTP answer")


async def check_http11(port):
    reader, writer = await open_raw(port)
    try:
        writer.write(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        _, resp = await wait_eof(reader, 10)
    finally:
        close_writer(writer)
    require(status_of(resp) == 200, f"HTTP/1.1 GET / answered {resp[:60]!r}")
    require(b"\r\n\r\n" in resp and b"<html" in resp.lower(), "no page in the answer")


async def check_alive(port):
    resp, _ = await exchange(port, f"GET / HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
    require(status_of(resp) == 200, f"GET / answered {resp[:60]!r}")


async def main():
    args = base_parser(__doc__).parse_args()
    r = Runner(args)
    await r.run("traversal", check_traversal, args.port)
    await r.run("missing", check_missing, args.port)
    await r.run("malformed", check_malformed, args.port)
    await r.run("http11", check_http11, args.port)
    await r.run("alive", check_alive, args.port)
    r.finish()


if __name__ == "__main__":
    asyncio.run(main())
