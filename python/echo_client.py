#!/usr/bin/env python3
"""A WebSocket echo client in Python on libwebsockets (python/libwebsockets_ctypes.py).

Connects to an echo server (python/echo_server.py, examples/test-echo.c, any server
that sends every message back), sends messages one at a time, alternating text and
binary over a range of sizes, and checks that each comes back unchanged.

    python3 python/echo_client.py [--host 127.0.0.1] [--port 7682] [--path /]
                                  [--protocol echo] [--rounds 2]
                                  [--sizes 0,1,125,126,65535,65536,1048576]
                                  [--deflate] [--timeout 30]

Exit status 0 when every echo matched ("echo_client: N messages echoed"), 1 otherwise.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libwebsockets_ctypes as lws  # noqa: E402


def make_message(i, size):
    """Message i: text (UTF-8, multi-byte characters included) when i is even."""
    if i % 2 == 0:
        unit = "echo \u00e9\u20ac\U0001f600 "  # 1-, 2-, 3- and 4-byte characters
        text = (unit * (size // len(unit.encode()) + 1)).encode()[:size]
        # cut on a character boundary
        while text:
            try:
                return text.decode(), False
            except UnicodeDecodeError:
                text = text[:-1]
        return "", False
    return os.urandom(size), True


class EchoClient:
    def __init__(self, messages):
        self.messages = messages  # [(data, binary)]
        self.next = 0  # index of the message to send
        self.awaiting = False
        self.rx = bytearray()
        self.rx_binary = False
        self.rx_started = False
        self.done = False
        self.error = None
        self.closed = False

    def callback(self, ctx, wsi, reason, user, in_, length):
        if reason == lws.LWS_CALLBACK_CLIENT_ESTABLISHED:
            ctx.callback_on_writable(wsi)
        elif reason == lws.LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            self.error = "connection failed"
        elif reason == lws.LWS_CALLBACK_CLIENT_WRITEABLE:
            if self.awaiting or self.next >= len(self.messages):
                return 0
            data, binary = self.messages[self.next]
            n = ctx.write(wsi, data, lws.LWS_WRITE_BINARY if binary else lws.LWS_WRITE_TEXT)
            expected = len(data) if binary else len(data.encode())
            if n != expected:
                self.error = "write returned %d for %d bytes" % (n, expected)
                return -1
            self.awaiting = True
        elif reason == lws.LWS_CALLBACK_CLIENT_RECEIVE:
            if not self.rx_started:
                self.rx_started = True
                self.rx_binary = lws.frame_is_binary(wsi)
            self.rx += lws.payload(in_, length)
            if not lws.message_complete(wsi):
                return 0
            got, got_binary = bytes(self.rx), self.rx_binary
            self.rx = bytearray()
            self.rx_started = False
            if not self.awaiting:
                self.error = "unexpected message of %d bytes" % len(got)
                return -1
            data, binary = self.messages[self.next]
            want = data if binary else data.encode()
            if got != want or got_binary != binary:
                self.error = "message %d (%d bytes, %s) came back as %d bytes, %s" % (
                    self.next, len(want), "binary" if binary else "text",
                    len(got), "binary" if got_binary else "text")
                return -1
            self.awaiting = False
            self.next += 1
            if self.next == len(self.messages):
                self.done = True
                return -1  # close the connection: all done
            ctx.callback_on_writable(wsi)
        elif reason == lws.LWS_CALLBACK_CLOSED:
            self.closed = True
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=7682)
    ap.add_argument("--path", default="/")
    ap.add_argument("--protocol", default="echo")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--sizes", default="0,1,125,126,65535,65536,1048576")
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()

    sizes = [int(s) for s in args.sizes.split(",") if s]
    messages = []
    for _ in range(args.rounds):
        for size in sizes:
            messages.append(make_message(len(messages), size))
    if not messages:
        print("echo_client: nothing to send", file=sys.stderr)
        return 1

    lws.set_log_level(lws.LLL_ERR | lws.LLL_WARN)
    client = EchoClient(messages)
    ctx = lws.Context(
        [lws.Protocol(args.protocol, client.callback)],
        port=lws.CONTEXT_PORT_NO_LISTEN,
        extensions="internal" if args.deflate else None,
    )
    try:
        ctx.client_connect(args.host, args.port, path=args.path, protocol=args.protocol)
        deadline = time.monotonic() + args.timeout
        while not (client.closed or client.error) and time.monotonic() < deadline:
            if ctx.service(50) < 0 and not ctx.interrupted():
                client.error = client.error or "service failed"
    finally:
        ctx.destroy()

    if client.done:
        print("echo_client: %d messages echoed (sizes %s, %d rounds)"
              % (len(messages), args.sizes, args.rounds), flush=True)
        return 0
    why = client.error or ("connection closed early" if client.closed else "timed out")
    print("echo_client: FAILED after %d of %d messages: %s" % (client.next, len(messages), why),
          file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
