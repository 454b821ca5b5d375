#!/usr/bin/env bash
# Echo-server benchmark of our libwebsockets (v1.23 API) against the loopback TCP ceiling.
#
#   benches/run.sh            full run: 3 rounds, 10 s per run, 10 000 idle connections
#   benches/run.sh --smoke    harness check: 1 round, 1 s runs, 1000 idle connections;
#                             exits non-zero when any run reports errors, bad lengths, peer
#                             closes, failed handshakes or fewer open connections than asked
#                             (speed is never judged)
#
# Environment: BENCH_SECS (seconds per measured run), BENCH_ROUNDS, BENCH_IDLE_CONNS,
# BENCH_PORT (first port tried; free ports are picked from there), BENCH_SERVER_CPU /
# BENCH_LOAD_CPU (cores for taskset; default 0 and 1).
#
# Everything is built under target/: the library (cargo build --release), wsload
# (target/wsload) and the servers (target/bench/echo-v1 linked against
# target/release/libwebsockets.so; the ceilings target/bench/tcp-echo and, for handshakes,
# target/bench/hs-floor from benches/servers/hs-floor.c). Results:
#   target/bench/raw.txt       every wsload RESULT line plus round/test/server/cpu fields
#   target/bench/results.json  the same parsed, plus a summary (medians, ratios)
#   target/bench/results.md    Markdown table with the targets
#   target/bench/logs/         server and load-tool stderr
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

source "$ROOT/benches/common.sh"
parse_mode 20 "$@"

if [[ $MODE == smoke ]]; then
	SECS="${BENCH_SECS:-1}"
	ROUNDS="${BENCH_ROUNDS:-1}"
	IDLE_CONNS="${BENCH_IDLE_CONNS:-1000}"
	PORT_BASE="${BENCH_PORT:-19620}"
else
	SECS="${BENCH_SECS:-10}"
	ROUNDS="${BENCH_ROUNDS:-3}"
	IDLE_CONNS="${BENCH_IDLE_CONNS:-10000}"
	PORT_BASE="${BENCH_PORT:-19600}"
fi
SCPU="${BENCH_SERVER_CPU:-0}"
LCPU="${BENCH_LOAD_CPU:-1}"

WSLOAD_DIR="$ROOT/../shared/tools/wsload"
OUT="$ROOT/target/bench"
LOGS="$OUT/logs"
W="$ROOT/target/wsload/release/wsload"
ECHO_SRV="$OUT/echo-v1"
TCP_SRV="$OUT/tcp-echo"
HS_SRV="$OUT/hs-floor"
RAW="$OUT/raw.txt"
CLK_TCK="$(getconf CLK_TCK)"
# a run that has not finished this long after its nominal end is killed
RUN_GRACE=60

log() { echo "bench: $*" >&2; }
die() {
	log "$*"
	exit 1
}


# ---------------------------------------------------------------- build
mkdir -p "$OUT" "$LOGS"
log "building the library"
cargo build --release
if [[ ! -d $WSLOAD_DIR ]]; then
	# like the other checks that need ../shared, the smoke run is skipped without it
	[[ $MODE == smoke ]] && {
		log "skipped: wsload not found at $WSLOAD_DIR"
		exit 0
	}
	die "wsload not found at $WSLOAD_DIR"
fi
log "building wsload"
cargo build --release --manifest-path "$WSLOAD_DIR/Cargo.toml" --target-dir "$ROOT/target/wsload"
log "building the servers"
cc -O2 -Wall -I "$ROOT/include" -o "$ECHO_SRV" "$WSLOAD_DIR/servers/echo-v1.c" \
	-L "$ROOT/target/release" -Wl,-rpath,"$ROOT/target/release" -lwebsockets
cc -O2 -Wall -o "$TCP_SRV" "$WSLOAD_DIR/servers/tcp-echo-epoll.c"
cc -O2 -Wall -Werror -o "$HS_SRV" "$ROOT/benches/servers/hs-floor.c"
# not `ldd | grep -q`: with pipefail, grep quitting early can fail the pipeline (SIGPIPE)
deps="$(ldd "$ECHO_SRV")"
[[ $deps == *"$ROOT/target/release/libwebsockets"* ]] ||
	die "echo-v1 does not load target/release/libwebsockets.so"

# ---------------------------------------------------------------- environment
hard="$(ulimit -Hn)"
if [[ $hard == unlimited ]]; then hard=1048576; fi
ulimit -n "$hard"
if ((hard < IDLE_CONNS + 1000)); then
	log "fd hard limit $hard is too low for $IDLE_CONNS idle connections; using $((hard - 1000))"
	IDLE_CONNS=$((hard - 1000))
fi
if (($(nproc) < 2)); then
	log "warning: fewer than 2 cores; server and load will share a core"
fi

# ---------------------------------------------------------------- helpers
USED_PORTS=" "





# start_server NAME BINARY PORT: starts it pinned to the server core, waits until it
# listens; sets SRV_PID
start_server() {
	local name="$1" bin="$2" port="$3" i
	taskset -c "$SCPU" "$bin" "$port" >>"$LOGS/$name.log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SRV_PID" 2>/dev/null || die "server $name exited at start (see $LOGS/$name.log)"
		if grep -q "pid=$SRV_PID," <<<"$(ss -Hltnp "sport = :$port")"; then
			return 0
		fi
		sleep 0.1
	done
	die "server $name did not listen on port $port within 10 s"
}



# run_load ROUND TEST SERVER SERVER_PID WSLOAD_ARGS...
# Runs wsload pinned to the load core. Server CPU is sampled over the measured window:
# from warm-up end (echo; wsload reports when all connections are open) or start
# (handshake) until wsload exits.
run_load() {
	local round="$1" test="$2" server="$3" spid="$4"
	shift 4
	local mode="$1" warm=1 i
	local tag="r${round}-${test}-${server}"
	local out="$LOGS/$tag.out" err="$LOGS/$tag.err"
	: >"$out"
	: >"$err"
	timeout -k 5 $((${SECS%.*} + RUN_GRACE)) taskset -c "$LCPU" "$W" "$@" -t "$SECS" -l "$test" >"$out" 2>"$err" &
	local lp=$!
	PIDS+=("$lp")
	if [[ $mode == echo ]]; then
		# all connections open, then the default 1 s warm-up
		for ((i = 0; i < 600; i++)); do
			grep -q '^all .* connections open' "$err" && break
			kill -0 "$lp" 2>/dev/null || break
			sleep 0.05
		done
		sleep "$warm"
	fi
	local t0="$EPOCHREALTIME" c0 u0 b0 l0 rc=0
	read -r c0 u0 <<<"$(cpu_ticks_split "$spid")"
	b0="$(core_busy "$SCPU")"
	l0="$(core_busy "$LCPU")"
	wait "$lp" || rc=$?
	local t1="$EPOCHREALTIME" c1 u1 b1 l1
	read -r c1 u1 <<<"$(cpu_ticks_split "$spid")"
	b1="$(core_busy "$SCPU")"
	l1="$(core_busy "$LCPU")"
	forget_pid "$lp"
	local up=1
	alive "$spid" || up=0
	local extra="round=$round test=$test server=$server window_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
	extra+=" server_cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a<0||b<0)?-1:(b-a)/t}')"
	extra+=" server_user_s=$(awk -v a="$u0" -v b="$u1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a<0||b<0)?-1:(b-a)/t}')"
	extra+=" core_server_busy_s=$(awk -v a="$b0" -v b="$b1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
	extra+=" core_load_busy_s=$(awk -v a="$l0" -v b="$l1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
	extra+=" loadavg=$(cut -d' ' -f1 /proc/loadavg) server_alive=$up rc=$rc"
	local line
	line="$(grep '^RESULT ' "$out" | tail -1 || true)"
	if [[ -z $line ]]; then
		line="RESULT mode=$mode label=$test status=noresult"
		log "$tag: wsload gave no RESULT (exit $rc); see $err"
	fi
	record "$line" "$extra" "$RUN_EXTRA"
}
RUN_EXTRA=""

# idle_and_loaded ROUND: fresh server; VmRSS before and READY + 1 s after IDLE_CONNS idle
# connections; then the 64 B depth-16 echo while those connections stay open
idle_and_loaded() {
	local round="$1" port pid before after i
	pick_port
	port="$PORT"
	start_server "ours-idle-r$round" "$ECHO_SRV" "$port"
	pid="$SRV_PID"
	sleep 0.2
	before="$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")"
	local hold
	hold=$(awk -v s="$SECS" 'BEGIN{printf "%d", s + 8}')
	local out="$LOGS/r${round}-idle-ours.out" err="$LOGS/r${round}-idle-ours.err"
	: >"$out"
	timeout -k 5 $((hold + RUN_GRACE)) taskset -c "$LCPU" "$W" idle -u "ws://127.0.0.1:$port/" \
		-c "$IDLE_CONNS" -t "$hold" -l idle >"$out" 2>"$err" &
	local ip=$!
	PIDS+=("$ip")
	for ((i = 0; i < 1200; i++)); do
		grep -q '^READY' "$out" && break
		kill -0 "$ip" 2>/dev/null || break
		sleep 0.05
	done
	local ready=0
	grep -q '^READY' "$out" && ready=1
	sleep 1
	after="$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)"
	local bpc
	bpc=$(((after - before) * 1024 / IDLE_CONNS))
	log "round $round: idle RSS ${before} kB -> ${after} kB, $bpc B/conn (ready=$ready)"
	if ((ready)); then
		RUN_EXTRA="idle_conns=$IDLE_CONNS"
		run_load "$round" echo64-d16-idle ours "$pid" echo -u "ws://127.0.0.1:$port/" -c 100 -s 64 -d 16
		RUN_EXTRA=""
	else
		record "RESULT mode=echo label=echo64-d16-idle status=noresult" \
			"round=$round test=echo64-d16-idle server=ours idle_conns=$IDLE_CONNS"
	fi
	local rc=0
	wait "$ip" || rc=$?
	forget_pid "$ip"
	local line
	line="$(grep '^RESULT ' "$out" | tail -1 || true)"
	[[ -n $line ]] || line="RESULT mode=idle label=idle status=noresult"
	local up=1
	alive "$pid" || up=0
	record "$line" "round=$round test=idle server=ours rss_before_kb=$before rss_after_kb=$after" \
		"bytes_per_conn=$bpc ready=$ready loadavg=$(cut -d' ' -f1 /proc/loadavg) server_alive=$up rc=$rc"
	stop_server "$pid"
}

# ensure_ours ROUND NEXT_TEST: restart our server if it died (a death during a run shows as
# server_alive=0 on that run; one between runs is recorded as status=died): both are unhealthy
ensure_ours() {
	if ! alive "$OPID"; then
		log "round $1: our server died between runs (before $2); restarting"
		record "RESULT mode=server label=$2 status=died" "round=$1 test=$2 server=ours"
		stop_server "$OPID"
		pick_port
		OPORT="$PORT"
		start_server "ours-r$1-restart" "$ECHO_SRV" "$OPORT"
		OPID="$SRV_PID"
	fi
}

# ---------------------------------------------------------------- the runs
: >"$RAW"
START_EPOCH="$(date +%s)"
{
	echo "mode=$MODE"
	echo "secs=$SECS"
	echo "rounds=$ROUNDS"
	echo "idle_conns=$IDLE_CONNS"
	echo "server_cpu=$SCPU"
	echo "load_cpu=$LCPU"
	echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
	echo "dirty=$(git status --porcelain -- src include 2>/dev/null | wc -l)"
	echo "start=$(date -u +%FT%TZ)"
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "kernel=$(uname -r)"
	echo "nproc=$(nproc)"
} >"$OUT/meta.txt"
log "mode $MODE: $ROUNDS round(s), ${SECS} s per run, $IDLE_CONNS idle connections; load average $(cut -d' ' -f1-3 /proc/loadavg)"

for ((r = 1; r <= ROUNDS; r++)); do
	log "round $r/$ROUNDS"
	pick_port
	TPORT="$PORT"
	pick_port
	OPORT="$PORT"
	start_server "tcp-r$r" "$TCP_SRV" "$TPORT"
	TPID="$SRV_PID"
	start_server "ours-r$r" "$ECHO_SRV" "$OPORT"
	OPID="$SRV_PID"

	run_load "$r" echo64-d1 ceiling "$TPID" echo --raw -u "ws://127.0.0.1:$TPORT/" -c 100 -s 64 -d 1
	ensure_ours "$r" echo64-d1
	run_load "$r" echo64-d1 ours "$OPID" echo -u "ws://127.0.0.1:$OPORT/" -c 100 -s 64 -d 1
	run_load "$r" echo64-d16 ceiling "$TPID" echo --raw -u "ws://127.0.0.1:$TPORT/" -c 100 -s 64 -d 16
	ensure_ours "$r" echo64-d16
	run_load "$r" echo64-d16 ours "$OPID" echo -u "ws://127.0.0.1:$OPORT/" -c 100 -s 64 -d 16
	run_load "$r" echo1m ceiling "$TPID" echo --raw -u "ws://127.0.0.1:$TPORT/" -c 4 -s 1048576 -d 1
	ensure_ours "$r" echo1m
	run_load "$r" echo1m ours "$OPID" echo -u "ws://127.0.0.1:$OPORT/" -c 4 -s 1048576 -d 1
	ensure_ours "$r" handshake
	run_load "$r" handshake ours "$OPID" handshake -u "ws://127.0.0.1:$OPORT/" -c 16
	stop_server "$TPID"
	stop_server "$OPID"
	pick_port
	HPORT="$PORT"
	start_server "hs-floor-r$r" "$HS_SRV" "$HPORT"
	HPID="$SRV_PID"
	run_load "$r" handshake ceiling "$HPID" handshake -u "ws://127.0.0.1:$HPORT/" -c 16
	stop_server "$HPID"
	idle_and_loaded "$r"
done
log "runs done in $(($(date +%s) - START_EPOCH)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
{
	echo "end=$(date -u +%FT%TZ)"
	echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$OUT/meta.txt"

# ---------------------------------------------------------------- report
status=0
python3 "$ROOT/benches/report.py" --raw "$RAW" --meta "$OUT/meta.txt" \
	--json "$OUT/results.json" --md "$OUT/results.md" || status=$?
cat "$OUT/results.md"
if ((status != 0)); then
	log "unhealthy runs (errors, bad lengths, peer closes, missing connections or results): see $OUT/results.md"
fi
exit "$status"
