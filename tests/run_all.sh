#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, the optax conformance fixtures,
# the C/C++ examples (shared and static), the CMake project and packaging, the Go example,
# Python, valgrind and MPI runs. Installs what it needs first, so it works on a fresh
# Debian machine of this project's kind:
#   - Debian packages (as root, after apt-get update): cmake, pkg-config, valgrind, Open MPI,
#     g++, binutils, golang-go, and python3-venv when `python3 -m venv` does not work;
#   - a Python virtual environment, target/test-venv (reused; delete it to start over),
#     with numpy and pytest: Debian's python3 refuses pip installs into the system
#     (PEP 668). It sees the system's site-packages, so packages already installed there
#     are used and pip runs only for what is missing; the rmsprop Python package itself is
#     pip-installed into it from this checkout on every run. torch too, for the rmsprop.torch
#     tests: PyPI's wheel brings CUDA libraries (measured: 4 min, 5.4 GB in a fresh venv,
#     2 vCPU VM, 2026-12-03); RMSPROP_SKIP_TORCH=1 neither installs nor runs them (the
#     pytest summary says so).
# The tests then run with the venv first on PATH, and RMSPROP_TEST_PYTHON (and PYTHON)
# naming its interpreter. Running it again installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${RMSPROP_TEST_VENV:-$PWD/target/test-venv}
PY_PACKAGES=(numpy pytest)
PY_IMPORTS="numpy, pytest"
if [ "${RMSPROP_SKIP_TORCH:-}" != 1 ]; then
  PY_PACKAGES+=(torch)
  PY_IMPORTS+=", torch"
fi

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v mpicc >/dev/null || need_apt+=(openmpi-bin libopenmpi-dev)
command -v c++ >/dev/null || need_apt+=(g++)
command -v readelf >/dev/null && command -v strip >/dev/null || need_apt+=(binutils)
command -v go >/dev/null || need_apt+=(golang-go)
command -v python3 >/dev/null || need_apt+=(python3)

apt_updated=no
apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: $* (run as root or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_updated" = no ]; then
    apt-get update -qq
    apt_updated=yes
  fi
  apt-get install -y -qq "$@" >/dev/null
}
if [ ${#need_apt[@]} -gt 0 ]; then
  apt_install "${need_apt[@]}"
fi

# The venv. A half-made one (no interpreter) is made again.
if [ ! -x "$VENV/bin/python" ]; then
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! python3 -m venv --system-site-packages "$VENV" >/dev/null 2>&1; then
    # Debian's python3 needs python3-venv (ensurepip) for this.
    rm -rf "$VENV"
    apt_install python3-venv
    python3 -m venv --system-site-packages "$VENV"
  fi
fi
if ! "$VENV/bin/python" -c "import $PY_IMPORTS" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
export PATH="$VENV/bin:$PATH"
export RMSPROP_TEST_PYTHON="$VENV/bin/python"
export PYTHON="$VENV/bin/python"

# The Python package as users get it: pip builds the library (setuptools-rust runs cargo)
# into the venv; tests/python checks that `import rmsprop` from another directory, without
# RMSPROP_LIBRARY, loads the copy the package carries. Build backend installed once.
if ! "$VENV/bin/python" -c "import setuptools, setuptools_rust, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "setuptools>=77" "setuptools-rust>=1.9"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps --force-reinstall .
export RMSPROP_TEST_INSTALLED=1

cargo test --release
