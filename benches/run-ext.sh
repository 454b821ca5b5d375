#!/usr/bin/env bash
# TLS and compression benchmark of our libwebsockets (v1.23 API): wss next to ws, and
# permessage-deflate next to uncompressed, on the same server and the same load tool; and
# each row next to Debian's libwebsockets 4.x (OpenSSL) serving the same load.
#
#   benches/run-ext.sh            full run: 3 rounds, 10 s per run, 1000 idle connections
#   benches/run-ext.sh --smoke    harness check: 1 round, 1 s runs, few connections;
#                                 exits non-zero when any run reports errors, bad lengths or
#                                 data, peer closes, stalls, failed handshakes, an extension
#                                 not negotiated as asked, TLS resumption not resuming on
#                                 libwebsockets 4.x, or a server dies (speed never judged);
#                                 fails too when libwebsockets-dev (4.x) is not installed
#
# Environment: BENCH_SECS (seconds per measured run), BENCH_ROUNDS, BENCH_EXT_IDLE_CONNS,
# BENCH_PORT (first port tried), BENCH_SERVER_CPU / BENCH_LOAD_CPU (taskset cores, default
# 0 and 1), BENCH_LWS4_LIB (the libwebsockets 4.x shared library to link the comparison
# server with; default /usr/lib/<multiarch>/libwebsockets.so of libwebsockets-dev).
#
# Servers: examples/test-echo.c on our library (three processes per round: ws, wss with
# the RSA test certificate, wss with the ECDSA one; its library extensions on), and
# benches/servers/lws4-echo.c, the same echo server written for the libwebsockets 4.x API
# and linked against the system's libwebsockets 4.x (same three processes, same
# certificates, permessage-deflate registered with our server's parameters). Every test
# runs on both in the same round, one after the other (order reversed every other round),
# with the same load. Load: benches/lwsload.c, a client on this library's own API
# (ws/wss, permessage-deflate, content-checked echoes).
# Built under target/bench-ext/ (with the certificates of examples/gen-test-certs.sh).
# Results:
#   target/bench/ext-raw.txt        every RESULT line plus round/test/variant/cpu fields
#   target/bench/ext-results.json   parsed, with medians and ratios
#   target/bench/ext-results.md     the tables
#   target/bench/ext-logs/          server and load-tool output
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

source "$ROOT/benches/common.sh"
parse_mode 32 "$@"

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
LWS4_SRV="$BUILD/lws4-echo"
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

# The comparison server, on Debian's libwebsockets 4.x (package libwebsockets-dev, which
# .ci/run installs): its header from /usr/include (no -I of ours), linked with the
# system's shared library named by its path (not -lwebsockets, which is also our
# library's linker name) and no rpath, so it loads the system's SONAME
# (libwebsockets.so.17 for 4.1). Missing, it is an error in the smoke run too: the
# comparison rows are part of what the harness checks.
MULTIARCH="$(cc -print-multiarch 2>/dev/null || true)"
LWS4_LIB="${BENCH_LWS4_LIB:-/usr/lib/${MULTIARCH:-x86_64-linux-gnu}/libwebsockets.so}"
if [[ ! -e $LWS4_LIB || ! -e /usr/include/libwebsockets.h ]]; then
	die "libwebsockets 4.x is missing ($LWS4_LIB, /usr/include/libwebsockets.h): install Debian's libwebsockets-dev (apt-get install libwebsockets-dev; .ci/run does)"
fi
log "building lws4-echo against $LWS4_LIB"
cc -O2 -Wall -Werror -o "$LWS4_SRV" "$ROOT/benches/servers/lws4-echo.c" "$LWS4_LIB" -lssl -lcrypto ||
	die "building benches/servers/lws4-echo.c against $LWS4_LIB failed (libwebsockets-dev 4.x and libssl-dev needed)"
LWS4_SONAME="$(readelf -d "$LWS4_LIB" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ -n $LWS4_SONAME ]] || die "$LWS4_LIB has no SONAME"
OUR_SONAME="$(readelf -d "$ROOT/target/release/libwebsockets.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')"
[[ $LWS4_SONAME != "$OUR_SONAME" ]] || die "$LWS4_LIB has our SONAME $OUR_SONAME: not libwebsockets 4.x"
deps="$(ldd "$LWS4_SRV")"
lws4_line="$(grep -F "$LWS4_SONAME =>" <<<"$deps" || true)"
lws4_path="$(awk '{print $3}' <<<"$lws4_line")"
if [[ -z $lws4_path || $deps == *"$ROOT/target"* ||
	"$(readlink -f "$lws4_path")" != "$(readlink -f "$LWS4_LIB")" ]]; then
	die "$LWS4_SRV does not load $LWS4_LIB (ldd: ${lws4_line:-no $LWS4_SONAME})"
fi
for b in "$LOAD" "$SRV"; do
	deps="$(ldd "$b")"
	[[ $deps != *"$LWS4_SONAME"* ]] || die "$b loads the system's $LWS4_SONAME"
done
LWS4_VERSION="$("$LWS4_SRV" --version 2>&1 || true)"
LWS4_VERSION="${LWS4_VERSION%-}" # Debian's build has an empty git hash after the '-'
[[ $LWS4_VERSION == 4.* ]] || die "lws4-echo reports libwebsockets version '$LWS4_VERSION', not 4.x"
log "lws4-echo loads $lws4_path (libwebsockets $LWS4_VERSION)"

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

# The servers, by kind: ws, wss (RSA certificate), wsse (ECDSA certificate) on ours
# (examples/test-echo, its library extensions on), and the same three on libwebsockets
# 4.x (lws4-echo with permessage-deflate registered): l4ws, l4wss, l4wsse; plus l4wsz,
# lws4-echo for the compressed runs: lws 4.1.6's permessage-deflate corrupts its input
# when several connections receive compressed frames larger than the protocol's rx
# buffer (4 KiB by default), so that one has a 64 KiB buffer (see lws4-echo.c).
TLS_RSA=(--ssl --cert "$CERTS/server.pem" --key "$CERTS/server-key.pem")
TLS_ECDSA=(--ssl --cert "$CERTS/server-ecdsa.pem" --key "$CERTS/server-ecdsa-key.pem")
KINDS=(ws wss wsse l4ws l4wss l4wsse l4wsz)
declare -A PORT_OF PID_OF LOG_OF

# server_cmd KIND: sets CMD to the command line of that kind's server (port added later)
server_cmd() {
	case "$1" in
	ws) CMD=("$SRV" --debug 3) ;;
	wss) CMD=("$SRV" --debug 3 "${TLS_RSA[@]}") ;;
	wsse) CMD=("$SRV" --debug 3 "${TLS_ECDSA[@]}") ;;
	l4ws) CMD=("$LWS4_SRV" --deflate) ;;
	l4wss) CMD=("$LWS4_SRV" --deflate "${TLS_RSA[@]}") ;;
	l4wsse) CMD=("$LWS4_SRV" --deflate "${TLS_ECDSA[@]}") ;;
	l4wsz) CMD=("$LWS4_SRV" --deflate --rx-buffer 65536) ;;
	*) die "unknown server kind $1" ;;
	esac
}

# start_server NAME KIND: that kind's server pinned to the server core on a free port;
# waits until it listens; sets SRV_PID, SRV_PORT, SRV_LOG
start_server() {
	local name="$1" kind="$2" i
	server_cmd "$kind"
	pick_port
	SRV_PORT="$PORT"
	SRV_LOG="$LOGS/$name.log"
	taskset -c "$SCPU" "${CMD[@]}" --port "$SRV_PORT" >>"$SRV_LOG" 2>&1 &
	SRV_PID=$!
	PIDS+=("$SRV_PID")
	for ((i = 0; i < 100; i++)); do
		kill -0 "$SRV_PID" 2>/dev/null || die "server $name exited at start (see $SRV_LOG)"
		if grep -q "pid=$SRV_PID," <<<"$(ss -Hltnp "sport = :$SRV_PORT")"; then
			return 0
		fi
		sleep 0.1
	done
	die "server $name did not listen on port $SRV_PORT within 10 s"
}

# start_kind KIND LABEL: the round's server of that kind (PORT_OF / PID_OF / LOG_OF)
start_kind() {
	start_server "$1-$2" "$1"
	PORT_OF[$1]="$SRV_PORT"
	PID_OF[$1]="$SRV_PID"
	LOG_OF[$1]="$SRV_LOG"
}

# ensure_up ROUND KIND TEST: restarts the round's server of that kind if it died between
# runs (the death is recorded as status=died, an unhealthy entry)
ensure_up() {
	local round="$1" kind="$2" test="$3"
	if ! alive "${PID_OF[$kind]}"; then
		log "round $round: the $kind server died between runs (before $test); restarting"
		record "RESULT mode=server label=$test status=died" "round=$round test=$test variant=$kind"
		stop_server "${PID_OF[$kind]}"
		start_kind "$kind" "r$round-restart"
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

# lws4_stats PID LOG: asks lws4-echo for its counters (SIGUSR1) and waits up to 3 s for
# the new line in its log; sets STATS to "established tls_full tls_resumed", or "" when
# no line came
lws4_stats() {
	local pid="$1" logf="$2" n0 n i line
	STATS=""
	n0="$(grep -c '^lws4-echo: stats ' "$logf" 2>/dev/null || true)"
	kill -USR1 "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 150; i++)); do
		n="$(grep -c '^lws4-echo: stats ' "$logf" 2>/dev/null || true)"
		if ((${n:-0} > ${n0:-0})); then
			line="$(grep '^lws4-echo: stats ' "$logf" | tail -1)"
			STATS="$(sed -n 's/.* established=\([0-9]*\) tls_full=\([0-9]*\) tls_resumed=\([0-9]*\).*/\1 \2 \3/p' <<<"$line")"
			return 0
		fi
		sleep 0.02
	done
}

# run_load ROUND TEST VARIANT KIND LWSLOAD_ARGS...
# Runs lwsload pinned to the load core against the round's server of KIND. Server CPU
# (user and kernel) and core busy time are sampled over the measured window: from
# lwsload's "measuring" line (after connecting and the warm-up) to its RESULT line
# (printed before it closes its connections). On libwebsockets 4.x the server's own
# counts of upgrades and of full / resumed TLS handshakes over the window are added
# (srv_established, srv_tls_full, srv_tls_resumed; -1 when the server did not answer).
run_load() {
	local round="$1" test="$2" variant="$3" kind="$4"
	shift 4
	ensure_up "$round" "$kind" "$test"
	local spid="${PID_OF[$kind]}" slog="${LOG_OF[$kind]}"
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
	local t0="$EPOCHREALTIME" c0 u0 b0 l0 sw0 sw1 s0="" s1=""
	sw0="$(rq_wait_ns "$spid")"
	read -r c0 u0 <<<"$(cpu_ticks_split "$spid")"
	b0="$(core_busy "$SCPU")"
	l0="$(core_busy "$LCPU")"
	if [[ $kind == l4* ]]; then
		lws4_stats "$spid" "$slog"
		s0="$STATS"
	fi
	wait_for "$out" '^RESULT ' "$lp" $((limit * 50)) || true
	local t1="$EPOCHREALTIME" c1 u1 b1 l1 rc=0
	read -r c1 u1 <<<"$(cpu_ticks_split "$spid")"
	b1="$(core_busy "$SCPU")"
	l1="$(core_busy "$LCPU")"
	sw1="$(rq_wait_ns "$spid")"
	if [[ $kind == l4* ]]; then
		lws4_stats "$spid" "$slog"
		s1="$STATS"
	fi
	wait "$lp" || rc=$?
	forget_pid "$lp"
	local up=1
	alive "$spid" || up=0
	local impl=ours
	[[ $kind == l4* ]] && impl=lws4
	local extra="round=$round test=$test variant=$variant server=$impl"
	extra+=" window_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')"
	extra+=" server_cpu_s=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a<0||b<0)?-1:(b-a)/t}')"
	extra+=" server_user_s=$(awk -v a="$u0" -v b="$u1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (a<0||b<0)?-1:(b-a)/t}')"
	extra+=" core_server_busy_s=$(awk -v a="$b0" -v b="$b1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
	extra+=" core_load_busy_s=$(awk -v a="$l0" -v b="$l1" -v t="$CLK_TCK" 'BEGIN{printf "%.2f", (b-a)/t}')"
	extra+=" server_rq_wait_s=$(awk -v a="$sw0" -v b="$sw1" 'BEGIN{printf "%.3f", (a<0||b<0)?-1:(b-a)/1e9}')"
	if [[ $impl == lws4 ]]; then
		if [[ -n $s0 && -n $s1 ]]; then
			extra+=" $(awk -v a="$s0" -v b="$s1" 'BEGIN{split(a,x," "); split(b,y," ");
				printf "srv_established=%d srv_tls_full=%d srv_tls_resumed=%d", y[1]-x[1], y[2]-x[2], y[3]-x[3]}')"
		else
			extra+=" srv_established=-1 srv_tls_full=-1 srv_tls_resumed=-1"
		fi
	fi
	extra+=" loadavg=$(cut -d' ' -f1 /proc/loadavg) server_alive=$up rc=$rc"
	local line
	line="$(grep '^RESULT ' "$out" | tail -1 || true)"
	if [[ -z $line ]]; then
		line="RESULT mode=${1:-?} label=$test status=noresult"
		log "$tag: lwsload gave no RESULT (exit $rc); see $err"
	fi
	record "$line" "$extra"
	# the extension the server accepted, as the client saw it (first run of each variant)
	if [[ -z ${PMD_REPLY[$variant]:-} ]] && grep -q '^lwsload: negotiated: ' "$err"; then
		PMD_REPLY[$variant]="$(grep -m1 '^lwsload: negotiated: ' "$err" | cut -d' ' -f3-)"
	fi
}
declare -A PMD_REPLY

# idle_run ROUND TEST VARIANT KIND LWSLOAD_ARGS...: a fresh server of KIND; VmRSS
# before, and 1 s after all IDLE_CONNS connections are READY
idle_run() {
	local round="$1" test="$2" variant="$3" kind="$4"
	shift 4
	local port pid before after scheme=ws
	[[ $kind == *wss* ]] && scheme=wss
	start_server "idle-r$round-$test-$variant" "$kind"
	port="$SRV_PORT"
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
	local impl=ours
	[[ $kind == l4* ]] && impl=lws4
	record "$line" "round=$round test=$test variant=$variant server=$impl rss_before_kb=$before rss_after_kb=$after" \
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
	echo "lws4_version=$LWS4_VERSION"
	echo "lws4_lib=$(readlink -f "$LWS4_LIB")"
} >"$META"
log "mode $MODE: $ROUNDS round(s), ${SECS} s per run, $IDLE_CONNS idle connections; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# in_order ROUND ITEMS...: sets ORDER to the items, reversed in even rounds, so that a
# drift in the machine's load does not always favour one side (ours / lws4, ws / wss,
# uncompressed / compressed)
in_order() {
	local round="$1" i
	shift
	ORDER=("$@")
	if ((round % 2 == 0)); then
		ORDER=()
		for ((i = $#; i >= 1; i--)); do ORDER+=("${!i}"); done
	fi
}

# kind_of VARIANT: the server kind for an echo or idle variant: (lws4-)ws, (lws4-)wss,
# (lws4-)ws-pmd ("lws4-..." run on the libwebsockets 4.x server); sets KIND and SCHEME
kind_of() {
	local base="${1#lws4-}"
	SCHEME=ws
	case "$base" in
	ws | ws-pmd) KIND=ws ;;
	wss) KIND=wss SCHEME=wss ;;
	*) die "unknown variant $1" ;;
	esac
	if [[ $1 == lws4-* ]]; then
		KIND="l4$KIND"
		[[ $base == ws-pmd ]] && KIND=l4wsz
	fi
	return 0
}

# echo_run ROUND TEST VARIANT LWSLOAD_ECHO_ARGS...: variant (lws4-)ws, (lws4-)wss or
# (lws4-)ws-pmd (the caller adds --compress)
echo_run() {
	local round="$1" test="$2" v="$3"
	shift 3
	kind_of "$v"
	run_load "$round" "$test" "$v" "$KIND" echo -u "$SCHEME://127.0.0.1:${PORT_OF[$KIND]}/" "$@"
}

# handshake_run ROUND VARIANT: (lws4-)ws, wss-resumed, wss-full, wss-ecdsa-full
handshake_run() {
	local round="$1" v="$2" base scheme=wss fresh=()
	case "${v#lws4-}" in
	ws) base=ws scheme=ws ;;
	wss-resumed) base=wss ;;
	wss-full) base=wss fresh=(--fresh-tls) ;;
	wss-ecdsa-full) base=wsse fresh=(--fresh-tls) ;;
	*) die "unknown handshake variant $v" ;;
	esac
	KIND="$base"
	[[ $v == lws4-* ]] && KIND="l4$base"
	run_load "$round" handshake "$v" "$KIND" handshake -u "$scheme://127.0.0.1:${PORT_OF[$KIND]}/" \
		-c 16 "${fresh[@]}"
}

for ((r = 1; r <= ROUNDS; r++)); do
	log "round $r/$ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
	for k in "${KINDS[@]}"; do
		start_kind "$k" "r$r"
	done

	# (a) TLS: 64 B depth 16 and 1 MiB echo, ws next to wss, each ours next to lws4
	in_order "$r" ws lws4-ws wss lws4-wss
	for v in "${ORDER[@]}"; do
		echo_run "$r" echo64-d16 "$v" -c "$E64_CONNS" -s 64 -d 16
	done
	for v in "${ORDER[@]}"; do
		echo_run "$r" echo1m "$v" -c 4 -s 1048576 -d 1
	done

	# (b) compression: 64 KiB JSON-like text, uncompressed next to permessage-deflate,
	# and permessage-deflate on lws4
	in_order "$r" ws ws-pmd lws4-ws-pmd
	for v in "${ORDER[@]}"; do
		z=()
		[[ $v == *-pmd ]] && z=(--compress)
		echo_run "$r" json64k "$v" -c 4 -s 65536 -d 4 --json "${z[@]}"
	done

	# (a) handshakes: plain, TLS resumed, TLS full (RSA 2048), TLS full (ECDSA P-256)
	in_order "$r" ws lws4-ws wss-resumed lws4-wss-resumed wss-full lws4-wss-full \
		wss-ecdsa-full lws4-wss-ecdsa-full
	for v in "${ORDER[@]}"; do
		handshake_run "$r" "$v"
	done
	for k in "${KINDS[@]}"; do
		alive "${PID_OF[$k]}" ||
			record "RESULT mode=server label=end status=died" "round=$r test=end variant=$k"
		stop_server "${PID_OF[$k]}"
	done

	# (b) memory per idle connection, a fresh server each: negotiated only, and after one
	# 64 KiB JSON message echoed on each connection (compressor state kept: context takeover);
	# (a) the same for TLS, upgraded only
	in_order "$r" ws lws4-ws ws-pmd lws4-ws-pmd wss lws4-wss
	for v in "${ORDER[@]}"; do
		z=()
		[[ $v == *-pmd ]] && z=(--compress)
		kind_of "$v"
		idle_run "$r" idle "$v" "$KIND" "${z[@]}"
	done
	for v in "${ORDER[@]}"; do
		[[ $v == *wss ]] && continue
		z=()
		[[ $v == *-pmd ]] && z=(--compress)
		kind_of "$v"
		idle_run "$r" idle-msg "$v" "$KIND" --idle-msg -s 65536 --json "${z[@]}"
	done
done
log "runs done in $(($(date +%s) - START_EPOCH)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
{
	echo "end=$(date -u +%FT%TZ)"
	echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
	for v in "${!PMD_REPLY[@]}"; do
		echo "pmd_reply_$v=${PMD_REPLY[$v]}"
	done
	# what the libwebsockets 4.x servers negotiated with the first TLS client
	# (the last such line of round 1's log: the logs are appended to across runs)
	for k in l4wss l4wsse; do
		line="$(grep '^lws4-echo: first TLS connection: ' "$LOGS/$k-r1.log" 2>/dev/null | tail -1 || true)"
		echo "lws4_tls_$k=${line#lws4-echo: first TLS connection: }"
	done
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
