#!/usr/bin/env bash
# Instruction and allocation profile of the library per connection (issue 17 item 2):
# accept, opening handshake, close handshake, TCP close. Deterministic enough to compare
# changes on a busy machine (wall time is not).
#
#   benches/profile-handshake.sh [CONNS]
#
# Builds the library with symbols (target/profile, the release profile unstripped), links
# shared/tools/wsload/servers/echo-v1.c against it and runs it under
# `valgrind --tool=callgrind`, twice: the sequential client benches/hs_cycles.py (wsload's
# handshake cycle and request bytes, one connection at a time) makes WARM (default 100)
# connections in the first run and WARM + CONNS (default 1000) in the second; the
# difference of the two profiles divided by CONNS is one connection's cost without
# start-up and shutdown. Note: valgrind hides SHA-NI (CPUID), so sha1::compress is the
# portable code here (~1,400 Ir per 64-byte block); natively the sha1 crate uses SHA-NI
# where the CPU has it.
# Output: target/profile/handshake.json (first line of benches/callgrind_dso.py --units:
# ir_lib_per_unit, ir_libc_per_unit, allocs_per_unit = calls to malloc/calloc/realloc per
# connection from every object) and target/profile/handshake.txt (that plus the top
# functions of the library, then of libc, by self Ir per connection).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
CONNS="${1:-1000}"
WARM="${WARM:-100}"
OUT="$ROOT/target/profile"
build_profiled_echo_v1 "$ROOT" "$OUT"
PORT="${PROFILE_PORT:-19750}"
CG="$OUT/callgrind-hs"
rm -f "$CG".*
# One profiled server run with $1 connections, profile in $CG.$1. (callgrind_control
# cannot zero the counters mid-run: its ptrace stop interrupts epoll_wait, and echo-v1
# ends its loop on the -1 that libwebsocket_service returns for EINTR.)
profiled_run() {
	while ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$"; do PORT=$((PORT + 1)); done
	valgrind --tool=callgrind --callgrind-out-file="$CG.$1" "$OUT/echo-v1" "$PORT" 0 \
		>"$OUT/server-hs.log" 2>&1 &
	SP=$!
	trap 'kill -TERM $SP 2>/dev/null || true' EXIT
	for ((i = 0; i < 300; i++)); do
		ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$" && break
		kill -0 $SP 2>/dev/null || { echo "server died" >&2; cat "$OUT/server-hs.log" >&2; exit 1; }
		sleep 0.1
	done
	timeout 600 python3 "$ROOT/benches/hs_cycles.py" "$PORT" "$1"
	kill -INT $SP
	for ((i = 0; i < 100; i++)); do kill -0 $SP 2>/dev/null || break; sleep 0.1; done
	wait $SP 2>/dev/null || true
	trap - EXIT
}
profiled_run "$WARM"
profiled_run "$((WARM + CONNS))"
{
	python3 "$ROOT/benches/callgrind_dso.py" "$CG.$((WARM + CONNS))" libwebsockets.so 30 \
		--units "$CONNS" --minus "$CG.$WARM"
	echo "-- libc"
	python3 "$ROOT/benches/callgrind_dso.py" "$CG.$((WARM + CONNS))" libc.so 12 \
		--units "$CONNS" --minus "$CG.$WARM" | tail -n +2
} >"$OUT/handshake.txt"
head -1 "$OUT/handshake.txt" >"$OUT/handshake.json"
cat "$OUT/handshake.txt"
