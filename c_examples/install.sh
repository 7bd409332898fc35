#!/bin/sh
# install.sh PREFIX: install the built rmsprop library for C and C++ consumers.
#
#   PREFIX/include/rmsprop.h, rmsprop.hpp
#   PREFIX/lib/librmsprop.so.0.1.0          the shared library (stripped), SONAME librmsprop.so.0
#   PREFIX/lib/librmsprop.so.0 -> librmsprop.so.0.1.0   what programs load at run time
#   PREFIX/lib/librmsprop.so   -> librmsprop.so.0       what `-lrmsprop` finds at link time
#   PREFIX/lib/librmsprop.a                 the static library (debug info stripped)
#   PREFIX/lib/pkgconfig/rmsprop.pc, rmsprop-static.pc
#   PREFIX/lib/cmake/rmsprop/rmsprop-config.cmake, rmsprop-config-version.cmake
#   PREFIX/share/doc/rmsprop/LICENSE-MIT, LICENSE-APACHE
#
# (0.1.0 is the crate version; the file is named <SONAME>.<minor>.<patch>.)
#
# Loading the installed library without LD_LIBRARY_PATH: when PREFIX/lib is a directory
# the dynamic linker is configured to search (/usr/local/lib, /usr/lib, ... as listed by
# /etc/ld.so.conf) and DESTDIR is empty, this script runs `ldconfig` (as root) so the new
# library is in the loader's cache at once. Any other prefix is not searched by the loader:
# link with -Wl,-rpath,PREFIX/lib (the script prints the flags), set LD_LIBRARY_PATH, or add
# the directory to /etc/ld.so.conf.d/. Package builds (DESTDIR set) never run ldconfig; the
# package manager does that on installation.
#
# Build the library first: cargo build --release --lib
# Environment:
#   RMSPROP_LIB_DIR  where librmsprop.so/.a are (default: $CARGO_TARGET_DIR/release, else
#                    <repository>/target/release)
#   LIBDIR           library directory under PREFIX (default: lib), e.g. lib64
#   DESTDIR          staging root prepended to every path written (packaging)
#   STRIP            the strip program (default: strip); STRIP=true installs unstripped
#                    files, for package builds that split debug info themselves
#   LDCONFIG         the ldconfig program (default: ldconfig, else /sbin/ldconfig)
# Then: find_package(rmsprop CONFIG) with CMAKE_PREFIX_PATH=PREFIX, or
#       PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs rmsprop
set -eu

die() { echo "install.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: install.sh PREFIX"
[ "$(uname -s)" = Linux ] || die "Linux only (ELF shared objects, SONAME, ldconfig); see docs/packaging.md"
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
STRIP=${STRIP:-strip}
command -v readelf >/dev/null || die "readelf not found (binutils)"

VERSION=$(sed -n 's/^#define RMSPROP_VERSION_STRING "\(.*\)"$/\1/p' "$ROOT/include/rmsprop.h")
[ -n "$VERSION" ] || die "no RMSPROP_VERSION_STRING in $ROOT/include/rmsprop.h"
MINOR=$(sed -n 's/^#define RMSPROP_VERSION_MINOR \([0-9][0-9]*\)$/\1/p' "$ROOT/include/rmsprop.h")
PATCH=$(sed -n 's/^#define RMSPROP_VERSION_PATCH \([0-9][0-9]*\)$/\1/p' "$ROOT/include/rmsprop.h")
[ -n "$MINOR" ] && [ -n "$PATCH" ] || die "no RMSPROP_VERSION_MINOR/PATCH in $ROOT/include/rmsprop.h"

# The SONAME build.rs gave the library (librmsprop.so.N, N the C ABI major version).
SONAME=$(readelf -d "$BUILT/librmsprop.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
case "$SONAME" in
  librmsprop.so.[0-9]|librmsprop.so.[0-9][0-9]) ;;
  *) die "$BUILT/librmsprop.so has SONAME '$SONAME', expected librmsprop.so.N: rebuild it with this tree's build.rs" ;;
esac
REALNAME=$SONAME.$MINOR.$PATCH

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
L=$DEST/$LIBDIR
install -d "$DEST/$INCLUDEDIR" "$L/pkgconfig" "$L/cmake/rmsprop" "$DEST/share/doc/rmsprop"
install -m 644 "$ROOT/include/rmsprop.h" "$ROOT/include/rmsprop.hpp" "$DEST/$INCLUDEDIR/"
install -m 644 "$ROOT/LICENSE-MIT" "$ROOT/LICENSE-APACHE" "$DEST/share/doc/rmsprop/"

# Copy, strip the copy, then move it into place, so a library that programs have mapped
# is replaced, never rewritten in place. The shared library keeps its dynamic symbol
# table (the C API); the static one keeps its symbols and loses only debug sections.
rm -f "$L/.rmsprop-install.so" "$L/.rmsprop-install.a"
cp "$BUILT/librmsprop.so" "$L/.rmsprop-install.so"
"$STRIP" --strip-unneeded "$L/.rmsprop-install.so" || die "$STRIP --strip-unneeded failed"
chmod 755 "$L/.rmsprop-install.so"
mv -f "$L/.rmsprop-install.so" "$L/$REALNAME"
cp "$BUILT/librmsprop.a" "$L/.rmsprop-install.a"
"$STRIP" --strip-debug "$L/.rmsprop-install.a" || die "$STRIP --strip-debug failed"
chmod 644 "$L/.rmsprop-install.a"
mv -f "$L/.rmsprop-install.a" "$L/librmsprop.a"
# librmsprop.so -> librmsprop.so.0 -> librmsprop.so.0.1.0 (relative links: DESTDIR-safe).
rm -f "$L/$SONAME" "$L/librmsprop.so"
ln -s "$REALNAME" "$L/$SONAME"
ln -s "$SONAME" "$L/librmsprop.so"

subst() {
  # The values contain no '|' (checked for PREFIX above).
  sed -e "s|@RMSPROP_PREFIX@|$PREFIX|g" \
      -e "s|@RMSPROP_LIBDIR@|$LIBDIR|g" \
      -e "s|@RMSPROP_INCLUDEDIR@|$INCLUDEDIR|g" \
      -e "s|@RMSPROP_VERSION@|$VERSION|g" \
      -e "s|@RMSPROP_SONAME@|$SONAME|g" \
      -e "s|@RMSPROP_SHARED_FILE@|$REALNAME|g" \
      -e "s|@RMSPROP_STATIC_SYSTEM_LIBS_LDFLAGS@|$STATIC_LDFLAGS|g" \
      -e "s|@RMSPROP_STATIC_SYSTEM_LIBS_CMAKE@|$STATIC_CMAKE|g" \
      -e "s|@RMSPROP_CONFIG_TO_PREFIX@|$UP|g" \
      -e "s|@RMSPROP_SIZEOF_VOID_P@|$SIZEOF_VOID_P|g" \
      "$1" > "$2"
  if grep -q '@RMSPROP_[A-Z_]*@' "$2"; then die "unsubstituted placeholder in $2"; fi
  chmod 644 "$2"
}
subst "$ROOT/cmake/rmsprop.pc.in" "$L/pkgconfig/rmsprop.pc"
subst "$ROOT/cmake/rmsprop-static.pc.in" "$L/pkgconfig/rmsprop-static.pc"
subst "$ROOT/cmake/rmsprop-config.cmake.in" "$L/cmake/rmsprop/rmsprop-config.cmake"
subst "$ROOT/cmake/rmsprop-config-version.cmake.in" "$L/cmake/rmsprop/rmsprop-config-version.cmake"

echo "installed rmsprop $VERSION ($SONAME) into $DEST"

# Make it loadable. Only for a real installation (no DESTDIR) into a directory the
# dynamic linker is configured to search: refresh its cache. Directories are compared
# physically (merged /usr: /lib and /usr/lib are one).
[ -z "${DESTDIR:-}" ] || exit 0
if [ -n "${LDCONFIG:-}" ]; then
  :
elif command -v ldconfig >/dev/null 2>&1; then
  LDCONFIG=ldconfig
elif [ -x /sbin/ldconfig ]; then
  LDCONFIG=/sbin/ldconfig
else
  LDCONFIG=
fi
physical() { (cd "$1" 2>/dev/null && pwd -P) || true; }
want=$(physical "$L")
searched=no
if [ -n "$LDCONFIG" ]; then
  for d in $("$LDCONFIG" -v -N 2>/dev/null | sed -n 's/^\(\/[^:]*\):.*/\1/p'); do
    if [ -n "$want" ] && [ "$(physical "$d")" = "$want" ]; then searched=yes; break; fi
  done
fi
if [ "$searched" = yes ]; then
  if [ "$(id -u)" -eq 0 ]; then
    "$LDCONFIG" || die "$LDCONFIG failed"
    echo "ran $LDCONFIG: $SONAME is loadable from $L"
  else
    echo "note: run 'ldconfig' as root so the dynamic linker finds $SONAME in $L"
  fi
else
  echo "note: $L is not searched by the dynamic linker; programs linked against it need"
  echo "      -Wl,-rpath,$PREFIX/$LIBDIR  (e.g. cc app.c \$(pkg-config --cflags --libs rmsprop) -Wl,-rpath,\$(pkg-config --variable=libdir rmsprop))"
  echo "      or LD_LIBRARY_PATH=$PREFIX/$LIBDIR, or a file in /etc/ld.so.conf.d/ naming it, then ldconfig"
fi
