#!/usr/bin/env python3
"""A WebSocket echo server in Python on libwebsockets (python/libwebsockets_ctypes.py).

Every message comes back to its sender unchanged (same opcode, whatever its size or
fragmentation, in order). GET / over plain HTTP answers 200 with a line of text.

    python3 python/echo_server.py [--port 7682] [--iface 127.0.0.1] [--deflate]
                                  [--log-level N]

Subprotocol "echo" (also what clients asking for none get). --deflate registers the
library's extensions (permessage-deflate, deflate-frame). SIGINT / SIGTERM stop it
cleanly: the context is destroyed (CLOSED for every connection) and a summary line is
printed on stderr.

How it uses the library: one thread (this one) runs the service loop; the per-session
data the library allocates holds a ctypes Session struct (id and counters, read
through the `user` pointer), while Python-side state (the message being reassembled,
the queue of replies) lives in a dict keyed by the connection and is dropped at
CLOSED.
"""

import argparse
import ctypes
import os
import signal
import sys
from collections import deque

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import libwebsockets_ctypes as lws  # noqa: E402

# pause reading from a client above this many queued bytes, resume below the low mark
QUEUE_HIGH = 4 << 20
QUEUE_LOW = 1 << 20


class Session(ctypes.Structure):
    """The per-session data: the library allocates and zeroes sizeof(Session) bytes."""

    _fields_ = [
        ("id", ctypes.c_ulong),
        ("messages", ctypes.c_ulong),
        ("bytes", ctypes.c_ulonglong),
    ]


class State:
    """What Python keeps per connection."""

    __slots__ = ("rx", "rx_binary", "rx_started", "queue", "queued", "paused")

    def __init__(self):
        self.rx = bytearray()
        self.rx_binary = False
        self.rx_started = False
        self.queue = deque()  # (data, binary)
        self.queued = 0
        self.paused = False


class EchoServer:
    def __init__(self, verbose=True):
        self.verbose = verbose
        self.states = {}
        self.next_id = 1
        self.total_sessions = 0
        self.total_messages = 0

    def log(self, msg):
        if self.verbose:
            print("echo_server: " + msg, file=sys.stderr, flush=True)

    def http(self, ctx, wsi, in_, length):
        uri = lws.payload(in_, length).decode(errors="replace")
        body = b"libwebsockets python echo server\n"
        status = "200 OK" if uri == "/" else "404 Not Found"
        if status != "200 OK":
            body = b"not found\n"
        head = (
            "HTTP/1.0 %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
            "Connection: close\r\n\r\n" % (status, len(body))
        ).encode()
        ctx.write(wsi, head + body, lws.LWS_WRITE_HTTP)
        return -1  # one response per connection: close once it is sent

    def writeable(self, ctx, wsi):
        st = self.states.get(wsi)
        if st is None:
            return 0
        while st.queue:
            data, binary = st.queue.popleft()
            st.queued -= len(data)
            n = ctx.write(wsi, data, lws.LWS_WRITE_BINARY if binary else lws.LWS_WRITE_TEXT)
            if n < 0:
                self.log("write failed")
                return -1
            if st.paused and st.queued < QUEUE_LOW:
                st.paused = False
                ctx.rx_flow_control(wsi, True)
            if st.queue and lws.lib.lws_send_pipe_choked(ctypes.c_void_p(wsi)):
                ctx.callback_on_writable(wsi)
                break
        return 0

    def callback(self, ctx, wsi, reason, user, in_, length):
        if reason == lws.LWS_CALLBACK_HTTP:
            return self.http(ctx, wsi, in_, length)

        if reason == lws.LWS_CALLBACK_ESTABLISHED:
            s = Session.from_address(user)
            s.id = self.next_id
            self.next_id += 1
            self.states[wsi] = State()
            self.total_sessions += 1
            self.log("established session %d" % s.id)
            return 0

        if reason == lws.LWS_CALLBACK_RECEIVE:
            st = self.states.get(wsi)
            if st is None:
                return -1
            if not st.rx_started:
                st.rx_started = True
                st.rx_binary = lws.frame_is_binary(wsi)
            st.rx += lws.payload(in_, length)
            if lws.message_complete(wsi):
                data = bytes(st.rx)
                st.rx = bytearray()
                st.rx_started = False
                st.queue.append((data, st.rx_binary))
                st.queued += len(data)
                s = Session.from_address(user)
                s.messages += 1
                s.bytes += len(data)
                self.total_messages += 1
                ctx.callback_on_writable(wsi)
                if not st.paused and st.queued > QUEUE_HIGH:
                    st.paused = True
                    ctx.rx_flow_control(wsi, False)
            return 0

        if reason == lws.LWS_CALLBACK_SERVER_WRITEABLE:
            return self.writeable(ctx, wsi)

        if reason == lws.LWS_CALLBACK_CLOSED:
            self.states.pop(wsi, None)
            if user:
                s = Session.from_address(user)
                self.log("closed session %d (%d messages, %d bytes)" % (s.id, s.messages, s.bytes))
            return 0

        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=7682)
    ap.add_argument("--iface", default=None, help="interface name or address (default: all)")
    ap.add_argument("--deflate", action="store_true",
                    help="offer the library's compression extensions")
    ap.add_argument("--log-level", type=int, default=lws.LLL_ERR | lws.LLL_WARN,
                    help="LLL_* bits for the library's log (default 3)")
    ap.add_argument("--quiet", action="store_true", help="no line per session")
    args = ap.parse_args()

    lws.set_log_level(args.log_level)
    server = EchoServer(verbose=not args.quiet)
    ctx = lws.Context(
        [lws.Protocol("echo", server.callback, per_session_data_size=ctypes.sizeof(Session))],
        port=args.port,
        iface=args.iface,
        extensions="internal" if args.deflate else None,
    )

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("echo_server: listening on port %d (library %s)" % (args.port, lws.get_library_version()),
          file=sys.stderr, flush=True)
    try:
        while not stop:
            # -1 also when SIGTERM/SIGINT interrupted the wait (as v1.23)
            if ctx.service(50) < 0 and not (stop or ctx.interrupted()):
                print("echo_server: service failed", file=sys.stderr)
                return 1
    finally:
        ctx.destroy()
    print("echo_server: stopped after %d sessions, %d messages"
          % (server.total_sessions, server.total_messages), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
