#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 10) on stable Rust, without a
# sanitizer (libFuzzer + Rust's own checks: panics, overflow and debug assertions).
#
#   bash fuzz/run-short.sh [SECS]
#
# Installs cargo-fuzz when it is missing. Each target starts from its committed seeds in
# fuzz/corpus/<target>/ plus a scratch corpus in $FUZZ_WORK_DIR/<target>/ (default
# fuzz/corpus-work/, not committed), so the seeds are never modified. Crash inputs land
# in fuzz/artifacts/<target>/. An input running longer than 10 s counts as a hang.
# Exit status is non-zero if any target crashed, hung or could not be built.
#
# For a long run with AddressSanitizer (nightly flags on stable):
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir target-asan TARGET \
#       corpus-work/TARGET corpus/TARGET -- -max_total_time=600
set -uo pipefail

SECS="${1:-10}"
if ! [[ "$SECS" =~ ^[0-9]+$ ]] || [[ "$SECS" -lt 1 ]]; then
	echo "usage: $0 [SECS]" >&2
	exit 2
fi

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$FUZZ_DIR"
WORK="${FUZZ_WORK_DIR:-$FUZZ_DIR/corpus-work}"

if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "run-short: installing cargo-fuzz"
	cargo install cargo-fuzz --locked || {
		echo "run-short: cannot install cargo-fuzz" >&2
		exit 1
	}
fi

# This script is stable-only: never let an outer RUSTC_BOOTSTRAP switch on ASan flags
# behind our back (the build would then differ from what CI runs).
unset RUSTC_BOOTSTRAP

echo "run-short: building the fuzz targets"
if ! cargo fuzz build --sanitizer none; then
	echo "run-short: building the fuzz targets failed" >&2
	exit 1
fi

mapfile -t TARGETS < <(cargo fuzz list)
if [[ ${#TARGETS[@]} -eq 0 ]]; then
	echo "run-short: no fuzz targets found" >&2
	exit 1
fi

# Larger inputs where the limits under test need them (request heads: 16 KiB).
max_len_for() {
	case "$1" in
	http_request | http_response) echo 20480 ;;
	*) echo 4096 ;;
	esac
}

failed=()
summary=()
for t in "${TARGETS[@]}"; do
	mkdir -p "$WORK/$t" "corpus/$t"
	log="$WORK/$t.log"
	echo
	echo "==> fuzz $t for ${SECS}s"
	rc=0
	# The outer timeout only guards against libFuzzer itself wedging.
	timeout -k 10 $((SECS + 120)) \
		cargo fuzz run --sanitizer none "$t" "$WORK/$t" "corpus/$t" -- \
		-max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$(max_len_for "$t")" -print_final_stats=1 >"$log" 2>&1 || rc=$?
	runs="$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)"
	if [[ $rc -eq 0 ]]; then
		summary+=("$(printf '  %-16s ok      %10s runs' "$t" "${runs:-?}")")
	else
		tail -n 60 "$log"
		what="crash"
		grep -q 'ERROR: libFuzzer: timeout' "$log" && what="hang"
		grep -q 'out-of-memory' "$log" && what="oom"
		[[ $rc -eq 124 || $rc -eq 137 ]] && what="wedged"
		summary+=("$(printf '  %-16s FAILED  (%s, exit %s), log %s' "$t" "$what" "$rc" "$log")")
		failed+=("$t")
	fi
done

echo
echo "==> fuzz summary (${SECS}s per target)"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
	echo "run-short: failed: ${failed[*]} (inputs in $FUZZ_DIR/artifacts/)" >&2
	exit 1
fi
echo "run-short: all ${#TARGETS[@]} targets ran clean"
