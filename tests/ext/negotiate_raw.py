#!/usr/bin/env python3
"""Sec-WebSocket-Extensions negotiation edge cases, over a plain socket, against
an echo server with the library's internal extensions (examples/test-echo).

Usage: negotiate_raw.py --port P [--plain-port Q] [--only a,b]

--plain-port is a test-echo started with --no-extensions: every offer must get
a 101 without a Sec-WebSocket-Extensions header there.

Checks:
  declined     offers with unknown or duplicate parameters, bad window bits
               (7, 16, 0, letters, leading zero, sign, missing or huge value), a
               value on a flag parameter, malformed headers, unknown extensions,
               deflate-frame with parameters: 101 and no extension header
  accepted     valid offers, including a good offer after a bad one, quoted
               values, spacing, two header lines: the exact reply
  alone        x-webkit-deflate-frame and deflate-frame offered alone: the reply
               names them
  one-only     several compression extensions offered: exactly one in the reply
  data-after   after each accepted permessage-deflate reply, a compressed message
               made with the agreed parameters echoes right
  no-ext       the --no-extensions server ignores every offer
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from extcheck import (  # noqa: E402
    OP_TEXT,
    RSV1,
    Checks,
    Deflater,
    Inflater,
    RawConn,
    frame_bytes,
    need,
)

PMD = "permessage-deflate"

DECLINED = [
    f"{PMD}; foo",
    f"{PMD}; foo=1",
    f'{PMD}; foo="bar"',
    f"{PMD}; client_max_window_bits; foo",
    f"{PMD}; server_no_context_takeover; server_no_context_takeover",
    f"{PMD}; client_no_context_takeover; client_no_context_takeover",
    f"{PMD}; server_max_window_bits=10; server_max_window_bits=10",
    f"{PMD}; server_max_window_bits=10; server_max_window_bits=11",
    f"{PMD}; client_max_window_bits; client_max_window_bits",
    f"{PMD}; client_max_window_bits=10; client_max_window_bits",
    f"{PMD}; server_max_window_bits=7",
    f"{PMD}; server_max_window_bits=16",
    f"{PMD}; server_max_window_bits=0",
    f"{PMD}; server_max_window_bits=1a",
    f"{PMD}; server_max_window_bits=abc",
    f"{PMD}; server_max_window_bits=010",
    f"{PMD}; server_max_window_bits=09",
    f"{PMD}; server_max_window_bits=+10",
    f"{PMD}; server_max_window_bits=-9",
    f"{PMD}; server_max_window_bits=10.0",
    f"{PMD}; server_max_window_bits=18446744073709551625",
    f"{PMD}; server_max_window_bits",
    f'{PMD}; server_max_window_bits="16"',
    f'{PMD}; server_max_window_bits="1 0"',
    f"{PMD}; client_max_window_bits=7",
    f"{PMD}; client_max_window_bits=16",
    f"{PMD}; client_max_window_bits=x",
    f"{PMD}; client_max_window_bits=08",
    f"{PMD}; server_no_context_takeover=1",
    f"{PMD}; client_no_context_takeover=true",
    f"{PMD};",
    f"{PMD}; ;",
    f"{PMD} client_max_window_bits",
    f"{PMD}; server_max_window_bits=10 12",
    "deflate-frame; max_window_bits=10",
    "x-webkit-deflate-frame; no_context_takeover",
    "foo-unknown",
    "foo-unknown; a=1, bar",
    "",
    ",",
    "perMessage_deflate",
]

# offer (a string, or a list of header lines) -> exact reply value
ACCEPTED = [
    (PMD, PMD),
    (f"{PMD}; client_max_window_bits", PMD),
    (f"{PMD}; server_max_window_bits=7, {PMD}; client_no_context_takeover", f"{PMD}; client_no_context_takeover"),
    (f"{PMD}; foo, {PMD}", PMD),
    (f"{PMD}; server_no_context_takeover; server_no_context_takeover, {PMD}; server_no_context_takeover",
     f"{PMD}; server_no_context_takeover"),
    (f"{PMD}; server_max_window_bits=16, {PMD}; server_max_window_bits=12", f"{PMD}; server_max_window_bits=12"),
    (f"{PMD}; client_max_window_bits=abc, {PMD}; client_max_window_bits=9", f"{PMD}; client_max_window_bits=9"),
    (f'{PMD}; server_max_window_bits="10"', f"{PMD}; server_max_window_bits=10"),
    (f"{PMD} ;server_no_context_takeover ;\tclient_max_window_bits = 12",
     f"{PMD}; server_no_context_takeover; client_max_window_bits=12"),
    (f"{PMD}; server_max_window_bits=8", f"{PMD}; server_max_window_bits=8"),
    (f"{PMD}; client_max_window_bits=8", f"{PMD}; client_max_window_bits=8"),
    (f"{PMD}; server_max_window_bits=15; client_max_window_bits=15",
     f"{PMD}; server_max_window_bits=15; client_max_window_bits=15"),
    (f"{PMD}; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=9; "
     "client_max_window_bits=11",
     f"{PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; "
     "client_max_window_bits=11"),
    (f"foo-unknown, {PMD}", PMD),
    (f", , {PMD} ,", PMD),
    (["foo-unknown", f"{PMD}; client_max_window_bits"], PMD),
    ([f"{PMD}; server_max_window_bits=99", f"{PMD}; server_no_context_takeover"],
     f"{PMD}; server_no_context_takeover"),
    (f"{PMD}, {PMD}; client_no_context_takeover", PMD),
]

COMPRESSION = {PMD, "deflate-frame", "x-webkit-deflate-frame"}

ONE_ONLY = [
    f"{PMD}, deflate-frame",
    f"deflate-frame, {PMD}",
    f"x-webkit-deflate-frame, deflate-frame",
    f"x-webkit-deflate-frame, deflate-frame, {PMD}; client_max_window_bits",
    f"{PMD}; client_max_window_bits, x-webkit-deflate-frame, deflate-frame",
    f"{PMD}; bad=1, x-webkit-deflate-frame",
    [f"{PMD}", "deflate-frame"],
    ["deflate-frame", "x-webkit-deflate-frame", f"{PMD}"],
]


def show(offer):
    return repr(offer)


def reply_of(port, offer):
    c = RawConn(port, offer)
    try:
        need(c.status == 101, f"offer {show(offer)}: status {c.status}, not 101")
        return c.header("sec-websocket-extensions")
    finally:
        c.close()


def check_declined(port):
    bad = []
    for offer in DECLINED:
        r = reply_of(port, offer)
        if r is not None:
            bad.append(f"{show(offer)} -> {r!r}")
    need(not bad, "offers accepted that must be declined: " + "; ".join(bad))


def canon(value):
    """Reply value with normalised spacing (the comparison is exact otherwise)."""
    if value is None:
        return None
    return ", ".join("; ".join(p.strip() for p in e.split(";")) for e in value.split(","))


def check_accepted(port):
    bad = []
    for offer, want in ACCEPTED:
        r = reply_of(port, offer)
        if canon(r) != want:
            bad.append(f"{show(offer)} -> {r!r}, expected {want!r}")
    need(not bad, "; ".join(bad))


def check_alone(port):
    for name in ("x-webkit-deflate-frame", "deflate-frame"):
        r = reply_of(port, name)
        need(canon(r) == name, f"{name} alone -> {r!r}")


def check_one_only(port):
    bad = []
    for offer in ONE_ONLY:
        r = reply_of(port, offer)
        names = [e.split(";")[0].strip() for e in (r or "").split(",") if e.strip()]
        chosen = [n for n in names if n in COMPRESSION]
        if len(chosen) != 1 or len(names) != 1:
            bad.append(f"{show(offer)} -> {r!r}")
    need(not bad, "not exactly one compression extension: " + "; ".join(bad))


def parse_params(value):
    out = {}
    for p in value.split(";")[1:]:
        n, _, v = p.strip().partition("=")
        out[n.strip()] = v.strip() if _ else None
    return out


def check_data_after(port):
    """For each accepted pmd offer: compress with the agreed parameters, echo."""
    msg = ("negotiated " * 300 + "\u00e9t\u00e9 ").encode()
    for offer, want in ACCEPTED:
        if not want.startswith(PMD):
            continue
        p = parse_params(want)
        cbits = int(p.get("client_max_window_bits") or 15)
        sbits = int(p.get("server_max_window_bits") or 15)
        c = RawConn(port, offer)
        try:
            need(c.status == 101, f"{show(offer)}: status {c.status}")
            d = Deflater(max(cbits, 9), takeover="client_no_context_takeover" not in p)
            inf = Inflater(sbits, takeover="server_no_context_takeover" not in p)
            for i in range(3):
                c.send_raw(frame_bytes(OP_TEXT, d.message(msg), rsv=RSV1))
                op, data, rsv = c.recv_message(inf)
                need(op == OP_TEXT and data == msg, f"{show(offer)}: message {i} echo differs")
                need(rsv & RSV1, f"{show(offer)}: message {i} echo not compressed")
        finally:
            c.close()


def check_no_ext(port):
    bad = []
    for offer in [PMD, f"{PMD}; client_max_window_bits", "deflate-frame", "x-webkit-deflate-frame"]:
        r = reply_of(port, offer)
        if r is not None:
            bad.append(f"{show(offer)} -> {r!r}")
    need(not bad, "--no-extensions server accepted: " + "; ".join(bad))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--plain-port", type=int)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    c = Checks("negotiate_raw", a.only)
    c.run("declined", check_declined, a.port)
    c.run("accepted", check_accepted, a.port)
    c.run("alone", check_alone, a.port)
    c.run("one-only", check_one_only, a.port)
    c.run("data-after", check_data_after, a.port)
    if a.plain_port:
        c.run("no-ext", check_no_ext, a.plain_port)
    c.finish()


if __name__ == "__main__":
    main()
