#!/usr/bin/env python3
"""Python `websockets` echo servers on 127.0.0.1 for the client-side tests:
every message comes back with the same type, on any path; on paths starting
with /frag as three fragments (compressed by websockets frame by frame, RSV1 on
the first) when it has at least 3 bytes (text is cut at character boundaries).

Usage: pmd_server.py [--lifetime SECONDS]

Listeners (ports picked by the system, printed once all are up, as one line
"ports default=P full=Q nct=R plain=S"):
  default  websockets' own permessage-deflate settings (server and client
           windows 12 bits when the client offers client_max_window_bits)
  full     permessage-deflate, 15-bit windows, context takeover
  nct      permessage-deflate with server_no_context_takeover,
           client_no_context_takeover, server_max_window_bits=10,
           client_max_window_bits=9 (a client keeping its context or using a
           larger window sends data this server cannot inflate: close 1007)
  plain    compression disabled

When a connection ends, one line goes to stdout:
  closed listener=NAME path=PATH offer=<Sec-WebSocket-Extensions of the request
  or -> reply=<of the response or -> msgs=N rsv1=M code=C
where msgs counts data messages received and rsv1 those that arrived
compressed. Exits by itself after --lifetime seconds (default 300).
"""

import argparse
import asyncio
import sys

import websockets.extensions.permessage_deflate as pmdmod
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Opcode

_orig_decode = pmdmod.PerMessageDeflate.decode


def _counting_decode(self, frame, *, max_size=None):
    if frame.opcode in (Opcode.TEXT, Opcode.BINARY) and frame.rsv1:
        self.rsv1_messages = getattr(self, "rsv1_messages", 0) + 1
    return _orig_decode(self, frame, max_size=max_size)


pmdmod.PerMessageDeflate.decode = _counting_decode


def make_handler(name):
    async def handler(ws):
        msgs = 0
        try:
            fragment = ws.request.path.startswith("/frag")
            async for msg in ws:
                msgs += 1
                if fragment and len(msg) >= 3:
                    third = len(msg) // 3
                    await ws.send([msg[:third], msg[third:2 * third], msg[2 * third:]])
                else:
                    await ws.send(msg)
        except Exception:
            pass
        rsv1 = sum(getattr(e, "rsv1_messages", 0) for e in ws.protocol.extensions)
        offer = ws.request.headers.get("Sec-WebSocket-Extensions") or "-"
        reply = ws.response.headers.get("Sec-WebSocket-Extensions") or "-"
        code = ws.close_code
        print(
            f"closed listener={name} path={ws.request.path} offer={offer} reply={reply} "
            f"msgs={msgs} rsv1={rsv1} code={code}",
            flush=True,
        )

    return handler


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lifetime", type=float, default=300.0)
    a = ap.parse_args()
    configs = {
        "default": dict(compression="deflate"),
        "full": dict(extensions=[ServerPerMessageDeflateFactory()]),
        "nct": dict(
            extensions=[
                ServerPerMessageDeflateFactory(
                    server_no_context_takeover=True,
                    client_no_context_takeover=True,
                    server_max_window_bits=10,
                    client_max_window_bits=9,
                )
            ]
        ),
        "plain": dict(compression=None),
    }
    servers, ports = [], []
    for name, cfg in configs.items():
        s = await serve(make_handler(name), "127.0.0.1", 0, max_size=None, ping_interval=None, **cfg)
        servers.append(s)
        ports.append(f"{name}={s.sockets[0].getsockname()[1]}")
    print("ports " + " ".join(ports), flush=True)
    await asyncio.sleep(a.lifetime)
    for s in servers:
        s.close()
    print("pmd_server: lifetime over", file=sys.stderr, flush=True)


if __name__ == "__main__":
    asyncio.run(main())
