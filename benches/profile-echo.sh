#!/usr/bin/env bash
# Instruction profile of the library per echoed message (issue 17 item 1), deterministic
# enough to compare changes on a busy machine (wall time is not).
#
#   benches/profile-echo.sh [SECS]
#
# Builds the library with symbols (target/profile, the release profile unstripped), links
# shared/tools/wsload/servers/echo-v1.c against it, runs it under
# `valgrind --tool=callgrind` and drives it with `wsload echo` (4 connections, 64 B, depth
# 16, SECS seconds, default 20). Messages = the server's calls to libwebsocket_write.
# Output: target/profile/echo.json (first line of benches/callgrind_dso.py: messages,
# ir_lib_per_msg, ...) and target/profile/echo.txt (that plus the top functions of the
# library by self Ir per message). Setup and the 4 handshakes are included in the totals
# (a few Ir per message at this run length).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=benches/common.sh
source "$ROOT/benches/common.sh"
SECS="${1:-20}"
OUT="$ROOT/target/profile"
WSLOAD_DIR="$ROOT/../shared/tools/wsload"
W="$ROOT/target/wsload/release/wsload"
build_profiled_echo_v1 "$ROOT" "$OUT"
[[ -x $W ]] || cargo build --release --manifest-path "$WSLOAD_DIR/Cargo.toml" --target-dir "$ROOT/target/wsload" >&2
PORT="${PROFILE_PORT:-19700}"
while ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$"; do PORT=$((PORT + 1)); done
CG="$OUT/callgrind.out"
rm -f "$CG"
valgrind --tool=callgrind --callgrind-out-file="$CG" "$OUT/echo-v1" "$PORT" 0 \
	>"$OUT/server.log" 2>&1 &
SP=$!
trap 'kill -TERM $SP 2>/dev/null || true' EXIT
for ((i = 0; i < 300; i++)); do
	ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$" && break
	kill -0 $SP 2>/dev/null || { echo "server died" >&2; cat "$OUT/server.log" >&2; exit 1; }
	sleep 0.1
done
timeout 120 "$W" echo -u "ws://127.0.0.1:$PORT/" -c 4 -s 64 -d 16 -t "$SECS" -w 1 >"$OUT/wsload.out"
cat "$OUT/wsload.out" >&2
kill -INT $SP
for ((i = 0; i < 100; i++)); do kill -0 $SP 2>/dev/null || break; sleep 0.1; done
wait $SP 2>/dev/null || true
trap - EXIT
python3 "$ROOT/benches/callgrind_dso.py" "$CG" libwebsockets.so 30 >"$OUT/echo.txt"
head -1 "$OUT/echo.txt" >"$OUT/echo.json"
cat "$OUT/echo.txt"
