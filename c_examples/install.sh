#!/bin/sh
# install.sh PREFIX: install the built rmsprop library for C and C++ consumers.
#
#   PREFIX/include/rmsprop.h, rmsprop.hpp
#   PREFIX/lib/librmsprop.so, librmsprop.a
#   PREFIX/lib/pkgconfig/rmsprop.pc, rmsprop-static.pc
#   PREFIX/lib/cmake/rmsprop/rmsprop-config.cmake, rmsprop-config-version.cmake
#
# Build the library first: cargo build --release --lib
# Environment:
#   RMSPROP_LIB_DIR  where librmsprop.so/.a are (default: $CARGO_TARGET_DIR/release, else
#                    <repository>/target/release)
#   LIBDIR           library directory under PREFIX (default: lib), e.g. lib64
#   DESTDIR          staging root prepended to every path written (packaging)
# Then: find_package(rmsprop CONFIG) with CMAKE_PREFIX_PATH=PREFIX, or
#       PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs rmsprop
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: install.sh PREFIX"
case "$1" in
  /*) PREFIX=$1 ;;
  *) PREFIX=$(pwd)/$1 ;;
esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "refusing to install into /"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
LIBDIR=${LIBDIR:-lib}
case "$LIBDIR" in /*|*..*|"") die "LIBDIR must be a relative path below PREFIX, got '$LIBDIR'" ;; esac
INCLUDEDIR=include
case "$PREFIX$LIBDIR" in *'|'*|*' '*) die "PREFIX and LIBDIR must not contain '|' or spaces (pkg-config cannot quote them)" ;; esac
if [ -n "${RMSPROP_LIB_DIR:-}" ]; then
  BUILT=$RMSPROP_LIB_DIR
elif [ -n "${CARGO_TARGET_DIR:-}" ]; then
  BUILT=$CARGO_TARGET_DIR/release
else
  BUILT=$ROOT/target/release
fi
for f in "$BUILT/librmsprop.so" "$BUILT/librmsprop.a" "$ROOT/include/rmsprop.h" "$ROOT/include/rmsprop.hpp"; do
  [ -f "$f" ] || die "$f not found: run 'cargo build --release --lib' in $ROOT first (or set RMSPROP_LIB_DIR)"
done

VERSION=$(sed -n 's/^#define RMSPROP_VERSION_STRING "\(.*\)"$/\1/p' "$ROOT/include/rmsprop.h")
[ -n "$VERSION" ] || die "no RMSPROP_VERSION_STRING in $ROOT/include/rmsprop.h"

# What `cargo rustc --release -- --print native-static-libs` prints for the staticlib on
# Linux/glibc, less the implicit -lc.
STATIC_LIBS="gcc_s util rt pthread m dl"
STATIC_LDFLAGS=$(for l in $STATIC_LIBS; do printf -- '-l%s ' "$l"; done | sed 's/ $//')
STATIC_CMAKE=$(echo $STATIC_LIBS | tr ' ' ';')
# From <prefix>/<libdir>/cmake/rmsprop back up to <prefix>.
UP=$(echo "$LIBDIR/cmake/rmsprop" | sed 's|/*$||; s|[^/][^/]*|..|g')
SIZEOF_VOID_P=$(getconf LONG_BIT 2>/dev/null || echo 64)
SIZEOF_VOID_P=$((SIZEOF_VOID_P / 8))

DEST=${DESTDIR:-}$PREFIX
install -d "$DEST/$INCLUDEDIR" "$DEST/$LIBDIR/pkgconfig" "$DEST/$LIBDIR/cmake/rmsprop"
install -m 644 "$ROOT/include/rmsprop.h" "$ROOT/include/rmsprop.hpp" "$DEST/$INCLUDEDIR/"
install -m 755 "$BUILT/librmsprop.so" "$DEST/$LIBDIR/librmsprop.so"
install -m 644 "$BUILT/librmsprop.a" "$DEST/$LIBDIR/librmsprop.a"

subst() {
  # The values contain no '|' (checked for PREFIX below).
  sed -e "s|@RMSPROP_PREFIX@|$PREFIX|g" \
      -e "s|@RMSPROP_LIBDIR@|$LIBDIR|g" \
      -e "s|@RMSPROP_INCLUDEDIR@|$INCLUDEDIR|g" \
      -e "s|@RMSPROP_VERSION@|$VERSION|g" \
      -e "s|@RMSPROP_STATIC_SYSTEM_LIBS_LDFLAGS@|$STATIC_LDFLAGS|g" \
      -e "s|@RMSPROP_STATIC_SYSTEM_LIBS_CMAKE@|$STATIC_CMAKE|g" \
      -e "s|@RMSPROP_CONFIG_TO_PREFIX@|$UP|g" \
      -e "s|@RMSPROP_SIZEOF_VOID_P@|$SIZEOF_VOID_P|g" \
      "$1" > "$2"
  if grep -q '@RMSPROP_[A-Z_]*@' "$2"; then die "unsubstituted placeholder in $2"; fi
  chmod 644 "$2"
}
subst "$ROOT/cmake/rmsprop.pc.in" "$DEST/$LIBDIR/pkgconfig/rmsprop.pc"
subst "$ROOT/cmake/rmsprop-static.pc.in" "$DEST/$LIBDIR/pkgconfig/rmsprop-static.pc"
subst "$ROOT/cmake/rmsprop-config.cmake.in" "$DEST/$LIBDIR/cmake/rmsprop/rmsprop-config.cmake"
subst "$ROOT/cmake/rmsprop-config-version.cmake.in" "$DEST/$LIBDIR/cmake/rmsprop/rmsprop-config-version.cmake"

echo "installed rmsprop $VERSION into $DEST"
