"""Clients for examples/test-threads.c: N WebSocket connections on
"dumb-increment-protocol", each of which must receive the messages 1..M exactly
once and in order (the text of a message is its number, padded with '.' to
--size bytes), and nothing after M.

Prints one line per problem (at most 20) and a summary line
  clients: N ok=K messages=T errors=E
and exits 1 unless every client got every message. Every wait is bounded.
"""

import argparse
import asyncio
import sys
import time

import websockets


async def one_client(i, args, connected, results):
    uri = f"ws://127.0.0.1:{args.port}/"
    ws = None
    deadline = time.monotonic() + args.connect_timeout
    while ws is None:
        try:
            ws = await asyncio.wait_for(
                websockets.connect(
                    uri,
                    subprotocols=["dumb-increment-protocol"],
                    max_size=None,
                    open_timeout=args.connect_timeout,
                    ping_interval=None,
                    compression=None,
                ),
                args.connect_timeout,
            )
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
            if time.monotonic() > deadline:
                results[i] = (0, f"client {i}: cannot connect")
                connected.release()
                return
            await asyncio.sleep(0.05)
    connected.release()
    expect = 1
    problem = None
    try:
        async with ws:
            while expect <= args.messages:
                msg = await asyncio.wait_for(ws.recv(), args.message_timeout)
                if isinstance(msg, bytes):
                    problem = f"client {i}: binary message"
                    break
                number = msg.rstrip(".")
                want = str(expect)
                if args.size and len(want) < args.size:
                    want_text = want + "." * (args.size - len(want))
                else:
                    want_text = want
                if number != want or msg != want_text:
                    problem = f"client {i}: got {msg[:40]!r}, want message {expect}"
                    break
                expect += 1
            if problem is None:
                try:
                    extra = await asyncio.wait_for(ws.recv(), args.quiet)
                    problem = f"client {i}: message {extra[:40]!r} after the last one"
                except asyncio.TimeoutError:
                    pass
    except asyncio.TimeoutError:
        problem = f"client {i}: nothing for {args.message_timeout} s after message {expect - 1}"
    except websockets.exceptions.ConnectionClosed as e:
        problem = f"client {i}: closed after message {expect - 1} ({e})"
    results[i] = (expect - 1, problem)


async def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--size", type=int, default=0)
    p.add_argument("--connect-timeout", type=float, default=20.0)
    p.add_argument("--message-timeout", type=float, default=20.0)
    p.add_argument("--quiet", type=float, default=0.3, help="seconds without extra messages")
    args = p.parse_args()

    connected = asyncio.Semaphore(0)
    results = [None] * args.clients
    tasks = [asyncio.create_task(one_client(i, args, connected, results)) for i in range(args.clients)]
    for _ in range(args.clients):
        await connected.acquire()
    print(f"clients: {args.clients} connecting done", flush=True)
    await asyncio.gather(*tasks)

    errors = [r[1] for r in results if r[1]]
    total = sum(r[0] for r in results)
    for e in errors[:20]:
        print(e)
    ok = sum(1 for r in results if not r[1] and r[0] == args.messages)
    print(f"clients: {args.clients} ok={ok} messages={total} errors={len(errors)}", flush=True)
    return 0 if ok == args.clients else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
