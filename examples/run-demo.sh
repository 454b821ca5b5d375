#!/usr/bin/env bash
# The demo: builds the library, then
#   - if examples/test-server.c exists, compiles it against the library and runs it
#     (the test server listens on http://localhost:7681/; arguments are passed on);
#   - otherwise compiles and runs examples/version-demo.c (library version, SHA-1
#     and base64 round trip).
# Binaries go to target/demo/. Runs from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo build --release
LIB="$ROOT/target/release"
OUT="$ROOT/target/demo"
mkdir -p "$OUT"
CC="${CC:-cc}"

build() { # source output
	"$CC" -I"$ROOT/include" -o "$2" "$1" -L"$LIB" -lwebsockets \
		-Wl,-rpath,"$LIB" ${EXAMPLE_CFLAGS:-}
}

if [[ -f examples/test-server.c ]]; then
	build examples/test-server.c "$OUT/test-server"
	echo "run-demo: starting the test server on http://localhost:7681/ (Ctrl-C stops it)"
	exec "$OUT/test-server" "$@"
fi

build examples/version-demo.c "$OUT/version-demo"
exec "$OUT/version-demo" "$@"
