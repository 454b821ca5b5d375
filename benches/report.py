#!/usr/bin/env python3
"""Turns benches/run.sh output (target/bench/raw.txt) into results.json and results.md.

Every line of raw.txt is a wsload RESULT line with fields appended by run.sh (round, test,
server, window_s, server_cpu_s, ...). Exit status 1 when any run is unhealthy: errors,
bad lengths, peer closes, failed or timed-out handshakes, fewer open connections than asked,
no RESULT at all, or a server that died. Speed is never judged in the exit status.
"""
import argparse
import json
import statistics
import sys

TEST_ORDER = ["echo64-d1", "echo64-d16", "echo1m", "idle", "handshake", "echo64-d16-idle"]


def num(v):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def parse_line(line):
    words = line.split()
    if not words or words[0] != "RESULT":
        return None
    d = {}
    for w in words[1:]:
        if "=" in w:
            k, v = w.split("=", 1)
            d[k] = num(v)
    return d


def derive(e):
    """Adds CPU figures and the health verdict to one parsed run."""
    win = e.get("window_s")
    cpu = e.get("server_cpu_s")
    if isinstance(win, (int, float)) and win > 0 and isinstance(cpu, (int, float)) and cpu >= 0:
        frac = cpu / win
        e["server_cpu_pct"] = round(100 * frac, 1)
        for key in ("core_server_busy_s", "core_load_busy_s"):
            if isinstance(e.get(key), (int, float)):
                e[key[:-2] + "_pct"] = round(100 * e[key] / win, 1)
        if "core_server_busy_pct" in e:
            # CPU used on the server's core by anything but the server (approximate:
            # interrupt time is not always charged to the process)
            e["other_on_server_core_pct"] = round(e["core_server_busy_pct"] - e["server_cpu_pct"], 1)
        user = e.get("server_user_s")
        # user-space share of the server CPU (the rest is kernel: syscalls, TCP, faults)
        ufrac = user / win if isinstance(user, (int, float)) and 0 <= user <= cpu else None
        if e.get("mode") == "echo" and e.get("msgs_per_s"):
            e["server_cpu_us_per_msg"] = round(frac * 1e6 / e["msgs_per_s"], 3)
            if ufrac is not None:
                e["server_user_us_per_msg"] = round(ufrac * 1e6 / e["msgs_per_s"], 3)
        if e.get("mode") == "handshake" and e.get("hs_per_s"):
            e["server_cpu_us_per_handshake"] = round(frac * 1e6 / e["hs_per_s"], 2)
            if ufrac is not None:
                e["server_user_us_per_handshake"] = round(ufrac * 1e6 / e["hs_per_s"], 2)
    problems = []
    if e.get("status") == "noresult":
        problems.append("no RESULT line")
    elif e.get("status") == "died":
        problems.append("server died between runs")
    for key in ("errors", "bad_len", "peer_closes", "failures", "close_timeouts"):
        if e.get(key, 0) != 0:
            problems.append(f"{key}={e[key]}")
    if "conns" in e and e.get("open", e["conns"]) < e["conns"]:
        problems.append(f"open={e.get('open')} < conns={e['conns']}")
    if e.get("server_alive") == 0:
        problems.append("server died")
    if e.get("ready") == 0:
        problems.append("idle connections never READY")
    if e.get("rc", 0) != 0:
        problems.append(f"wsload exit status {e['rc']}")
    if e.get("mode") == "handshake" and e.get("handshakes", 1) == 0:
        problems.append("no handshake completed")
    if e.get("mode") == "echo" and e.get("msgs", 1) == 0:
        problems.append("no echo received")
    e["healthy"] = not problems
    e["problems"] = problems
    return e


METRICS = [
    "msgs_per_s", "MB_per_s", "p50_us", "p90_us", "p99_us", "max_us", "hs_per_s",
    "upgrade_p50_us", "upgrade_p99_us", "bytes_per_conn", "server_cpu_pct",
    "server_cpu_us_per_msg", "server_cpu_us_per_handshake", "server_user_us_per_msg",
    "server_user_us_per_handshake", "core_server_busy_pct",
    "core_load_busy_pct", "other_on_server_core_pct",
]


def median_of(runs, key):
    vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def summarize(entries):
    groups = {}
    for e in entries:
        groups.setdefault((e.get("test"), e.get("server")), []).append(e)
    summary = {"groups": {}, "ratios": {}, "targets": []}
    for (test, server), runs in groups.items():
        good = [r for r in runs if r["healthy"]]
        g = {"runs": len(runs), "healthy_runs": len(good), "median": {}, "per_round": {}}
        for m in METRICS:
            v = median_of(good, m)
            if v is not None:
                g["median"][m] = v
                g["per_round"][m] = [r.get(m) for r in sorted(good, key=lambda r: r.get("round", 0))]
        summary["groups"][f"{test}/{server}"] = g

    def med(test, server, key):
        g = summary["groups"].get(f"{test}/{server}")
        return g["median"].get(key) if g else None

    def per_round_ratio(test_a, srv_a, test_b, srv_b, key):
        by_round = {}
        for e in entries:
            if e["healthy"] and isinstance(e.get(key), (int, float)):
                by_round.setdefault(e.get("round"), {})[(e.get("test"), e.get("server"))] = e[key]
        out = []
        for rnd in sorted(by_round, key=lambda x: (x is None, x)):
            d = by_round[rnd]
            a, b = d.get((test_a, srv_a)), d.get((test_b, srv_b))
            if a is not None and b:
                out.append(round(a / b, 3))
        return out

    for test, key in (("echo64-d1", "msgs_per_s"), ("echo64-d1", "p50_us"), ("echo64-d1", "p99_us"),
                      ("echo64-d16", "msgs_per_s"), ("echo64-d16", "p99_us"),
                      ("echo1m", "MB_per_s")):
        summary["ratios"][f"{test}:{key}:ours/ceiling"] = {
            "of_medians": ratio(med(test, "ours", key), med(test, "ceiling", key)),
            "per_round": per_round_ratio(test, "ours", test, "ceiling", key),
        }
    summary["ratios"]["echo64-d16-idle:msgs_per_s:with_idle/no_idle"] = {
        "of_medians": ratio(med("echo64-d16-idle", "ours", "msgs_per_s"), med("echo64-d16", "ours", "msgs_per_s")),
        "per_round": per_round_ratio("echo64-d16-idle", "ours", "echo64-d16", "ours", "msgs_per_s"),
    }

    def target(name, value, op, limit, unit):
        met = None
        if value is not None:
            met = value >= limit if op == ">=" else value <= limit
        summary["targets"].append({"target": name, "value": value, "op": op, "limit": limit,
                                   "unit": unit, "met": met})

    r = summary["ratios"]
    # Targets of issue 17 (performance round 2); 1 MiB and the depth-1 latency from round 1.
    target("64 B depth 16 throughput", r["echo64-d16:msgs_per_s:ours/ceiling"]["of_medians"], ">=", 0.85, "x ceiling")
    target("64 B depth 16 server user CPU", med("echo64-d16", "ours", "server_user_us_per_msg"), "<=", 0.04, "us/msg")
    target("1 MiB throughput", r["echo1m:MB_per_s:ours/ceiling"]["of_medians"], ">=", 0.8, "x ceiling")
    target("idle memory", med("idle", "ours", "bytes_per_conn"), "<=", 256, "B/conn")
    target("handshake server CPU", ratio(med("handshake", "ours", "server_cpu_us_per_handshake"),
                                         med("handshake", "ceiling", "server_cpu_us_per_handshake")),
           "<=", 1.05, "x hs-floor")
    target("handshake server user CPU", med("handshake", "ours", "server_user_us_per_handshake"), "<=", 1.5, "us/handshake")
    target("64 B depth 16 with idle connections",
           r["echo64-d16-idle:msgs_per_s:with_idle/no_idle"]["of_medians"], ">=", 0.9, "x no-idle")
    target("64 B depth 1 p99 latency", r["echo64-d1:p99_us:ours/ceiling"]["of_medians"], "<=", 1.2, "x ceiling")
    return summary


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
    if kind == "us":
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    if kind == "int":
        return f"{v:.0f}"
    return f"{v:g}"


def verdict(t):
    if t["met"] is None:
        return "–"
    return "yes" if t["met"] else "**no**"


def markdown(meta, entries, summary):
    g = summary["groups"]

    def m(test, server, key):
        grp = g.get(f"{test}/{server}")
        return grp["median"].get(key) if grp else None

    def pr(test, server, key, kind):
        grp = g.get(f"{test}/{server}")
        vals = grp["per_round"].get(key, []) if grp else []
        return " / ".join(fmt(v, kind) for v in vals) or "–"

    tg = {t["target"]: t for t in summary["targets"]}
    r = summary["ratios"]
    idle_n = meta.get("idle_conns", "?")
    lines = []
    lines.append("# Benchmark results")
    lines.append("")
    lines.append(f"mode {meta.get('mode')}, {meta.get('rounds')} round(s) of {meta.get('secs')} s runs, "
                 f"commit {str(meta.get('commit', '?'))[:12]}"
                 f"{' (src/include modified)' if str(meta.get('dirty', '0')) != '0' else ''}, "
                 f"{meta.get('start', '?')} – {meta.get('end', '?')}, "
                 f"load average at start/end {meta.get('loadavg_start', '?')} / {meta.get('loadavg_end', '?')}. "
                 f"Server on core {meta.get('server_cpu')}, wsload on core {meta.get('load_cpu')}; "
                 "ours = wsload/servers/echo-v1.c linked against target/release/libwebsockets.so, "
                 "ceiling = tcp-echo-epoll.c driven with `wsload --raw` (for handshakes: benches/servers/hs-floor.c, a fixed-reply minimal server). Medians over healthy runs.")
    if meta.get("mode") == "smoke":
        lines.append("")
        lines.append("**Smoke run: short runs on few connections; the figures are not meaningful.**")
    lines.append("")
    lines.append("| test | ours (median) | ceiling (median) | ratio | server CPU µs/msg (ours / ceiling) | server CPU % (ours) | target | met |")
    lines.append("|---|---|---|---|---|---|---|---|")
    lines.append(f"| 64 B, 100 conns, depth 1 — msgs/s | {fmt(m('echo64-d1','ours','msgs_per_s'),'rate')} "
                 f"| {fmt(m('echo64-d1','ceiling','msgs_per_s'),'rate')} "
                 f"| {fmt(r['echo64-d1:msgs_per_s:ours/ceiling']['of_medians'],'ratio')} "
                 f"| {fmt(m('echo64-d1','ours','server_cpu_us_per_msg'),'us')} / {fmt(m('echo64-d1','ceiling','server_cpu_us_per_msg'),'us')} "
                 f"| {fmt(m('echo64-d1','ours','server_cpu_pct'),'int')} | – | – |")
    t = tg["64 B depth 1 p99 latency"]
    lines.append(f"|   depth 1 — p50 / p99 µs | {fmt(m('echo64-d1','ours','p50_us'),'int')} / {fmt(m('echo64-d1','ours','p99_us'),'int')} "
                 f"| {fmt(m('echo64-d1','ceiling','p50_us'),'int')} / {fmt(m('echo64-d1','ceiling','p99_us'),'int')} "
                 f"| p99 {fmt(t['value'],'ratio')} | | | p99 ≤ 1.2× ceiling | {verdict(t)} |")
    t = tg["64 B depth 16 throughput"]
    t2 = tg["64 B depth 16 server user CPU"]
    lines.append(f"| 64 B, 100 conns, depth 16 — msgs/s | {fmt(m('echo64-d16','ours','msgs_per_s'),'rate')} "
                 f"| {fmt(m('echo64-d16','ceiling','msgs_per_s'),'rate')} | {fmt(t['value'],'ratio')} "
                 f"| {fmt(m('echo64-d16','ours','server_cpu_us_per_msg'),'us')} / {fmt(m('echo64-d16','ceiling','server_cpu_us_per_msg'),'us')} "
                 f"| {fmt(m('echo64-d16','ours','server_cpu_pct'),'int')} "
                 f"| ≥ 0.85× ceiling; user ≤ 0.04 µs/msg ({fmt(t2['value'],'us')}) | {verdict(t)}; {verdict(t2)} |")
    lines.append(f"|   depth 16 — p50 / p99 µs | {fmt(m('echo64-d16','ours','p50_us'),'int')} / {fmt(m('echo64-d16','ours','p99_us'),'int')} "
                 f"| {fmt(m('echo64-d16','ceiling','p50_us'),'int')} / {fmt(m('echo64-d16','ceiling','p99_us'),'int')} "
                 f"| p99 {fmt(r['echo64-d16:p99_us:ours/ceiling']['of_medians'],'ratio')} | | | – | – |")
    t = tg["1 MiB throughput"]
    lines.append(f"| 1 MiB, 4 conns, depth 1 — MB/s | {fmt(m('echo1m','ours','MB_per_s'),'int')} "
                 f"| {fmt(m('echo1m','ceiling','MB_per_s'),'int')} | {fmt(t['value'],'ratio')} "
                 f"| {fmt(m('echo1m','ours','server_cpu_us_per_msg'),'us')} / {fmt(m('echo1m','ceiling','server_cpu_us_per_msg'),'us')} (per MiB) "
                 f"| {fmt(m('echo1m','ours','server_cpu_pct'),'int')} | ≥ 0.8× ceiling | {verdict(t)} |")
    t = tg["idle memory"]
    lines.append(f"| idle RSS per connection at {idle_n} conns — bytes | {fmt(t['value'],'int')} | – | – | – | – "
                 f"| ≤ 256 B/conn | {verdict(t)} |")
    t = tg["handshake server CPU"]
    t2 = tg["handshake server user CPU"]
    hs_ratio = None
    if m('handshake', 'ours', 'hs_per_s') and m('handshake', 'ceiling', 'hs_per_s'):
        hs_ratio = m('handshake', 'ours', 'hs_per_s') / m('handshake', 'ceiling', 'hs_per_s')
    lines.append(f"| handshakes/s, 16 workers (ceiling: hs-floor) | {fmt(m('handshake','ours','hs_per_s'),'rate')} "
                 f"| {fmt(m('handshake','ceiling','hs_per_s'),'rate')} | {fmt(hs_ratio,'ratio')} "
                 f"| {fmt(m('handshake','ours','server_cpu_us_per_handshake'),'us')} / {fmt(m('handshake','ceiling','server_cpu_us_per_handshake'),'us')} per handshake ({fmt(t['value'],'ratio')}×) "
                 f"| {fmt(m('handshake','ours','server_cpu_pct'),'int')} "
                 f"| CPU ≤ 1.05× hs-floor; user ≤ 1.5 µs ({fmt(t2['value'],'us')}) | {verdict(t)}; {verdict(t2)} |")
    t = tg["64 B depth 16 with idle connections"]
    lines.append(f"| 64 B depth 16 with {idle_n} idle conns — msgs/s | {fmt(m('echo64-d16-idle','ours','msgs_per_s'),'rate')} "
                 f"| {fmt(m('echo64-d16','ours','msgs_per_s'),'rate')} (ours, no idle) | {fmt(t['value'],'ratio')} "
                 f"| {fmt(m('echo64-d16-idle','ours','server_cpu_us_per_msg'),'us')} "
                 f"| {fmt(m('echo64-d16-idle','ours','server_cpu_pct'),'int')} | ≥ 0.9× no-idle | {verdict(t)} |")
    lines.append("")
    lines.append("Per round (healthy runs, round order):")
    lines.append("")
    for test, key, kind in (("echo64-d1", "msgs_per_s", "rate"), ("echo64-d1", "p99_us", "int"),
                            ("echo64-d16", "msgs_per_s", "rate"), ("echo64-d16", "server_cpu_us_per_msg", "us"),
                            ("echo1m", "MB_per_s", "int")):
        lines.append(f"- {test} {key}: ours {pr(test, 'ours', key, kind)}; ceiling {pr(test, 'ceiling', key, kind)}")
    lines.append(f"- idle bytes_per_conn: {pr('idle', 'ours', 'bytes_per_conn', 'int')}")
    lines.append(f"- handshake hs_per_s: {pr('handshake', 'ours', 'hs_per_s', 'rate')}; "
                 f"server µs/handshake {pr('handshake', 'ours', 'server_cpu_us_per_handshake', 'us')}; "
                 f"hs-floor {pr('handshake', 'ceiling', 'hs_per_s', 'rate')}, "
                 f"{pr('handshake', 'ceiling', 'server_cpu_us_per_handshake', 'us')} µs")
    lines.append(f"- echo64-d16-idle msgs_per_s: {pr('echo64-d16-idle', 'ours', 'msgs_per_s', 'rate')} "
                 f"(ratio to no-idle per round: {', '.join(fmt(v, 'ratio') for v in r['echo64-d16-idle:msgs_per_s:with_idle/no_idle']['per_round']) or '–'})")
    split = []
    for test, unit in (("echo64-d16", "msg"), ("echo1m", "MiB"), ("echo64-d1", "msg")):
        for server in ("ours", "ceiling"):
            tot, usr = m(test, server, "server_cpu_us_per_msg"), m(test, server, "server_user_us_per_msg")
            if tot is not None and usr is not None:
                split.append(f"{test} {server} {fmt(usr, 'us')} + {fmt(tot - usr, 'us')} µs/{unit}")
    for server in ("ours", "ceiling"):
        tot, usr = m("handshake", server, "server_cpu_us_per_handshake"), m("handshake", server, "server_user_us_per_handshake")
        if tot is not None and usr is not None:
            split.append(f"handshake {server} {fmt(usr, 'us')} + {fmt(tot - usr, 'us')} µs/handshake")
    if split:
        lines.append("- server CPU split, user + kernel (medians): " + "; ".join(split))
    others = [e.get("other_on_server_core_pct") for e in entries if isinstance(e.get("other_on_server_core_pct"), (int, float))]
    if others:
        lines.append(f"- CPU used on the server core by other processes during the runs (approx.): "
                     f"median {statistics.median(others):.0f}%, max {max(others):.0f}%")
    bad = [e for e in entries if not e["healthy"]]
    lines.append("")
    if bad:
        lines.append(f"**Unhealthy runs ({len(bad)}), excluded from the medians:**")
        lines.append("")
        for e in bad:
            lines.append(f"- round {e.get('round')} {e.get('test')}/{e.get('server')}: {', '.join(e['problems'])}")
    else:
        lines.append(f"All {len(entries)} runs healthy (0 errors, bad lengths, peer closes, failed handshakes; all connections open).")
    lines.append("")
    return "\n".join(lines)


def read_meta(path):
    """meta.txt: one key=value per line (values may hold spaces)."""
    meta = {}
    if not path:
        return meta
    try:
        with open(path) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    except OSError:
        pass
    return meta


def read_entries(raw_path, derive):
    """The RESULT lines of a raw results file, parsed, each with its raw text, through
    `derive` (each report's own derived fields and health checks)."""
    entries = []
    with open(raw_path) as f:
        for line in f:
            d = parse_line(line.strip())
            if d is not None:
                d["raw"] = line.strip()
                entries.append(derive(d))
    return entries


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--meta")
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    a = ap.parse_args()
    entries = read_entries(a.raw, derive)
    entries.sort(key=lambda e: (e.get("round", 0), TEST_ORDER.index(e["test"]) if e.get("test") in TEST_ORDER else 99))
    meta = read_meta(a.meta)
    summary = summarize(entries)
    healthy = all(e["healthy"] for e in entries) and bool(entries)
    out = {"meta": meta, "healthy": healthy, "runs": entries, "summary": summary}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(meta, entries, summary))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
