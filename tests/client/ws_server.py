#!/usr/bin/env python3
"""Test peer for the client tests (loopback only).

Two listeners on 127.0.0.1, both on ports picked by the system; once both are
up it prints "ws PORT" and "raw PORT" (one line each, flushed).

The "ws" listener is a Python `websockets` server; by request path:
  /echo[?id=X]     every message back with the same type (text/binary)
  /ping[?id=X]     pings the client (payload b"srv-ping"), waits up to 5 s for the
                   pong, sends "pong-ok" or "pong-missing", then echoes
  /close[?id=X]    sends "bye", then closes with 1000 "server done"
  /headers         sends the request head as JSON {"path":..., "headers":{...}},
                   then echoes
  /lastclose?id=X  sends what the connection with id X sent to close: its close
                   code ("1000", "1005" for a close frame without code) or "none"
                   (no close frame at all), or "unknown"; then closes
  /forbidden       refuses the handshake with 403
  Subprotocol: "lws-test-echo" is selected when the client offers it; otherwise
  none (the handshake goes on without one).

The "raw" listener speaks HTTP by hand to break the handshake on purpose:
  /badaccept   101 with a wrong Sec-WebSocket-Accept
  /badproto    101 with the right accept but Sec-WebSocket-Protocol: bogus
  /http200     a plain 200 response
  /hangup      closes without answering
  /silent      never answers (keeps the socket until the client goes)
  /garbage     answers with bytes that are not HTTP
"""

import asyncio
import base64
import hashlib
import json
import sys
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import serve

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PROTOCOL = "lws-test-echo"
close_codes = {}


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def query_id(path):
    values = parse_qs(urlsplit(path).query).get("id")
    return values[0] if values else None


def select_subprotocol(connection, subprotocols):
    return PROTOCOL if PROTOCOL in subprotocols else None


def process_request(connection, request):
    if urlsplit(request.path).path == "/forbidden":
        return connection.respond(HTTPStatus.FORBIDDEN, "Forbidden\n")
    return None


async def echo_all(ws):
    async for msg in ws:
        await ws.send(msg)


async def handler(ws):
    path = ws.request.path
    route = urlsplit(path).path
    cid = query_id(path)
    try:
        if route == "/ping":
            waiter = await ws.ping(b"srv-ping")
            try:
                await asyncio.wait_for(waiter, 5)
                await ws.send("pong-ok")
            except asyncio.TimeoutError:
                await ws.send("pong-missing")
            await echo_all(ws)
        elif route == "/close":
            await ws.send("bye")
            await ws.close(1000, "server done")
        elif route == "/headers":
            head = {"path": path, "headers": {k: v for k, v in ws.request.headers.raw_items()}}
            await ws.send(json.dumps(head))
            await echo_all(ws)
        elif route == "/lastclose":
            await ws.send(close_codes.get(cid, "unknown"))
            await ws.close(1000)
        else:
            await echo_all(ws)
    except Exception as exc:  # the client went away: nothing to do
        log(f"ws_server: {path}: {exc!r}")
    finally:
        if cid is not None and route != "/lastclose":
            try:
                await asyncio.wait_for(ws.wait_closed(), 10)
            except asyncio.TimeoutError:
                pass
            rcvd = ws.protocol.close_rcvd
            close_codes[cid] = str(rcvd.code) if rcvd is not None else "none"
            log(f"ws_server: id {cid} closed by the client with {close_codes[cid]}")


async def raw_handler(reader, writer):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    except Exception:
        writer.close()
        return
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    route = urlsplit(parts[1]).path if len(parts) > 1 else ""
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    key = headers.get("sec-websocket-key", "")
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    log(f"ws_server: raw {route}")
    if route == "/badaccept":
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: "
                      "dGhpcyBpcyBub3QgdGhlIGtleT0=\r\n\r\n").encode())
    elif route == "/badproto":
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept +
                      "\r\nSec-WebSocket-Protocol: bogus\r\n\r\n").encode())
    elif route == "/http200":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 3\r\nConnection: close\r\n\r\nhi\n")
    elif route == "/garbage":
        writer.write(b"\x00\x01\x02 this is not http \xff\xfe\r\n\r\n")
    elif route == "/silent":
        try:
            await asyncio.wait_for(reader.read(), 120)
        except Exception:
            pass
    elif route == "/hangup":
        writer.close()
        return
    # everything else: close after the answer
    try:
        await writer.drain()
        # keep the answer readable for a moment before the close
        await asyncio.wait_for(reader.read(), 5)
    except Exception:
        pass
    writer.close()


async def main():
    async with serve(handler, "127.0.0.1", 0, max_size=2**25, max_queue=256,
                     compression=None, ping_interval=None,
                     select_subprotocol=select_subprotocol,
                     process_request=process_request) as server:
        raw = await asyncio.start_server(raw_handler, "127.0.0.1", 0)
        ws_port = next(iter(server.sockets)).getsockname()[1]
        raw_port = raw.sockets[0].getsockname()[1]
        print(f"ws {ws_port}", flush=True)
        print(f"raw {raw_port}", flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
