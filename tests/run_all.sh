#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, the optax conformance fixtures,
# the C/C++ examples (shared and static), the CMake project, Python ctypes, valgrind and
# MPI runs. Installs what it needs first (Debian packages as root, Python packages with
# pip), so it works on a fresh machine of this project's kind.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v mpicc >/dev/null || need_apt+=(openmpi-bin libopenmpi-dev)
command -v c++ >/dev/null || need_apt+=(g++)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${need_apt[*]} (run as root or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
python3 -c "import numpy, pytest" 2>/dev/null || python3 -m pip install -q numpy pytest

cargo test --release
