#!/usr/bin/env bash
# Scale-out recipe: several examples/test-echo.c processes serving one WebSocket
# endpoint, two ways, on loopback only.
#
#   examples/haproxy-recipe.sh [--backends N] [--mode haproxy|reuseport|both]
#                              [--bench [SECS]]
#
# haproxy   N test-echo processes on their own ports behind HAProxy (mode http; the
#           WebSocket upgrade passes through and the connection then becomes a
#           tunnel, bounded by `timeout tunnel`; balance roundrobin). Health check:
#           test-echo answers no plain GET (its HTTP callback sends nothing), so the
#           check is a WebSocket upgrade that must get `101`. Shown: messages
#           balanced across the backends (counted from each backend's stderr log),
#           then one backend restarted while long-lived connections are open: the
#           connections on the other backends keep echoing, new connections made
#           while it is down all succeed (on the live backends), and once it is UP
#           again it gets new connections.
# reuseport N test-echo processes on ONE port with LWS_REUSEPORT=1 (SO_REUSEPORT:
#           the kernel spreads new connections over the processes). Same
#           demonstration without a proxy.
# --bench   instead: echo throughput with wsload (../shared/tools/wsload, 64-byte
#           messages, 100 connections, depth 16) against 1 process, 2 processes
#           sharing a port, and 1 and 2 backends behind HAProxy. SECS per run
#           (default 5); BENCH_ROUNDS=R repeats the four runs R times, interleaved,
#           and prints the medians.
#
# Needs haproxy and curl (apt-get install haproxy curl), python3 with `websockets`
# (pip install -r tests/requirements.txt), a C compiler. Builds the library
# (NO_BUILD=1 skips) and test-echo into target/haproxy-recipe/, where the logs and
# haproxy.cfg stay for reading. Every process it starts is recorded by PID and
# killed when it ends; the whole run is bounded by RECIPE_TIMEOUT seconds (300).
# Last line "recipe: OK" when every check passed (exit status 0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/target/haproxy-recipe"
N=3
MODE=both
BENCH=0
BENCH_SECS=5

while [[ $# -gt 0 ]]; do
	case "$1" in
	--backends) N="$2"; shift 2 ;;
	--mode) MODE="$2"; shift 2 ;;
	--bench)
		BENCH=1
		if [[ "${2:-}" =~ ^[0-9]+$ ]]; then BENCH_SECS="$2"; shift; fi
		shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d;s/^# \{0,1\}//'; exit 0 ;;
	*) echo "haproxy-recipe: unknown argument $1" >&2; exit 2 ;;
	esac
done
[[ "$N" =~ ^[0-9]+$ && "$N" -ge 2 && "$N" -le 16 ]] || { echo "--backends: 2..16" >&2; exit 2; }
case "$MODE" in haproxy | reuseport | both) ;; *) echo "--mode: haproxy|reuseport|both" >&2; exit 2 ;; esac

say() { echo "recipe: $*"; }
FAILS=0
expect() { # message command...: runs the command as a condition, reports the result
	local msg="$1"
	shift
	if "$@"; then
		echo "recipe: ok   $msg"
	else
		echo "recipe: FAIL $msg"
		FAILS=$((FAILS + 1))
	fi
}
arith() { (($1)); }
burst_ok() { [[ "$1" == "burst: $2/$2 connections ok"* ]]; }

# ------------------------------------------------------------------ processes

declare -A LIVE=() # pid -> what
start_bg() { # name logfile command... ; sets STARTED to the pid
	local name="$1" log="$2"
	shift 2
	"$@" </dev/null >>"$log" 2>&1 &
	STARTED=$!
	LIVE[$STARTED]="$name"
}
ours() { # pid: still a live process started by this script?
	[[ -n "${LIVE[$1]:-}" ]] && kill -0 "$1" 2>/dev/null
}
stop_pid() { # pid [signal]: stop one of ours and reap it
	local pid="$1" sig="${2:-TERM}" i
	if ours "$pid"; then
		kill "-$sig" "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	unset "LIVE[$pid]"
}
cleanup() {
	local pid
	for pid in "${!LIVE[@]}"; do
		stop_pid "$pid"
	done
	[[ -n "${WATCHDOG:-}" ]] && kill "$WATCHDOG" 2>/dev/null && wait "$WATCHDOG" 2>/dev/null
	return 0
}
trap cleanup EXIT
trap 'echo "recipe: interrupted" >&2; exit 1' INT TERM
# bounded: the watchdog ends the run (and cleanup stops everything) after the limit
(
	trap 'kill "$sp" 2>/dev/null; exit 0' TERM
	sleep "${RECIPE_TIMEOUT:-300}" &
	sp=$!
	wait "$sp"
	echo "recipe: timed out after ${RECIPE_TIMEOUT:-300}s" >&2
	kill -TERM $$
) 2>/dev/null &
WATCHDOG=$!

wait_port() { # port seconds: until something accepts on 127.0.0.1:port
	local deadline=$((SECONDS + $2))
	while ((SECONDS < deadline)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	return 1
}

# that many distinct free loopback ports, drawn from 20000-32767: below Linux's
# ephemeral range, so outgoing connections of other programs cannot take them
# between this choice and the bind
free_ports() { # count
	python3 - "$1" <<'EOF'
import random, socket, sys
want, socks = int(sys.argv[1]), []
while len(socks) < want:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randint(20000, 32767)))
        socks.append(s)
    except OSError:
        s.close()
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
print(" ".join(map(str, ports)))
EOF
}

# ------------------------------------------------------------------ build

for tool in haproxy curl python3; do
	command -v "$tool" >/dev/null || { echo "haproxy-recipe: $tool is not installed" >&2; exit 1; }
done
python3 -c "import websockets.asyncio.client" 2>/dev/null ||
	{ echo "haproxy-recipe: python3 needs websockets (pip install -r tests/requirements.txt)" >&2; exit 1; }

mkdir -p "$OUT"
rm -f "$OUT"/*.log "$OUT"/hold.* "$OUT"/haproxy.cfg
cd "$ROOT"
[[ "${NO_BUILD:-0}" == 1 ]] || cargo build --release
LIB="${LWS_LIB_DIR:-$ROOT/target/release}"
"${CC:-cc}" -O2 -Wall -Werror -I"$ROOT/include" -o "$OUT/test-echo" examples/test-echo.c \
	-L"$LIB" -Wl,-rpath,"$LIB" -lwebsockets
export LD_LIBRARY_PATH="$LIB"
CLIENT=(python3 "$ROOT/examples/scaleout-client.py")

# ------------------------------------------------------------------ backends

declare -A BPID=() BLOG=()
start_backend() { # index port log [reuseport]
	local env=()
	[[ "${4:-}" == reuseport ]] && env=(env LWS_REUSEPORT=1)
	start_bg "backend-$1" "$3" "${env[@]}" "$OUT/test-echo" --port "$2" --interface 127.0.0.1
	BPID[$1]=$STARTED
	BLOG[$1]="$3"
}

# sessions that carried messages, and their messages, from a test-echo log
# (optionally skipping its first SKIP lines): "SESSIONS MESSAGES"
count_log() { # file [skip]
	tail -n "+$((${2:-0} + 1))" "$1" 2>/dev/null |
		sed -n 's/.*CLOSED session [0-9]* (\([0-9]*\) messages)$/\1/p' |
		awk '$1 > 0 { s++; m += $1 } END { print s + 0, m + 0 }'
}

# waits until the backends' logs account for `want` sessions with messages in total
wait_sessions() { # want seconds logs...
	local want="$1" deadline=$((SECONDS + $2)) total f
	shift 2
	while :; do
		total=0
		for f in "$@"; do total=$((total + $(count_log "$f" | cut -d' ' -f1))); done
		((total >= want)) && return 0
		((SECONDS >= deadline)) && return 1
		sleep 0.1
	done
}

balance_table() { # title logs...: prints per-backend sessions/messages; sets MIN MAX
	local title="$1" i=0 f s m
	shift
	MIN=-1
	MAX=0
	say "$title"
	printf 'recipe:   %-28s %9s %9s\n' log sessions messages
	for f in "$@"; do
		read -r s m < <(count_log "$f")
		printf 'recipe:   %-28s %9d %9d\n' "$(basename "$f")" "$s" "$m"
		((MIN < 0 || m < MIN)) && MIN=$m
		((m > MAX)) && MAX=$m
		i=$((i + 1))
	done
}

# the restart demonstration, shared by both modes:
#   restart_demo URL INDEX RESTART-FUNCTION
# holds 4N long-lived connections, stops backend INDEX, checks new connections while
# it is down, restarts it (RESTART-FUNCTION), checks it gets new connections again.
restart_demo() {
	local url="$1" k="$2" restart="$3" holdpid r lost survivors min_after skip down_ok
	local ready="$OUT/hold.ready" mark="$OUT/hold.mark" conns=$((4 * N))
	rm -f "$ready" "$mark"
	start_bg hold "$OUT/hold.out" "${CLIENT[@]}" hold --url "$url" --conns "$conns" \
		--secs 8 --interval 0.1 --ready "$ready" --mark "$mark"
	holdpid=$STARTED
	local deadline=$((SECONDS + 20))
	until [[ -f "$ready" ]] || ((SECONDS >= deadline)) || ! ours "$holdpid"; do sleep 0.05; done
	expect "$conns long-lived connections open and echoing" test -f "$ready"

	skip=$(wc -l <"${BLOG[$k]}")
	say "stopping backend $k (pid ${BPID[$k]}) with SIGTERM"
	stop_pid "${BPID[$k]}" TERM
	: >"$mark"
	# the sessions it was serving when it stopped: its CLOSED lines written at shutdown
	read -r lost _ < <(count_log "${BLOG[$k]}" "$skip")
	say "backend $k closed $lost held connection(s) as it stopped"

	if [[ -n "${WAIT_DOWN:-}" ]]; then $WAIT_DOWN "$k"; fi
	r=$("${CLIENT[@]}" burst --url "$url" --conns "$((3 * N))" --messages 20 2>&1 || true)
	expect "while backend $k is down every new connection succeeds: $r" burst_ok "$r" $((3 * N))

	$restart "$k"
	# enough connections that SO_REUSEPORT's hashing reaches every process
	r=$("${CLIENT[@]}" burst --url "$url" --conns "$((10 * N))" --messages 5 2>&1 || true)
	expect "after the restart: $r" burst_ok "$r" $((10 * N))
	wait_sessions 1 10 "${BLOG[$k]}" || true
	local s
	read -r s _ < <(count_log "${BLOG[$k]}")
	expect "the restarted backend $k gets new connections again ($s)" arith "$s > 0"

	deadline=$((SECONDS + 30))
	while ours "$holdpid" && ((SECONDS < deadline)); do sleep 0.1; done
	stop_pid "$holdpid"
	r=$(grep '^hold:' "$OUT/hold.out" | tail -1)
	say "long-lived connections: $r"
	survivors=$(sed -n 's/.* survived=\([0-9]*\).*/\1/p' <<<"$r")
	min_after=$(sed -n 's/.* min_after_mark=\([0-9]*\).*/\1/p' <<<"$r")
	expect "only the connections on backend $k were lost ($lost of $conns)" \
		arith "${survivors:--1} == conns - lost && lost < conns"
	expect "every surviving connection kept echoing after the restart (min $min_after messages)" \
		arith "${min_after:-0} > 0"
	rm -f "$ready" "$mark"
}

# ------------------------------------------------------------------ HAProxy

HAPID=""
STATS_PORT=""
write_haproxy_cfg() { # frontend-port stats-port backend-ports...
	local fport="$1" sport="$2" i=1 p
	shift 2
	{
		cat <<EOF
# written by examples/haproxy-recipe.sh
global
	maxconn 4096

defaults
	mode http
	timeout connect 2s
	timeout client 30s
	timeout server 30s
	# an upgraded WebSocket connection is a tunnel: this bounds its idle time
	timeout tunnel 1h
	timeout http-request 5s
	# a connection refused by a backend that just went away goes to another one
	retries 2
	option redispatch

frontend ws_in
	bind 127.0.0.1:$fport
	default_backend echo

backend echo
	balance roundrobin
	# test-echo answers no plain GET: check with a WebSocket upgrade instead
	option httpchk
	http-check send meth GET uri / ver HTTP/1.1 hdr Host localhost hdr Upgrade websocket hdr Connection Upgrade hdr Sec-WebSocket-Key dGhlIHNhbXBsZSBub25jZQ== hdr Sec-WebSocket-Version 13
	http-check expect status 101
	default-server inter 500ms fall 2 rise 2
EOF
		for p in "$@"; do
			echo "	server b$i 127.0.0.1:$p check"
			i=$((i + 1))
		done
		cat <<EOF

listen stats
	bind 127.0.0.1:$sport
	stats enable
	stats uri /stats
EOF
	} >"$OUT/haproxy.cfg"
}

server_status() { # backend-index: HAProxy's status of server b<index>
	curl -s -m 2 "http://127.0.0.1:$STATS_PORT/stats;csv" |
		awk -F, -v s="b$1" '$1 == "echo" && $2 == s { print $18 }'
}

wait_status() { # index UP|DOWN seconds
	local deadline=$((SECONDS + $3)) st
	while :; do
		st=$(server_status "$1")
		[[ "$st" == "$2" ]] && return 0
		((SECONDS >= deadline)) && return 1
		sleep 0.1
	done
}

start_haproxy() { # frontend-port backend-count
	haproxy -c -q -f "$OUT/haproxy.cfg" || { echo "haproxy-recipe: bad haproxy.cfg" >&2; exit 1; }
	start_bg haproxy "$OUT/haproxy.log" haproxy -db -f "$OUT/haproxy.cfg"
	HAPID=$STARTED
	wait_port "$1" 10 || { echo "haproxy-recipe: haproxy did not start" >&2; exit 1; }
	local i
	for ((i = 1; i <= $2; i++)); do
		wait_status "$i" UP 10 || { echo "haproxy-recipe: b$i not UP" >&2; exit 1; }
	done
}

haproxy_wait_down() {
	expect "HAProxy's health check marks b$1 DOWN" wait_status "$1" DOWN 10
}

haproxy_restart_backend() {
	start_backend "$1" "${BPORT[$1]}" "$OUT/backend-$1-restarted.log"
	wait_port "${BPORT[$1]}" 10 || true
	expect "backend $1 restarted; HAProxy marks it UP again" wait_status "$1" UP 10
}

declare -A BPORT=()
haproxy_mode() {
	say "== HAProxy in front of $N test-echo processes =="
	local ports i
	ports=($(free_ports $((N + 2))))
	FPORT=${ports[0]}
	STATS_PORT=${ports[1]}
	BLOG=()
	BPID=()
	for ((i = 1; i <= N; i++)); do
		BPORT[$i]=${ports[$((i + 1))]}
		start_backend "$i" "${BPORT[$i]}" "$OUT/backend-$i.log"
	done
	for ((i = 1; i <= N; i++)); do
		wait_port "${BPORT[$i]}" 10 || { echo "haproxy-recipe: backend $i did not start" >&2; exit 1; }
	done
	write_haproxy_cfg "$FPORT" "$STATS_PORT" $(for ((i = 1; i <= N; i++)); do echo "${BPORT[$i]}"; done)
	start_haproxy "$FPORT" "$N"
	say "HAProxy on ws://127.0.0.1:$FPORT/ (stats http://127.0.0.1:$STATS_PORT/stats), backends ${BPORT[*]}"

	local conns=$((4 * N)) r logs=()
	for ((i = 1; i <= N; i++)); do logs+=("${BLOG[$i]}"); done
	r=$("${CLIENT[@]}" burst --url "ws://127.0.0.1:$FPORT/" --conns "$conns" --messages 50 2>&1 || true)
	expect "through HAProxy: $r" burst_ok "$r" "$conns"
	wait_sessions "$conns" 10 "${logs[@]}" || true
	balance_table "messages per backend (from their logs):" "${logs[@]}"
	expect "balanced: every backend served messages, the busiest at most twice the least busy ($MIN..$MAX)" \
		arith "MIN > 0 && MAX <= 2 * MIN"

	WAIT_DOWN=haproxy_wait_down restart_demo "ws://127.0.0.1:$FPORT/" 1 haproxy_restart_backend
	stop_pid "$HAPID"
	for i in "${!BPID[@]}"; do stop_pid "${BPID[$i]}"; done
}

# ------------------------------------------------------------------ SO_REUSEPORT

reuseport_restart_backend() {
	start_backend "$1" "$RPORT" "$OUT/reuseport-$1-restarted.log" reuseport
	sleep 0.3
	expect "process $1 restarted on the shared port $RPORT" ours "${BPID[$1]}"
}

reuseport_mode() {
	say "== $N test-echo processes sharing one port (LWS_REUSEPORT=1) =="
	local i r
	RPORT=$(free_ports 1)
	BLOG=()
	BPID=()
	for ((i = 1; i <= N; i++)); do
		start_backend "$i" "$RPORT" "$OUT/reuseport-$i.log" reuseport
	done
	wait_port "$RPORT" 10 || { echo "haproxy-recipe: nothing listens on $RPORT" >&2; exit 1; }
	sleep 0.3
	local alive=0
	for ((i = 1; i <= N; i++)); do ours "${BPID[$i]}" && alive=$((alive + 1)); done
	expect "$N processes listening on port $RPORT together" arith "alive == N"

	# the kernel hashes each new connection to one of the sockets: 20 per process
	# make it practically certain that every process gets some
	local conns=$((20 * N)) logs=()
	for ((i = 1; i <= N; i++)); do logs+=("${BLOG[$i]}"); done
	r=$("${CLIENT[@]}" burst --url "ws://127.0.0.1:$RPORT/" --conns "$conns" --messages 20 2>&1 || true)
	expect "direct to the shared port: $r" burst_ok "$r" "$conns"
	wait_sessions "$conns" 10 "${logs[@]}" || true
	balance_table "messages per process (from their logs):" "${logs[@]}"
	expect "every process served connections ($MIN..$MAX messages)" arith "MIN > 0"

	WAIT_DOWN="" restart_demo "ws://127.0.0.1:$RPORT/" 1 reuseport_restart_backend
	for i in "${!BPID[@]}"; do stop_pid "${BPID[$i]}"; done
}

# ------------------------------------------------------------------ throughput

bench() {
	local wsload_dir="$ROOT/../shared/tools/wsload"
	[[ -f "$wsload_dir/Cargo.toml" ]] || { echo "haproxy-recipe: --bench needs $wsload_dir" >&2; exit 1; }
	cargo build -q --release --manifest-path "$wsload_dir/Cargo.toml" --target-dir "$ROOT/target/wsload"
	local W="$ROOT/target/wsload/release/wsload" ports i r round rounds="${BENCH_ROUNDS:-1}"
	declare -A RATES=() CPUS=()
	local labels=("1 process" "2 processes, SO_REUSEPORT" "HAProxy + 1 backend" "HAProxy + 2 backends")
	local hz
	hz=$(getconf CLK_TCK)
	cpu_ticks() { # pids...: utime + stime of those processes, in clock ticks
		local pid sum=0 f
		for pid in "$@"; do
			# fields 14 and 15, counted after the ")" that ends the command name
			f=($(sed 's/^.*) //' "/proc/$pid/stat"))
			sum=$((sum + f[11] + f[12]))
		done
		echo "$sum"
	}
	run_load() { # label url server-pids...: one wsload run, with the servers' CPU time
		local label="$1" url="$2" rate msgs t0 t1 cpu
		shift 2
		t0=$(cpu_ticks "$@")
		r=$("$W" echo -u "$url" -c 100 -s 64 -d 16 -t "$BENCH_SECS" -w 0 -l "${label// /-}" \
			2>/dev/null | grep '^RESULT' || true)
		t1=$(cpu_ticks "$@")
		rate=$(sed -n 's/.* msgs_per_s=\([0-9]*\).*/\1/p' <<<"$r")
		msgs=$(sed -n 's/.* msgs=\([0-9]*\).*/\1/p' <<<"$r")
		# server-side CPU per message (connection set-up included: a slight overestimate)
		cpu=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v m="${msgs:-0}" \
			'BEGIN { if (m > 0) printf "%.2f", t * 1e6 / hz / m; else print "?" }')
		printf 'recipe:   %-28s %10s msgs/s  p50 %7s us  p99 %8s us  server CPU %5s us/msg  errors %s\n' \
			"$label" "${rate:-?}" \
			"$(sed -n 's/.* p50_us=\([0-9.]*\).*/\1/p' <<<"$r")" \
			"$(sed -n 's/.* p99_us=\([0-9.]*\).*/\1/p' <<<"$r")" \
			"$cpu" "$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$r")"
		echo "$r server_cpu_us_per_msg=$cpu" >>"$OUT/bench.txt"
		RATES[$label]="${RATES[$label]:-} ${rate:-0}"
		CPUS[$label]="${CPUS[$label]:-} $cpu"
	}
	: >"$OUT/bench.txt"
	say "echo throughput, 64-byte messages, 100 connections, depth 16, ${BENCH_SECS}s each," \
		"$rounds round(s), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	ports=($(free_ports 5))
	for ((round = 1; round <= rounds; round++)); do
		((rounds > 1)) && say "round $round"
		start_backend 1 "${ports[0]}" "$OUT/bench-1.log"
		wait_port "${ports[0]}" 10
		run_load "${labels[0]}" "ws://127.0.0.1:${ports[0]}/" "${BPID[1]}"
		stop_pid "${BPID[1]}"

		for i in 1 2; do start_backend "$i" "${ports[1]}" "$OUT/bench-rp-$i.log" reuseport; done
		wait_port "${ports[1]}" 10
		sleep 0.3
		run_load "${labels[1]}" "ws://127.0.0.1:${ports[1]}/" "${BPID[1]}" "${BPID[2]}"
		stop_pid "${BPID[1]}"
		stop_pid "${BPID[2]}"

		for i in 1 2; do
			BPORT[$i]=${ports[$((i + 1))]}
			start_backend "$i" "${BPORT[$i]}" "$OUT/bench-hap-$i.log"
			wait_port "${BPORT[$i]}" 10
		done
		STATS_PORT=${ports[4]}
		write_haproxy_cfg "${ports[0]}" "$STATS_PORT" "${BPORT[1]}"
		start_haproxy "${ports[0]}" 1
		run_load "${labels[2]}" "ws://127.0.0.1:${ports[0]}/" "$HAPID" "${BPID[1]}"
		stop_pid "$HAPID"
		write_haproxy_cfg "${ports[0]}" "$STATS_PORT" "${BPORT[1]}" "${BPORT[2]}"
		start_haproxy "${ports[0]}" 2
		run_load "${labels[3]}" "ws://127.0.0.1:${ports[0]}/" "$HAPID" "${BPID[1]}" "${BPID[2]}"
		stop_pid "$HAPID"
		stop_pid "${BPID[1]}"
		stop_pid "${BPID[2]}"
	done
	if ((rounds > 1)); then
		say "medians of $rounds rounds (load average now $(cut -d' ' -f1-3 /proc/loadavg)):"
		local l
		median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 }
			END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
		for l in "${labels[@]}"; do
			printf 'recipe:   %-28s %10s msgs/s  server CPU %s us/msg\n' "$l" \
				"$(median "${RATES[$l]}")" "$(median "${CPUS[$l]}")"
		done
	fi
	say "raw RESULT lines in $OUT/bench.txt"
}

# ------------------------------------------------------------------ main

if [[ $BENCH == 1 ]]; then
	bench
	exit 0
fi
[[ "$MODE" == haproxy || "$MODE" == both ]] && haproxy_mode
[[ "$MODE" == reuseport || "$MODE" == both ]] && reuseport_mode
if [[ $FAILS -gt 0 ]]; then
	say "$FAILS check(s) failed; logs in $OUT"
	exit 1
fi
say "logs and haproxy.cfg in $OUT"
say "OK"
