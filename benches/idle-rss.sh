#!/usr/bin/env bash
# Memory per idle connection (issue 17 item 3) without the rest of benches/run.sh:
# echo-v1 (target/bench/echo-v1, linked against target/release) and N idle upgraded
# connections from wsload; VmRSS before and 1 s after READY.
#
#   benches/idle-rss.sh [CONNS]      (default 10000; needs an fd hard limit above CONNS)
#
# IDLE_TARGET_DIR (default target) is the cargo target directory the library is built
# in (another one leaves target/release alone, e.g. while tests use it); IDLE_BATCH
# (default 256, as benches/run.sh) how many connections wsload opens at once: fewer
# handshakes in flight leave less transient memory behind, so a smaller batch
# compares builds with less noise.
#
# Prints one line: idle conns=N rss_before_kb=.. rss_after_kb=.. bytes_per_conn=..
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
N="${1:-10000}"
WSLOAD_DIR="$ROOT/../shared/tools/wsload"
W="$ROOT/target/wsload/release/wsload"
TD="${IDLE_TARGET_DIR:-$ROOT/target}"
SRV="$TD/bench/echo-v1"
mkdir -p "$TD/bench"
cargo build --release --lib --target-dir "$TD" >&2
[[ -x $W ]] || cargo build --release --manifest-path "$WSLOAD_DIR/Cargo.toml" --target-dir "$ROOT/target/wsload" >&2
cc -O2 -Wall -I "$ROOT/include" -o "$SRV" "$WSLOAD_DIR/servers/echo-v1.c" \
	-L "$TD/release" -Wl,-rpath,"$TD/release" -lwebsockets
ulimit -n "$(ulimit -Hn)"
PORT="${IDLE_PORT:-19760}"
while ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$"; do PORT=$((PORT + 1)); done
"$SRV" "$PORT" 0 >/dev/null 2>&1 &
SP=$!
LP=
trap 'kill -TERM $SP ${LP:+$LP} 2>/dev/null || true' EXIT
for ((i = 0; i < 100; i++)); do
	ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$" && break
	sleep 0.1
done
before="$(awk '/^VmRSS/{print $2}' "/proc/$SP/status")"
OUTF="$(mktemp)"
"$W" idle -u "ws://127.0.0.1:$PORT/" -c "$N" -t 5 -l idle --connect-batch "${IDLE_BATCH:-256}" >"$OUTF" 2>/dev/null &
LP=$!
for ((i = 0; i < 600; i++)); do
	grep -q '^READY' "$OUTF" && break
	sleep 0.1
done
sleep 1
after="$(awk '/^VmRSS/{print $2}' "/proc/$SP/status")"
ready="$(grep '^READY' "$OUTF" || echo 'READY none')"
wait "$LP" || true
LP=
rm -f "$OUTF"
echo "idle conns=$N rss_before_kb=$before rss_after_kb=$after bytes_per_conn=$(((after - before) * 1024 / N)) ($ready)"
