#!/usr/bin/env bash
# The demo in a real browser (not part of tests/run-all.sh: it needs Chromium,
# about 100 MB more of packages on a fresh machine):
#
#   bash tests/browser/run.sh
#
# Installs Debian's chromium when it is missing (as root; apt-get), builds the
# library and examples/test-server.c into target/browser/, then runs
# tests/browser/browser_check.py: headless Chromium loads the test server's page in
# two tabs and checks over the DevTools protocol that the counter ticks, the reset
# button works and a mirror message typed in one tab reaches the other. Screenshots
# and logs go to target/browser/. Loopback only; last line "OK" on success.
# NO_BUILD=1 skips cargo build; CHROMIUM=/path/to/chromium picks another browser.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
OUT="$ROOT/target/browser"
mkdir -p "$OUT"

CHROMIUM="${CHROMIUM:-$(command -v chromium || true)}"
if [[ -z "$CHROMIUM" ]]; then
	if [[ "$(id -u)" != 0 ]]; then
		echo "browser: chromium is not installed (apt-get install chromium, as root)" >&2
		exit 1
	fi
	echo "browser: installing chromium"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends chromium >/dev/null
	CHROMIUM="$(command -v chromium)"
fi
python3 -c "import websockets.asyncio.client" 2>/dev/null || {
	echo "browser: python3 needs websockets: pip install -r tests/requirements.txt" >&2
	exit 1
}

[[ "${NO_BUILD:-0}" == 1 ]] || cargo build --release
LIB="$ROOT/target/release"
"${CC:-cc}" -O1 -Wall -Werror -I"$ROOT/include" \
	-DLWS_TEST_HTML="\"$ROOT/examples/test.html\"" \
	-o "$OUT/test-server" examples/test-server.c \
	-L"$LIB" -Wl,-rpath,"$LIB" -lwebsockets

echo "browser: $("$CHROMIUM" --version 2>/dev/null | head -1)"
exec timeout -k 10 300 python3 tests/browser/browser_check.py \
	--server "$OUT/test-server" --chromium "$CHROMIUM" --out "$OUT"
