#!/usr/bin/env python3
"""The demo in a real browser: examples/test-server.c serving examples/test.html to
headless Chromium, checked from inside the page over the DevTools protocol.

    python3 tests/browser/browser_check.py --server target/browser/test-server \
        [--chromium /usr/bin/chromium] [--out target/browser] [--port N]

Usually run through tests/browser/run.sh, which builds the server first.

Starts the test server on 127.0.0.1 and Chromium (headless, fresh profile, remote
debugging on a port it picks and writes to DevToolsActivePort), opens the page in
two tabs and checks:
  * the page loaded from the server (title) and both WebSocket subprotocols
    (dumb-increment-protocol, lws-mirror-protocol) show "open" in both tabs;
  * the counter (element #number) keeps increasing;
  * "Reset counter" (a message the page sends to the server) restarts it;
  * a message typed into tab 1's mirror form and submitted shows up in tab 2's
    mirror log (and in tab 1's);
and saves screenshots of both tabs to OUT/test-server-tab1.png / -tab2.png.

Only loopback. Both processes are started here, in their own process groups, and
killed by PID (Chromium's group: its helpers) when done or on failure; every wait
has a deadline. Prints "OK" last and exits 0 when every check passed.
"""

import argparse
import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from websockets.asyncio.client import connect

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_tcp(port, proc, within):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_group(proc, within=5.0):
    """SIGTERM to the process group we created for proc, SIGKILL after `within`."""
    if proc is None or proc.poll() is not None:
        if proc is not None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # leftover helpers of a dead leader
            except (ProcessLookupError, PermissionError):
                pass
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(within)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


class Cdp:
    """A minimal DevTools protocol client: one browser connection, flat sessions."""

    def __init__(self, ws):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending = {}
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        async for raw in self.ws:
            msg = json.loads(raw)
            fut = self.pending.pop(msg.get("id"), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def call(self, method, params=None, session=None, timeout=15):
        i = next(self.ids)
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        fut = asyncio.get_running_loop().create_future()
        self.pending[i] = fut
        await self.ws.send(json.dumps(msg))
        reply = await asyncio.wait_for(fut, timeout)
        if "error" in reply:
            raise RuntimeError("%s: %s" % (method, reply["error"]))
        return reply.get("result", {})

    async def evaluate(self, session, expr):
        r = await self.call("Runtime.evaluate",
                            {"expression": expr, "returnByValue": True, "awaitPromise": True},
                            session)
        if "exceptionDetails" in r:
            raise RuntimeError("page exception: %s" % r["exceptionDetails"])
        return r.get("result", {}).get("value")

    async def wait_value(self, session, expr, pred, within=10.0):
        """Polls expr in the page until pred(value); returns the last value."""
        deadline = time.monotonic() + within
        value = None
        while time.monotonic() < deadline:
            value = await self.evaluate(session, expr)
            if pred(value):
                return value
            await asyncio.sleep(0.1)
        return value


async def open_tab(cdp, url):
    target = (await cdp.call("Target.createTarget", {"url": "about:blank"}))["targetId"]
    session = (await cdp.call("Target.attachToTarget",
                              {"targetId": target, "flatten": True}))["sessionId"]
    await cdp.call("Page.enable", session=session)
    await cdp.call("Runtime.enable", session=session)
    await cdp.call("Emulation.setDeviceMetricsOverride",
                   {"width": 900, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                   session)
    nav = await cdp.call("Page.navigate", {"url": url}, session)
    if nav.get("errorText"):
        raise RuntimeError("navigation failed: %s" % nav["errorText"])
    return target, session


def counter_value(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


async def page_checks(ws_url, page_url, out_dir):
    async with connect(ws_url, max_size=None, open_timeout=15) as ws:
        cdp = Cdp(ws)
        try:
            _, s1 = await open_tab(cdp, page_url)
            _, s2 = await open_tab(cdp, page_url)
            tabs = {"tab 1": s1, "tab 2": s2}

            for name, s in tabs.items():
                title = await cdp.wait_value(s, "document.title",
                                             lambda v: v == "libwebsockets test server")
                check(title == "libwebsockets test server",
                      "%s: the page loaded from the test server (title %r)" % (name, title))
                status = await cdp.wait_value(
                    s,
                    "[document.getElementById('wsdi_status').textContent,"
                    " document.getElementById('wslm_status').textContent]",
                    lambda v: v == ["open", "open"], within=15)
                check(status == ["open", "open"],
                      "%s: both WebSocket subprotocols open (%r)" % (name, status))

            # the counter ticks (the server sends it about every 50 ms)
            number = "document.getElementById('number').textContent"
            first = counter_value(await cdp.wait_value(
                s1, number, lambda v: counter_value(v) is not None))
            await asyncio.sleep(1.0)
            second = counter_value(await cdp.evaluate(s1, number))
            third = counter_value(await cdp.wait_value(
                s1, number, lambda v: (counter_value(v) or -1) > (second or 0), within=5))
            check(first is not None and second is not None and third is not None
                  and first < second < third,
                  "the counter increases in the page (%r -> %r -> %r)" % (first, second, third))
            other = counter_value(await cdp.evaluate(s2, number))
            check(other is not None and other > 0, "tab 2 has its own counter (%r)" % other)

            # the reset button sends "reset\n"; the server restarts this tab's counter
            before = counter_value(await cdp.evaluate(s1, number))
            await cdp.evaluate(s1, "document.getElementById('reset').click()")
            after = counter_value(await cdp.wait_value(
                s1, number, lambda v: counter_value(v) is not None
                and counter_value(v) < (before or 0), within=5))
            check(before is not None and after is not None and after < before,
                  "Reset counter restarts it (%r -> %r)" % (before, after))

            # a mirror message typed in tab 1 reaches tab 2
            text = "hello from tab 1, %d" % os.getpid()
            await cdp.evaluate(s1, """(() => {
                const input = document.getElementById('mirror-text');
                input.focus();
                input.value = %s;
                document.getElementById('mirror-send').click();
                return input.value;
            })()""" % json.dumps(text))
            log = "Array.from(document.querySelectorAll('#mirror-log div')).map(d => d.textContent)"
            seen2 = await cdp.wait_value(s2, log, lambda v: v and text in v, within=10)
            check(bool(seen2) and text in seen2,
                  "the mirror message typed in tab 1 shows in tab 2 (%r)" % (seen2,))
            seen1 = await cdp.wait_value(s1, log, lambda v: v and text in v, within=5)
            check(bool(seen1) and text in seen1, "and in tab 1's own log")
            cleared = await cdp.evaluate(s1, "document.getElementById('mirror-text').value")
            check(cleared == "", "the form was submitted (input cleared)")

            os.makedirs(out_dir, exist_ok=True)
            for i, s in enumerate((s1, s2), 1):
                shot = await cdp.call("Page.captureScreenshot", {"format": "png"}, s)
                path = os.path.join(out_dir, "test-server-tab%d.png" % i)
                with open(path, "wb") as f:
                    f.write(base64.b64decode(shot["data"]))
                check(os.path.getsize(path) > 1000, "screenshot saved: %s" % path)

            try:
                await cdp.call("Browser.close", timeout=5)
            except Exception:  # noqa: BLE001 - the connection may drop first
                pass
        finally:
            cdp.reader.cancel()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="the compiled examples/test-server.c")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--out", default="target/browser")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    def on_term(*_):
        raise KeyboardInterrupt("SIGTERM")

    # SIGTERM unwinds through the finally below, which stops the browser and server
    signal.signal(signal.SIGTERM, on_term)

    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="lws-chromium-")
    server = browser = None
    server_log = open(os.path.join(out_dir, "test-server.log"), "w+")
    browser_log = open(os.path.join(out_dir, "chromium.log"), "w+")
    started = time.monotonic()
    try:
        port = args.port or free_port()
        server = subprocess.Popen(
            [args.server, "--port", str(port), "--interface", "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=server_log, stderr=server_log,
            start_new_session=True)
        if not check(wait_tcp(port, server, 10), "test-server listening on 127.0.0.1:%d" % port):
            return 1

        browser = subprocess.Popen(
            [args.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-dev-shm-usage", "--user-data-dir=" + profile,
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=browser_log, stderr=browser_log,
            start_new_session=True)
        active = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline and browser.poll() is None:
            if os.path.exists(active):
                with open(active) as f:
                    lines = f.read().split()
                if len(lines) >= 2:
                    break
            time.sleep(0.1)
        if not check(len(lines) >= 2, "Chromium started with remote debugging"):
            browser_log.seek(0)
            print(browser_log.read()[-3000:])
            return 1
        ws_url = "ws://127.0.0.1:%s%s" % (lines[0], lines[1])
        page_url = "http://127.0.0.1:%d/" % port
        asyncio.run(asyncio.wait_for(page_checks(ws_url, page_url, out_dir), 120))
        check(server.poll() is None, "test-server still running")
    except Exception as e:  # noqa: BLE001
        check(False, "browser session: %r" % (e,))
    finally:
        stop_group(browser)
        stop_group(server)
        shutil.rmtree(profile, ignore_errors=True)
        server_log.close()
        browser_log.close()
    print("browser check took %.1f s; logs and screenshots in %s"
          % (time.monotonic() - started, out_dir))
    if failures:
        print("FAILED: %d checks: %s" % (len(failures), "; ".join(failures)))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
