#!/usr/bin/env bash
# TLS and compression benchmark of our libwebsockets (v1.23 API): wss next to ws, and
# permessage-deflate next to uncompressed, on the same server and the same load tool.
#
#   benches/run-ext.sh            full run: 3 rounds, 10 s per run, 1000 idle connections
#   benches/run-ext.sh --smoke    harness check: 1 round, 1 s runs, few connections;
#                                 exits non-zero when any run reports errors, bad lengths or
#                                 data, peer closes, stalls, failed handshakes, an extension
#                                 not negotiated as asked, or a server dies (speed never judged)
#
# Environment: BENCH_SECS (seconds per measured run), BENCH_ROUNDS, BENCH_EXT_IDLE_CONNS,
# BENCH_PORT (first port tried), BENCH_SERVER_CPU / BENCH_LOAD_CPU (taskset cores, default
# 0 and 1).
#
# Server: examples/test-echo.c (three processes per round: ws, wss with the RSA test
# certificate, wss with the ECDSA one; its library extensions on). Load: benches/lwsload.c,
# a client on this library's own API (ws/wss, permessage-deflate, content-checked echoes).
# Built under target/bench-ext/ (with the certificates of examples/gen-test-certs.sh).
# Results:
#   target/bench/ext-raw.txt        every RESULT line plus round/test/variant/cpu fields
#   target/bench/ext-results.json   parsed, with medians and ratios
#   target/bench/ext-results.md     the tables
#   target/bench/ext-logs/          server and load-tool output
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE=full
for arg in "$@"; do
	case "$arg" in
	--smoke) MODE=smoke ;;
	-h | --help)
		sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run-ext.sh: unknown argument '$arg' (only --smoke)" >&2
		exit 2
		;;
	esac
done

if [[ $MODE == smoke ]]; then
	SECS="${BENCH_SECS:-1}"
	WARM=0.5
	ROUNDS="${BENCH_ROUNDS:-1}"
	IDLE_CONNS="${BENCH_EXT_IDLE_CONNS:-200}"
	PORT_BASE="${BENCH_PORT:-19720}"
	E64_CONNS=20
	IDLE_HOLD=2
else
	SECS="${BENCH_SECS:-10}"
	WARM=1
	ROUNDS="${BENCH_ROUNDS:-3}"
	IDLE_CONNS="${BENCH_EXT_IDLE_CONNS:-1000}"
	PORT_BASE="${BENCH_PORT:-19700}"
	E64_CONNS=100
	IDLE_HOLD=3
fi
SCPU="${BENCH_SERVER_CPU:-0}"
LCPU="${BENCH_LOAD_CPU:-1}"

BUILD="$ROOT/target/bench-ext"
CERTS="$BUILD/certs"
OUT="$ROOT/target/bench"
LOGS="$OUT/ext-logs"
LOAD="$BUILD/lwsload"
SRV="$BUILD/test-echo"
RAW="$OUT/ext-raw.txt"
META="$OUT/ext-meta.txt"
CLK_TCK="$(getconf CLK_TCK)"
# a run that has not finished this long after its nominal end is killed
RUN_GRACE=60

log() { echo "bench-ext: $*" >&2; }
die() {
	log "$*"
	exit 1
}

source "$ROOT/benches/common.sh"

# ---------------------------------------------------------------- build
mkdir -p "$OUT" "$LOGS" "$BUILD"
if ! command -v openssl >/dev/null; then
	# the TLS tests need the same tool; like run.sh without wsload, the smoke run skips
	[[ $MODE == smoke ]] && {
		log "skipped: the openssl command (for the test certificates) is missing"
		exit 0
	}
	die "the openssl command is needed for the test certificates"
fi
log "building the library"
cargo build --release
log "building lwsload and test-echo"
cc -O2 -Wall -Werror -I "$ROOT/include" -o "$LOAD" "$ROOT/benches/lwsload.c" \
	-L "$ROOT/target/release" -Wl,-rpath,"$ROOT/target/release" -lwebsockets
cc -O2 -Wall -Werror -I "$ROOT/include" -o "$SRV" "$ROOT/examples/test-echo.c" \
	-L "$ROOT/target/release" -Wl,-rpath,"$ROOT/target/release" -lwebsockets
for b in "$LOAD" "$SRV"; do
	# not `ldd | grep -q`: with pipefail, grep quitting early can fail the pipeline
	deps="$(ldd "$b")"
	[[ $deps == *"$ROOT/target/release/libwebsockets"* ]] ||
		die "$b does not load target/release/libwebsockets.so"
done
# test certificates (valid 30 days): made again when missing or older than 20 days
if [[ ! -s $CERTS/server.pem || ! -s $CERTS/server-ecdsa.pem ||
	-n "$(find "$CERTS/server.pem" -mtime +20 2>/dev/null)" ]]; then
	log "making test certificates in $CERTS"
	bash "$ROOT/examples/gen-test-certs.sh" --ecdsa "$CERTS" >"$LOGS/gen-test-certs.log" 2>&1 ||
		die "gen-test-certs.sh failed (see $LOGS/gen-test-certs.log)"
fi

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




# rq_wait_ns PID: time the process spent runnable but waiting for a CPU (second field of
# /proc/PID/schedstat; -1 when unavailable): shows when other work took the cores
rq_wait_ns() {
	local a
	read -r -a a 2>/dev/null <"/proc/$1/schedstat" || {
		echo -1
		return
	}
	echo "${a[1]:--1}"
}

rss_kb() {
	awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# start_server NAME PORT ARGS...: test-echo pinned to the server core; waits until it
# listens; sets SRV_PID
start_server() {
	local name="$1" port="$2" i
	shift 2
	taskset -c "$SCPU" "$SRV" --port "$port" --debug 3 "$@" >>"$LOGS/$name.log" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SRV_PID" 2>/dev/null || die "server $name exited at start (see $LOGS/$name.log)"
		if ss -Hltnp "sport = :$port" | grep -q "pid=$SRV_PID,"; then
			return 0
		fi
		sleep 0.1
	done
	die "server $name did not listen on port $port within 10 s"
}


# the three servers of a round; WS_* / WSS_* / WSSE_* hold port and pid
TLS_RSA=(--ssl --cert "$CERTS/server.pem" --key "$CERTS/server-key.pem")
TLS_ECDSA=(--ssl --cert "$CERTS/server-ecdsa.pem" --key "$CERTS/server-ecdsa-key.pem")
start_ws() {
	pick_port
	WS_PORT="$PORT"
	start_server "ws-$1" "$WS_PORT"
	WS_PID="$SRV_PID"
}
start_wss() {
	pick_port
	WSS_PORT="$PORT"
	start_server "wss-$1" "$WSS_PORT" "${TLS_RSA[@]}"
	WSS_PID="$SRV_PID"
}
start_wsse() {
	pick_port
	WSSE_PORT="$PORT"
	start_server "wss-ecdsa-$1" "$WSSE_PORT" "${TLS_ECDSA[@]}"
	WSSE_PID="$SRV_PID"
}

# ensure_up ROUND KIND TEST: restarts the ws/wss/wsse server if it died between runs (the
# death is recorded as status=died, an unhealthy entry)
ensure_up() {
	local round="$1" kind="$2" test="$3" pid
	case "$kind" in
	ws) pid="$WS_PID" ;;
	wss) pid="$WSS_PID" ;;
	wsse) pid="$WSSE_PID" ;;
	esac
	if ! alive "$pid"; then
		log "round $round: the $kind server died between runs (before $test); restarting"
		record "RESULT mode=server label=$test status=died" "round=$round test=$test variant=$kind"
		stop_server "$pid"
		"start_$kind" "r$round-restart"
	fi
}


# wait_for FILE PATTERN PID TRIES: polls (20 ms) until FILE has a line matching PATTERN,
# the process has exited, or TRIES polls passed
wait_for() {
	local file="$1" pat="$2" pid="$3" tries="$4" i
	for ((i = 0; i < tries; i++)); do
		grep -q "$pat" "$file" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	grep -q "$pat" "$file" 2>/dev/null
}

# run_load ROUND TEST VARIANT SERVER_PID LWSLOAD_ARGS...
# Runs lwsload pinned to the load core. Server CPU and core busy time are sampled over the
# measured window: from lwsload's "measuring" line (after connecting and the warm-up)
# to its RESULT line (printed before it closes its connections).
run_load() {
	local round="$1" test="$2" variant="$3" spid="$4"
	shift 4
	local tag="r${round}-${test}-${variant}"
	local out="$LOGS/$tag.out" err="$LOGS/$tag.err"
	: >"$out"
	: >"$err"
	local limit=$((${SECS%.*} + RUN_GRACE))
	timeout -k 5 "$limit" taskset -c "$LCPU" "$LOAD" "$@" -t "$SECS" -w "$WARM" -l "$test" \
		>"$out" 2>"$err" &
	local lp=$!
	PIDS+=("$lp")
	wait_for "$err" '^lwsload: measuring' "$lp" $((limit * 50)) || true
	local t0="$EPOCHREALTIME" c0 b0 l0 sw0 sw1
	sw0="$(rq_wait_ns "$spid")"
	c0="$(cpu_ticks "$spid")"
	b0="$(core_busy "$SCPU")"
	l0="$(core_busy "$LCPU")"
	wait_for "$out" '^RESULT ' "$lp" $((limit * 50)) || true
	local t1="$EPOCHREALTIME" c1 b1 l1 rc=0
	c1="$(cpu_ticks "$spid")"
	b1="$(core_busy "$SCPU")"
	l1="$(core_busy "$LCPU")"
	sw1="$(rq_wait_ns "$spid")"
	wait "$lp" || rc=$?
	forget_pid "$lp"
	local up=1
	alive "$spid" || up=0
	local extra="round=$round test=$test variant=$variant"
	extra+=" window_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
	extra+=" server_cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a<0||b<0)?-1:(b-a)/t}')"
	extra+=" core_server_busy_s=$(awk -v a="$b0" -v b="$b1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
	extra+=" core_load_busy_s=$(awk -v a="$l0" -v b="$l1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
	extra+=" server_rq_wait_s=$(awk -v a="$sw0" -v b="$sw1" 'BEGIN{printf "%.3f", (a<0||b<0)?-1:(b-a)/1e9}')"
	extra+=" loadavg=$(cut -d' ' -f1 /proc/loadavg) server_alive=$up rc=$rc"
	local line
	line="$(grep '^RESULT ' "$out" | tail -1 || true)"
	if [[ -z $line ]]; then
		line="RESULT mode=${1:-?} label=$test status=noresult"
		log "$tag: lwsload gave no RESULT (exit $rc); see $err"
	fi
	record "$line" "$extra"
}

# idle_run ROUND TEST VARIANT LWSLOAD_ARGS...: a fresh server (wss for variant wss, else
# ws); VmRSS before, and 1 s after all IDLE_CONNS connections are READY
idle_run() {
	local round="$1" test="$2" variant="$3"
	shift 3
	local port pid before after i scheme=ws tls=()
	if [[ $variant == wss ]]; then
		scheme=wss
		tls=("${TLS_RSA[@]}")
	fi
	pick_port
	port="$PORT"
	start_server "idle-r$round-$test-$variant" "$port" "${tls[@]}"
	pid="$SRV_PID"
	sleep 0.2
	before="$(rss_kb "$pid")"
	local tag="r${round}-${test}-${variant}"
	local out="$LOGS/$tag.out" err="$LOGS/$tag.err"
	: >"$out"
	: >"$err"
	local hold=$IDLE_HOLD
	timeout -k 5 $((hold + RUN_GRACE)) taskset -c "$LCPU" "$LOAD" idle -u "$scheme://127.0.0.1:$port/" \
		-c "$IDLE_CONNS" -t "$hold" -l "$test" "$@" >"$out" 2>"$err" &
	local ip=$!
	PIDS+=("$ip")
	local ready=0
	wait_for "$out" '^READY' "$ip" $((RUN_GRACE * 50)) && ready=1
	sleep 1
	after="$(rss_kb "$pid")"
	local rc=0
	wait "$ip" || rc=$?
	forget_pid "$ip"
	local bpc=$(((after - before) * 1024 / IDLE_CONNS))
	log "round $round: $test/$variant: RSS ${before} kB -> ${after} kB, $bpc B/conn (ready=$ready)"
	local line
	line="$(grep '^RESULT ' "$out" | tail -1 || true)"
	[[ -n $line ]] || line="RESULT mode=idle label=$test status=noresult"
	local up=1
	alive "$pid" || up=0
	record "$line" "round=$round test=$test variant=$variant rss_before_kb=$before rss_after_kb=$after" \
		"bytes_per_conn=$bpc ready=$ready loadavg=$(cut -d' ' -f1 /proc/loadavg) server_alive=$up rc=$rc"
	stop_server "$pid"
}

# checker_selftest: lwsload must notice wrong echoes (a check that cannot fail proves
# nothing): against benches/faulty_echo.py, which spoils every 100th echo, each run must
# fail with the matching counter set. Sets SELFTEST (pass / FAIL ... / skipped ...).
checker_selftest() {
	local mode want port fp out rc line bad=""
	if ! python3 -c 'import websockets.asyncio.server' 2>/dev/null; then
		SELFTEST="skipped (no Python websockets package)"
		log "checker self-test $SELFTEST"
		return 0
	fi
	for mode in flip short drop dup; do
		case "$mode" in
		short) want=bad_len ;;
		*) want=bad_data ;;
		esac
		pick_port
		port="$PORT"
		out="$LOGS/selftest-$mode"
		# emptied here, not only by the redirect: a line left from the last run must
		# not be seen before the child has opened the file
		: >"$out.srv"
		python3 "$ROOT/benches/faulty_echo.py" "$port" "$mode" 30 >"$out.srv" 2>&1 &
		fp=$!
		PIDS+=("$fp")
		wait_for "$out.srv" '^listening' "$fp" 500 || true
		rc=0
		timeout -k 5 30 "$LOAD" echo -u "ws://127.0.0.1:$port/" -c 2 -s 1000 -d 2 -t 1 -w 0 \
			-l "selftest-$mode" >"$out.out" 2>"$out.err" || rc=$?
		stop_pid "$fp"
		forget_pid "$fp"
		line="$(grep '^RESULT ' "$out.out" || true)"
		if [[ $rc -ne 1 || ! $line =~ \ $want=[1-9] ]]; then
			bad+=" $mode(exit $rc, ${want} not set)"
		fi
	done
	if [[ -z $bad ]]; then
		SELFTEST="pass (flip, short, drop, dup each caught)"
	else
		SELFTEST="FAIL:$bad"
	fi
	log "checker self-test: $SELFTEST"
}

# ---------------------------------------------------------------- the runs
checker_selftest
: >"$RAW"
START_EPOCH="$(date +%s)"
{
	echo "mode=$MODE"
	echo "secs=$SECS"
	echo "warmup=$WARM"
	echo "rounds=$ROUNDS"
	echo "idle_conns=$IDLE_CONNS"
	echo "e64_conns=$E64_CONNS"
	echo "server_cpu=$SCPU"
	echo "load_cpu=$LCPU"
	echo "commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
	echo "dirty=$(git status --porcelain -- src include benches/lwsload.c 2>/dev/null | wc -l)"
	echo "start=$(date -u +%FT%TZ)"
	echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
	echo "kernel=$(uname -r)"
	echo "nproc=$(nproc)"
	echo "cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
	echo "checker_selftest=$SELFTEST"
} >"$META"
log "mode $MODE: $ROUNDS round(s), ${SECS} s per run, $IDLE_CONNS idle connections; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# Odd rounds run ws before wss (uncompressed before compressed, ...), even rounds the
# other way round, so a drift in the machine's load does not always favour one side.
for ((r = 1; r <= ROUNDS; r++)); do
	log "round $r/$ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	start_ws "r$r"
	start_wss "r$r"
	start_wsse "r$r"
	if ((r % 2)); then order=(ws wss); else order=(wss ws); fi

	# (a) TLS: 64 B depth 16 and 1 MiB echo, ws next to wss
	for v in "${order[@]}"; do
		ensure_up "$r" "$v" echo64-d16
		if [[ $v == ws ]]; then url="ws://127.0.0.1:$WS_PORT/" pid="$WS_PID"; else url="wss://127.0.0.1:$WSS_PORT/" pid="$WSS_PID"; fi
		run_load "$r" echo64-d16 "$v" "$pid" echo -u "$url" -c "$E64_CONNS" -s 64 -d 16
	done
	for v in "${order[@]}"; do
		ensure_up "$r" "$v" echo1m
		if [[ $v == ws ]]; then url="ws://127.0.0.1:$WS_PORT/" pid="$WS_PID"; else url="wss://127.0.0.1:$WSS_PORT/" pid="$WSS_PID"; fi
		run_load "$r" echo1m "$v" "$pid" echo -u "$url" -c 4 -s 1048576 -d 1
	done

	# (b) compression: 64 KiB JSON-like text, uncompressed next to permessage-deflate
	if ((r % 2)); then zorder=(ws ws-pmd); else zorder=(ws-pmd ws); fi
	for v in "${zorder[@]}"; do
		ensure_up "$r" ws json64k
		z=()
		[[ $v == ws-pmd ]] && z=(--compress)
		run_load "$r" json64k "$v" "$WS_PID" echo -u "ws://127.0.0.1:$WS_PORT/" -c 4 -s 65536 -d 4 \
			--json "${z[@]}"
	done

	# (a) handshakes: plain, TLS resumed, TLS full (RSA 2048), TLS full (ECDSA P-256)
	if ((r % 2)); then horder=(ws wss-resumed wss-full wss-ecdsa-full); else horder=(wss-ecdsa-full wss-full wss-resumed ws); fi
	for v in "${horder[@]}"; do
		case "$v" in
		ws)
			ensure_up "$r" ws handshake
			run_load "$r" handshake "$v" "$WS_PID" handshake -u "ws://127.0.0.1:$WS_PORT/" -c 16
			;;
		wss-resumed)
			ensure_up "$r" wss handshake
			run_load "$r" handshake "$v" "$WSS_PID" handshake -u "wss://127.0.0.1:$WSS_PORT/" -c 16
			;;
		wss-full)
			ensure_up "$r" wss handshake
			run_load "$r" handshake "$v" "$WSS_PID" handshake -u "wss://127.0.0.1:$WSS_PORT/" -c 16 --fresh-tls
			;;
		wss-ecdsa-full)
			ensure_up "$r" wsse handshake
			run_load "$r" handshake "$v" "$WSSE_PID" handshake -u "wss://127.0.0.1:$WSSE_PORT/" -c 16 --fresh-tls
			;;
		esac
	done
	for p in "$WS_PID" "$WSS_PID" "$WSSE_PID"; do
		alive "$p" || record "RESULT mode=server label=end status=died" "round=$r test=end variant=server"
		stop_server "$p"
	done

	# (b) memory per idle connection, a fresh server each: negotiated only, and after one
	# 64 KiB JSON message echoed on each connection (compressor state kept: context takeover);
	# (a) the same for TLS, upgraded only
	if ((r % 2)); then iorder=(ws ws-pmd wss); else iorder=(wss ws-pmd ws); fi
	for v in "${iorder[@]}"; do
		z=()
		[[ $v == ws-pmd ]] && z=(--compress)
		idle_run "$r" idle "$v" "${z[@]}"
	done
	for v in "${iorder[@]}"; do
		[[ $v == wss ]] && continue
		z=()
		[[ $v == ws-pmd ]] && z=(--compress)
		idle_run "$r" idle-msg "$v" --idle-msg -s 65536 --json "${z[@]}"
	done
done
log "runs done in $(($(date +%s) - START_EPOCH)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
{
	echo "end=$(date -u +%FT%TZ)"
	echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$META"

# ---------------------------------------------------------------- report
status=0
python3 "$ROOT/benches/report_ext.py" --raw "$RAW" --meta "$META" \
	--json "$OUT/ext-results.json" --md "$OUT/ext-results.md" || status=$?
cat "$OUT/ext-results.md"
if [[ $SELFTEST == FAIL* ]]; then
	log "lwsload's echo check failed its self-test: $SELFTEST"
	status=1
fi
if ((status != 0)); then
	log "unhealthy runs (see $OUT/ext-results.md and $LOGS/)"
fi
exit "$status"
