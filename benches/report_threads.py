#!/usr/bin/env python3
"""Turns benches/run-threads.sh output (target/bench/threads-raw.txt) into
threads-results.json and threads-results.md.

Lines are RESULT lines of benches/threads_wake.c (mode=wake) and of wsload (mode=echo),
with fields appended by run-threads.sh (round, test, threads, window_s, server_cpu_s,
thread_msgs, ...). Exit status 1 when any run is unhealthy: no RESULT, errors, missing
connections, bad lengths, peer closes, a server that died, or (2 threads) a thread that
echoed nothing. Speed is never judged in the exit status.
"""
import argparse
import json
import statistics
import sys

# RESULT-line parsing and meta.txt reading are the same as for benches/run.sh's report
from report import read_entries, read_meta

TESTS = ["wake-service", "wake-extpoll", "echo64-d16-t1", "echo64-d16-t2"]


def isnum(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def derive(e):
    problems = []
    if e.get("status") == "noresult":
        problems.append("no RESULT line")
    for key in ("errors", "bad_len", "peer_closes"):
        if e.get(key, 0) != 0:
            problems.append(f"{key}={e[key]}")
    if e.get("rc", 0) != 0:
        problems.append(f"exit status {e['rc']}")
    if e.get("mode") == "wake" and e.get("status") != "noresult" and not e.get("samples"):
        problems.append("no samples")
    if e.get("mode") == "echo":
        if "conns" in e and e.get("open", e["conns"]) < e["conns"]:
            problems.append(f"open={e.get('open')} < conns={e['conns']}")
        if e.get("server_alive") == 0:
            problems.append("server died")
        win, cpu = e.get("window_s"), e.get("server_cpu_s")
        if isnum(win) and win > 0 and isnum(cpu) and cpu >= 0 and e.get("msgs_per_s"):
            e["server_cpu_us_per_msg"] = round(cpu / win * 1e6 / e["msgs_per_s"], 3)
            e["server_cpu_pct"] = round(100 * cpu / win, 1)
        per = str(e.get("thread_msgs", ""))
        counts = [int(x) for x in per.split(",") if x.isdigit()]
        e["thread_msg_counts"] = counts
        if e.get("threads", 1) > 1 and (len(counts) != e["threads"] or min(counts, default=0) == 0):
            problems.append(f"messages per thread {per}: a thread echoed nothing")
    e["problems"] = problems
    e["healthy"] = not problems
    return e


def median(runs, key):
    v = [r[key] for r in runs if isnum(r.get(key))]
    return statistics.median(v) if v else None


def summarize(entries):
    s = {}
    for t in TESTS:
        runs = [e for e in entries if e.get("test") == t and e["healthy"]]
        if not runs:
            continue
        keys = ("p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us") if t.startswith("wake") \
            else ("msgs_per_s", "p99_us", "server_cpu_us_per_msg", "server_cpu_pct")
        s[t] = {k: median(runs, k) for k in keys}
        s[t]["runs"] = len(runs)
    if "echo64-d16-t1" in s and "echo64-d16-t2" in s and s["echo64-d16-t1"]["msgs_per_s"]:
        s["echo_ratio_t2_t1"] = round(s["echo64-d16-t2"]["msgs_per_s"] / s["echo64-d16-t1"]["msgs_per_s"], 2)
    return s


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(meta, entries, s):
    lines = ["# Threads benchmark (benches/run-threads.sh)", ""]
    lines.append(
        f"mode {meta.get('mode', '?')}, {meta.get('rounds', '?')} round(s), commit "
        f"{meta.get('commit', '?')[:12]}, load average {meta.get('loadavg_start', '?')} -> "
        f"{meta.get('loadavg_end', '?')}, {meta.get('nproc', '?')} cores; medians over rounds"
    )
    lines.append("")
    lines.append("| wake-up, other thread -> SERVER_WRITEABLE | p50 | p90 | p99 | p99.9 | max |")
    lines.append("|---|---|---|---|---|---|")
    for t, name in (("wake-service", "libwebsocket_service loop"), ("wake-extpoll", "own poll() + service_fd")):
        if t in s:
            m = s[t]
            lines.append(
                f"| {name} | {fmt(m['p50_us'])} µs | {fmt(m['p90_us'])} µs | {fmt(m['p99_us'])} µs | "
                f"{fmt(m['p999_us'])} µs | {fmt(m['max_us'])} µs |"
            )
    lines.append("")
    if "echo64-d16-t1" in s or "echo64-d16-t2" in s:
        lines.append("| 64 B echo, 100 conns, depth 16 | msgs/s | p99 | server CPU per message | server CPU |")
        lines.append("|---|---|---|---|---|")
        for t, name in (("echo64-d16-t1", "1 service thread"), ("echo64-d16-t2", "2 service threads")):
            if t in s:
                m = s[t]
                lines.append(
                    f"| {name} | {fmt(m['msgs_per_s'], 0)} | {fmt(m['p99_us'], 0)} µs | "
                    f"{fmt(m['server_cpu_us_per_msg'], 3)} µs | {fmt(m['server_cpu_pct'])} % |"
                )
        if "echo_ratio_t2_t1" in s:
            lines.append("")
            lines.append(f"2 threads / 1 thread: {s['echo_ratio_t2_t1']}x messages/s")
        lines.append("")
    bad = [e for e in entries if not e["healthy"]]
    if bad:
        lines.append(f"**Unhealthy runs ({len(bad)}), excluded from the medians:**")
        lines.append("")
        for e in bad:
            lines.append(f"- round {e.get('round')} {e.get('test')}: {', '.join(e['problems'])}")
    else:
        lines.append(f"All {len(entries)} runs healthy.")
    lines.append("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--meta")
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", required=True)
    a = ap.parse_args()
    entries = read_entries(a.raw, derive)
    meta = read_meta(a.meta)
    s = summarize(entries)
    healthy = bool(entries) and all(e["healthy"] for e in entries)
    with open(a.json, "w") as f:
        json.dump({"meta": meta, "healthy": healthy, "runs": entries, "summary": s}, f, indent=1)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(markdown(meta, entries, s))
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
