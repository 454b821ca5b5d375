#!/usr/bin/env python3
"""A minimal HTTP CONNECT proxy for the client tests, loopback only.

Listens on 127.0.0.1 (port picked by the system) and prints "proxy PORT" once
up. For each connection it reads one request head; "CONNECT host:port HTTP/1.x"
to a loopback target is logged as "CONNECT host:port" on stdout (flushed),
answered "HTTP/1.0 200 Connection established" and then relayed both ways.
Anything else gets 405; a target that is not loopback gets 403; a target that
refuses gets 502.
"""

import asyncio
import ipaddress
import socket
import sys


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except Exception:
            writer.close()


async def reply(writer, status):
    writer.write(f"HTTP/1.0 {status}\r\nContent-Length: 0\r\n\r\n".encode())
    try:
        await writer.drain()
    except Exception:
        pass
    writer.close()


async def handle(reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except Exception:
        writer.close()
        return
    request = head.split(b"\r\n", 1)[0].decode("latin-1")
    parts = request.split(" ")
    if len(parts) != 3 or parts[0] != "CONNECT" or ":" not in parts[1]:
        log(f"connect_proxy: refused '{request}'")
        await reply(writer, "405 Method Not Allowed")
        return
    target = parts[1]
    host, _, port = target.rpartition(":")
    print(f"CONNECT {target}", flush=True)
    if not loopback(host) or not port.isdigit():
        await reply(writer, "403 Forbidden")
        return
    try:
        up_reader, up_writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), 10)
    except Exception as exc:
        log(f"connect_proxy: {target}: {exc!r}")
        await reply(writer, "502 Bad Gateway")
        return
    sock = up_writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    writer.write(b"HTTP/1.0 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
    writer.close()
    up_writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"proxy {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
