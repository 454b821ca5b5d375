#!/usr/bin/env bash
# Threads benchmark (issue 15): how fast a request made on another thread reaches the
# service thread, and what a second service thread in the same process brings.
#
#   benches/run-threads.sh            full run: 3 rounds; 20 000 wake-ups per loop style;
#                                     10 s echo runs
#   benches/run-threads.sh --smoke    harness check: 1 round, 500 wake-ups, 1 s runs; exits
#                                     non-zero when a run reports errors, missing
#                                     connections, bad lengths, peer closes, or a server
#                                     dies (speed is never judged)
#
# Measured:
#   wake-service / wake-extpoll  latency from libwebsocket_callback_on_writable() on one
#       thread to SERVER_WRITEABLE on the service thread, idle in libwebsocket_service()
#       or in its own poll() + libwebsocket_service_fd() (benches/threads_wake.c):
#       p50/p90/p99/p99.9/max
#   echo64-d16-t1 / -t2  64 B echo, 100 connections, depth 16 (wsload), against
#       benches/servers/echo-threads.c with 1 and 2 service threads (one context each, one
#       port, LWS_REUSEPORT=1): messages/s and server CPU per message. Neither the server
#       nor the load tool is pinned: on 2 cores the single-threaded load tool takes one
#       of them.
#
# Environment: BENCH_SECS, BENCH_ROUNDS, BENCH_WAKE_SAMPLES, BENCH_PORT (first port tried).
# Built under target/bench-threads/ (wsload from ../shared/tools/wsload into
# target/wsload; without it the echo runs are skipped, with a notice). Results:
#   target/bench/threads-raw.txt       every RESULT line plus round/test/cpu fields
#   target/bench/threads-results.json  parsed, with medians
#   target/bench/threads-results.md    the table
#   target/bench/threads-logs/         program output
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

source "$ROOT/benches/common.sh"
parse_mode 30 "$@"

if [[ $MODE == smoke ]]; then
	SECS="${BENCH_SECS:-1}"
	ROUNDS="${BENCH_ROUNDS:-1}"
	SAMPLES="${BENCH_WAKE_SAMPLES:-500}"
	PORT_BASE="${BENCH_PORT:-19820}"
else
	SECS="${BENCH_SECS:-10}"
	ROUNDS="${BENCH_ROUNDS:-3}"
	SAMPLES="${BENCH_WAKE_SAMPLES:-20000}"
	PORT_BASE="${BENCH_PORT:-19800}"
fi

WSLOAD_DIR="$ROOT/../shared/tools/wsload"
W="$ROOT/target/wsload/release/wsload"
BUILD="$ROOT/target/bench-threads"
OUT="$ROOT/target/bench"
LOGS="$OUT/threads-logs"
RAW="$OUT/threads-raw.txt"
CLK_TCK="$(getconf CLK_TCK)"
RUN_GRACE=60

log() { echo "bench-threads: $*" >&2; }
die() {
	log "$*"
	exit 1
}


# ---------------------------------------------------------------- build
mkdir -p "$BUILD" "$OUT" "$LOGS"
log "building the library"
cargo build --release
LIB="$ROOT/target/release"
cc -O2 -Wall -Wextra -Werror -pthread -I "$ROOT/include" -o "$BUILD/threads_wake" \
	"$ROOT/benches/threads_wake.c" -L "$LIB" -Wl,-rpath,"$LIB" -lwebsockets
cc -O2 -Wall -Wextra -Werror -pthread -I "$ROOT/include" -o "$BUILD/echo-threads" \
	"$ROOT/benches/servers/echo-threads.c" -L "$LIB" -Wl,-rpath,"$LIB" -lwebsockets
deps="$(ldd "$BUILD/echo-threads")"
[[ $deps == *"$LIB/libwebsockets"* ]] || die "echo-threads does not load $LIB/libwebsockets.so"
HAVE_WSLOAD=1
if [[ -d $WSLOAD_DIR ]]; then
	log "building wsload"
	cargo build --release --manifest-path "$WSLOAD_DIR/Cargo.toml" --target-dir "$ROOT/target/wsload"
else
	HAVE_WSLOAD=0
	log "notice: wsload not found at $WSLOAD_DIR; echo runs skipped"
fi

hard="$(ulimit -Hn)"
[[ $hard == unlimited ]] && hard=1048576
ulimit -n "$hard"
USED_PORTS=" "

# ---------------------------------------------------------------- runs
# wake ROUND LOOP(service|extpoll)
wake() {
	local round="$1" loop="$2" out line rc=0
	local flag=()
	[[ $loop == extpoll ]] && flag=(--extpoll)
	pick_port
	out="$LOGS/r$round-wake-$loop.out"
	timeout -k 5 $((SAMPLES / 1000 + 120)) "$BUILD/threads_wake" --samples "$SAMPLES" \
		--port "$PORT" --label "wake-$loop" "${flag[@]}" >"$out" 2>&1 || rc=$?
	line="$(grep '^RESULT ' "$out" | tail -1 || true)"
	[[ -n $line ]] || line="RESULT mode=wake label=wake-$loop status=noresult"
	record "$line" "round=$round test=wake-$loop rc=$rc loadavg=$(cut -d' ' -f1 /proc/loadavg)"
}

# echo ROUND THREADS
echo_run() {
	local round="$1" threads="$2" spid i rc=0 up=1
	local tag="r$round-echo-t$threads"
	pick_port
	: >"$LOGS/$tag.server"
	"$BUILD/echo-threads" "$PORT" "$threads" >"$LOGS/$tag.server" 2>&1 &
	spid=$!
	PIDS+=("$spid")
	for ((i = 0; i < 100; i++)); do
		kill -0 "$spid" 2>/dev/null || die "echo-threads exited at start (see $LOGS/$tag.server)"
		grep -q "threads on port" "$LOGS/$tag.server" && break
		sleep 0.1
	done
	: >"$LOGS/$tag.err"
	timeout -k 5 $((${SECS%.*} + RUN_GRACE)) "$W" echo -u "ws://127.0.0.1:$PORT/" -c 100 -s 64 \
		-d 16 -t "$SECS" -l "echo64-d16-t$threads" >"$LOGS/$tag.out" 2>"$LOGS/$tag.err" &
	local lp=$!
	PIDS+=("$lp")
	for ((i = 0; i < 600; i++)); do
		grep -q '^all .* connections open' "$LOGS/$tag.err" && break
		kill -0 "$lp" 2>/dev/null || break
		sleep 0.05
	done
	sleep 1
	local t0="$EPOCHREALTIME" c0 u0 c1 u1
	read -r c0 u0 <<<"$(cpu_ticks_split "$spid")"
	wait "$lp" || rc=$?
	local t1="$EPOCHREALTIME"
	read -r c1 u1 <<<"$(cpu_ticks_split "$spid")"
	forget_pid "$lp"
	alive "$spid" || up=0
	stop_server "$spid"
	# per-thread message counts, from the server's exit report
	local per
	per="$(awk -F'messages=' '/^thread [0-9]+:/ {printf "%s%s", sep, $2; sep=","}' "$LOGS/$tag.server")"
	local line
	line="$(grep '^RESULT ' "$LOGS/$tag.out" | tail -1 || true)"
	[[ -n $line ]] || line="RESULT mode=echo label=echo64-d16-t$threads status=noresult"
	local extra="round=$round test=echo64-d16-t$threads threads=$threads"
	extra+=" window_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
	extra+=" server_cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a<0||b<0)?-1:(b-a)/t}')"
	extra+=" server_user_s=$(awk -v a="$u0" -v b="$u1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a<0||b<0)?-1:(b-a)/t}')"
	extra+=" thread_msgs=${per:-none} server_alive=$up rc=$rc loadavg=$(cut -d' ' -f1 /proc/loadavg)"
	record "$line" "$extra"
}

: >"$RAW"
{
	echo "mode=$MODE"
	echo "secs=$SECS"
	echo "rounds=$ROUNDS"
	echo "wake_samples=$SAMPLES"
	echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
	echo "dirty=$(git status --porcelain -- src include 2>/dev/null | wc -l)"
	echo "start=$(date -u +%FT%TZ)"
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "kernel=$(uname -r)"
	echo "nproc=$(nproc)"
} >"$OUT/threads-meta.txt"
log "mode $MODE: $ROUNDS round(s), $SAMPLES wake-ups, ${SECS} s echo runs; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
	log "round $r/$ROUNDS"
	wake "$r" service
	wake "$r" extpoll
	if ((HAVE_WSLOAD)); then
		echo_run "$r" 1
		echo_run "$r" 2
	fi
done
echo "end=$(date -u +%FT%TZ)" >>"$OUT/threads-meta.txt"
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/threads-meta.txt"

status=0
python3 "$ROOT/benches/report_threads.py" --raw "$RAW" --meta "$OUT/threads-meta.txt" \
	--json "$OUT/threads-results.json" --md "$OUT/threads-results.md" || status=$?
cat "$OUT/threads-results.md"
((status == 0)) || log "unhealthy runs: see $OUT/threads-results.md"
exit "$status"
