#!/usr/bin/env python3
"""Checks python/libwebsockets_ctypes.py itself, in one process:

  * struct layouts: sizes and every field offset equal what the C compiler computes
    from include/libwebsockets.h (needs cc);
  * lws_get_library_version, set_log_level with a Python emitter;
  * a server context serviced on its own thread, driven by the Python `websockets`
    client: HTTP with hdr_copy, FILTER_PROTOCOL_CONNECTION with the requested
    protocol and headers, per-session user data (zeroed, kept between callbacks),
    broadcast with callback_on_writable_all_protocol, an exception in a callback
    closing only that connection, the one-thread rule (WrongThreadError, call_soon);
  * the client side: client_connect_extended to the same context with caller-owned
    user data, CLIENT_CONNECTION_ERROR for a refused port;
  * destroy: CLOSED for open connections, then PROTOCOL_DESTROY.

    python3 tests/python/binding_check.py PORT FREE_PORT

PORT is where the server listens, FREE_PORT a port nobody listens on. Prints "OK"
last and exits 0 when every check passed.
"""

import contextlib
import ctypes
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "python"))
import libwebsockets_ctypes as lws  # noqa: E402

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def wait_for(pred, within=10.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


# ------------------------------------------------------------------ ABI


STRUCTS = {
    "lws_context_creation_info": lws.lws_context_creation_info,
    "libwebsocket_protocols": lws.libwebsocket_protocols,
    "libwebsocket_extension": lws.libwebsocket_extension,
    "lws_tokens": lws.lws_tokens,
}


def abi():
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <libwebsockets.h>",
             "int main(void) {"]
    for cname, py in STRUCTS.items():
        lines.append('printf("%%s %%zu\\n", "%s", sizeof(struct %s));' % (cname, cname))
        for field, _ in py._fields_:
            cfield = "in_" if field == "in_" else field
            lines.append('printf("%%s.%%s %%zu\\n", "%s", "%s", offsetof(struct %s, %s));'
                         % (cname, field, cname, cfield))
    lines.append('printf("PRE %d POST %d\\n", LWS_SEND_BUFFER_PRE_PADDING, '
                 'LWS_SEND_BUFFER_POST_PADDING);')
    lines.append('printf("RECEIVE %d CLEAR_MODE %d EXT_PAYLOAD_RX %d TOKEN_COUNT %d '
                 'NO_FIN %d LLL_LATENCY %d\\n", LWS_CALLBACK_RECEIVE, '
                 'LWS_CALLBACK_CLEAR_MODE_POLL_FD, LWS_EXT_CALLBACK_PAYLOAD_RX, '
                 'WSI_TOKEN_COUNT, LWS_WRITE_NO_FIN, LLL_LATENCY);')
    lines.append("return 0; }")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "abi.c")
        exe = os.path.join(d, "abi")
        with open(src, "w") as f:
            f.write("\n".join(lines) + "\n")
        cc = os.environ.get("CC", "cc")
        r = subprocess.run([cc, "-I", os.path.join(REPO, "include"), "-o", exe, src],
                           capture_output=True, text=True, timeout=60)
        if not check(r.returncode == 0, "the ABI probe compiles: " + r.stderr[-300:]):
            return
        out = subprocess.run([exe], capture_output=True, text=True, timeout=10).stdout
    c = {}
    for line in out.splitlines():
        parts = line.split()
        if parts[0] in ("PRE", "RECEIVE"):
            for k, v in zip(parts[0::2], parts[1::2]):
                c[k] = int(v)
        else:
            c[parts[0]] = int(parts[1])
    bad = []
    for cname, py in STRUCTS.items():
        if c[cname] != ctypes.sizeof(py):
            bad.append("sizeof %s: C %d, ctypes %d" % (cname, c[cname], ctypes.sizeof(py)))
        for field, _ in py._fields_:
            off = getattr(py, field).offset
            if c["%s.%s" % (cname, field)] != off:
                bad.append("%s.%s: C %d, ctypes %d" % (cname, field,
                                                      c["%s.%s" % (cname, field)], off))
    check(not bad, "struct sizes and field offsets match the C header %s" % (bad or ""))
    check((c["lws_context_creation_info"], c["libwebsocket_protocols"],
           c["libwebsocket_extension"], c["lws_tokens"]) == (104, 56, 32, 16),
          "sizes 104/56/32/16")
    consts = {
        "PRE": lws.LWS_SEND_BUFFER_PRE_PADDING,
        "POST": lws.LWS_SEND_BUFFER_POST_PADDING,
        "RECEIVE": lws.LWS_CALLBACK_RECEIVE,
        "CLEAR_MODE": lws.LWS_CALLBACK_CLEAR_MODE_POLL_FD,
        "EXT_PAYLOAD_RX": lws.LWS_EXT_CALLBACK_PAYLOAD_RX,
        "TOKEN_COUNT": lws.WSI_TOKEN_COUNT,
        "NO_FIN": lws.LWS_WRITE_NO_FIN,
        "LLL_LATENCY": lws.LLL_LATENCY,
    }
    check(all(c[k] == v for k, v in consts.items()),
          "constants match the header %s" % {k: (c[k], v) for k, v in consts.items()
                                             if c[k] != v})


# ------------------------------------------------------------------ a served context


class Served:
    """A context made by make() and serviced on its own thread until close()."""

    def __init__(self, make):
        self.make = make
        self.ctx = None
        self.error = None
        self.thread_id = None
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(15):
            raise RuntimeError("context thread did not start")
        if self.error:
            raise self.error

    def _run(self):
        self.thread_id = threading.get_ident()
        try:
            self.ctx = self.make()
        except Exception as e:  # noqa: BLE001
            self.error = e
            self.ready.set()
            return
        self.ready.set()
        try:
            self.ctx.run(self.stop, 20)
        finally:
            self.ctx.destroy()

    def call(self, fn, within=10.0):
        """fn() on the service thread; returns its result."""
        box = {}
        done = threading.Event()

        def run():
            try:
                box["r"] = fn()
            except Exception as e:  # noqa: BLE001
                box["e"] = e
            done.set()

        self.ctx.call_soon(run)
        if not done.wait(within):
            raise TimeoutError("call_soon did not run")
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def close(self):
        self.stop.set()
        self.thread.join(15)
        return not self.thread.is_alive()


class Session(ctypes.Structure):
    _fields_ = [("id", ctypes.c_int), ("received", ctypes.c_int), ("sent", ctypes.c_int),
                ("magic", ctypes.c_uint)]


class App:
    """Callbacks of the server context; records what happened."""

    def __init__(self):
        self.events = []  # (protocol, reason name)
        self.http = []  # (uri, host) from hdr_copy
        self.filtered = []  # dicts from FILTER_PROTOCOL_CONNECTION
        self.zeroed = []  # per-session data all zero at ESTABLISHED
        self.user_kept = []  # the magic written at ESTABLISHED seen at RECEIVE
        self.board = []  # broadcast messages
        self.cursor = {}  # wsi -> index into board
        self.closed = 0
        self.next_id = 1
        self.client_user_seen = []
        self.client_results = []
        self.client_errors = 0
        self.threads = set()

    def http_cb(self, ctx, wsi, reason, user, in_, length):
        self.threads.add(threading.get_ident())
        self.events.append(("http", lws.reason_name(reason)))
        if reason == lws.LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            # a client connection belongs to protocols[0] until the server has named
            # its subprotocol, as in v1.23
            self.client_errors += 1
            return 0
        if reason == lws.LWS_CALLBACK_HTTP:
            uri = lws.payload(in_, length).decode()
            host = ctx.hdr_copy(wsi, lws.WSI_TOKEN_HOST)
            got_uri = ctx.hdr_copy(wsi, lws.WSI_TOKEN_GET_URI)
            self.http.append((uri, got_uri, host))
            body = ("uri=%s host=%s\n" % (got_uri.decode(), host.decode())).encode()
            head = ("HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                    % len(body)).encode()
            ctx.write(wsi, head + body, lws.LWS_WRITE_HTTP)
            return -1
        return 0

    def chat_cb(self, ctx, wsi, reason, user, in_, length):
        self.threads.add(threading.get_ident())
        self.events.append(("chat", lws.reason_name(reason)))
        if reason == lws.LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
            self.filtered.append({
                "in": lws.cstring(in_) if not length else lws.payload(in_, length),
                "len": length,
                "origin": ctx.hdr_copy(wsi, lws.WSI_TOKEN_ORIGIN),
                "protocol": ctx.hdr_copy(wsi, lws.WSI_TOKEN_PROTOCOL),
                "uri": ctx.hdr_copy(wsi, lws.WSI_TOKEN_GET_URI),
            })
            # refuse one path, to see the library refuse the upgrade
            return 1 if self.filtered[-1]["uri"] == b"/refuse" else 0
        if reason == lws.LWS_CALLBACK_ESTABLISHED:
            s = Session.from_address(user)
            self.zeroed.append(bytes(ctypes.string_at(user, ctypes.sizeof(Session)))
                               == b"\0" * ctypes.sizeof(Session))
            s.id = self.next_id
            s.magic = 0xC0FFEE
            self.next_id += 1
            self.cursor[wsi] = len(self.board)
            return 0
        if reason == lws.LWS_CALLBACK_RECEIVE:
            s = Session.from_address(user)
            self.user_kept.append(s.magic == 0xC0FFEE)
            s.received += 1
            msg = lws.payload(in_, length).decode()
            if msg == "raise":
                raise ValueError("deliberate failure in a callback")
            if msg.startswith("say "):
                self.board.append(msg[4:])
                ctx.callback_on_writable_all_protocol(ctx.protocols[1])
            elif msg == "whoami":
                self.board.append("you are %d" % s.id)
                # only this one: the others skip it (cursor moves on at WRITEABLE)
                for other in self.cursor:
                    if other != wsi:
                        self.cursor[other] = len(self.board)
                ctx.callback_on_writable(wsi)
            return 0
        if reason == lws.LWS_CALLBACK_SERVER_WRITEABLE:
            i = self.cursor.get(wsi, len(self.board))
            while i < len(self.board):
                ctx.write(wsi, self.board[i])
                i += 1
                Session.from_address(user).sent += 1
            self.cursor[wsi] = i
            return 0
        if reason == lws.LWS_CALLBACK_CLOSED:
            self.cursor.pop(wsi, None)
            self.closed += 1
            return 0
        # the client connections made by this same context land here too
        if reason == lws.LWS_CALLBACK_CLIENT_ESTABLISHED:
            self.client_user_seen.append(user)
            ctx.write(wsi, "say from-the-library-client")
            return 0
        if reason == lws.LWS_CALLBACK_CLIENT_RECEIVE:
            self.client_results.append(lws.payload(in_, length).decode())
            return 0
        if reason == lws.LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
            self.client_errors += 1
            return 0
        return 0


def server_tests(port, free_port):
    app = App()
    served = Served(lambda: lws.Context(
        [lws.Protocol("http-only", app.http_cb),
         lws.Protocol("chat", app.chat_cb, per_session_data_size=ctypes.sizeof(Session))],
        port=port, iface="127.0.0.1"))
    ctx = served.ctx
    url = "ws://127.0.0.1:%d" % port
    try:
        check(("http", "LWS_CALLBACK_PROTOCOL_INIT") in app.events
              and ("chat", "LWS_CALLBACK_PROTOCOL_INIT") in app.events,
              "PROTOCOL_INIT for each protocol")

        # HTTP, with hdr_copy inside the HTTP callback
        with urllib.request.urlopen("http://127.0.0.1:%d/some/path?q=1" % port, timeout=10) as r:
            body = r.read().decode()
        check(body.startswith("uri=/some/path") and "host=127.0.0.1:%d" % port in body,
              "HTTP callback: hdr_copy(GET_URI, HOST) -> %r" % body.strip())

        # FILTER_PROTOCOL_CONNECTION: requested protocol in `in`, headers readable
        with connect(url + "/chat-room", subprotocols=["chat"], origin="http://example.test",
                     open_timeout=10, compression=None) as ws:
            check(ws.subprotocol == "chat", "subprotocol chat")
            f = app.filtered[-1] if app.filtered else {}
            check(f.get("in") == b"chat" and f.get("len") == 0 and f.get("protocol") == b"chat"
                  and f.get("origin") == b"http://example.test" and f.get("uri") == b"/chat-room",
                  "FILTER_PROTOCOL_CONNECTION: in=protocol name (C string, len 0), hdr_copy of Origin, "
                  "Sec-WebSocket-Protocol, URI: %r" % f)
            ws.send("whoami")
            me = ws.recv(timeout=10)
            check(me.startswith("you are "), "reply from SERVER_WRITEABLE: %r" % me)

        # a refusing filter
        try:
            with connect(url + "/refuse", subprotocols=["chat"], open_timeout=10,
                         compression=None):
                refused = False
        except Exception:  # noqa: BLE001 - InvalidStatus
            refused = True
        check(refused, "FILTER_PROTOCOL_CONNECTION returning 1 refuses the upgrade")

        # broadcast to three clients with callback_on_writable_all_protocol
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(connect(url + "/", subprotocols=["chat"],
                                                   open_timeout=10, compression=None))
                       for _ in range(3)]
            clients[0].send("say hello everyone")
            got = [c.recv(timeout=10) for c in clients]
            check(got == ["hello everyone"] * 3,
                  "callback_on_writable_all_protocol reaches every client: %r" % got)
            check(all(app.zeroed) and len(app.zeroed) >= 4,
                  "per-session data is zeroed at ESTABLISHED (%r)" % app.zeroed)
            check(app.user_kept and all(app.user_kept),
                  "per-session data written at ESTABLISHED is seen at RECEIVE")

            # an exception in a callback closes that connection only
            clients[1].send("raise")
            try:
                clients[1].recv(timeout=10)
                closed = False
            except ConnectionClosed:
                closed = True
            check(closed, "an exception in the callback closes that connection")
            clients[2].send("say still here")
            check(clients[2].recv(timeout=10) == "still here"
                  and clients[0].recv(timeout=10) == "still here",
                  "the other connections keep working")

        # the one-thread rule
        try:
            ctx.callback_on_writable_all_protocol(1)
            wrong = False
        except lws.WrongThreadError:
            wrong = True
        check(wrong, "using the context from another thread raises WrongThreadError")
        tid = served.call(threading.get_ident)
        check(tid == served.thread_id, "call_soon runs on the service thread")
        check(app.threads == {served.thread_id}, "every callback ran on the service thread")

        # the client API, in the same context: caller-owned user data (the _extended form)
        udata = ctypes.create_string_buffer(64)
        served.call(lambda: ctx.client_connect("127.0.0.1", port, path="/", protocol="chat",
                                               userdata=ctypes.addressof(udata)))
        ok = wait_for(lambda: app.client_results, 10)
        check(ok and app.client_results[0] == "from-the-library-client",
              "client_connect to ourselves: CLIENT_ESTABLISHED, write, CLIENT_RECEIVE (%r)"
              % app.client_results)
        check(app.client_user_seen == [ctypes.addressof(udata)],
              "client_connect_extended: `user` is the caller's buffer")
        served.call(lambda: ctx.client_connect("127.0.0.1", free_port, protocol="chat"))
        check(wait_for(lambda: app.client_errors == 1, 10),
              "CLIENT_CONNECTION_ERROR once for a refused port (%d)" % app.client_errors)

        # one connection left open across destroy
        with connect(url + "/", subprotocols=["chat"], open_timeout=10, compression=None) as last:
            closed_before = app.closed
            check(served.close(), "the service thread stops and destroys the context")
            try:
                last.recv(timeout=5)
                gone = False
            except (ConnectionClosed, TimeoutError):
                gone = True
        check(gone, "the client sees its connection closed")
        names = list(app.events)
        check(app.closed > closed_before, "destroy delivers CLOSED to open connections")
        check(names[-2:] == [("http", "LWS_CALLBACK_PROTOCOL_DESTROY"),
                             ("chat", "LWS_CALLBACK_PROTOCOL_DESTROY")]
              or set(names[-2:]) == {("http", "LWS_CALLBACK_PROTOCOL_DESTROY"),
                                     ("chat", "LWS_CALLBACK_PROTOCOL_DESTROY")},
              "PROTOCOL_DESTROY last, for each protocol: %r" % names[-4:])
        try:
            ctx.service(0)
            raised = False
        except ValueError:
            raised = True
        check(raised, "a destroyed context refuses service()")
    finally:
        served.stop.set()
        served.thread.join(15)


# ------------------------------------------------------------------ logging


def logging_tests(port):
    lines = []
    lws.set_log_level(lws.LLL_ERR | lws.LLL_WARN | lws.LLL_NOTICE,
                      lambda level, line: lines.append((level, line)))
    ctx = lws.Context([lws.Protocol("p", lambda *a: 0)], port=port, iface="127.0.0.1")
    ctx.destroy()
    check(any(lvl == lws.LLL_NOTICE and "Listening on port %d" % port in line
              for lvl, line in lines),
          "the Python emitter gets NOTICE lines with their level (%r)" % lines[:3])
    # a second context on the same port fails: error logged, OSError raised
    blocker = lws.Context([lws.Protocol("p", lambda *a: 0)], port=port, iface="127.0.0.1")
    try:
        n = len(lines)
        try:
            lws.Context([lws.Protocol("p", lambda *a: 0)], port=port, iface="127.0.0.1")
            failed = False
        except OSError:
            failed = True
        check(failed and any(lvl == lws.LLL_ERR for lvl, _ in lines[n:]),
              "a context on a taken port raises OSError; the error reaches the emitter")
    finally:
        blocker.destroy()
    n = len(lines)
    lws.log(lws.LLL_NOTICE, "from Python %d%%s" % 42)
    lws.log(lws.LLL_INFO, "filtered out")
    check([(lvl, line) for lvl, line in lines[n:]] == [(lws.LLL_NOTICE, "from Python 42%s\n")],
          "log() goes through the library's filter and emitter (%r)" % lines[n:])
    lws.set_log_level(lws.LLL_ERR | lws.LLL_WARN)  # keeps the emitter
    n = len(lines)
    lws.Context([lws.Protocol("p", lambda *a: 0)], port=port, iface="127.0.0.1").destroy()
    check(len(lines) == n, "NOTICE off: nothing emitted")


def main():
    port, free_port = int(sys.argv[1]), int(sys.argv[2])
    version = lws.get_library_version()
    check(version.split(" ")[0] == "1.3" and len(version.split(" ")) == 2,
          "get_library_version: %r" % version)
    exported = subprocess.run(["nm", "-D", "--defined-only", lws.library_path()],
                              capture_output=True, text=True).stdout.split()
    exported = {w for w in exported if w.startswith(("lws", "libwebsocket", "_lws"))}
    declared = set(lws._PROTOTYPES) | {"_lws_log"}
    check(len(exported) == 39 and exported == declared,
          "every exported function is declared (%r)" % sorted(exported ^ declared))
    check(os.path.samefile(lws.library_path(), os.environ["LWS_LIBRARY"])
          if os.environ.get("LWS_LIBRARY") else True, "LWS_LIBRARY is honoured")
    abi()
    logging_tests(port)
    server_tests(port, free_port)
    if failures:
        print("FAILED: %d checks: %s" % (len(failures), "; ".join(failures)))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
