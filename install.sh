#!/usr/bin/env bash
# Installs the library, its header and a pkg-config file:
#
#   PREFIX/lib/libwebsockets.so.4.0.0     the shared library (its SONAME)
#   PREFIX/lib/libwebsockets.so           symlink to it, for -lwebsockets at link time
#   PREFIX/lib/libwebsockets.a            the static library
#   PREFIX/include/libwebsockets.h        the header
#   PREFIX/lib/pkgconfig/libwebsockets.pc
#
#   ./install.sh                                 # PREFIX=/usr/local
#   PREFIX=/opt/lws ./install.sh
#   DESTDIR=/tmp/stage PREFIX=/usr ./install.sh  # staged (packaging): files go under
#                                                # DESTDIR, the .pc names PREFIX
#
# Variables: PREFIX (default /usr/local), DESTDIR (default empty), LIBDIR (default
# PREFIX/lib), INCLUDEDIR (default PREFIX/include), BUILD_DIR (where the built
# libraries are; default target/release), NO_BUILD=1 (do not run
# `cargo build --release` first; needed when installing as a user without cargo).
# uninstall.sh, given the same variables, removes exactly these five files.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"

PREFIX="${PREFIX:-/usr/local}"
DESTDIR="${DESTDIR:-}"
LIBDIR="${LIBDIR:-$PREFIX/lib}"
INCLUDEDIR="${INCLUDEDIR:-$PREFIX/include}"
BUILD_DIR="${BUILD_DIR:-$ROOT/target/release}"
SONAME=libwebsockets.so.4.0.0

die() {
	echo "install.sh: $*" >&2
	exit 1
}

for v in PREFIX LIBDIR INCLUDEDIR; do
	[[ "${!v}" == /* ]] || die "$v must be an absolute path (got '${!v}')"
done

if [[ "${NO_BUILD:-0}" != 1 ]]; then
	command -v cargo >/dev/null ||
		die "cargo not found: build first (cargo build --release), then run with NO_BUILD=1"
	cargo build --release
fi

for f in libwebsockets.so libwebsockets.a; do
	[[ -f "$BUILD_DIR/$f" ]] || die "$BUILD_DIR/$f is missing: run cargo build --release"
done
[[ -f include/libwebsockets.h ]] || die "include/libwebsockets.h is missing"

# The pkg-config Version is the first token of lws_get_library_version() ("1.3 <hash>"),
# which the library builds from this literal.
VERSION="$(sed -n 's/.*LIBRARY_VERSION: &str = concat!("\([0-9][0-9.]*\) ".*/\1/p' \
	src/capi/util_exports.rs)"
[[ -n "$VERSION" ]] || die "cannot find the library version in src/capi/util_exports.rs"

lib="$DESTDIR$LIBDIR"
inc="$DESTDIR$INCLUDEDIR"
pc="$lib/pkgconfig"
install -d -m 0755 "$lib" "$inc" "$pc"

# A new file under the SONAME, then rename: a running program keeps the old inode.
install -m 0755 "$BUILD_DIR/libwebsockets.so" "$lib/.$SONAME.tmp$$"
mv -f "$lib/.$SONAME.tmp$$" "$lib/$SONAME"
ln -sfn "$SONAME" "$lib/libwebsockets.so"
install -m 0644 "$BUILD_DIR/libwebsockets.a" "$lib/libwebsockets.a"
install -m 0644 include/libwebsockets.h "$inc/libwebsockets.h"

# ${prefix}-relative paths when LIBDIR/INCLUDEDIR sit under PREFIX, so that
# pkg-config --define-prefix and relocated trees keep working.
pc_libdir="$LIBDIR"
pc_includedir="$INCLUDEDIR"
[[ "$LIBDIR" == "$PREFIX"/* ]] && pc_libdir="\${prefix}${LIBDIR#"$PREFIX"}"
[[ "$INCLUDEDIR" == "$PREFIX"/* ]] && pc_includedir="\${prefix}${INCLUDEDIR#"$PREFIX"}"

# Libs.private: what the static library needs besides libc, from
# `rustc --print native-static-libs` (-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc).
# -lc and -lgcc_s are left to the compiler driver, which adds them itself (and
# links libgcc_eh instead of libgcc_s with -static); -lutil and -lrt are kept for
# C libraries older than glibc 2.34, where they were separate.
tmp_pc="$pc/.libwebsockets.pc.tmp$$"
cat >"$tmp_pc" <<EOF
prefix=$PREFIX
exec_prefix=\${prefix}
libdir=$pc_libdir
includedir=$pc_includedir

Name: libwebsockets
Description: WebSocket client and server library (libwebsockets v1.23 API and ABI, in Rust)
URL: https://libwebsockets.org
Version: $VERSION
Libs: -L\${libdir} -lwebsockets
Libs.private: -lpthread -ldl -lm -lrt -lutil
Cflags: -I\${includedir}
EOF
chmod 0644 "$tmp_pc"
mv -f "$tmp_pc" "$pc/libwebsockets.pc"

# Refresh the loader cache for a real (not staged) install as root.
if [[ -z "$DESTDIR" && "$(id -u)" == 0 ]] && command -v ldconfig >/dev/null; then
	ldconfig || true
fi

echo "install.sh: installed libwebsockets $VERSION into ${DESTDIR}${PREFIX}"
for f in "$lib/$SONAME" "$lib/libwebsockets.so" "$lib/libwebsockets.a" \
	"$inc/libwebsockets.h" "$pc/libwebsockets.pc"; do
	echo "  $f"
done
