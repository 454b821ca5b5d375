# Helpers shared by benches/run.sh, run-ext.sh, run-threads.sh and the profile-*.sh
# probes (sourced, not run):
# the command line, process bookkeeping and cleanup traps, free ports, /proc readings,
# result lines. The caller
# defines log() first and sets PORT_BASE, USED_PORTS and RAW (record's output file).
# shellcheck shell=bash

# ---------------------------------------------------------------- command line
# parse_mode HELP_LAST_LINE ARGS...: MODE=full, or smoke with --smoke; --help prints the
# script's header comment (lines 2..HELP_LAST_LINE) and exits; anything else is an error.
parse_mode() {
	local help_end="$1" arg
	shift
	MODE=full
	for arg in "$@"; do
		case "$arg" in
		--smoke) MODE=smoke ;;
		-h | --help)
			sed -n "2,${help_end}p" "$0" | sed 's/^# \{0,1\}//'
			exit 0
			;;
		*)
			echo "$(basename "$0"): unknown argument '$arg' (only --smoke)" >&2
			exit 2
			;;
		esac
	done
}

# ---------------------------------------------------------------- process bookkeeping
PIDS=()

# stop_pid PID: SIGTERM, up to 5 s, then SIGKILL; always reaps
stop_pid() {
	local pid="$1" i
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
	local pid="$1" keep=() p
	for p in "${PIDS[@]}"; do
		[[ $p == "$pid" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# pick_port: sets PORT to the first port from PORT_BASE that nobody listens on and that
# this run has not used yet (a variable, not output: a $(...) subshell would lose USED_PORTS)
pick_port() {
	local p="$PORT_BASE" listening
	listening=" $(ss -Hltn | awk '{n=split($4,a,":"); printf "%s ", a[n]}')"
	while [[ $listening == *" $p "* || $USED_PORTS == *" $p "* ]]; do
		p=$((p + 1))
	done
	USED_PORTS+="$p "
	PORT="$p"
}

# alive PID: the process exists and is not a zombie
alive() {
	local st
	st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	st="${st##*) }"
	[[ ${st:0:1} != Z ]]
}

# core_busy N: busy jiffies of cpuN from /proc/stat (all but idle and iowait)
core_busy() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

stop_server() {
	stop_pid "$1"
	forget_pid "$1"
}

# record LINE EXTRA...: appends a RESULT line (or a placeholder) with extra fields to raw.txt
record() {
	local line="$1"
	shift
	echo "$line $*" >>"$RAW"
	echo "$line $*"
}

# cpu_ticks_split PID: "utime+stime utime" of the process (fields 14, 15 of
# /proc/PID/stat) from one read; "-1 -1" when it is gone
cpu_ticks_split() {
	local s f
	s="$(cat "/proc/$1/stat" 2>/dev/null)" || {
		echo "-1 -1"
		return
	}
	s="${s##*) }" # fields from 3 on
	read -r -a f <<<"$s"
	echo "$((f[11] + f[12])) $((f[11]))"
}

# cpu_ticks PID: utime+stime of the process, -1 when it is gone
cpu_ticks() {
	local total user
	read -r total user <<<"$(cpu_ticks_split "$1")"
	echo "$total"
}

# ---------------------------------------------------------------- callgrind probes
# build_profiled_echo_v1 ROOT OUT: the library with symbols (the release profile
# unstripped, in OUT/release) and OUT/echo-v1 (shared/tools/wsload/servers/echo-v1.c)
# linked against it; for benches/profile-echo.sh and profile-handshake.sh.
build_profiled_echo_v1() {
	local root="$1" out="$2"
	mkdir -p "$out"
	CARGO_PROFILE_RELEASE_STRIP=none cargo build --release --lib --target-dir "$out" >&2
	cc -O2 -Wall -I "$root/include" -o "$out/echo-v1" "$root/../shared/tools/wsload/servers/echo-v1.c" \
		-L "$out/release" -Wl,-rpath,"$out/release" -lwebsockets
}
