#!/usr/bin/env bash
# Instruction and allocation profile of the library per connection (issue 17 item 2):
# accept, opening handshake, close handshake, TCP close. Deterministic enough to compare
# changes on a busy machine (wall time is not).
#
#   benches/profile-handshake.sh [CONNS]
#
# Builds the library with symbols (target/profile, the release profile unstripped), links
# shared/tools/wsload/servers/echo-v1.c against it and runs it under
# `valgrind --tool=callgrind`. A sequential client (Python, raw sockets) makes WARM
# (default 100) connections, the counters are zeroed (callgrind_control -z), then CONNS
# (default 1000) more are made and the counters dumped: only those CONNS cycles are in
# the profile. Each cycle is wsload's handshake cycle (the same request bytes): connect,
# upgrade request, read the 101, masked close frame (1000), read to EOF, close.
# Output: target/profile/handshake.json (first line of benches/callgrind_dso.py --units:
# ir_lib_per_unit, ir_libc_per_unit, allocs_per_unit = calls to malloc/calloc/realloc per
# connection from every object) and target/profile/handshake.txt (that plus the top
# functions of the library, then of libc, by self Ir per connection).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONNS="${1:-1000}"
WARM="${WARM:-100}"
OUT="$ROOT/target/profile"
WSLOAD_DIR="$ROOT/../shared/tools/wsload"
mkdir -p "$OUT"
CARGO_PROFILE_RELEASE_STRIP=none cargo build --release --lib --target-dir "$OUT" >&2
cc -O2 -Wall -I "$ROOT/include" -o "$OUT/echo-v1" "$WSLOAD_DIR/servers/echo-v1.c" \
	-L "$OUT/release" -Wl,-rpath,"$OUT/release" -lwebsockets
PORT="${PROFILE_PORT:-19750}"
while ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$"; do PORT=$((PORT + 1)); done
CG="$OUT/callgrind-hs.out"
rm -f "$CG" "$CG".*
valgrind --tool=callgrind --callgrind-out-file="$CG" "$OUT/echo-v1" "$PORT" 0 \
	>"$OUT/server-hs.log" 2>&1 &
SP=$!
trap 'kill -TERM $SP 2>/dev/null || true' EXIT
for ((i = 0; i < 300; i++)); do
	ss -Hltn | awk '{print $4}' | grep -q ":$PORT\$" && break
	kill -0 $SP 2>/dev/null || { echo "server died" >&2; cat "$OUT/server-hs.log" >&2; exit 1; }
	sleep 0.1
done
cycles() {
	timeout 600 python3 - "$PORT" "$1" <<'EOF'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
req = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n\r\n").encode()
mask = b"\x37\xfa\x21\x3d"
close = bytes([0x88, 0x82]) + mask + bytes(b ^ mask[i] for i, b in enumerate(b"\x03\xe8"))
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(req)
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(4096)
        if not b:
            sys.exit(f"cycle {i}: EOF before the 101")
        head += b
    if not head.startswith(b"HTTP/1.1 101 "):
        sys.exit(f"cycle {i}: {head[:40]!r}")
    s.sendall(close)
    rest = head[head.index(b"\r\n\r\n") + 4:]
    while True:
        b = s.recv(4096)
        if not b:
            break
        rest += b
    if rest[:2] != b"\x88\x02":
        sys.exit(f"cycle {i}: no close frame ({rest[:8]!r})")
    s.close()
EOF
}
cycles "$WARM"
callgrind_control -z "$SP" >/dev/null
cycles "$CONNS"
callgrind_control -d "$SP" >/dev/null
kill -INT $SP
for ((i = 0; i < 100; i++)); do kill -0 $SP 2>/dev/null || break; sleep 0.1; done
wait $SP 2>/dev/null || true
trap - EXIT
DUMP="$(ls "$CG".* | head -1)"
{
	python3 "$ROOT/benches/callgrind_dso.py" "$DUMP" libwebsockets.so 30 --units "$CONNS"
	echo "-- libc"
	python3 "$ROOT/benches/callgrind_dso.py" "$DUMP" libc.so 12 --units "$CONNS" | tail -n +2
} >"$OUT/handshake.txt"
head -1 "$OUT/handshake.txt" >"$OUT/handshake.json"
cat "$OUT/handshake.txt"
