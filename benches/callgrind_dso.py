#!/usr/bin/env python3
"""Per-message instruction counts from a callgrind profile of echo-v1 (benches/profile-echo.sh).

usage: callgrind_dso.py CALLGRIND_OUT DSO_SUBSTRING [TOP] [--units N] [--minus BASE_OUT]

Self cost (Ir) is summed per object and per function; messages are the calls to
libwebsocket_write (echo-v1 writes each 64 B message with one call). Prints a JSON line
with the totals, then the TOP functions of the DSO by self cost per message.
With --units N the totals are divided by N instead (e.g. connections, for
benches/profile-handshake.sh). Calls to malloc/calloc/realloc (from any object) are
counted too ("allocs"). With --minus BASE_OUT, the costs of a shorter run of the same
program (BASE_OUT) are subtracted first, leaving what the extra work cost.
"""
import json
import re
import sys


ALLOC_FNS = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}


def parse(path):
    """Self Ir per object and per (object, function), calls to libwebsocket_write and
    to the allocation functions."""
    allocs = 0
    names = {"ob": {}, "fn": {}, "fl": {}}
    kind_of = {"ob": "ob", "cob": "ob", "fn": "fn", "cfn": "fn", "fl": "fl", "fi": "fl",
               "fe": "fl", "cfi": "fl", "cfl": "fl"}
    cur_ob = cur_fn = None
    per_obj = {}
    per_fn = {}
    writes = 0
    call_target = None
    skip_next_cost = False
    ev_idx = 0
    npos = 1  # position columns before the costs ("positions: line" or "instr line")
    name_re = re.compile(r"^\((\d+)\)(?: (.*))?$")

    def resolve(kind, val):
        m = name_re.match(val)
        if not m:
            return val
        n, name = m.group(1), m.group(2)
        if name is not None:
            names[kind][n] = name
            return name
        return names[kind].get(n, val)

    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                if skip_next_cost:
                    skip_next_cost = False
                    continue
                if len(parts) > npos + ev_idx:
                    v = int(parts[npos + ev_idx])
                    per_obj[cur_ob] = per_obj.get(cur_ob, 0) + v
                    key = (cur_ob, cur_fn)
                    per_fn[key] = per_fn.get(key, 0) + v
                continue
            if line.startswith("positions:"):
                npos = len(line.split()) - 1
                continue
            if line.startswith("events:"):
                evs = line.split()[1:]
                ev_idx = evs.index("Ir") if "Ir" in evs else 0
                continue
            key, _, val = line.partition("=")
            if key in kind_of:
                name = resolve(kind_of[key], val)
                if key == "ob":
                    cur_ob = name
                elif key == "fn":
                    cur_fn = name
                elif key == "cfn":
                    call_target = name
                continue
            if key == "calls":
                skip_next_cost = True
                if call_target == "libwebsocket_write":
                    writes += int(val.split()[0])
                elif call_target in ALLOC_FNS:
                    allocs += int(val.split()[0])
                continue
    return per_obj, per_fn, writes, allocs


def main():
    args = sys.argv[1:]
    units = None
    minus = None
    if "--units" in args:
        i = args.index("--units")
        units = int(args[i + 1])
        del args[i:i + 2]
    if "--minus" in args:
        i = args.index("--minus")
        minus = args[i + 1]
        del args[i:i + 2]
    path, dso = args[0], args[1]
    top = int(args[2]) if len(args) > 2 else 25
    per_obj, per_fn, writes, allocs = parse(path)
    if minus:
        m_obj, m_fn, m_writes, m_allocs = parse(minus)
        for k, v in m_obj.items():
            per_obj[k] = per_obj.get(k, 0) - v
        for k, v in m_fn.items():
            per_fn[k] = per_fn.get(k, 0) - v
        writes -= m_writes
        allocs -= m_allocs
    ours = sum(v for o, v in per_obj.items() if o and dso in o)
    total = sum(per_obj.values())
    libc = sum(v for o, v in per_obj.items() if o and "libc" in o)
    if units is not None:
        msgs = max(units, 1)
        print(json.dumps({"units": units, "ir_lib": ours, "ir_lib_per_unit": round(ours / msgs, 1),
                          "ir_libc_per_unit": round(libc / msgs, 1),
                          "ir_total_per_unit": round(total / msgs, 1),
                          "allocs_per_unit": round(allocs / msgs, 2)}))
    else:
        msgs = max(writes, 1)
        print(json.dumps({"messages": writes, "ir_lib": ours,
                          "ir_lib_per_msg": round(ours / msgs, 1),
                          "ir_libc_per_msg": round(libc / msgs, 1),
                          "ir_total_per_msg": round(total / msgs, 1),
                          "allocs_per_msg": round(allocs / msgs, 2)}))
    rows = sorted(((v, fn) for (o, fn), v in per_fn.items() if o and dso in o), reverse=True)
    for v, fn in rows[:top]:
        print(f"{v / msgs:8.1f}  {fn}")


if __name__ == "__main__":
    main()
