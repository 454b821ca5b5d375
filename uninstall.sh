#!/usr/bin/env bash
# Removes what install.sh installed, given the same PREFIX / DESTDIR / LIBDIR /
# INCLUDEDIR (defaults as there):
#
#   PREFIX/lib/libwebsockets.so.4.0.0, PREFIX/lib/libwebsockets.so,
#   PREFIX/lib/libwebsockets.a, PREFIX/include/libwebsockets.h,
#   PREFIX/lib/pkgconfig/libwebsockets.pc
#
# Exactly those five paths, nothing else: directories stay, even when empty.
# The libwebsockets.so link is removed only when it is a symlink (a real file of
# that name is someone else's) and the .pc only when it is ours (names the Rust
# implementation); anything left alone is reported and makes the exit status 1.
set -euo pipefail

PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
LIBDIR="${LIBDIR:-$PREFIX/lib}"
INCLUDEDIR="${INCLUDEDIR:-$PREFIX/include}"
SONAME=libwebsockets.so.4.0.0

lib="$DESTDIR$LIBDIR"
inc="$DESTDIR$INCLUDEDIR"
kept=0

remove() { # path
	if [[ -e "$1" || -L "$1" ]]; then
		rm -f -- "$1"
		echo "  removed $1"
	fi
}

keep() { # path why
	echo "uninstall.sh: left $1 alone: $2" >&2
	kept=1
}

remove "$lib/$SONAME"
if [[ -L "$lib/libwebsockets.so" ]]; then
	remove "$lib/libwebsockets.so"
elif [[ -e "$lib/libwebsockets.so" ]]; then
	keep "$lib/libwebsockets.so" "not a symlink, so not installed by install.sh"
fi
remove "$lib/libwebsockets.a"
remove "$inc/libwebsockets.h"
pcfile="$lib/pkgconfig/libwebsockets.pc"
if [[ -e "$pcfile" ]]; then
	if grep -q 'in Rust)' "$pcfile"; then
		remove "$pcfile"
	else
		keep "$pcfile" "not written by install.sh"
	fi
fi

if [[ -z "$DESTDIR" && "$(id -u)" == 0 ]] && command -v ldconfig >/dev/null; then
	ldconfig || true
fi
echo "uninstall.sh: done (${DESTDIR}${PREFIX})"
exit "$kept"
