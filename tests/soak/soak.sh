#!/usr/bin/env bash
# Soak test (not part of CI): churns connections and messages against
# examples/test-echo.c for MINUTES minutes, sampling the server's VmRSS and descriptor
# count every 10 s into a CSV.
#
#   bash tests/soak/soak.sh [MINUTES]      (default 10)
#
# Builds target/release/libwebsockets.so when missing and test-echo into target/soak/.
# The CSV and the server log go to target/soak/ (or $SOAK_OUT). Exit status is non-zero
# if the server died, an echo came back wrong, or the server did not exit cleanly on
# SIGINT at the end. Standard Python 3 only (no packages).
set -euo pipefail

MINUTES="${1:-10}"
if ! [[ "$MINUTES" =~ ^[0-9]+$ ]] || [[ "$MINUTES" -lt 1 ]]; then
	echo "usage: $0 [MINUTES]" >&2
	exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${SOAK_OUT:-$ROOT/target/soak}"
mkdir -p "$OUT"
LIB="$ROOT/target/release"

if [[ ! -f "$LIB/libwebsockets.so" ]]; then
	(cd "$ROOT" && cargo build --release)
fi
"${CC:-cc}" -Wall -O2 -g -I"$ROOT/include" -o "$OUT/test-echo" "$ROOT/examples/test-echo.c" \
	-L"$LIB" -Wl,-rpath,"$LIB" -lwebsockets

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
STAMP="$(date +%Y%m%d-%H%M%S)"
CSV="$OUT/soak-$STAMP.csv"
LOG="$OUT/soak-$STAMP-server.log"

"$OUT/test-echo" --port "$PORT" --debug 3 >"$LOG" 2>&1 &
SERVER=$!
cleanup() {
	if kill -0 "$SERVER" 2>/dev/null; then
		kill -KILL "$SERVER" 2>/dev/null || true
	fi
}
trap cleanup EXIT

# wait (bounded) until the port accepts
for _ in $(seq 100); do
	if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $PORT), timeout=1)" 2>/dev/null; then
		break
	fi
	kill -0 "$SERVER" 2>/dev/null || { echo "soak: test-echo exited early:" >&2; cat "$LOG" >&2; exit 1; }
	sleep 0.1
done

echo "soak: test-echo pid $SERVER on port $PORT for $MINUTES min; samples in $CSV"
rc=0
timeout -k 30 $((MINUTES * 60 + 120)) python3 "$ROOT/tests/soak/churn.py" --port "$PORT" \
	--pid "$SERVER" --seconds $((MINUTES * 60)) --csv "$CSV" || rc=$?

# stop the server the polite way and wait (bounded) for a clean exit
kill -INT "$SERVER" 2>/dev/null || true
for _ in $(seq 100); do
	kill -0 "$SERVER" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$SERVER" 2>/dev/null; then
	echo "soak: test-echo did not exit within 10 s of SIGINT" >&2
	rc=1
else
	wait "$SERVER" || { echo "soak: test-echo exited with status $?" >&2; rc=1; }
fi
echo "soak: CSV $CSV"
exit "$rc"
