#!/usr/bin/env bash
# The project's test command. Runs from any directory:
#   1. cargo build --release         (the .so/.a and include/libwebsockets.h)
#   2. header staleness               (the build must not change the committed header)
#   3. cargo fmt --check
#   4. cargo clippy --all-targets --release -- -D warnings
#   5. cargo test --release           (unit tests and every tests/*.rs)
#   6. benches/run.sh --smoke,        (the benchmark harnesses still run; no speed judged)
#      benches/run-ext.sh --smoke and benches/run-threads.sh --smoke
#   7. bash fuzz/run-short.sh 10      (every fuzz target for 10 s, stable, no sanitizer)
# A failed build stops the run; the other steps all run and are summed up in the last
# line, "run-all: N passed, M failed". Each step is bounded by RUN_ALL_STEP_TIMEOUT
# seconds (default 2400). Exit status 0 only when every step passed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STEP_TIMEOUT="${RUN_ALL_STEP_TIMEOUT:-2400}"
passed=0
failed=0
skipped=0
failed_steps=()
results=()

elapsed_since() {
	echo $(($(date +%s) - $1))
}

record() { # name status seconds
	results+=("$(printf '%-8s %-5s %4ss' "$1" "$2" "$3")")
	case "$2" in
	PASS) passed=$((passed + 1)) ;;
	FAIL) failed=$((failed + 1)); failed_steps+=("$1") ;;
	SKIP) skipped=$((skipped + 1)) ;;
	esac
}

# step NAME COMMAND... : runs the command under the step timeout.
step() {
	local name="$1" start rc=0
	shift
	echo
	echo "==> [$name] $*"
	start=$(date +%s)
	timeout -k 30 "$STEP_TIMEOUT" "$@" || rc=$?
	if [[ $rc -eq 0 ]]; then
		record "$name" PASS "$(elapsed_since "$start")"
	else
		if [[ $rc -eq 124 || $rc -eq 137 ]]; then
			echo "run-all: [$name] timed out after ${STEP_TIMEOUT}s" >&2
		else
			echo "run-all: [$name] failed (exit status $rc)" >&2
		fi
		record "$name" FAIL "$(elapsed_since "$start")"
	fi
	return 0
}

summary() {
	echo
	echo "==> summary"
	local r
	for r in "${results[@]}"; do
		echo "  $r"
	done
	if [[ $failed -gt 0 ]]; then
		echo "  failed: ${failed_steps[*]}"
	fi
	if [[ $skipped -gt 0 ]]; then
		echo "run-all: $passed passed, $failed failed, $skipped skipped"
	else
		echo "run-all: $passed passed, $failed failed"
	fi
}

# 1. build
step build cargo build --release
if [[ $failed -gt 0 ]]; then
	echo "run-all: the build failed; nothing else can be checked" >&2
	summary
	exit 1
fi

# 2. the build regenerates include/libwebsockets.h: it must equal the committed one
echo
echo "==> [header] git diff --exit-code -- include/libwebsockets.h"
start=$(date +%s)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
	[[ "$(git rev-parse --show-toplevel)" == "$ROOT" ]]; then
	if ! git ls-files --error-unmatch include/libwebsockets.h >/dev/null 2>&1; then
		echo "run-all: include/libwebsockets.h is not tracked by git: add and commit it" >&2
		record header FAIL "$(elapsed_since "$start")"
	elif git --no-pager diff --exit-code --stat -- include/libwebsockets.h; then
		record header PASS "$(elapsed_since "$start")"
	else
		echo "run-all: include/libwebsockets.h differs from the committed one after the" >&2
		echo "  build regenerated it: the header is stale (commit the regenerated file," >&2
		echo "  or check what in src/ or cbindgen.toml changed it: git diff include/)" >&2
		record header FAIL "$(elapsed_since "$start")"
	fi
else
	echo "run-all: not a git checkout; header staleness check skipped"
	record header SKIP 0
fi

# 3-6.
step fmt cargo fmt --all -- --check
step clippy cargo clippy --all-targets --release -- -D warnings
step test cargo test --release --no-fail-fast
# every harness runs even when one fails; the step fails when any does
step bench-smoke bash -c 'rc=0; bash benches/run.sh --smoke || rc=1; bash benches/run-ext.sh --smoke || rc=1; bash benches/run-threads.sh --smoke || rc=1; exit $rc'
step fuzz-short bash fuzz/run-short.sh 10

summary
[[ $failed -eq 0 ]]
