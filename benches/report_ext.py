#!/usr/bin/env python3
"""Turns benches/run-ext.sh output (target/bench/ext-raw.txt) into ext-results.json and
ext-results.md.

Every line is an lwsload RESULT line with fields appended by run-ext.sh (round, test,
variant, server, window_s, server_cpu_s, server_user_s, ...). Variants named "lws4-..."
ran on the libwebsockets 4.x comparison server (benches/servers/lws4-echo.c) with the
same load as the variant without the prefix on ours. Exit status 1 when any run is
unhealthy: errors, bad lengths or data, peer closes, stalls, failed or timed-out
handshakes, an extension not negotiated as asked (or negotiated but no echo compressed),
fewer open connections than asked, no RESULT at all, a server that died, or, on
libwebsockets 4.x, TLS sessions not resumed where the client resumes (or resumed where
it must not). Speed is never judged in the exit status.
"""
import argparse
import json
import statistics
import sys

# RESULT-line parsing and meta.txt reading are the same as for benches/run.sh's report
from report import read_entries, read_meta

TESTS = ["echo64-d16", "echo1m", "json64k", "handshake", "idle", "idle-msg"]


def isnum(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def tls_resumption_problems(e):
    """libwebsockets 4.x counts its full and resumed TLS handshakes (SSL_session_reused)
    over the window: the client must resume there (nearly all: each worker's first
    connection is full, in the warm-up) and only there."""
    v = str(e.get("variant", ""))
    if e.get("server") != "lws4" or e.get("mode") != "handshake" or not v.startswith("lws4-wss"):
        return []
    full, resumed = e.get("srv_tls_full"), e.get("srv_tls_resumed")
    if not isnum(full) or not isnum(resumed) or full < 0 or resumed < 0:
        return ["no TLS handshake counts from lws4-echo"]
    total = full + resumed
    if total == 0:
        return ["lws4-echo counted no TLS handshake"]
    e["srv_tls_resumed_pct"] = round(100 * resumed / total, 1)
    if v == "lws4-wss-resumed" and resumed < 0.9 * total:
        return [f"TLS resumption: only {resumed} of {total} handshakes resumed on lws4"]
    if v != "lws4-wss-resumed" and resumed:
        return [f"TLS: {resumed} of {total} handshakes resumed on lws4 where every one must be full"]
    return []


def derive(e):
    """Adds CPU figures and the health verdict to one parsed run."""
    win, cpu = e.get("window_s"), e.get("server_cpu_s")
    if isnum(win) and win > 0 and isnum(cpu) and cpu >= 0:
        frac = cpu / win
        e["server_cpu_pct"] = round(100 * frac, 1)
        for key in ("core_server_busy_s", "core_load_busy_s", "server_rq_wait_s"):
            if isnum(e.get(key)) and e[key] >= 0:
                e[key[:-2] + "_pct"] = round(100 * e[key] / win, 1)
        if "core_server_busy_pct" in e:
            # CPU used on the server's core by anything but the server (approximate)
            e["other_on_server_core_pct"] = round(e["core_server_busy_pct"] - e["server_cpu_pct"], 1)
        user = e.get("server_user_s")
        # user-space share of the server CPU (the rest is kernel: syscalls, TCP, faults)
        ufrac = user / win if isnum(user) and 0 <= user <= cpu else None
        for mode, rate, op in (("echo", "msgs_per_s", "msg"), ("handshake", "hs_per_s", "handshake")):
            if e.get("mode") == mode and e.get(rate):
                e[f"server_cpu_us_per_{op}"] = round(frac * 1e6 / e[rate], 3)
                if ufrac is not None:
                    e[f"server_user_us_per_{op}"] = round(ufrac * 1e6 / e[rate], 3)
                    e[f"server_kernel_us_per_{op}"] = round((frac - ufrac) * 1e6 / e[rate], 3)
    secs = e.get("secs")
    if isnum(secs) and secs > 0:
        # lwsload's own figures, over its own window
        for key in ("load_cpu_s", "load_rq_wait_s"):
            if isnum(e.get(key)) and e[key] >= 0:
                e[key[:-2] + "_pct"] = round(100 * e[key] / secs, 1)
    problems = []
    if e.get("status") == "noresult":
        problems.append("no RESULT line")
    elif e.get("status") == "died":
        problems.append("server died between runs")
    for key in ("errors", "bad_len", "bad_data", "peer_closes", "failures", "close_timeouts",
                "stalled", "ext_mismatch"):
        if e.get(key, 0) != 0:
            problems.append(f"{key}={e[key]}")
    if "conns" in e and e.get("open", e["conns"]) < e["conns"]:
        problems.append(f"open={e.get('open')} < conns={e['conns']}")
    if e.get("compress") == 1 and "negotiated" in e and e["negotiated"] < e.get("conns", 0):
        problems.append(f"permessage-deflate negotiated on {e['negotiated']} of {e.get('conns')}")
    if (e.get("compress") == 1 and e.get("mode") == "echo" and e.get("msgs", 0) > 0
            and e.get("compressed_echoes", 0) == 0):
        problems.append("permessage-deflate negotiated but no echo came compressed")
    problems += tls_resumption_problems(e)
    if e.get("server_alive") == 0:
        problems.append("server died")
    if e.get("ready") == 0:
        problems.append("idle connections never READY")
    if e.get("rc", 0) != 0:
        problems.append(f"lwsload exit status {e['rc']}")
    if e.get("mode") == "handshake" and e.get("handshakes", 1) == 0:
        problems.append("no handshake completed")
    if e.get("mode") == "echo" and e.get("msgs", 1) == 0:
        problems.append("no echo received")
    e["healthy"] = not problems
    e["problems"] = problems
    return e


METRICS = [
    "msgs_per_s", "MB_per_s", "p50_us", "p90_us", "p99_us", "max_us", "hs_per_s",
    "upgrade_p50_us", "upgrade_p99_us", "cycle_p50_us", "cycle_p99_us", "hs_wire_out_B",
    "hs_wire_in_B", "bytes_per_conn", "server_cpu_pct", "server_cpu_us_per_msg",
    "server_cpu_us_per_handshake", "core_server_busy_pct", "core_load_busy_pct",
    "other_on_server_core_pct", "server_rq_wait_pct", "load_rq_wait_pct", "load_cpu_pct", "wire_ratio_out", "wire_ratio_in", "wire_ratio",
    "server_user_us_per_msg", "server_kernel_us_per_msg", "server_user_us_per_handshake",
    "server_kernel_us_per_handshake", "srv_tls_resumed_pct",
]

# ours next to libwebsockets 4.x: (test, our variant, lws4 variant, rate metric, row name)
VS_LWS4 = [
    ("echo64-d16", "ws", "lws4-ws", "msgs_per_s", "ws, 64 B, {e64} conns, depth 16 — msgs/s"),
    ("echo64-d16", "wss", "lws4-wss", "msgs_per_s", "wss, 64 B, {e64} conns, depth 16 — msgs/s"),
    ("echo1m", "ws", "lws4-ws", "MB_per_s", "ws, 1 MiB, 4 conns — MB/s"),
    ("echo1m", "wss", "lws4-wss", "MB_per_s", "wss, 1 MiB, 4 conns — MB/s"),
    ("handshake", "ws", "lws4-ws", "hs_per_s", "handshakes/s, ws"),
    ("handshake", "wss-resumed", "lws4-wss-resumed", "hs_per_s", "handshakes/s, wss, TLS 1.3 resumed"),
    ("handshake", "wss-full", "lws4-wss-full", "hs_per_s", "handshakes/s, wss, full, RSA 2048"),
    ("handshake", "wss-ecdsa-full", "lws4-wss-ecdsa-full", "hs_per_s", "handshakes/s, wss, full, ECDSA P-256"),
    ("json64k", "ws-pmd", "lws4-ws-pmd", "MB_per_s", "permessage-deflate, 64 KiB JSON, 4 conns, depth 4 — MB/s"),
]
# memory rows (lower is better): (test, our variant, lws4 variant, row name)
VS_LWS4_MEM = [
    ("idle", "ws", "lws4-ws", "ws, upgraded"),
    ("idle", "wss", "lws4-wss", "wss, upgraded"),
    ("idle", "ws-pmd", "lws4-ws-pmd", "permessage-deflate, upgraded"),
    ("idle-msg", "ws", "lws4-ws", "ws, after one 64 KiB JSON message"),
    ("idle-msg", "ws-pmd", "lws4-ws-pmd", "permessage-deflate, after one 64 KiB JSON message"),
]


def op_of(test):
    return "handshake" if test == "handshake" else "msg"



def summarize(entries):
    groups = {}
    for e in entries:
        if e.get("test") and e.get("variant"):
            groups.setdefault(f"{e['test']}/{e['variant']}", []).append(e)
    out = {}
    for key, runs in groups.items():
        good = sorted((r for r in runs if r["healthy"]), key=lambda r: r.get("round", 0))
        g = {"runs": len(runs), "healthy_runs": len(good), "median": {}, "per_round": {}}
        for m in METRICS:
            vals = [r[m] for r in good if isnum(r.get(m))]
            if vals:
                g["median"][m] = statistics.median(vals)
                g["per_round"][m] = vals
        out[key] = g
    return out


def ratios(entries, groups):
    """wss/ws and pmd/uncompressed: ratio of medians, and per round."""
    def per_round(test, va, vb, key):
        by = {}
        for e in entries:
            if e["healthy"] and e.get("test") == test and isnum(e.get(key)):
                by.setdefault(e.get("round"), {})[e.get("variant")] = e[key]
        res = []
        for rnd in sorted(by):
            a, b = by[rnd].get(va), by[rnd].get(vb)
            if a is not None and b:
                res.append(round(a / b, 3))
        return res

    def of_medians(test, va, vb, key):
        a = groups.get(f"{test}/{va}", {}).get("median", {}).get(key)
        b = groups.get(f"{test}/{vb}", {}).get("median", {}).get(key)
        return a / b if a is not None and b else None

    r = {}
    for test, va, vb, key in (
        ("echo64-d16", "wss", "ws", "msgs_per_s"),
        ("echo64-d16", "wss", "ws", "server_cpu_us_per_msg"),
        ("echo1m", "wss", "ws", "MB_per_s"),
        ("echo1m", "wss", "ws", "server_cpu_us_per_msg"),
        ("json64k", "ws-pmd", "ws", "MB_per_s"),
        ("json64k", "ws-pmd", "ws", "server_cpu_us_per_msg"),
        ("handshake", "wss-full", "ws", "server_cpu_us_per_handshake"),
        ("handshake", "wss-ecdsa-full", "ws", "server_cpu_us_per_handshake"),
        ("handshake", "wss-resumed", "ws", "server_cpu_us_per_handshake"),
        ("handshake", "wss-full", "ws", "hs_per_s"),
        ("idle", "ws-pmd", "ws", "bytes_per_conn"),
        ("idle", "wss", "ws", "bytes_per_conn"),
        ("idle-msg", "ws-pmd", "ws", "bytes_per_conn"),
    ) + tuple((t, a, b, k) for t, a, b, k, _ in VS_LWS4) + tuple(
            (t, a, b, f"server_cpu_us_per_{op_of(t)}") for t, a, b, _, _ in VS_LWS4) + tuple(
            (t, a, b, "bytes_per_conn") for t, a, b, _ in VS_LWS4_MEM):
        r[f"{test}:{key}:{va}/{vb}"] = {"of_medians": of_medians(test, va, vb, key),
                                       "per_round": per_round(test, va, vb, key)}
    return r


def fmt(v, kind="n"):
    if v is None:
        return "–"
    if kind == "rate":
        if v >= 1e6:
            return f"{v / 1e6:.2f} M"
        if v >= 1e3:
            return f"{v / 1e3:.1f} k"
        return f"{v:.0f}"
    if kind == "ratio":
        return f"{v:.2f}"
    if kind == "ratio3":
        return f"{v:.3f}"
    if kind == "us":
        return f"{v:.3f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"
    if kind == "int":
        return f"{v:.0f}"
    if kind == "mb":
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    if kind == "kb":
        return f"{v / 1024:.1f} KiB" if v >= 1024 else f"{v:.0f} B"
    return f"{v:g}"


def vs_lws4_section(meta, groups, rat, m, rr, e64, idle_n):
    """The rows of issue 17: ours next to libwebsockets 4.x, same load, same round."""
    def cpu(test, v):
        op = op_of(test)
        tot, usr, ker = (m(test, v, f"server_{k}_us_per_{op}") for k in ("cpu", "user", "kernel"))
        if tot is None:
            return "–"
        if usr is None or ker is None:
            return fmt(tot, "us")
        return f"{fmt(tot, 'us')} ({fmt(usr, 'us')} + {fmt(ker, 'us')})"

    def ahead(x, higher_better=True):
        if x is None:
            return "–"
        return "yes" if (x > 1 if higher_better else x < 1) else "**no**"

    L = []
    L.append(f"## Ours next to libwebsockets {meta.get('lws4_version', '4.x')} (OpenSSL)")
    L.append("")
    L.append("Same client, same load, same certificates, same cores, in the same round (ours and lws4 "
             "one after the other, order reversed every other round). Rate ratio = ours / lws4: above 1, "
             "ours is ahead. Server CPU per operation (per message, per MiB for 1 MiB messages, per "
             "handshake), user + kernel, in µs; CPU ratio = ours / lws4: below 1, ours spends less.")
    L.append("")
    L.append("| row | ours | lws4 | ours / lws4 | ahead | server CPU µs/op, ours (user + kernel) "
             "| lws4 (user + kernel) | CPU ours / lws4 |")
    L.append("|---|---|---|---|---|---|---|---|")
    for test, va, vb, key, name in VS_LWS4:
        kind = "mb" if key == "MB_per_s" else "rate"
        ratio = rr(f"{test}:{key}:{va}/{vb}")
        cratio = rr(f"{test}:server_cpu_us_per_{op_of(test)}:{va}/{vb}")
        L.append(f"| {name.format(e64=e64)} | {fmt(m(test, va, key), kind)} | {fmt(m(test, vb, key), kind)} "
                 f"| {fmt(ratio, 'ratio')} | {ahead(ratio)} | {cpu(test, va)} | {cpu(test, vb)} "
                 f"| {fmt(cratio, 'ratio')} |")
    L.append("")
    L.append(f"Server memory per idle connection ({idle_n} connections to a fresh server, VmRSS growth / count; "
             "lower is better):")
    L.append("")
    L.append("| idle connection | ours | lws4 | ours / lws4 | ahead |")
    L.append("|---|---|---|---|---|")
    for test, va, vb, name in VS_LWS4_MEM:
        ratio = rr(f"{test}:bytes_per_conn:{va}/{vb}")
        L.append(f"| {name} | {fmt(m(test, va, 'bytes_per_conn'), 'kb')} | {fmt(m(test, vb, 'bytes_per_conn'), 'kb')} "
                 f"| {fmt(ratio, 'ratio')} | {ahead(ratio, higher_better=False)} |")
    L.append("")
    # what was checked about the comparison itself
    res = groups.get("handshake/lws4-wss-resumed", {}).get("median", {}).get("srv_tls_resumed_pct")
    notes = []
    for k, name in (("lws4_tls_l4wss", "RSA"), ("lws4_tls_l4wsse", "ECDSA")):
        if meta.get(k):
            notes.append(f"{name} server: {meta[k]}")
    L.append("Checks: lws4's TLS" + (" (" + "; ".join(notes) + ")" if notes else "") +
             f" counted its resumed handshakes (`SSL_session_reused`) in each window: median "
             f"{fmt(res, 'n')}% resumed in the *resumed* runs (a run under 90% is unhealthy), none in the "
             "*full* runs (any is unhealthy). permessage-deflate answer "
             f"from ours: `{meta.get('pmd_reply_ws-pmd', '?')}`, from lws4: "
             f"`{meta.get('pmd_reply_lws4-ws-pmd', '?')}` (every connection must negotiate it and echoes must "
             f"come compressed); wire / payload server → client: ours "
             f"{fmt(m('json64k', 'ws-pmd', 'wire_ratio_in'), 'ratio3')}, lws4 "
             f"{fmt(m('json64k', 'lws4-ws-pmd', 'wire_ratio_in'), 'ratio3')}. lws4's permessage-deflate runs "
             "at zlib level 6 like ours (its default is 1) with 16 KiB deflate / inflate steps and a 64 KiB "
             "rx buffer: at its default 4 KiB buffer, lws 4.1.6 corrupts compressed frames larger than the "
             "buffer when several connections receive them (zlib errors, stalls).")
    L.append("")
    return L


def markdown(meta, entries, groups, rat):
    def m(test, variant, key):
        return groups.get(f"{test}/{variant}", {}).get("median", {}).get(key)

    def pr(test, variant, key, kind):
        vals = groups.get(f"{test}/{variant}", {}).get("per_round", {}).get(key, [])
        return " / ".join(fmt(v, kind) for v in vals) or "–"

    def wait(test, variant):
        return (f"{fmt(m(test, variant, 'server_rq_wait_pct'), 'int')}, "
                f"{fmt(m(test, variant, 'load_rq_wait_pct'), 'int')}")

    def rr(name):
        return rat.get(name, {}).get("of_medians")

    e64 = meta.get("e64_conns", "100")
    idle_n = meta.get("idle_conns", "?")
    L = []
    L.append("# TLS and compression benchmark")
    L.append("")
    L.append(f"mode {meta.get('mode')}, {meta.get('rounds')} round(s) of {meta.get('secs')} s runs "
             f"(after {meta.get('warmup')} s warm-up), commit {str(meta.get('commit', '?'))[:12]}"
             f"{' (src/include/lwsload modified)' if str(meta.get('dirty', '0')) != '0' else ''}, "
             f"{meta.get('start', '?')} – {meta.get('end', '?')}, load average at start/end "
             f"{meta.get('loadavg_start', '?')} / {meta.get('loadavg_end', '?')} on {meta.get('nproc', '?')} cores "
             f"({meta.get('cpu_model', '?')}). Servers on core {meta.get('server_cpu')}: ours, `examples/test-echo`, "
             f"and for comparison `benches/servers/lws4-echo` on libwebsockets {meta.get('lws4_version', '?')} "
             f"(`{meta.get('lws4_lib', '?')}`, OpenSSL); load `benches/lwsload` (our client API, TLS 1.3 on "
             f"rustls) on core {meta.get('load_cpu')}. Medians over healthy runs; per-round values below. "
             "Server CPU = utime+stime of the server "
             "process over the measured window. CPU wait %: time the process was runnable but "
             "waiting for a CPU (`/proc/PID/schedstat`) as a share of the window: non-zero means other work "
             "took the cores, and rates are then lower than the machine can do; the CPU-per-operation "
             "figures are the robust ones.")
    L.append("")
    L.append(f"lwsload's echo check, self-test against a faulty server: {meta.get('checker_selftest', '?')}.")
    if meta.get("mode") == "smoke":
        L.append("")
        L.append("**Smoke run: short runs on few connections; the figures are not meaningful.**")
    L.append("")
    L += vs_lws4_section(meta, groups, rat, m, rr, e64, idle_n)
    L.append("## TLS: wss next to ws (same server binary, same client)")
    L.append("")
    L.append("| test | ws | wss | wss / ws | server CPU ws / wss | server CPU % ws / wss | CPU wait % server, load: ws / wss |")
    L.append("|---|---|---|---|---|---|---|")
    L.append(f"| 64 B, {e64} conns, depth 16 — msgs/s | {fmt(m('echo64-d16','ws','msgs_per_s'),'rate')} "
             f"| {fmt(m('echo64-d16','wss','msgs_per_s'),'rate')} "
             f"| {fmt(rr('echo64-d16:msgs_per_s:wss/ws'),'ratio')} "
             f"| {fmt(m('echo64-d16','ws','server_cpu_us_per_msg'),'us')} / "
             f"{fmt(m('echo64-d16','wss','server_cpu_us_per_msg'),'us')} µs/msg "
             f"| {fmt(m('echo64-d16','ws','server_cpu_pct'),'int')} / {fmt(m('echo64-d16','wss','server_cpu_pct'),'int')} "
             f"| {wait('echo64-d16','ws')} / {wait('echo64-d16','wss')} |")
    L.append(f"|   p50 / p99 latency, µs | {fmt(m('echo64-d16','ws','p50_us'),'int')} / {fmt(m('echo64-d16','ws','p99_us'),'int')} "
             f"| {fmt(m('echo64-d16','wss','p50_us'),'int')} / {fmt(m('echo64-d16','wss','p99_us'),'int')} | | | | |")
    L.append(f"| 1 MiB, 4 conns, depth 1 — MB/s | {fmt(m('echo1m','ws','MB_per_s'),'mb')} "
             f"| {fmt(m('echo1m','wss','MB_per_s'),'mb')} | {fmt(rr('echo1m:MB_per_s:wss/ws'),'ratio')} "
             f"| {fmt(m('echo1m','ws','server_cpu_us_per_msg'),'us')} / {fmt(m('echo1m','wss','server_cpu_us_per_msg'),'us')} µs/MiB "
             f"| {fmt(m('echo1m','ws','server_cpu_pct'),'int')} / {fmt(m('echo1m','wss','server_cpu_pct'),'int')} "
             f"| {wait('echo1m','ws')} / {wait('echo1m','wss')} |")
    L.append(f"|   p50 / p99 latency, µs | {fmt(m('echo1m','ws','p50_us'),'int')} / {fmt(m('echo1m','ws','p99_us'),'int')} "
             f"| {fmt(m('echo1m','wss','p50_us'),'int')} / {fmt(m('echo1m','wss','p99_us'),'int')} | | | | |")
    a, b = m("idle", "ws", "bytes_per_conn"), m("idle", "wss", "bytes_per_conn")
    L.append(f"| server RSS per idle connection, {idle_n} conns — bytes | {fmt(a,'kb')} | {fmt(b,'kb')} "
             f"| {fmt(rr('idle:bytes_per_conn:wss/ws'),'ratio')} | | | |")
    L.append("")
    L.append("Handshakes: 16 workers, each looping connect → upgrade → `101` → close frame → socket closed "
             "(client returns -1 from `CLIENT_ESTABLISHED`, the cycle ends at `DEL_POLL_FD`). *full*: every "
             "connection uses a new host name (SNI), so the client has no session to resume; *resumed*: one "
             "host name per worker, the client resumes the TLS 1.3 session of the worker's previous "
             "connection from the server's tickets (the bytes received before `101` show it: no "
             "certificate).")
    L.append("")
    L.append("| handshake | handshakes/s | server CPU µs / handshake | × ws | server CPU % | CPU wait % server, load | upgrade p50 / p99 µs | bytes client→server / server→client before 101 |")
    L.append("|---|---|---|---|---|---|---|---|")
    for v, name in (("ws", "ws (plain)"), ("wss-resumed", "wss, TLS 1.3 resumed"),
                    ("wss-full", "wss, full, RSA 2048"), ("wss-ecdsa-full", "wss, full, ECDSA P-256")):
        x = "–" if v == "ws" else fmt(rr(f"handshake:server_cpu_us_per_handshake:{v}/ws"), "ratio")
        L.append(f"| {name} | {fmt(m('handshake',v,'hs_per_s'),'rate')} "
                 f"| {fmt(m('handshake',v,'server_cpu_us_per_handshake'),'us')} | {x} "
                 f"| {fmt(m('handshake',v,'server_cpu_pct'),'int')} | {wait('handshake',v)} "
                 f"| {fmt(m('handshake',v,'upgrade_p50_us'),'int')} / {fmt(m('handshake',v,'upgrade_p99_us'),'int')} "
                 f"| {fmt(m('handshake',v,'hs_wire_out_B'),'int')} / {fmt(m('handshake',v,'hs_wire_in_B'),'int')} |")
    L.append("")
    L.append("## Compression: permessage-deflate next to uncompressed")
    L.append("")
    L.append("64 KiB JSON-like text messages (records with ids, names, e-mails, numbers, dates; 16 "
             "different payloads), 4 connections, depth 4, echoed by the same server; the client "
             "offers only permessage-deflate (`client_max_window_bits`, context takeover, zlib level 6 "
             "on both sides). Wire bytes: TCP_INFO `tcpi_bytes_acked` / `tcpi_bytes_received` of each "
             "client socket over the window (WebSocket headers and masks included, TCP/IP headers not), "
             "divided by the payload written / echoed in the window.")
    L.append("")
    L.append("| 64 KiB JSON, 4 conns, depth 4 | uncompressed | permessage-deflate | pmd / uncompressed |")
    L.append("|---|---|---|---|")
    L.append(f"| MB/s (payload echoed) | {fmt(m('json64k','ws','MB_per_s'),'mb')} | {fmt(m('json64k','ws-pmd','MB_per_s'),'mb')} "
             f"| {fmt(rr('json64k:MB_per_s:ws-pmd/ws'),'ratio3')} |")
    L.append(f"| msgs/s | {fmt(m('json64k','ws','msgs_per_s'),'rate')} | {fmt(m('json64k','ws-pmd','msgs_per_s'),'rate')} | |")
    L.append(f"| p50 / p99 latency, µs | {fmt(m('json64k','ws','p50_us'),'int')} / {fmt(m('json64k','ws','p99_us'),'int')} "
             f"| {fmt(m('json64k','ws-pmd','p50_us'),'int')} / {fmt(m('json64k','ws-pmd','p99_us'),'int')} | |")
    L.append(f"| server CPU µs per message | {fmt(m('json64k','ws','server_cpu_us_per_msg'),'us')} "
             f"| {fmt(m('json64k','ws-pmd','server_cpu_us_per_msg'),'us')} | {fmt(rr('json64k:server_cpu_us_per_msg:ws-pmd/ws'),'ratio')} |")
    L.append(f"| CPU % server / lwsload | {fmt(m('json64k','ws','server_cpu_pct'),'int')} / {fmt(m('json64k','ws','load_cpu_pct'),'int')} "
             f"| {fmt(m('json64k','ws-pmd','server_cpu_pct'),'int')} / {fmt(m('json64k','ws-pmd','load_cpu_pct'),'int')} | |")
    L.append(f"| CPU wait % server, load | {wait('json64k','ws')} | {wait('json64k','ws-pmd')} | |")
    L.append(f"| wire / payload, client → server | {fmt(m('json64k','ws','wire_ratio_out'),'ratio3')} "
             f"| {fmt(m('json64k','ws-pmd','wire_ratio_out'),'ratio3')} | |")
    L.append(f"| wire / payload, server → client | {fmt(m('json64k','ws','wire_ratio_in'),'ratio3')} "
             f"| {fmt(m('json64k','ws-pmd','wire_ratio_in'),'ratio3')} | |")
    L.append("")
    L.append(f"Server memory per idle connection, {idle_n} connections to a fresh server (VmRSS growth "
             "1 s after all are open, divided by the count):")
    L.append("")
    L.append("| idle connection | uncompressed | permessage-deflate | difference |")
    L.append("|---|---|---|---|")
    for t, name in (("idle", "upgraded, no message"), ("idle-msg", "after one 64 KiB JSON message echoed")):
        a, b = m(t, "ws", "bytes_per_conn"), m(t, "ws-pmd", "bytes_per_conn")
        L.append(f"| {name} | {fmt(a,'kb')} | {fmt(b,'kb')} | {fmt(b - a if a is not None and b is not None else None,'kb')} |")
    L.append("")
    L.append("Per round (healthy runs, round order):")
    L.append("")
    for test, vs, key, kind in (
        ("echo64-d16", ("ws", "wss"), "msgs_per_s", "rate"),
        ("echo64-d16", ("ws", "wss"), "server_cpu_us_per_msg", "us"),
        ("echo1m", ("ws", "wss"), "MB_per_s", "mb"),
        ("echo1m", ("ws", "wss"), "server_cpu_us_per_msg", "us"),
        ("handshake", ("ws", "wss-resumed", "wss-full", "wss-ecdsa-full"), "hs_per_s", "rate"),
        ("handshake", ("ws", "wss-resumed", "wss-full", "wss-ecdsa-full"), "server_cpu_us_per_handshake", "us"),
        ("json64k", ("ws", "ws-pmd"), "MB_per_s", "mb"),
        ("json64k", ("ws", "ws-pmd"), "server_cpu_us_per_msg", "us"),
        ("json64k", ("ws-pmd",), "wire_ratio", "ratio3"),
        ("idle", ("ws", "ws-pmd", "wss"), "bytes_per_conn", "int"),
        ("idle-msg", ("ws", "ws-pmd"), "bytes_per_conn", "int"),
    ) + tuple((t, (a, b), k, "mb" if k == "MB_per_s" else "rate") for t, a, b, k, _ in VS_LWS4) + tuple(
            (t, (a, b), f"server_cpu_us_per_{op_of(t)}", "us") for t, a, b, _, _ in VS_LWS4) + tuple(
            (t, (a, b), "bytes_per_conn", "int") for t, a, b, _ in VS_LWS4_MEM):
        L.append(f"- {test} {key}: " + "; ".join(f"{v} {pr(test, v, key, kind)}" for v in vs))
    others = [e["other_on_server_core_pct"] for e in entries if isnum(e.get("other_on_server_core_pct"))]
    if others:
        L.append(f"- CPU used on the server core by other processes during the runs (approx.): "
                 f"median {statistics.median(others):.0f}%, max {max(others):.0f}%")
    for key, who in (("server_rq_wait_pct", "server"), ("load_rq_wait_pct", "lwsload")):
        waits = [e[key] for e in entries if isnum(e.get(key))]
        if waits:
            L.append(f"- time the {who} was runnable but waiting for a CPU (/proc/PID/schedstat), share of the "
                     f"window: median {statistics.median(waits):.0f}%, max {max(waits):.0f}%")
    loads = [e["loadavg"] for e in entries if isnum(e.get("loadavg"))]
    if loads:
        L.append(f"- load average (1 min) at the end of each run: median {statistics.median(loads):.2f}, "
                 f"max {max(loads):.2f}")
    bad = [e for e in entries if not e["healthy"]]
    L.append("")
    if bad:
        L.append(f"**Unhealthy runs ({len(bad)}), excluded from the medians:**")
        L.append("")
        for e in bad:
            L.append(f"- round {e.get('round')} {e.get('test')}/{e.get('variant')}: {', '.join(e['problems'])}")
    else:
        L.append(f"All {len(entries)} runs healthy (every echo checked for length and content; 0 errors, "
                 "peer closes, stalls, failed handshakes; permessage-deflate negotiated exactly where asked).")
    L.append("")
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--meta")
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    a = ap.parse_args()
    entries = read_entries(a.raw, derive)
    entries.sort(key=lambda e: (e.get("round", 0),
                                TESTS.index(e["test"]) if e.get("test") in TESTS else 99))
    meta = read_meta(a.meta)
    groups = summarize(entries)
    rat = ratios(entries, groups)
    healthy = all(e["healthy"] for e in entries) and bool(entries)
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "healthy": healthy, "runs": entries,
                   "summary": {"groups": groups, "ratios": rat}}, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(meta, entries, groups, rat))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
