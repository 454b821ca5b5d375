#!/usr/bin/env python3
"""A wss:// echo server (Python `websockets`) for the TLS client tests, loopback only.

    python3 tests/tls/wss_server.py --cert CERT.pem --key KEY.pem

Listens on 127.0.0.1 on a port the system picks and prints "wss PORT" (flushed)
once ready. Every text or binary message is sent back with the same type;
messages up to 32 MiB. Each completed handshake is logged on stderr with the
SNI name the client sent ("sni NAME" or "sni none"), so tests can check it.
"""

import argparse
import asyncio
import ssl
import sys

from websockets.asyncio.server import serve


def log(*args):
    print(*args, file=sys.stderr, flush=True)


async def echo(ws):
    try:
        async for msg in ws:
            await ws.send(msg)
    except Exception as exc:  # the client went away
        log(f"wss_server: {exc!r}")


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True, help="certificate (chain) PEM")
    p.add_argument("--key", required=True)
    args = p.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)

    def sni(sslobj, name, _ctx):
        log(f"sni {name if name else 'none'}")
        return None

    ctx.sni_callback = sni
    async with serve(echo, "127.0.0.1", 0, ssl=ctx, max_size=2**25, max_queue=64,
                     compression=None, ping_interval=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"wss {port}", flush=True)
        await asyncio.get_running_loop().create_future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
